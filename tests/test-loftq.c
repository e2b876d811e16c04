/* LoftQ on the workshop model's matrices (core/loftq.c): the error
 * ||W - Q - s B A||_F falls over the iterations; the first iteration's Q
 * is plain rounding to nearest, and its adapter takes the largest
 * singular value of what rounding left (checked against power iteration
 * in double); the adapter ends orthogonal to the error it leaves (what a
 * best low-rank approximation does); impossible ranks are refused. */
#include "core/formats.h"
#include "core/loftq.h"
#include "test.h"

static sl_model *load(const char *path)
{
	sl_model *m = NULL;
	sl_error err = {0};
	sl_load_opts lo = {.check_finite = true};
	if (sl_model_load(path, &lo, &m, &err))
		fprintf(stderr, "%s: %s\n", path, err.msg);
	return m;
}

typedef struct {
	int rows, cols, rank;
	float *W, *B, *A, *Q;
	void *packed;
} mat;

static bool mat_new(mat *m, const sl_tensor *t, int type, int rank)
{
	m->rows = (int)t->ne[1];
	m->cols = (int)t->ne[0];
	m->rank = rank;
	size_t n = (size_t)m->rows * m->cols;
	m->W = malloc(n * sizeof *m->W);
	m->Q = malloc(n * sizeof *m->Q);
	m->B = malloc((size_t)m->rows * rank * sizeof *m->B);
	m->A = malloc((size_t)rank * m->cols * sizeof *m->A);
	m->packed = malloc(sl_dtype_row_bytes(type, m->cols) * (size_t)m->rows);
	if (!m->W || !m->Q || !m->B || !m->A || !m->packed)
		return false;
	sl_tensor_rows_to_f32(t, 0, m->rows, m->W);
	return true;
}

static void mat_free(mat *m)
{
	free(m->W);
	free(m->Q);
	free(m->B);
	free(m->A);
	free(m->packed);
}

/* E = W - Q - s B A, Q decoded from the packed bytes. */
static double *error_of(const mat *m, int type, float s)
{
	size_t n = (size_t)m->rows * m->cols;
	double *E = malloc(n * sizeof *E);
	sl_dtype_rows_to_float(type, m->packed, m->Q, m->rows, m->cols);
	for (int i = 0; i < m->rows; i++)
		for (int j = 0; j < m->cols; j++) {
			double ba = 0;
			for (int c = 0; c < m->rank; c++)
				ba += (double)m->B[(size_t)i * m->rank + c] * m->A[(size_t)c * m->cols + j];
			E[(size_t)i * m->cols + j] = (double)m->W[(size_t)i * m->cols + j] - m->Q[(size_t)i * m->cols + j] - s * ba;
		}
	return E;
}

static double frob(const double *E, size_t n)
{
	double ss = 0;
	for (size_t i = 0; i < n; i++)
		ss += E[i] * E[i];
	return sqrt(ss);
}

/* The largest singular value of M (rows x cols), by power iteration on M^T M. */
static double sigma_max(const double *M, int rows, int cols)
{
	double *v = malloc((size_t)cols * sizeof *v), *u = malloc((size_t)rows * sizeof *u), s = 0;
	for (int j = 0; j < cols; j++)
		v[j] = 1.0 + 0.01 * (j % 7);
	for (int it = 0; it < 500; it++) {
		for (int i = 0; i < rows; i++) {
			u[i] = 0;
			for (int j = 0; j < cols; j++)
				u[i] += M[(size_t)i * cols + j] * v[j];
		}
		double nv = 0;
		for (int j = 0; j < cols; j++) {
			v[j] = 0;
			for (int i = 0; i < rows; i++)
				v[j] += M[(size_t)i * cols + j] * u[i];
			nv += v[j] * v[j];
		}
		nv = sqrt(nv);
		for (int j = 0; j < cols; j++)
			v[j] /= nv;
		s = sqrt(nv);
	}
	free(v);
	free(u);
	return s;
}

