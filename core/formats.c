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

/* --- the formats' cards ---------------------------------------------------- */

static const sl_card card_float = {
	.title = "Floats: f32, f16, bf16",
	.what = "Weights kept as plain floating-point numbers. f32 is the reference every other figure is measured "
	        "against; f16 and bf16 halve the bytes and lose almost nothing.",
	.formula = "x = (-1)^s * 2^(e - bias) * (1 + m / 2^M); f16 has 5 exponent and 10 mantissa bits, bf16 8 and 7 "
	           "(f32's range, fewer digits).",
	.watch = "Model view: 16 bits per weight and the bytes of each module. Evaluate: KL against the base stays near "
	         "zero, the floor the compressed recipes are read against.",
	.pitfall = "f16 overflows past 65504, which an activation or an unusual weight can reach; bf16 keeps the range "
	           "but rounds to about 3 significant digits.",
	.paper = "IEEE 754-2008; bfloat16: Kalamkar et al. 2019, A Study of BFLOAT16 for Deep Learning Training.",
};

static const sl_card card_ggml_sym = {
	.title = "ggml blocks of 32 (q8_0, q5_0, q4_0)",
	.what = "llama.cpp's original block formats: every 32 consecutive weights of a row share one f16 scale, and "
	        "each weight is a small signed integer. What a GGUF file holds and llama.cpp runs as is.",
	.formula = "x ~ d * q per block of 32: q8_0 takes d = max|x| / 127, q in -127 .. 127; q5_0 and q4_0 take d = "
	           "v / -2^(b-1), v the value of largest magnitude, q in -2^(b-1) .. 2^(b-1) - 1; b + 16/32 bits per "
	           "weight.",
	.watch = "Recipe: the format menu's bits per weight (8.5, 5.5, 4.5). Heatmap: q4_0's column shows which "
	         "modules suffer most from 4 bits; Speculate: q4_0 as a draft for its own model.",
	.pitfall = "One large weight in a block stretches d and rounds its 31 neighbours coarsely; rows whose length "
	           "is not a multiple of 32 fall back to another format.",
	.paper = "ggml and llama.cpp (Gerganov et al., 2023), no paper: the formats are defined by their code.",
};

static const sl_card card_ggml_min = {
	.title = "ggml blocks with a minimum (q5_1, q4_1)",
	.what = "Like the plain blocks of 32, with an offset per block as well as a scale, so a block whose weights "
	        "are not centred on zero uses all of its levels.",
	.formula = "x ~ d * q + m with m = min(x), d = (max(x) - min(x)) / (2^b - 1) over 32 weights; q in 0 .. 2^b - 1; "
	           "b + 32/32 bits per weight.",
	.watch = "Recipe's format menu: half a bit per weight more than the symmetric block; the Heatmap tells whether "
	         "that half bit buys any KL.",
	.pitfall = "On weights symmetric around zero the minimum is wasted bits: the asymmetric grid rarely beats the "
	           "symmetric one of the same size.",
	.paper = "ggml and llama.cpp (Gerganov et al., 2023), defined by their code.",
};

static const sl_card card_kquant = {
	.title = "ggml k-quants (q6_k, q5_k, q4_k, q3_k, q2_k)",
	.what = "Superblocks of 256 weights split into sub-blocks of 16 or 32; each sub-block's scale (and minimum) is "
	        "itself quantized to 4 to 8 bits against one f16 scale of the superblock. More levels of scale for "
	        "fewer bytes.",
	.formula = "x ~ d * s_j * q - dmin * m_j, j the sub-block, s_j and m_j small integers, d and dmin f16 per 256 "
	           "(q6_k and q3_k: signed q and no minimum); q4_k costs 4.5 bits per weight, q2_k about 2.6.",
	.watch = "Recipe: the format menu shows which modules fall back (rows not a multiple of 256 take a block-of-32 "
	         "format). Heatmap: q4_k against q4_0, same bits, less KL.",
	.pitfall = "Small models have rows that 256 does not divide: the fallback format is what they really get, and "
	           "the bits per weight shown include it.",
	.paper = "k-quants, llama.cpp pull request 1684 (Kawrakow, 2023), defined by the code.",
};

static const sl_card card_int8 = {
	.title = "int8, one scale per output channel",
	.what = "Every row (output channel) of a weight matrix is scaled so its largest magnitude maps to 127 and "
	        "rounded to 8-bit integers: the classic per-channel integer quantization.",
	.formula = "x ~ s_r * q, s_r = max_j |W_rj| / 127, q = round(W_rj / s_r) in -127 .. 127; 8 bits plus one f32 "
	           "per row.",
	.watch = "Evaluate: KL is usually tiny; Layer: rows with outliers show as wide per-channel ranges, the ones "
	         "whose other weights lose precision.",
	.pitfall = "One scale for a whole row of thousands of weights: a single outlier costs its row several bits of "
	           "resolution. 8-bit groups of 32 avoid it.",
	.paper = "Jacob et al. 2018, Quantization and Training of Neural Networks for Efficient Integer-Arithmetic-Only "
	         "Inference.",
};

