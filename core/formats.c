/* The format registry: one entry per format a recipe can name, and what
 * follows from it: what each costs in bits, which rows it holds, where it
 * falls back to, how it is exported, its fake quantization. Storage itself
 * is the kernels' business (kernels/dtype.h: layout, quantizer, grid and
 * dot products of each storage type); an entry here is a name, a storage
 * type, a family and what the rest of slimlab may use it for. Adding a
 * format is a storage type in kernels/ and an entry below. */
#include "formats.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/dtype.h"

/* Named fields: entries give the flags (kv, example) they set. */
#define FMT(n, dt, b, g, fam, sum, ...) {.name = n, .dtype = dt, .bits = b, .group = g, .family = fam, .summary = sum, __VA_ARGS__}
#define INT_ID(bi, gi, a) (SL_DT_INT_BASE + 6 * (bi) + 2 * (gi) + (a))
#define INT_PAIR(K, bi, G, gi, what, ...)                                                            \
	FMT("int" #K "-g" #G, INT_ID(bi, gi, 0), K, G, "int", #K "-bit integers, groups of " #G ", f16 scale" what, \
	    __VA_ARGS__),                                                                                \
	FMT("int" #K "-g" #G "-asym", INT_ID(bi, gi, 1), K, G, "int",                                         \
	    #K "-bit integers, groups of " #G ", f16 scale and minimum")
/* flags32 and flags128: what the symmetric groups of 32 and 128 are flagged with. */
#define INT_GROUPS(K, bi, what32, flags32, flags128)                                                 \
	INT_PAIR(K, bi, 32, 0, what32, flags32), INT_PAIR(K, bi, 64, 1, "", ), INT_PAIR(K, bi, 128, 2, "", flags128)

static const sl_format formats[] = {
	FMT("f32", SL_DT_F32, 32, 0, "float", "32-bit float (no compression)", .kv = true),
	FMT("f16", SL_DT_F16, 16, 0, "float", "IEEE half", .kv = true),
	FMT("bf16", SL_DT_BF16, 16, 0, "float", "bfloat16", .kv = true),
	FMT("q8_0", SL_DT_Q8_0, 8, 32, "ggml", "ggml Q8_0: 8-bit, blocks of 32", .example = true, .ladder = true, .draft = true),
	FMT("q6_k", SL_DT_Q6_K, 6, 16, "ggml", "ggml Q6_K: 6-bit k-quant, superblocks of 256"),
	FMT("q5_1", SL_DT_Q5_1, 5, 32, "ggml", "ggml Q5_1: 5-bit with minimum, blocks of 32"),
	FMT("q5_0", SL_DT_Q5_0, 5, 32, "ggml", "ggml Q5_0: 5-bit, blocks of 32", .ladder = true),
	FMT("q5_k", SL_DT_Q5_K, 5, 32, "ggml", "ggml Q5_K: 5-bit k-quant, superblocks of 256"),
	FMT("q4_1", SL_DT_Q4_1, 4, 32, "ggml", "ggml Q4_1: 4-bit with minimum, blocks of 32"),
	FMT("q4_0", SL_DT_Q4_0, 4, 32, "ggml", "ggml Q4_0: 4-bit, blocks of 32", .ladder = true, .draft = true),
	FMT("q4_k", SL_DT_Q4_K, 4, 32, "ggml", "ggml Q4_K: 4-bit k-quant, superblocks of 256", .example = true),
	FMT("q3_k", SL_DT_Q3_K, 3, 16, "ggml", "ggml Q3_K: 3-bit k-quant, superblocks of 256"),
	FMT("q2_k", SL_DT_Q2_K, 2, 16, "ggml", "ggml Q2_K: 2-bit k-quant, superblocks of 256"),
	FMT("int8", SL_DT_I8_CH, 8, 0, "int", "8-bit integers, one f32 scale per output channel", .kv = true, .example = true),
	INT_GROUPS(8, 0, " (is Q8_0)", , ),
	INT_GROUPS(4, 1, " (is Q4_0)", , .example = true),
	INT_GROUPS(3, 2, "", .ladder = true, ),
	INT_GROUPS(2, 3, "", .ladder = true, ),
	FMT("fp8-e4m3", SL_DT_FP8_E4M3, 8, 0, "fp8", "FP8 E4M3 (max 448), one scale per tensor", .kv = true),
	FMT("fp8-e4m3-ch", SL_DT_FP8_E4M3_CH, 8, 0, "fp8", "FP8 E4M3, one scale per output channel"),
	FMT("fp8-e5m2", SL_DT_FP8_E5M2, 8, 0, "fp8", "FP8 E5M2 (max 57344), one scale per tensor", .kv = true),
	FMT("fp8-e5m2-ch", SL_DT_FP8_E5M2_CH, 8, 0, "fp8", "FP8 E5M2, one scale per output channel"),
	FMT("nvfp4", SL_DT_NVFP4, 4, 16, "fp4", "NVFP4: E2M1, E4M3 scale per 16, f32 tensor scale", .kv = true, .example = true),
	FMT("mxfp4", SL_DT_MXFP4, 4, 32, "fp4", "MXFP4: E2M1, power-of-two scale per 32"),
	FMT("nf4", SL_DT_NF4, 4, 64, "nf4", "NF4 (QLoRA): normal quantiles, f32 absmax per 64"),
	FMT("nf4-dq", SL_DT_NF4_DQ, 4, 64, "nf4", "NF4, absmax per 64 double-quantized to 8 bits"),
};

#define N_FORMATS ((int)(sizeof formats / sizeof formats[0]))

static bool is_asym(const sl_format *f)
{
	size_t k = strlen(f->name);
	return k > 5 && !strcmp(f->name + k - 5, "-asym");
}

int sl_format_count(void)
{
	return N_FORMATS;
}

const sl_format *sl_format_at(int i)
{
	return i >= 0 && i < N_FORMATS ? &formats[i] : NULL;
}

const sl_format *sl_format_find(const char *name)
{
	for (int i = 0; name && i < N_FORMATS; i++)
		if (!strcmp(formats[i].name, name))
			return &formats[i];
	return NULL;
}

void sl_format_names(bool (*keep)(const sl_format *f), const char *sep, char *buf, size_t n)
{
	size_t k = 0;
	if (n)
		buf[0] = 0;
	for (int i = 0; i < N_FORMATS && k < n; i++)
		if (!keep || keep(&formats[i]))
			k += (size_t)snprintf(buf + k, n - k, "%s%s", k ? sep : "", formats[i].name);
}

bool sl_format_is_kv(const sl_format *f)
{
	return f->kv;
}

bool sl_format_is_example(const sl_format *f)
{
	return f->example;
}

bool sl_format_in_ladder(const sl_format *f)
{
	return f->ladder;
}

bool sl_format_is_draft(const sl_format *f)
{
	return f->draft;
}

static const sl_param_spec format_params[] = {
	{"group", 1, 1 << 20, 0, true, false, "elements sharing one scale", false},
};

int sl_format_param_count(void)
{
	return (int)(sizeof format_params / sizeof format_params[0]);
}

const sl_param_spec *sl_format_param_at(int i)
{
	return i >= 0 && i < sl_format_param_count() ? &format_params[i] : NULL;
}

/* The group-wise integers of f's bits and symmetry (int8, one scale per
 * row, takes groups too). */
const sl_format *sl_format_with_group(const sl_format *f, int group)
{
	if (!f || strcmp(f->family, "int") || group <= 0)
		return NULL;
	for (int i = 0; i < N_FORMATS; i++) {
		const sl_format *t = &formats[i];
		if (!strcmp(t->family, "int") && t->bits == f->bits && is_asym(t) == is_asym(f) && t->group == group)
			return t;
	}
	return NULL;
}

void sl_format_groups(const sl_format *f, char *buf, size_t n)
{
	int sizes[8], k = 0;
	for (int i = 0; i < N_FORMATS && k < 8; i++)
		if (sl_format_with_group(f, formats[i].group) == &formats[i])
			sizes[k++] = formats[i].group;
	size_t used = 0;
	if (n)
		buf[0] = 0;
	for (int i = 0; i < k && used < n; i++)
		used += (size_t)snprintf(buf + used, n - used, "%s%d", !i ? "" : i == k - 1 ? " or " : ", ", sizes[i]);
}

const sl_format *sl_format_of_dtype(int dtype)
{
	for (int i = 0; i < N_FORMATS; i++)
		if (formats[i].dtype == dtype)
			return &formats[i];
	return NULL;
}

/* For a row the format cannot hold (or n <= 0) this is the bits per weight
 * of whole blocks, what the format costs on rows it can hold. */
double sl_format_bpw(const sl_format *f, int64_t n)
{
	const sl_type_info *ti = sl_type_info_get(f->dtype);
	if (!ti)
		return f->bits;
	if (n <= 0)
		n = 4096;
	if (!sl_format_fits(f, n))
		n = (n + ti->block_size - 1) / ti->block_size * ti->block_size;
	return 8.0 * (double)sl_dtype_row_bytes(f->dtype, n) / (double)n;
}

bool sl_format_fits(const sl_format *f, int64_t n)
{
	return f && sl_dtype_row_bytes(f->dtype, n) > 0;
}

/* 0: same family, 1: a kindred one (small floats, each falling back to
 * the wider ones after it: nf4 to fp4 or fp8, fp4 to fp8), 2: unrelated.
 * ggml's formats have no kin: what llama.cpp runs matters for them, and
 * rows no ggml block holds go to f16, as llama.cpp's own quantizer sends
 * them. */
static int kinship(const sl_format *a, const sl_format *b)
{
	static const char *const small[] = {"nf4", "fp4", "fp8"};
	if (!strcmp(a->family, b->family))
		return 0;
	int ia = -1, ib = -1;
	for (int i = 0; i < 3; i++) {
		ia = strcmp(a->family, small[i]) ? ia : i;
		ib = strcmp(b->family, small[i]) ? ib : i;
	}
	return ia >= 0 && ib > ia ? 1 : 2;
}

/* Among formats that hold rows of n, from the same family or a kindred
 * one: the same family first, then (integers) the same symmetry, then
 * never fewer bits than asked when that can be had, then the nearest in
 * bits per weight, then catalog order; f16 when none. So q4_k on 288-wide
 * rows gives q4_0, q6_k gives q8_0, int4-g128 gives int4-g32, and on rows
 * that no block of 32 divides int4 gives int8 (one scale per row), nvfp4
 * gives fp8-e4m3 and q4_0 gives f16. */
const sl_format *sl_format_fallback(const sl_format *f, int64_t n)
{
	if (sl_format_fits(f, n))
		return f;
	double want = sl_format_bpw(f, n);
	const sl_format *best = NULL;
	double best_key[5] = {0};
	for (int i = 0; i < N_FORMATS; i++) {
		const sl_format *c = &formats[i];
		int kin = kinship(f, c);
		if (kin > 1 || !sl_format_fits(c, n))
			continue;
		double bpw = sl_format_bpw(c, n);
		double key[5] = {kin, is_asym(c) != is_asym(f), bpw < want, fabs(bpw - want), i};
		int better = !best;
		for (int k = 0; !better && k < 5 && key[k] <= best_key[k]; k++)
			better = key[k] < best_key[k];
		if (better) {
			best = c;
			memcpy(best_key, key, sizeof key);
		}
	}
	return best ? best : sl_format_find("f16");
}

/* A block type returned here holds the format's values exactly (its own
 * storage, or its ggml twin, see sl_dtype_ggml_twin), so an exporter
 * writes those bytes; a float type means the dequantized values are to be
 * converted to it, which loses nothing. */
int sl_format_export_type(const sl_format *f, const float *dequantized, int64_t n)
{
	if (f->dtype < SL_DT_GGML_END)
		return f->dtype;
	int twin = sl_dtype_ggml_twin(f->dtype);
	if (twin >= 0)
		return twin;
	bool f16 = true, bf16 = true;
	for (int64_t i = 0; i < n && (f16 || bf16); i++) {
		float v = dequantized[i];
		f16 = f16 && sl_f16_to_f32(sl_f32_to_f16(v)) == v;
		bf16 = bf16 && sl_bf16_to_f32(sl_f32_to_bf16(v)) == v;
	}
	return f16 ? SL_DT_F16 : bf16 ? SL_DT_BF16 : SL_DT_F32;
}

sl_status sl_roundtrip(int type, const float *W, float *out, int rows, int cols, sl_error *err)
{
	size_t rb = sl_dtype_row_bytes(type, cols);
	if (!rb)
		return sl_errorf(err, SL_ERR_ARG, "%s cannot hold rows of %d values", sl_dtype_name(type), cols);
	void *buf = sl_malloc_array((size_t)rows, rb);
	if (!buf)
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory quantizing a %d x %d matrix", rows, cols);
	sl_dtype_rows_from_float(type, W, buf, rows, cols);
	sl_dtype_rows_to_float(type, buf, out, rows, cols);
	free(buf);
	return SL_OK;
}

/* The largest magnitude of the values of a grid that is not uniform. */
static float grid_max(int kind)
{
	switch (kind) {
	case SL_GRID_E4M3: return 448.0f;
	case SL_GRID_E5M2: return 57344.0f;
	case SL_GRID_E2M1: return 6.0f;
	case SL_GRID_NF4: return 1.0f;
	default: return INFINITY;
	}
}

bool sl_grid_within(int kind, const sl_grid *g, float x)
{
	if (g->d == 0.0f)
		return kind != SL_GRID_UNIFORM || x == g->m;
	if (kind != SL_GRID_UNIFORM)
		return fabsf(x / g->d) <= grid_max(kind);
	float k = (x - g->m) / g->d;
	return k >= g->kmin - 0.5f && k <= g->kmax + 0.5f;
}

sl_status sl_format_fake_quantize(const sl_format *f, const float *W, float *out, unsigned char *inside, int rows,
                                  int cols, sl_error *err)
{
	const sl_type_info *ti = sl_type_info_get(f->dtype);
	size_t rb = sl_dtype_row_bytes(f->dtype, cols);
	if (!ti || !rb)
		return sl_errorf(err, SL_ERR_ARG, "%s cannot hold rows of %d values", f->name, cols);
	unsigned char *buf = sl_malloc_array((size_t)rows, rb);
	int span = ti->scope == SL_SCOPE_BLOCK ? ti->block_size : cols, sub = ti->sub ? ti->sub : cols;
	sl_grid *g = sl_malloc_array((size_t)(cols / sub), sizeof *g);
	if (!buf || !g) {
		free(buf);
		free(g);
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory quantizing a %d x %d matrix", rows, cols);
	}
	sl_dtype_rows_from_float(f->dtype, W, buf, rows, cols);
	for (int r = 0; inside && r < rows; r++) {
		const float *w = W + (size_t)r * cols;
		unsigned char *in = inside + (size_t)r * cols;
		if (ti->grid == SL_GRID_NONE || !ti->grids) {
			memset(in, 1, (size_t)cols);
			continue;
		}
		/* A block span's bytes follow the row header, if any; a row span
		 * is the row with its header. */
		const unsigned char *row = buf + (size_t)r * rb;
		for (int c0 = 0; c0 < cols; c0 += span) {
			const unsigned char *p = span == cols ? row : row + ti->row_header + (size_t)(c0 / span) * ti->block_bytes;
			ti->grids(p, g, span / sub);
			for (int c = c0; c < c0 + span; c++)
				in[c] = sl_grid_within(ti->grid, &g[(c - c0) / sub], w[c]);
		}
	}
	sl_dtype_rows_to_float(f->dtype, buf, out, rows, cols);
	free(buf);
	free(g);
	return SL_OK;
}
