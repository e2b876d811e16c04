/* Speed of the block-format dot products on one thread: for every weight
 * format, a 4096-wide row set small enough to stay in the caches (compute
 * bound) and one far larger than them (memory bound), each through the
 * portable vec_dot, the AVX2 one when the CPU has it, and dot_f32. Then
 * the tiled dot products: one weight row against 2, 3 and 4 activation
 * rows in one call (t2..t4), and four weight rows against 1..4 of them
 * (r1..r4), set against as many one-row calls in the same run. Last, the
 * weight bytes per second vec_dot_rows reads taking every row of the
 * matrix in one call (as a thread's share of a product does) for 1, 2, 4
 * and 8 tokens: decoding's kernel against the memory bandwidth.
 * Usage: bench/quants [rows of the large matrix, default 8192] */
#include <stdbool.h>
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
	int nt;         /* > 0: nt activation rows (xq holds SL_DOT_TILE of them) */
	int tiled;      /* 1: vec_dot_tile; 2: vec_dot_rows, SL_DOT_ROWS rows at a time; 3: all rows in one
	                   vec_dot_rows (xq holds SL_DOT_ROWS_TOKENS rows); 0: nt vec_dot calls */
	size_t xq_bytes;
} job;

static float run(const job *j)
{
	float acc = 0;
	if (j->tiled == 3) {
		static float *s;
		static int s_rows;
		if (s_rows < j->rows) {
			free(s);
			s = malloc(sizeof *s * SL_DOT_ROWS_TOKENS * (size_t)j->rows);
			s_rows = j->rows;
			if (!s)
				exit(1);
		}
		j->ti->vec_dot_rows(N, j->rows, j->nt, s, (size_t)j->rows, j->w, j->row_bytes, j->xq, j->xq_bytes);
		return s[0] + s[(size_t)j->nt * j->rows - 1];
	}
	for (int r = 0; j->nt && j->tiled == 2 && r + SL_DOT_ROWS <= j->rows; r += SL_DOT_ROWS) {
		float s[SL_DOT_TILE * SL_DOT_ROWS];
		j->ti->vec_dot_rows(N, SL_DOT_ROWS, j->nt, s, SL_DOT_ROWS, j->w + (size_t)r * j->row_bytes, j->row_bytes,
		                    j->xq, j->xq_bytes);
		acc += s[0] + s[SL_DOT_TILE * SL_DOT_ROWS - 1];
	}
	for (int r = 0; j->nt && j->tiled < 2 && r < j->rows; r++) {
		const uint8_t *w = j->w + (size_t)r * j->row_bytes;
		float s[SL_DOT_TILE];
		if (j->tiled)
			j->ti->vec_dot_tile(N, j->nt, s, 1, w, j->xq, j->xq_bytes);
		else
			for (int t = 0; t < j->nt; t++)
				j->ti->vec_dot(N, &s[t], w, (const uint8_t *)j->xq + t * j->xq_bytes);
		acc += s[0] + s[j->nt - 1];
	}
	for (int r = 0; !j->nt && r < j->rows; r++) {
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
	return (double)N * j->rows * (j->nt ? j->nt : 1) / best * 1e-9;
}

static char *tile_lines, *rows_lines;

/* Appends line to *lines. */
static void add_line(char **lines, const char *line)
{
	size_t old = *lines ? strlen(*lines) : 0;
	char *grown = realloc(*lines, old + strlen(line) + 1);
	if (!grown)
		exit(1);
	memcpy(grown + old, line, strlen(line) + 1);
	*lines = grown;
}

/* Weight GB/s of vec_dot_rows over the whole matrix in one call, cached
 * and streamed, for 1, 2, 4 and 8 tokens. */
static void rows_gbs(const sl_type_info *ti, const uint8_t *w, size_t row_bytes, int big_rows)
{
	if (!ti->vec_dot_rows)
		return;
	const size_t xb = sl_dtype_row_bytes(ti->vec_dot_type, N);
	uint8_t *xq = malloc(SL_DOT_ROWS_TOKENS * xb);
	float *x = malloc(N * sizeof *x);
	if (!xq || !x)
		exit(1);
	for (int t = 0; t < SL_DOT_ROWS_TOKENS; t++) {
		for (int i = 0; i < N; i++)
			x[i] = (float)rand() / RAND_MAX - 0.5f;
		sl_type_info_get(ti->vec_dot_type)->from_float(x, xq + t * xb, N);
	}
	char line[512];
	int len = snprintf(line, sizeof line, "%-5s", ti->name);
	for (int size = 0; size < 2; size++) {
		for (int nt = 1; nt <= SL_DOT_ROWS_TOKENS; nt *= 2) {
			job j = {ti, NULL, w, row_bytes, xq, NULL, size ? big_rows : SMALL_ROWS, nt, 3, xb};
			len += snprintf(line + len, sizeof line - len, " %6.2f", measure(&j) / nt * row_bytes / N);
		}
		len += snprintf(line + len, sizeof line - len, size ? "\n" : " |");
	}
	add_line(&rows_lines, line);
	free(xq);
	free(x);
}

/* Speed-ups of vec_dot_tile (one row, nt = 2..SL_DOT_TILE tokens) and of
 * vec_dot_rows (SL_DOT_ROWS rows, nt = 1..SL_DOT_TILE) over as many one-row
 * vec_dot calls, collected to print after the main table. */
static void tile_rows(const sl_type_info *ti, const uint8_t *w, size_t row_bytes, int big_rows)
{
	if (!ti->vec_dot_tile)
		return;
	size_t xb = sl_dtype_row_bytes(ti->vec_dot_type, N);
	uint8_t *xq = malloc(SL_DOT_TILE * xb);
	float *x = malloc(N * sizeof *x);
	char line[512];
	int len = snprintf(line, sizeof line, "%-5s", ti->name);
	if (!xq || !x)
		exit(1);
	for (int t = 0; t < SL_DOT_TILE; t++) {
		for (int i = 0; i < N; i++)
			x[i] = (float)rand() / RAND_MAX - 0.5f;
		sl_type_info_get(ti->vec_dot_type)->from_float(x, xq + t * xb, N);
	}
	for (int size = 0; size < 2; size++) {
		/* the tile for nt = 2..4 tokens, then four rows for nt = 1..4 */
		for (int kind = 1; kind <= 2; kind++)
			for (int nt = kind == 1 ? 2 : 1; nt <= SL_DOT_TILE; nt++) {
				if (kind == 2 && !ti->vec_dot_rows)
					break;
				job one = {ti, NULL, w, row_bytes, xq, NULL, size ? big_rows : SMALL_ROWS, nt, 0, xb};
				job tile = one;
				tile.tiled = kind;
				double a = measure(&one), b = measure(&tile);
				len += snprintf(line + len, sizeof line - len, " %s%d %4.2fx", kind == 1 ? "t" : "r", nt,
				                b / a);
			}
		len += snprintf(line + len, sizeof line - len, size ? "\n" : " |");
	}
	add_line(&tile_lines, line);
	free(xq);
	free(x);
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
				         size ? big_rows : SMALL_ROWS, 0, false, 0};
				if (m == 1 && !impl[m])
					printf(" %9s", "-");
				else
					printf(" %9.2f", measure(&j));
			}
			printf(size ? "\n" : " |");
		}
		fflush(stdout);
		tile_rows(ti, w, row_bytes, big_rows);
		rows_gbs(ti, w, row_bytes, big_rows);
		free(w);
		free(xq);
	}
	if (tile_lines)
		printf("\ntiles: tN = one weight row against N activation rows in one call, rN = four weight\n"
		       "rows against N; speed-up over as many one-row calls (the same results, bit for bit),\n"
		       "cached | streamed\n%s", tile_lines);
	if (rows_lines)
		printf("\nvec_dot_rows, every row in one call: weight GB/s for 1, 2, 4 and 8 tokens,\n"
		       "cached | streamed\n%s", rows_lines);
	free(tile_lines);
	free(rows_lines);
	free(x);
	free(row);
	return 0;
}
