/* Speed of the block-format dot products on one thread: for every weight
 * format, a 4096-wide row set small enough to stay in the caches (compute
 * bound) and one far larger than them (memory bound), each through the
 * portable vec_dot, the AVX2 one when the CPU has it, and dot_f32.
 * Usage: bench/quants [rows of the large matrix, default 8192] */
#include <stdio.h>
#include <stdlib.h>

#include "bench/bench.h"
#include "kernels/cpu/quants.h"

enum { N = 4096, SMALL_ROWS = 16 };

typedef struct {
	const sl_type_info *ti;
	sl_vec_dot_fn vec_dot; /* NULL: time dot_f32 */
	const uint8_t *w;
	size_t row_bytes;
	const void *xq;
	const float *x;
	int rows;
} job;

static float run(const job *j)
{
	float acc = 0;
	for (int r = 0; r < j->rows; r++) {
		const uint8_t *w = j->w + (size_t)r * j->row_bytes;
		float s;
		if (j->vec_dot)
			j->vec_dot(N, &s, w, j->xq);
		else
			s = j->ti->dot_f32(w, j->x, N);
		acc += s;
	}
	return acc;
}

/* Giga-elements per second, best of a few timed runs of about 0.2 s. */
static double measure(const job *j)
{
	static volatile float sink;
	int reps = 1;
	double t;
	do {
		reps *= 2;
		double t0 = bench_now();
		for (int k = 0; k < reps; k++)
			sink += run(j);
		t = bench_now() - t0;
	} while (t < 0.05);
	double best = 1e30;
	for (int k = 0; k < 3; k++) {
		double t0 = bench_now();
		for (int i = 0; i < reps; i++)
			sink += run(j);
		double dt = (bench_now() - t0) / reps;
		best = dt < best ? dt : best;
	}
	return (double)N * j->rows / best * 1e-9;
}

int main(int argc, char **argv)
{
	static const int types[] = {SL_DT_Q4_0, SL_DT_Q4_1, SL_DT_Q5_0, SL_DT_Q5_1, SL_DT_Q8_0,
	                            SL_DT_Q2_K, SL_DT_Q3_K, SL_DT_Q4_K, SL_DT_Q5_K, SL_DT_Q6_K};
	const int big_rows = argc > 1 ? atoi(argv[1]) : 8192;
	float *x = malloc(N * sizeof *x), *row = malloc(N * sizeof *row);
	if (!x || !row || big_rows < 1)
		return 1;
	srand(1);
	for (int i = 0; i < N; i++)
		x[i] = (float)rand() / RAND_MAX - 0.5f;

	printf("Gelem/s on one thread, rows of %d; cached = %d rows, streamed = %d rows\n", N,
	       SMALL_ROWS, big_rows);
	printf("%-5s %9s %9s %9s | %9s %9s %9s\n", "type", "portable", "avx2", "dot_f32",
	       "portable", "avx2", "dot_f32");
	for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
		const sl_type_info *ti = sl_type_info_get(types[k]);
		const size_t row_bytes = sl_dtype_row_bytes(types[k], N);
		uint8_t *w = malloc(row_bytes * (size_t)big_rows);
		void *xq = malloc(sl_dtype_row_bytes(ti->vec_dot_type, N));
		if (!w || !xq)
			return 1;
		for (int r = 0; r < big_rows; r++) {
			for (int i = 0; i < N; i++)
				row[i] = (float)rand() / RAND_MAX - 0.5f;
			/* quantizing every row would take minutes: copy a few */
			if (r < 64)
				ti->from_float(row, w + (size_t)r * row_bytes, N);
			else
				memcpy(w + (size_t)r * row_bytes, w + (size_t)(r % 64) * row_bytes,
				       row_bytes);
		}
		sl_type_info_get(ti->vec_dot_type)->from_float(x, xq, N);
		sl_vec_dot_fn impl[3] = {sl_quants_vec_dot_portable(types[k]),
		                         sl_quants_vec_dot_avx2(types[k]), NULL};
		printf("%-5s", ti->name);
		for (int size = 0; size < 2; size++) {
			for (int m = 0; m < 3; m++) {
				job j = {ti,
				         impl[m],
				         w,
				         row_bytes,
				         xq,
				         x,
				         size ? big_rows : SMALL_ROWS};
				if (m == 1 && !impl[m])
					printf(" %9s", "-");
				else
					printf(" %9.2f", measure(&j));
			}
			printf(size ? "\n" : " |");
		}
		fflush(stdout);
		free(w);
		free(xq);
	}
	free(x);
	free(row);
	return 0;
}