static const sl_card card_int_groups = {
	.title = "Integer groups (intN-gG, intN-gG-asym)",
	.what = "N-bit integers with one f16 scale per group of G consecutive weights of a row (G = 32, 64, 128); the "
	        "-asym variants add a minimum per group. Smaller groups follow the weights more closely and cost more "
	        "bits.",
	.formula = "symmetric: x ~ s * q, s = v / -2^(N-1), v the group's value of largest magnitude, q in -2^(N-1) .. "
	           "2^(N-1) - 1 (8 bits: s = max|x| / 127); asym: x ~ s * q + m, m = min, s = (max - min) / (2^N - 1). "
	           "Bits per weight N + 16/G (asym N + 32/G).",
	.watch = "Heatmap: a sweep over g32, g64, g128 at one N shows how much group size buys; Recipe: the bits per "
	         "weight of each group size in the format menu.",
	.pitfall = "Below 4 bits rounding alone loses a lot: a Hessian-aware or activation-aware method (the Recipe's "
	           "method menu) matters more than the group size.",
	.paper = "Dettmers and Zettlemoyer 2023, The Case for 4-bit Precision: k-bit Inference Scaling Laws.",
};

static const sl_card card_fp8 = {
	.title = "FP8 (E4M3, E5M2), per tensor or per channel",
	.what = "8-bit floating point: a sign, 4 or 5 exponent bits and 3 or 2 mantissa bits, with an f32 scale for "
	        "the tensor (or each output channel) that maps its largest weight onto the format's largest value.",
	.formula = "x ~ s * fp8(x / s), s = max|x| / 448 (E4M3) or / 57344 (E5M2); relative error about 2^-4 (E4M3) or "
	           "2^-3 (E5M2) whatever the magnitude.",
	.watch = "Heatmap: E4M3 against int8 at the same 8 bits; a float grid keeps small weights relatively precise "
	         "where integers lose them.",
	.pitfall = "E5M2 trades precision for range that weights do not need: for weights E4M3 is nearly always better.",
	.paper = "Micikevicius et al. 2022, FP8 Formats for Deep Learning.",
};

static const sl_card card_nvfp4 = {
	.title = "NVFP4",
	.what = "4-bit floats (E2M1: values 0, 0.5, 1, 1.5, 2, 3, 4, 6) in blocks of 16, each block with an FP8 E4M3 "
	        "scale, and one f32 scale for the tensor: the 4-bit format of NVIDIA's Blackwell GPUs.",
	.formula = "x ~ S * d_b * e2m1(q), d_b an E4M3 number per 16 weights, S an f32 per tensor; 4.5 bits per weight.",
	.watch = "Heatmap: against mxfp4 and the integer groups of the same size; the finer scale (16, not 32) "
	         "usually shows as less KL.",
	.pitfall = "E2M1's levels are uneven (4 to 6 is one step): it suits bell-shaped weights, less so rows with a "
	           "few huge values.",
	.paper = "NVIDIA Blackwell architecture, 2024; NVIDIA, Pretraining Large Language Models with NVFP4, 2025.",
};

static const sl_card card_mxfp4 = {
	.title = "MXFP4 (microscaling)",
	.what = "4-bit floats (E2M1) in blocks of 32 sharing one power-of-two scale (an 8-bit exponent): the Open "
	        "Compute Project's microscaling format.",
	.formula = "x ~ 2^e * e2m1(q), e = floor(log2 max|x|) - 2 per block of 32; 4.25 bits per weight.",
	.watch = "Heatmap: against nvfp4, the price of a power-of-two scale and blocks twice as long.",
	.pitfall = "A power-of-two scale can leave the largest weight of a block far from the top level: up to half "
	           "the grid unused in a block.",
	.paper = "OCP Microscaling Formats (MX) Specification v1.0, 2023; Rouhani et al. 2023, Microscaling Data "
	         "Formats for Deep Learning.",
};

static const sl_card card_nf4 = {
	.title = "NormalFloat 4 (nf4, nf4-dq)",
	.what = "16 levels placed at the quantiles of a normal distribution, scaled by each block of 64's largest "
	        "magnitude: the base format of QLoRA. nf4-dq quantizes those scales to 8 bits as well (double "
	        "quantization).",
	.formula = "x ~ a_b * NF[q], NF the 16 normal quantiles scaled to [-1, 1], a_b = max|x| over 64 weights; 4.5 "
	           "bits per weight, about 4.13 with the scales double-quantized.",
	.watch = "Heatmap: against int4 groups of 64 at the same bits; Heal: the frozen base of LoRA adapters.",
	.pitfall = "The levels assume normally distributed weights; a block that is not (an embedding row, a "
	           "layer with outliers) is served worse than by a uniform grid.",
	.paper = "Dettmers et al. 2023, QLoRA: Efficient Finetuning of Quantized LLMs.",
};

/* Named fields: entries give the flags (kv, example) they set. */
#define FMT(n, dt, b, g, fam, cd, sum, ...) \
	{.name = n, .dtype = dt, .bits = b, .group = g, .family = fam, .card = &cd, .summary = sum, __VA_ARGS__}
