/* The catalog of formats a recipe can name, what each costs in bits, which
 * rows it holds, where it falls back to and how it is exported. Storage
 * itself is the kernels' business (kernels/dtype.h); a format here is a
 * name, a storage type and a family. */
#include "formats.h"

#include <math.h>
#include <string.h>

#include "../kernels/dtype.h"

#define INT_ID(bi, gi, a) (SL_DT_INT_BASE + 6 * (bi) + 2 * (gi) + (a))
#define INT_PAIR(K, bi, G, gi, what)                                                                 \
	{"int" #K "-g" #G, INT_ID(bi, gi, 0), K, G, "int", #K "-bit integers, groups of " #G ", f16 scale" what}, \
	{"int" #K "-g" #G "-asym", INT_ID(bi, gi, 1), K, G, "int",                                         \
	 #K "-bit integers, groups of " #G ", f16 scale and minimum"}
#define INT_GROUPS(K, bi, what32)                                                                    \
	INT_PAIR(K, bi, 32, 0, what32), INT_PAIR(K, bi, 64, 1, ""), INT_PAIR(K, bi, 128, 2, "")

static const sl_format formats[] = {
	{"f32", SL_DT_F32, 32, 0, "float", "32-bit float (no compression)"},
	{"f16", SL_DT_F16, 16, 0, "float", "IEEE half"},
	{"bf16", SL_DT_BF16, 16, 0, "float", "bfloat16"},
	{"q8_0", SL_DT_Q8_0, 8, 32, "ggml", "ggml Q8_0: 8-bit, blocks of 32"},
	{"q6_k", SL_DT_Q6_K, 6, 16, "ggml", "ggml Q6_K: 6-bit k-quant, superblocks of 256"},
	{"q5_1", SL_DT_Q5_1, 5, 32, "ggml", "ggml Q5_1: 5-bit with minimum, blocks of 32"},
	{"q5_0", SL_DT_Q5_0, 5, 32, "ggml", "ggml Q5_0: 5-bit, blocks of 32"},
	{"q5_k", SL_DT_Q5_K, 5, 32, "ggml", "ggml Q5_K: 5-bit k-quant, superblocks of 256"},
	{"q4_1", SL_DT_Q4_1, 4, 32, "ggml", "ggml Q4_1: 4-bit with minimum, blocks of 32"},
	{"q4_0", SL_DT_Q4_0, 4, 32, "ggml", "ggml Q4_0: 4-bit, blocks of 32"},
	{"q4_k", SL_DT_Q4_K, 4, 32, "ggml", "ggml Q4_K: 4-bit k-quant, superblocks of 256"},
	{"q3_k", SL_DT_Q3_K, 3, 16, "ggml", "ggml Q3_K: 3-bit k-quant, superblocks of 256"},
	{"q2_k", SL_DT_Q2_K, 2, 16, "ggml", "ggml Q2_K: 2-bit k-quant, superblocks of 256"},
	{"int8", SL_DT_I8_CH, 8, 0, "int", "8-bit integers, one f32 scale per output channel"},
	INT_GROUPS(8, 0, " (is Q8_0)"),
	INT_GROUPS(4, 1, " (is Q4_0)"),
	INT_GROUPS(3, 2, ""),
	INT_GROUPS(2, 3, ""),
	{"fp8-e4m3", SL_DT_FP8_E4M3, 8, 0, "fp8", "FP8 E4M3 (max 448), one scale per tensor"},
	{"fp8-e4m3-ch", SL_DT_FP8_E4M3_CH, 8, 0, "fp8", "FP8 E4M3, one scale per output channel"},
	{"fp8-e5m2", SL_DT_FP8_E5M2, 8, 0, "fp8", "FP8 E5M2 (max 57344), one scale per tensor"},
	{"fp8-e5m2-ch", SL_DT_FP8_E5M2_CH, 8, 0, "fp8", "FP8 E5M2, one scale per output channel"},
	{"nvfp4", SL_DT_NVFP4, 4, 16, "fp4", "NVFP4: E2M1, E4M3 scale per 16, f32 tensor scale"},
	{"mxfp4", SL_DT_MXFP4, 4, 32, "fp4", "MXFP4: E2M1, power-of-two scale per 32"},
};

#define N_FORMATS ((int)(sizeof formats / sizeof formats[0]))

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

static bool is_asym(const sl_format *f)
{
	size_t k = strlen(f->name);
	return k > 5 && !strcmp(f->name + k - 5, "-asym");
}

/* 0: same family, 1: a kindred one (small floats: fp4 falls back to fp8),
 * 2: unrelated. ggml's formats have no kin: what llama.cpp runs matters
 * for them, and rows no ggml block holds go to f16, as llama.cpp's own
 * quantizer sends them. */
static int kinship(const sl_format *a, const sl_format *b)
{
	if (!strcmp(a->family, b->family))
		return 0;
	return !strcmp(a->family, "fp4") && !strcmp(b->family, "fp8") ? 1 : 2;
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
