/* One-shot pruning masks that need no solver: the lowest scores of each
 * output row set to zero, unstructured or N:M, with scores that the
 * pruning criteria choose (|W|, or |W| times the input's norm). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "method.h"

bool sl_pattern_nm(const char *pattern, int *keep_n, int *group_m)
{
	int n, m, used = 0;
	if (sscanf(pattern, "%d:%d%n", &n, &m, &used) != 2 || pattern[used] || n < 1 || m < 2 || n >= m || m > 64)
		return false;
	*keep_n = n;
	*group_m = m;
	return true;
}

static int cmp_scored(const void *a, const void *b)
{
	const sl_scored *x = a, *y = b;
	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return x->idx - y->idx;
}

unsigned char *sl_zero_mask(const float *W, size_t n)
{
	unsigned char *mask = sl_malloc(n);
	for (size_t i = 0; mask && i < n; i++)
		mask[i] = W[i] == 0;
	return mask;
}

void sl_sort_scored(sl_scored *s, size_t n)
{
	qsort(s, n, sizeof *s, cmp_scored);
}

/* Zeroes the k lowest-scoring of n weights w[0..n). */
static void zero_lowest(float *w, const double *col_norm, int c0, int n, int k, sl_scored *s)
{
	for (int j = 0; j < n; j++) {
		double a = w[j] < 0 ? -w[j] : w[j];
		s[j] = (sl_scored){col_norm ? a * col_norm[c0 + j] : a, j};
	}
	sl_sort_scored(s, (size_t)n);
	for (int j = 0; j < k; j++)
		w[s[j].idx] = 0;
}

sl_status sl_prune_rows(float *W, int rows, int cols, const double *col_norm, double sparsity, int keep_n,
                        int group_m, sl_error *err)
{
	sl_scored *s = sl_malloc_array((size_t)cols, sizeof *s);
	if (!s)
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory pruning a %d x %d matrix", rows, cols);
	for (int r = 0; r < rows; r++) {
		float *w = W + (size_t)r * cols;
		if (keep_n > 0 && group_m > 0) {
			for (int c0 = 0; c0 + group_m <= cols; c0 += group_m)
				zero_lowest(w + c0, col_norm, c0, group_m, group_m - keep_n, s);
		} else {
			zero_lowest(w, col_norm, 0, cols, (int)(sparsity * cols), s);
		}
	}
	free(s);
	return SL_OK;
}