#define INT_ID(bi, gi, a) (SL_DT_INT_BASE + 6 * (bi) + 2 * (gi) + (a))
#define INT_PAIR(K, bi, G, gi, what, ...)                                                            \
	FMT("int" #K "-g" #G, INT_ID(bi, gi, 0), K, G, "int", card_int_groups, #K "-bit integers, groups of " #G ", f16 scale" what, \
	    __VA_ARGS__),                                                                                \
	FMT("int" #K "-g" #G "-asym", INT_ID(bi, gi, 1), K, G, "int", card_int_groups,                                      \
	    #K "-bit integers, groups of " #G ", f16 scale and minimum")
/* flags32 and flags128: what the symmetric groups of 32 and 128 are flagged with. */
#define INT_GROUPS(K, bi, what32, flags32, flags128)                                                 \
	INT_PAIR(K, bi, 32, 0, what32, flags32), INT_PAIR(K, bi, 64, 1, "", ), INT_PAIR(K, bi, 128, 2, "", flags128)

static const sl_format formats[] = {
	FMT("f32", SL_DT_F32, 32, 0, "float", card_float, "32-bit float (no compression)", .kv = true),
	FMT("f16", SL_DT_F16, 16, 0, "float", card_float, "IEEE half", .kv = true),
	FMT("bf16", SL_DT_BF16, 16, 0, "float", card_float, "bfloat16", .kv = true),
	FMT("q8_0", SL_DT_Q8_0, 8, 32, "ggml", card_ggml_sym, "ggml Q8_0: 8-bit, blocks of 32", .example = true, .ladder = true, .draft = true),
	FMT("q6_k", SL_DT_Q6_K, 6, 16, "ggml", card_kquant, "ggml Q6_K: 6-bit k-quant, superblocks of 256"),
	FMT("q5_1", SL_DT_Q5_1, 5, 32, "ggml", card_ggml_min, "ggml Q5_1: 5-bit with minimum, blocks of 32"),
	FMT("q5_0", SL_DT_Q5_0, 5, 32, "ggml", card_ggml_sym, "ggml Q5_0: 5-bit, blocks of 32", .ladder = true),
	FMT("q5_k", SL_DT_Q5_K, 5, 32, "ggml", card_kquant, "ggml Q5_K: 5-bit k-quant, superblocks of 256"),
	FMT("q4_1", SL_DT_Q4_1, 4, 32, "ggml", card_ggml_min, "ggml Q4_1: 4-bit with minimum, blocks of 32"),
	FMT("q4_0", SL_DT_Q4_0, 4, 32, "ggml", card_ggml_sym, "ggml Q4_0: 4-bit, blocks of 32", .ladder = true, .draft = true),
	FMT("q4_k", SL_DT_Q4_K, 4, 32, "ggml", card_kquant, "ggml Q4_K: 4-bit k-quant, superblocks of 256", .example = true),
	FMT("q3_k", SL_DT_Q3_K, 3, 16, "ggml", card_kquant, "ggml Q3_K: 3-bit k-quant, superblocks of 256"),
	FMT("q2_k", SL_DT_Q2_K, 2, 16, "ggml", card_kquant, "ggml Q2_K: 2-bit k-quant, superblocks of 256"),
	FMT("int8", SL_DT_I8_CH, 8, 0, "int", card_int8, "8-bit integers, one f32 scale per output channel", .kv = true, .example = true),
	INT_GROUPS(8, 0, " (is Q8_0)", , ),
	INT_GROUPS(4, 1, " (is Q4_0)", , .example = true),
	INT_GROUPS(3, 2, "", .ladder = true, ),
	INT_GROUPS(2, 3, "", .ladder = true, ),
	FMT("fp8-e4m3", SL_DT_FP8_E4M3, 8, 0, "fp8", card_fp8, "FP8 E4M3 (max 448), one scale per tensor", .kv = true),
	FMT("fp8-e4m3-ch", SL_DT_FP8_E4M3_CH, 8, 0, "fp8", card_fp8, "FP8 E4M3, one scale per output channel"),
	FMT("fp8-e5m2", SL_DT_FP8_E5M2, 8, 0, "fp8", card_fp8, "FP8 E5M2 (max 57344), one scale per tensor", .kv = true),
	FMT("fp8-e5m2-ch", SL_DT_FP8_E5M2_CH, 8, 0, "fp8", card_fp8, "FP8 E5M2, one scale per output channel"),
	FMT("nvfp4", SL_DT_NVFP4, 4, 16, "fp4", card_nvfp4, "NVFP4: E2M1, E4M3 scale per 16, f32 tensor scale", .kv = true, .example = true),
	FMT("mxfp4", SL_DT_MXFP4, 4, 32, "fp4", card_mxfp4, "MXFP4: E2M1, power-of-two scale per 32"),
	FMT("nf4", SL_DT_NF4, 4, 64, "nf4", card_nf4, "NF4 (QLoRA): normal quantiles, f32 absmax per 64"),
	FMT("nf4-dq", SL_DT_NF4_DQ, 4, 64, "nf4", card_nf4, "NF4, absmax per 64 double-quantized to 8 bits"),
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