static void test_matrix(const sl_model *w, const char *name, const char *format)
{
	const sl_tensor *t = sl_model_tensor(w, name);
	const sl_format *f = sl_format_find(format);
	REQUIRE(t && f, "%s and %s exist", name, format);
	const int type = f->dtype, rank = 8, iters = 5;
	const float s = 2.0f; /* alpha 16 over rank 8 */
	mat m;
	REQUIRE(mat_new(&m, t, type, rank), "memory");
	size_t n = (size_t)m.rows * m.cols;
	sl_error err = {0};

	/* One iteration: plain rounding, and the adapter's best rank-1 part. */
	mat one;
	REQUIRE(mat_new(&one, t, type, 1), "memory");
	double r1;
	REQUIRE(!sl_loftq(one.W, one.rows, one.cols, type, 1, s, 1, one.packed, one.B, one.A, &r1, name, &err), "%s",
	        err.msg);
	void *rtn = malloc(sl_dtype_row_bytes(type, m.cols) * (size_t)m.rows);
	sl_dtype_rows_from_float(type, m.W, rtn, m.rows, m.cols);
	CHECK(!memcmp(rtn, one.packed, sl_dtype_row_bytes(type, m.cols) * (size_t)m.rows),
	      "%s %s: the first iteration's Q is rounding to nearest", name, format);
	double *E0 = error_of(&one, type, 0.0f), *E1 = error_of(&one, type, s);
	double e0 = frob(E0, n), e1 = frob(E1, n), sig = sigma_max(E0, m.rows, m.cols);
	CHECK(fabs(e1 - r1) <= 1e-4 * e1, "%s: reported residual %.6g, recomputed %.6g", name, r1, e1);
	CHECK(fabs((e0 * e0 - e1 * e1) - sig * sig) <= 1e-3 * sig * sig,
	      "%s %s: rank 1 removes %.6g of the squared error, the largest singular value squared is %.6g", name, format,
	      e0 * e0 - e1 * e1, sig * sig);
	free(E0);
	free(E1);
	free(rtn);
	mat_free(&one);

	double resid[5];
	REQUIRE(!sl_loftq(m.W, m.rows, m.cols, type, rank, s, iters, m.packed, m.B, m.A, resid, name, &err), "%s",
	        err.msg);
	printf("%s %s rank %d: ||W - Q||_F %.5f; ||W - Q - sBA||_F by iteration", name, format, rank, e0);
	for (int i = 0; i < iters; i++)
		printf(" %.5f", resid[i]);
	printf("\n");
	for (int i = 1; i < iters; i++)
		CHECK(resid[i] <= resid[i - 1] * (1 + 1e-5), "%s %s: iteration %d raised the error %.6g -> %.6g", name,
		      format, i + 1, resid[i - 1], resid[i]);
	CHECK(resid[iters - 1] < 0.99 * resid[0], "%s %s: %.6g -> %.6g", name, format, resid[0], resid[iters - 1]);
	CHECK(resid[0] < e0, "%s %s: the adapter lowers the error of rounding alone", name, format);

	/* The best rank-r approximation of W - Q leaves an error orthogonal to
	 * its row and column spaces: E A^T = 0 and B^T E = 0. */
	double *E = error_of(&m, type, s), ea = 0, be = 0, na = 0, nb = 0, ne = frob(E, n);
	for (int c = 0; c < rank; c++) {
		for (int i = 0; i < m.rows; i++) {
			double d = 0;
			for (int j = 0; j < m.cols; j++)
				d += E[(size_t)i * m.cols + j] * m.A[(size_t)c * m.cols + j];
			ea += d * d;
		}
		for (int j = 0; j < m.cols; j++) {
			double d = 0;
			for (int i = 0; i < m.rows; i++)
				d += m.B[(size_t)i * rank + c] * E[(size_t)i * m.cols + j];
			be += d * d;
		}
	}
	for (size_t i = 0; i < (size_t)rank * m.cols; i++)
		na += (double)m.A[i] * m.A[i];
	for (size_t i = 0; i < (size_t)m.rows * rank; i++)
		nb += (double)m.B[i] * m.B[i];
	CHECK(sqrt(ea) <= 1e-4 * ne * sqrt(na) && sqrt(be) <= 1e-4 * ne * sqrt(nb),
	      "%s %s: the error is not orthogonal to the adapter (|E A^T| %.3g, |B^T E| %.3g)", name, format, sqrt(ea),
	      sqrt(be));
	free(E);

	CHECK(sl_loftq(m.W, m.rows, m.cols, type, m.rows + 1, s, 1, m.packed, m.B, m.A, NULL, name, &err) ==
	              SL_ERR_ARG && strstr(err.msg, "rank"),
	      "a rank beyond the matrix is refused: %s", err.msg);
	CHECK(sl_loftq(m.W, m.rows, m.cols, type, rank, s, 0, m.packed, m.B, m.A, NULL, name, &err) == SL_ERR_ARG,
	      "no iterations refused");
	mat_free(&m);
}

int main(void)
{
	sl_model *w = load(test_srcpath("models/workshop.gguf"));
	if (TEST_EVAL(w, "the workshop model loads")) {
		test_matrix(w, "blk.0.attn_q.weight", "int3-g32");
		test_matrix(w, "blk.3.ffn_down.weight", "int4-g32");
		test_matrix(w, "blk.5.ffn_up.weight", "q4_0");
	}
	sl_model_free(w);
	return test_finish();
}
