/* Tests of the GGML block formats (kernels/cpu/quants.c): a block of every
 * format written byte by byte from the published layout and its exact
 * floats; quantizers checked against hand-derived bytes and against hashes
 * of the bytes ggml's reference quantizers write; round-trip error bounds;
 * every dot product (portable, AVX2 when the CPU has it, F32) against
 * double-precision references. */
#include <stdbool.h>
#include <stdint.h>

#include "kernels/cpu/cpu.h"
#include "kernels/cpu/quants.h"
#include "kernels/dtype.h"
#include "test.h"

enum { MAXB = 292 }; /* largest block, Q8_K */

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v & 0xff);
	p[1] = (uint8_t)(v >> 8);
}

/* A deterministic generator whose floats are exact on any IEEE machine, so
 * the hashes below reproduce everywhere. */
static uint64_t gen_state;

static uint32_t gen_next(void)
{
	gen_state = gen_state * 6364136223846793005ull + 1442695040888963407ull;
	return (uint32_t)(gen_state >> 32);
}

static float gen_unit(void)
{
	return (float)((int32_t)(gen_next() >> 8) - (1 << 23)) * (1.0f / (1 << 23));
}

/* Rows of 256 with a different character every super-block: bell-shaped,
 * uniform, all zero, constant, one outlier, all positive, all negative,
 * tiny. */
static void gen_fill(float *x, int64_t n, uint64_t seed)
{
	gen_state = seed;
	for (int64_t b = 0; b < n / 256; b++) {
		float *p = x + 256 * b;
		float scale = (float)(1 + gen_next() % 1000) / 64.0f;
		for (int i = 0; i < 256; i++) {
			float g = gen_unit() + gen_unit() + gen_unit() + gen_unit();
			switch (b % 8) {
			case 0: p[i] = g * scale; break;
			case 1: p[i] = gen_unit() * scale; break;
			case 2: p[i] = 0; break;
			case 3: p[i] = scale; break;
			case 4: p[i] = i == 77 ? -40 * scale : g; break;
			case 5: p[i] = (g < 0 ? -g : g) * scale + 1; break;
			case 6: p[i] = -(g < 0 ? -g : g) * scale - 0.5f; break;
			default: p[i] = g * 1e-6f; break;
			}
		}
	}
}

/* Groups of 16 of different characters side by side in one super-block:
 * bell-shaped, all zero, constant, half zeros, all positive, small
 * integers times a scale (pruned and flat groups beside dense ones, as in
 * a pruned weight matrix). */
static void gen_mixed(float *x, int64_t n, uint64_t seed)
{
	gen_state = seed;
	for (int64_t g = 0; g < n / 16; g++) {
		float *p = x + 16 * g;
		float scale = (float)(1 + gen_next() % 1000) / 256.0f;
		int kind = (int)(gen_next() % 6);
		for (int i = 0; i < 16; i++) {
			float u = gen_unit() + gen_unit() + gen_unit();
			switch (kind) {
			case 0: p[i] = u * scale; break;
			case 1: p[i] = 0; break;
			case 2: p[i] = -scale; break;
			case 3: p[i] = gen_next() % 2 ? 0 : u * scale; break;
			case 4: p[i] = (u < 0 ? -u : u) * scale + 2 * scale; break;
			default: p[i] = (float)((int)(gen_next() % 9) - 4) * scale; break;
			}
		}
	}
}

static uint64_t fnv1a(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 1099511628211ull;
	}
	return h;
}

/* ---- the table --------------------------------------------------------------- */

static void test_table(void)
{
	static const struct {
		int type;
		const char *name;
		int block_size;
		size_t block_bytes;
		int vec_dot_type;
	} want[] = {
	        /* sizes from ggml-common.h: 2-byte halves, nibbles, bit planes */
	        {SL_DT_Q4_0, "q4_0", 32, 2 + 16, SL_DT_Q8_0},
	        {SL_DT_Q4_1, "q4_1", 32, 2 + 2 + 16, SL_DT_Q8_1},
	        {SL_DT_Q5_0, "q5_0", 32, 2 + 4 + 16, SL_DT_Q8_0},
	        {SL_DT_Q5_1, "q5_1", 32, 2 + 2 + 4 + 16, SL_DT_Q8_1},
	        {SL_DT_Q8_0, "q8_0", 32, 2 + 32, SL_DT_Q8_0},
	        {SL_DT_Q8_1, "q8_1", 32, 2 + 2 + 32, 0},
	        {SL_DT_Q2_K, "q2_k", 256, 16 + 64 + 2 + 2, SL_DT_Q8_K},
	        {SL_DT_Q3_K, "q3_k", 256, 32 + 64 + 12 + 2, SL_DT_Q8_K},
	        {SL_DT_Q4_K, "q4_k", 256, 2 + 2 + 12 + 128, SL_DT_Q8_K},
	        {SL_DT_Q5_K, "q5_k", 256, 2 + 2 + 12 + 32 + 128, SL_DT_Q8_K},
	        {SL_DT_Q6_K, "q6_k", 256, 128 + 64 + 16 + 2, SL_DT_Q8_K},
	        {SL_DT_Q8_K, "q8_k", 256, 4 + 256 + 32, 0},
	};
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
		const sl_type_info *ti = sl_type_info_get(want[i].type);
		REQUIRE(ti, "type %d missing", want[i].type);
		CHECK(!strcmp(ti->name, want[i].name), "%s vs %s", ti->name, want[i].name);
		CHECK(ti->block_size == want[i].block_size, "%s block size %d", ti->name,
		      ti->block_size);
		CHECK(ti->block_bytes == want[i].block_bytes, "%s block bytes %zu", ti->name,
		      ti->block_bytes);
		CHECK(ti->to_float && ti->from_float, "%s conversions", ti->name);
		bool weights = want[i].vec_dot_type != 0;
		CHECK(!weights || (ti->vec_dot && ti->dot_f32 &&
		                   ti->vec_dot_type == want[i].vec_dot_type),
		      "%s dot products", ti->name);
		sl_vec_dot_fn avx2 = sl_quants_vec_dot_avx2(want[i].type);
		if (weights)
			CHECK(ti->vec_dot ==
			              (avx2 ? avx2 : sl_quants_vec_dot_portable(want[i].type)),
			      "%s: the table holds the fastest dot product", ti->name);
	}
	CHECK(sl_dtype_row_bytes(SL_DT_Q4_K, 4096) == 16 * 144, "q4_k row bytes");
	CHECK(sl_dtype_row_bytes(SL_DT_Q4_0, 4096) == 128 * 18, "q4_0 row bytes");
	CHECK(sl_dtype_row_bytes(SL_DT_Q6_K, 100) == 0, "a row that is not whole blocks");
}

/* ---- hand-written blocks -----------------------------------------------------
 * Each builder writes one block from the layout in ggml-common.h and fills
 * want[] with its exact values (all small integers times powers of two, so
 * the order of float operations does not matter). Each block is also chosen
 * to be a fixed point of ggml's quantizer: every scale group spans its whole
 * code range (its minimum and maximum codes occur), so the quantizer finds
 * the same scales and codes again; check_block quantizes want[] and expects
 * the same bytes back. */

/* Legacy nibbles: element j < 16 is the low nibble of qs[j], element j + 16
 * the high one. With qs[j] = (15 - j) | j << 4 element j has 15 - j and
 * element 16 + j has j. */
static int nibble_pattern(int e)
{
	return e < 16 ? 15 - e : e - 16;
}

static void qs_pattern(uint8_t *qs)
{
	for (int j = 0; j < 16; j++)
		qs[j] = (uint8_t)((15 - j) | j << 4);
}

/* qh = 0f f0 02 80: bits 0-3, 12-15, 17 and 31 (byte k holds bits 8k..8k+7). */
static const uint8_t qh_bytes[4] = {0x0f, 0xf0, 0x02, 0x80};

static int qh_bit(int e)
{
	return e < 4 || (e >= 12 && e < 16) || e == 17 || e == 31;
}

static size_t block_q4_0(uint8_t *b, float *want)
{
	put16(b, 0x3800); /* d = 0.5 */
	qs_pattern(b + 2);
	for (int e = 0; e < 32; e++)
		want[e] = 0.5f * (nibble_pattern(e) - 8);
	/* element 0: nibble 15 -> 3.5; element 16: nibble 0 -> -4, the largest
	 * magnitude, so the quantizer picks d = -4 / -8 again */
	CHECK(want[0] == 3.5f && want[16] == -4.0f, "q4_0 hand values");
	return 18;
}

static size_t block_q4_1(uint8_t *b, float *want)
{
	put16(b, 0x3c00);     /* d = 1 */
	put16(b + 2, 0xc000); /* m = -2 */
	qs_pattern(b + 4);
	for (int e = 0; e < 32; e++)
		want[e] = nibble_pattern(e) - 2.0f;
	CHECK(want[0] == 13 && want[16] == -2, "q4_1 hand values");
	return 20;
}

static size_t block_q5_0(uint8_t *b, float *want)
{
	put16(b, 0x4000); /* d = 2 */
	memcpy(b + 2, qh_bytes, 4);
	qs_pattern(b + 6);
	for (int e = 0; e < 32; e++)
		want[e] = 2.0f * ((nibble_pattern(e) | qh_bit(e) << 4) - 16);
	/* element 0: 15 | 16 = 31 -> 30; element 16: 0, bit clear -> -32 */
	CHECK(want[0] == 30 && want[16] == -32 && want[17] == 2, "q5_0 hand values");
	return 22;
}

static size_t block_q5_1(uint8_t *b, float *want)
{
	put16(b, 0x3800);     /* d = 0.5 */
	put16(b + 2, 0xbc00); /* m = -1 */
	memcpy(b + 4, qh_bytes, 4);
	qs_pattern(b + 8);
	for (int e = 0; e < 32; e++)
		want[e] = 0.5f * (nibble_pattern(e) | qh_bit(e) << 4) - 1.0f;
	CHECK(want[0] == 14.5f && want[16] == -1 && want[30] == 6, "q5_1 hand values");
	return 24;
}

static size_t block_q8_0(uint8_t *b, float *want)
{
	put16(b, 0x3400); /* d = 0.25 */
	for (int e = 0; e < 32; e++) {
		b[2 + e] = (uint8_t)(int8_t)(8 * e - 127); /* -127, -119 ... 121 */
		want[e] = 0.25f * (8 * e - 127);
	}
	CHECK(want[0] == -31.75f && want[31] == 30.25f, "q8_0 hand values");
	return 34;
}

/* K formats: element 128h + 32j + l (l < 32) keeps its two low bits at
 * shift 2j of qs[32h + l]; a byte of 0x00 at l = 0 and l = 16 and of 0xff at
 * l = 1 and l = 17 put codes 0 and 3 in every 16-element group. */
static void crumbs_pattern(uint8_t *qs)
{
	for (int i = 0; i < 64; i++)
		qs[i] = (uint8_t)(i * 37 + 11);
	for (int h = 0; h < 2; h++) {
		qs[32 * h] = qs[32 * h + 16] = 0x00;
		qs[32 * h + 1] = qs[32 * h + 17] = 0xff;
	}
}

/* The layout read the other way round from the code under test: walk the
 * bytes and scatter each bit field to its element. */
static void scatter_crumbs(const uint8_t *qs, int *q)
{
	for (int h = 0; h < 2; h++)
		for (int l = 0; l < 32; l++)
			for (int j = 0; j < 4; j++)
				q[128 * h + 32 * j + l] = (qs[32 * h + l] >> (2 * j)) & 3;
}

/* Bit b of byte l of a Q3_K/Q5_K high-bit plane is element 32b + l. */
static void scatter_plane(const uint8_t *plane, int *q, int weight)
{
	for (int l = 0; l < 32; l++)
		for (int b = 0; b < 8; b++)
			q[32 * b + l] += ((plane[l] >> b) & 1) * weight;
}

static size_t block_q2_K(uint8_t *b, float *want)
{
	static const int sc[16] = {15, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
	static const int mn[16] = {0, 15, 3, 7, 1, 2, 4, 8, 9, 10, 11, 12, 13, 14, 5, 6};
	for (int g = 0; g < 16; g++)
		b[g] = (uint8_t)(sc[g] | mn[g] << 4); /* scale low nibble, min high */
	crumbs_pattern(b + 16);
	put16(b + 80, 0x3000); /* d = 0.125 */
	put16(b + 82, 0x2c00); /* dmin = 0.0625 */
	int q[256];
	scatter_crumbs(b + 16, q);
	for (int e = 0; e < 256; e++)
		want[e] = 0.125f * sc[e / 16] * q[e] - 0.0625f * mn[e / 16];
	/* element 1: byte 1 = 0xff, code 3 -> 0.125*15*3 - 0 = 5.625;
	 * element 32: byte 0 at shift 2 = 0 -> -0.0625*mn[2] = -0.1875 */
	CHECK(want[1] == 5.625f && want[32] == -0.1875f, "q2_k hand values");
	return 84;
}

static size_t block_q3_K(uint8_t *b, float *want)
{
	/* sixteen 6-bit scales stored as s + 32; the -32 of group 0 is the largest
	 * magnitude, so the quantizer's d = max/-32 comes back as 0.25 */
	static const int st[16] = {0, 1, 63, 40, 20, 33, 31, 10, 50, 5, 60, 45, 25, 15, 55, 35};
	/* bytes 0-7: st[k] & 15 | (st[k+8] & 15) << 4, e.g. byte 0 = 0 | 2 << 4;
	 * byte 8 + m: st[g] >> 4 at shift 2*(g/4) for g % 4 == m, e.g. byte 8 =
	 * 0 | 1 << 2 | 3 << 4 | 1 << 6 from groups 0, 4, 8, 12 */
	static const uint8_t scales[12] = {0x20, 0x51, 0xcf, 0xd8, 0x94, 0xf1,
	                                   0x7f, 0x3a, 0x74, 0x08, 0xf7, 0xa2};
	for (int l = 0; l < 32; l++)
		b[l] = (uint8_t)(l * 29 + 3);
	b[0] = b[16] = 0; /* with qs bytes 0 and 16 zero: code -4 in every group */
	crumbs_pattern(b + 32);
	memcpy(b + 96, scales, 12);
	put16(b + 108, 0x3400); /* d = 0.25 */
	int q[256];
	scatter_crumbs(b + 32, q);
	scatter_plane(b, q, 4);
	for (int e = 0; e < 256; e++)
		want[e] = 0.25f * (st[e / 16] - 32) * (q[e] - 4);
	/* element 0: code 0 -> 0.25 * -32 * -4 = 32; element 1: low bits 3,
	 * hmask byte 1 = 32 -> bit 0 clear -> 0.25 * -32 * -1 = 8 */
	CHECK(want[0] == 32 && want[1] == 8, "q3_k hand values");
	return 110;
}

/* Q4_K/Q5_K six-bit scales {1,2,3,4,60,61,62,63} and mins {5,6,7,8,33,34,
 * 35,63}: bytes 0-3 = sc | (sc[j+4] >> 4) << 6, bytes 4-7 = m | (m[j+4] >>
 * 4) << 6, bytes 8-11 = sc[j+4] & 15 | (m[j+4] & 15) << 4; e.g. byte 0 =
 * 1 | 3 << 6, byte 8 = 12 | 1 << 4. */
static const int k_sc[8] = {1, 2, 3, 4, 60, 61, 62, 63};
static const int k_mn[8] = {5, 6, 7, 8, 33, 34, 35, 63};
static const uint8_t k_scales[12] = {0xc1, 0xc2, 0xc3, 0xc4, 0x85, 0x86,
                                     0x87, 0xc8, 0x1c, 0x2d, 0x3e, 0xff};

/* Element 64c + 32k + l is nibble k of qs[32c + l]; bytes l = 0 and 1 of
 * each c carry codes 0 and 15 into every 32-element group. */
static void nibbles_K(uint8_t *qs, int *q)
{
	for (int i = 0; i < 128; i++)
		qs[i] = (uint8_t)(i * 53 + 7);
	for (int c = 0; c < 4; c++) {
		qs[32 * c] = 0x00;
		qs[32 * c + 1] = 0xff;
		for (int l = 0; l < 32; l++) {
			q[64 * c + l] = qs[32 * c + l] & 15;
			q[64 * c + 32 + l] = qs[32 * c + l] >> 4;
		}
	}
}

static size_t block_q4_K(uint8_t *b, float *want)
{
	put16(b, 0x2c00);     /* d = 0.0625 */
	put16(b + 2, 0x2800); /* dmin = 0.03125 */
	memcpy(b + 4, k_scales, 12);
	int q[256];
	nibbles_K(b + 16, q);
	for (int e = 0; e < 256; e++)
		want[e] = 0.0625f * k_sc[e / 32] * q[e] - 0.03125f * k_mn[e / 32];
	/* element 1: 15 * 0.0625 * 1 - 5 * 0.03125 = 0.78125; element 255: high
	 * nibble of qs[127] = (127*53 + 7) & 0xff = 0x52, so 5 * 0.0625 * 63 -
	 * 0.03125 * 63 = 17.71875 */
	CHECK(want[1] == 0.78125f && want[255] == 17.71875f, "q4_k hand values");
	return 144;
}

static size_t block_q5_K(uint8_t *b, float *want)
{
	put16(b, 0x2c00);
	put16(b + 2, 0x2800);
	memcpy(b + 4, k_scales, 12);
	uint8_t *qh = b + 16;
	for (int l = 0; l < 32; l++)
		qh[l] = (uint8_t)(l * 71 + 5);
	qh[0] = 0x00; /* with qs byte 0: code 0, with byte 1: code 31 */
	qh[1] = 0xff;
	int q[256];
	nibbles_K(b + 48, q);
	scatter_plane(qh, q, 16);
	for (int e = 0; e < 256; e++)
		want[e] = 0.0625f * k_sc[e / 32] * q[e] - 0.03125f * k_mn[e / 32];
	/* element 1: 15 + 16 = 31 -> 31 * 0.0625 - 5 * 0.03125 = 1.78125 */
	CHECK(want[1] == 1.78125f && want[0] == -0.15625f, "q5_k hand values");
	return 176;
}

static size_t block_q6_K(uint8_t *b, float *want)
{
	/* -128 is the largest magnitude: the quantizer's d = max/-128 = 2^-7 */
	static const int8_t sc[16] = {-128, -100, -64, -1, 1,  2,  3,   5,
	                              8,    13,   21,  34, 55, 89, 127, -7};
	uint8_t *ql = b, *qh = b + 128;
	for (int i = 0; i < 128; i++)
		ql[i] = (uint8_t)(i * 41 + 9);
	for (int i = 0; i < 64; i++)
		qh[i] = (uint8_t)(i * 23 + 1);
	for (int h = 0; h < 2; h++)
		for (int l = 0; l < 32; l += 16) /* code 0 (value -32) in every group */
			ql[64 * h + l] = ql[64 * h + 32 + l] = qh[32 * h + l] = 0;
	memcpy(b + 192, sc, 16);
	put16(b + 208, 0x2000); /* d = 2^-7 */
	/* element 128h + 32j + l: low nibble j/2 of ql[64h + 32(j%2) + l], high
	 * two bits at shift 2j of qh[32h + l] */
	int q[256];
	for (int h = 0; h < 2; h++)
		for (int l = 0; l < 32; l++)
			for (int j = 0; j < 4; j++)
				q[128 * h + 32 * j + l] =
				        ((ql[64 * h + 32 * (j % 2) + l] >> (4 * (j / 2))) & 15) |
				        ((qh[32 * h + l] >> (2 * j)) & 3) << 4;
	for (int e = 0; e < 256; e++)
		want[e] = 0.0078125f * sc[e / 16] * (q[e] - 32);
	/* element 0: code 0 -> -128 * -32 / 128 = 32; element 1: ql[1] = 50 ->
	 * 2, qh[1] = 24 -> bits 0-1 = 0: code 2 -> -128 * -30 / 128 = 30 */
	CHECK(want[0] == 32 && want[1] == 30, "q6_k hand values");
	return 210;
}

static size_t block_q8_K(uint8_t *b, float *want)
{
	const float d = 0.5f;
	memcpy(b, &d, 4);
	int16_t bsums[16] = {0};
	for (int e = 0; e < 256; e++) {
		int8_t q = (int8_t)(e * 37 % 255 - 127); /* element 0: -127 */
		b[4 + e] = (uint8_t)q;
		bsums[e / 16] = (int16_t)(bsums[e / 16] + q);
		want[e] = 0.5f * q;
	}
	memcpy(b + 260, bsums, sizeof bsums);
	return 292;
}

static void check_block(int type, size_t (*build)(uint8_t *, float *))
{
	const sl_type_info *ti = sl_type_info_get(type);
	uint8_t blk[MAXB], back[MAXB];
	float want[256], got[256];
	memset(blk, 0xa5, sizeof blk);
	size_t bytes = build(blk, want);
	REQUIRE(bytes == ti->block_bytes, "%s: the builder wrote %zu bytes", ti->name, bytes);
	const int n = ti->block_size;
	ti->to_float(blk, got, n);
	int bad = 0;
	for (int e = 0; e < n; e++)
		if (got[e] != want[e] && bad++ < 4)
			CHECK(got[e] == want[e], "%s element %d: %g, want %g", ti->name, e, got[e],
			      want[e]);
	CHECK(!bad, "%s: %d elements differ", ti->name, bad);
	memset(back, 0, sizeof back);
	ti->from_float(want, back, n);
	size_t first = bytes;
	for (size_t i = 0; i < bytes && first == bytes; i++)
		if (back[i] != blk[i])
			first = i;
	CHECK(first == bytes, "%s: requantized byte %zu is %02x, want %02x", ti->name, first,
	      first < bytes ? back[first] : 0, first < bytes ? blk[first] : 0);
}

static void test_hand_blocks(void)
{
	check_block(SL_DT_Q4_0, block_q4_0);
	check_block(SL_DT_Q4_1, block_q4_1);
	check_block(SL_DT_Q5_0, block_q5_0);
	check_block(SL_DT_Q5_1, block_q5_1);
	check_block(SL_DT_Q8_0, block_q8_0);
	check_block(SL_DT_Q2_K, block_q2_K);
	check_block(SL_DT_Q3_K, block_q3_K);
	check_block(SL_DT_Q4_K, block_q4_K);
	check_block(SL_DT_Q5_K, block_q5_K);
	check_block(SL_DT_Q6_K, block_q6_K);
	check_block(SL_DT_Q8_K, block_q8_K);
}

/* ---- quantizers on hand-picked inputs --------------------------------------- */

static void check_bytes(int type, const float *x, const uint8_t *want, size_t n_bytes)
{
	const sl_type_info *ti = sl_type_info_get(type);
	uint8_t got[MAXB];
	ti->from_float(x, got, ti->block_size);
	for (size_t i = 0; i < n_bytes; i++)
		CHECK(got[i] == want[i], "%s byte %zu: %02x, want %02x", ti->name, i, got[i],
		      want[i]);
}

static void test_quantize_by_hand(void)
{
	float x[32];
	uint8_t want[36];

	/* Q8_0 of 0..31: d = 31/127 = 0.244094... -> f16 0x33d0 (mantissa
	 * 0.9527559*1024 = 975.6 -> 976); qs = round(j * (1/d)) = round(j *
	 * 4.0967742), no fraction near .5. */
	static const int8_t q8[32] = {0,  4,  8,  12,  16,  20,  25,  29,  33,  37, 41,
	                              45, 49, 53, 57,  61,  66,  70,  74,  78,  82, 86,
	                              90, 94, 98, 102, 107, 111, 115, 119, 123, 127};
	for (int j = 0; j < 32; j++)
		x[j] = (float)j;
	put16(want, 0x33d0);
	memcpy(want + 2, q8, 32);
	check_bytes(SL_DT_Q8_0, x, want, 34);
	/* Q8_1 adds s = d * sum(qs) = 0.24409449 * 2032 = 496.00 -> f16 0x5fc0. */
	put16(want, 0x33d0);
	put16(want + 2, 0x5fc0);
	memcpy(want + 4, q8, 32);
	check_bytes(SL_DT_Q8_1, x, want, 36);

	/* Q4_0 of j - 16: the largest magnitude is -16, d = -16/-8 = 2 (0x4000);
	 * codes (int)(x/2 + 8.5) = (j + 1) / 2, clamped to 15 at j = 31. */
	for (int j = 0; j < 32; j++)
		x[j] = (float)(j - 16);
	put16(want, 0x4000);
	for (int j = 0; j < 16; j++) {
		int lo = (j + 1) / 2, hi = (j + 17) / 2 < 15 ? (j + 17) / 2 : 15;
		want[2 + j] = (uint8_t)(lo | hi << 4);
	}
	check_bytes(SL_DT_Q4_0, x, want, 18);

	/* Q5_0 of the same: d = -16/-16 = 1, codes (int)(x + 16.5) = j; the fifth
	 * bit is set for j >= 16, so qh = 0xffff0000 and qs[j] = j | j << 4. */
	put16(want, 0x3c00);
	memcpy(want + 2, (const uint8_t[4]){0x00, 0x00, 0xff, 0xff}, 4);
	for (int j = 0; j < 16; j++)
		want[6 + j] = (uint8_t)(j * 0x11);
	check_bytes(SL_DT_Q5_0, x, want, 22);

	/* Q4_1 of (j % 16) - 4: min -4 (0xc400), d = 15/15 = 1, codes j % 16. */
	for (int j = 0; j < 32; j++)
		x[j] = (float)(j % 16 - 4);
	put16(want, 0x3c00);
	put16(want + 2, 0xc400);
	for (int j = 0; j < 16; j++)
		want[4 + j] = (uint8_t)(j * 0x11);
	check_bytes(SL_DT_Q4_1, x, want, 20);

	/* Q5_1 of j/4 - 1: min -1 (0xbc00), d = 7.75/31 = 0.25 (0x3400), codes j. */
	for (int j = 0; j < 32; j++)
		x[j] = j * 0.25f - 1;
	put16(want, 0x3400);
	put16(want + 2, 0xbc00);
	memcpy(want + 4, (const uint8_t[4]){0x00, 0x00, 0xff, 0xff}, 4);
	for (int j = 0; j < 16; j++)
		want[8 + j] = (uint8_t)(j * 0x11);
	check_bytes(SL_DT_Q5_1, x, want, 24);

	/* ties: 0.5 rounds away from zero in Q8 (roundf) but to even in the K
	 * formats. Q8_0 of {127, 0.5, -0.5, 1.5, 0...}: d = 1 (0x3c00), codes
	 * 127, 1, -1, 2. Q8_K of {-127, 0.5, 1.5, 2.5, 0...}: iscale = -127/-127 =
	 * 1, codes -127, 0, 2, 2; d = 1.0f; bsums[0] = -123. */
	memset(x, 0, sizeof x);
	x[0] = 127;
	x[1] = 0.5f;
	x[2] = -0.5f;
	x[3] = 1.5f;
	memset(want, 0, sizeof want);
	put16(want, 0x3c00);
	want[2] = 127;
	want[3] = 1;
	want[4] = 0xff;
	want[5] = 2;
	check_bytes(SL_DT_Q8_0, x, want, 34);

	float xk[256] = {-127, 0.5f, 1.5f, 2.5f};
	uint8_t gk[292], wk[292] = {0x00, 0x00, 0x80, 0x3f, 0x81, 0, 2, 2};
	const int16_t bsum0 = -123;
	memcpy(wk + 260, &bsum0, 2);
	sl_type_info_get(SL_DT_Q8_K)->from_float(xk, gk, 256);
	CHECK(!memcmp(gk, wk, sizeof gk), "q8_k rounds ties to even");
}

/* ---- against ggml ------------------------------------------------------------
 * FNV-1a hashes of the bytes llama.cpp's quantize_row_*_ref (ggml at commit
 * c392e509, ggml-quants.c built with gcc -O2 for plain x86-64) writes for
 * gen_fill(x, 16384, 12345); the output buffer was zeroed first because
 * ggml leaves the bsums of an all-zero Q8_K block unwritten. */
typedef struct {
	int type;
	uint64_t hash;
} ggml_hash;

/* Each type's bytes for x[0..n) against ggml's hash; what names the data. */
static void check_ggml_hashes(const float *x, int n, const ggml_hash *want, size_t n_want, uint8_t *q,
                              const char *what)
{
	for (size_t i = 0; i < n_want; i++) {
		const sl_type_info *ti = sl_type_info_get(want[i].type);
		size_t bytes = sl_dtype_row_bytes(want[i].type, n);
		memset(q, 0, bytes);
		ti->from_float(x, q, n);
		uint64_t h = fnv1a(q, bytes);
		CHECK(h == want[i].hash, "%s: bytes%s differ from ggml's (hash %016llx)", ti->name, what,
		      (unsigned long long)h);
	}
}

static void test_ggml_bytes(void)
{
	static const ggml_hash want[] = {
	        {SL_DT_Q4_0, 0x6053b35745c03f2aull}, {SL_DT_Q4_1, 0xb82d797e4a016c20ull},
	        {SL_DT_Q5_0, 0x2119eca4e3d3b8afull}, {SL_DT_Q5_1, 0xd30e690a838db36aull},
	        {SL_DT_Q8_0, 0x627d8fd5cf92135dull}, {SL_DT_Q8_1, 0x3a15244d854c81faull},
	        {SL_DT_Q2_K, 0x5195873c4b9dae9aull}, {SL_DT_Q3_K, 0x63af14ccc8d9be07ull},
	        {SL_DT_Q4_K, 0xaa1bc0986e32d0b7ull}, {SL_DT_Q5_K, 0x10e40d380db0e575ull},
	        {SL_DT_Q6_K, 0x320074179cedf1d4ull}, {SL_DT_Q8_K, 0x1455027bfbe2c52aull},
	};
	/* The same quantizers (ggml at c392e509, gcc -O2, plain x86-64, after
	 * ggml_init) on gen_mixed(x, 16384, 777): the quantizers that fit
	 * groups side by side (eight at a time where AVX2 runs) meet flat and
	 * dense groups in one super-block. */
	static const ggml_hash mixed[] = {
	        {SL_DT_Q8_0, 0x96869beae811fc68ull}, {SL_DT_Q2_K, 0xada61590a7a808b6ull},
	        {SL_DT_Q4_K, 0xc809850d4caa5c79ull}, {SL_DT_Q5_K, 0x7965a24ff064b6d2ull},
	};
	enum { N = 16384 };
	float *x = malloc(N * sizeof *x);
	uint8_t *q = malloc(N * 2);
	REQUIRE(x && q, "out of memory");
	gen_fill(x, N, 12345);
	check_ggml_hashes(x, N, want, sizeof want / sizeof want[0], q, "");
	gen_mixed(x, N, 777);
	check_ggml_hashes(x, N, mixed, sizeof mixed / sizeof mixed[0], q, " of mixed groups");
	free(x);
	free(q);
}

/* ---- round trips and dot products ------------------------------------------ */

static const int weight_types[] = {SL_DT_Q4_0, SL_DT_Q4_1, SL_DT_Q5_0, SL_DT_Q5_1, SL_DT_Q8_0,
                                   SL_DT_Q2_K, SL_DT_Q3_K, SL_DT_Q4_K, SL_DT_Q5_K, SL_DT_Q6_K};
#define N_WEIGHT_TYPES (sizeof weight_types / sizeof weight_types[0])

static bool is_k(int type)
{
	return type >= SL_DT_Q2_K && type <= SL_DT_Q6_K;
}

static bool has_offset(int type)
{
	return type == SL_DT_Q4_1 || type == SL_DT_Q5_1;
}

/* ggml's test-quantize-fns data: 0.1 + 2 cos(i + offset). */
static void cos_fill(float *x, int n, float offset)
{
	for (int i = 0; i < n; i++)
		x[i] = 0.1f + 2 * cosf(i + offset);
}

/* RMS error of a quantize/dequantize round trip relative to the RMS of the
 * data, on gaussian-like data. The bounds sit about 15% above the errors
 * this implementation and ggml's both reach (step/sqrt(12) of each format's
 * grid, less for the K formats' fitted scales). */
static void test_round_trip(void)
{
	static const struct {
		int type;
		double max_rel_rms;
	} bound[] = {
	        {SL_DT_Q4_0, 0.12},  {SL_DT_Q4_1, 0.10},   {SL_DT_Q5_0, 0.060},
	        {SL_DT_Q5_1, 0.050}, {SL_DT_Q8_0, 0.0080}, {SL_DT_Q8_1, 0.0080},
	        {SL_DT_Q2_K, 0.37},  {SL_DT_Q3_K, 0.20},   {SL_DT_Q4_K, 0.095},
	        {SL_DT_Q5_K, 0.048}, {SL_DT_Q6_K, 0.024},  {SL_DT_Q8_K, 0.0070},
	};
	enum { N = 4096 };
	static float x[N], y[N];
	static uint8_t q[N * 2];
	gen_state = 7;
	for (int i = 0; i < N; i++)
		x[i] = gen_unit() + gen_unit() + gen_unit() + gen_unit();
	for (size_t k = 0; k < sizeof bound / sizeof bound[0]; k++) {
		const sl_type_info *ti = sl_type_info_get(bound[k].type);
		ti->from_float(x, q, N);
		ti->to_float(q, y, N);
		double se = 0, ss = 0;
		for (int i = 0; i < N; i++) {
			se += (double)(x[i] - y[i]) * (x[i] - y[i]);
			ss += (double)x[i] * x[i];
		}
		double rel = sqrt(se / ss);
		if (getenv("SL_TEST_VERBOSE"))
			printf("%-5s relative rms error %.5f\n", ti->name, rel);
		CHECK(rel < bound[k].max_rel_rms, "%s: relative rms error %.5f", ti->name, rel);
	}
	/* ggml's own bound on its data: sqrt(sum err^2)/n below 0.002 (0.0075
	 * for Q2_K, 0.004 for Q3_K). */
	cos_fill(x, N, 0);
	for (size_t k = 0; k < N_WEIGHT_TYPES; k++) {
		int t = weight_types[k];
		const sl_type_info *ti = sl_type_info_get(t);
		ti->from_float(x, q, N);
		ti->to_float(q, y, N);
		double se = 0;
		for (int i = 0; i < N; i++)
			se += (double)(x[i] - y[i]) * (x[i] - y[i]);
		double err = sqrt(se) / N;
		double max = t == SL_DT_Q2_K ? 0.0075 : t == SL_DT_Q3_K ? 0.004 : 0.002;
		CHECK(err < max, "%s: ggml's total error %.6f", ti->name, err);
	}
}

/* Random block bytes with every half-float field set to a finite value, so
 * that the dot products see every code, including ones no quantizer writes
 * (Q8_0 -128, Q6_K scale -128). */
static void random_blocks(int type, uint8_t *q, size_t bytes)
{
	for (size_t i = 0; i < bytes; i++)
		q[i] = (uint8_t)gen_next();
	const sl_type_info *ti = sl_type_info_get(type);
	for (uint8_t *b = q; b < q + bytes; b += ti->block_bytes) {
		uint16_t h1 = (uint16_t)(0x2c00 + gen_next() % 0x1000),
		         h2 = (uint16_t)(0x2c00 + gen_next() % 0x1000);
		switch (type) {
		case SL_DT_Q2_K:
			put16(b + 80, h1);
			put16(b + 82, h2);
			break;
		case SL_DT_Q3_K: put16(b + 108, h1); break;
		case SL_DT_Q6_K: put16(b + 208, h1); break;
		case SL_DT_Q4_K:
		case SL_DT_Q5_K:
			put16(b, h1);
			put16(b + 2, h2);
			break;
		case SL_DT_Q4_1:
		case SL_DT_Q5_1:
			put16(b, h1);
			put16(b + 2, h2 | 0x8000);
			break;
		default: put16(b, h1); break;
		}
	}
}

static double dot_ref(const float *a, const float *b, int n, double *abs_sum)
{
	double s = 0, as = 0;
	for (int i = 0; i < n; i++) {
		s += (double)a[i] * b[i];
		as += fabs((double)a[i] * b[i]);
	}
	*abs_sum = as;
	return s;
}

/* One weight format at one row length: vec_dot (portable and AVX2) against
 * the dequantized operands, dot_f32 against the dequantized weights. */
static void check_dots(int type, int n, const float *w, const float *x, bool random_weights)
{
	const sl_type_info *ti = sl_type_info_get(type);
	const sl_type_info *ai = sl_type_info_get(ti->vec_dot_type);
	uint8_t *wq = malloc(sl_dtype_row_bytes(type, n));
	uint8_t *xq = malloc(sl_dtype_row_bytes(ti->vec_dot_type, n));
	float *wd = malloc(n * sizeof *wd), *xd = malloc(n * sizeof *xd);
	REQUIRE(wq && xq && wd && xd, "out of memory");
	if (random_weights)
		random_blocks(type, wq, sl_dtype_row_bytes(type, n));
	else
		ti->from_float(w, wq, n);
	ai->from_float(x, xq, n);
	ti->to_float(wq, wd, n);
	ai->to_float(xq, xd, n);

	double abs_sum, ref = dot_ref(wd, xd, n, &abs_sum);
	/* Q8_1 keeps d*sum(q) as a half, off by up to 2^-11 of itself. */
	double max_w = 0, sum_x = 0;
	for (int i = 0; i < n; i++) {
		max_w = fmax(max_w, fabs(wd[i]));
		sum_x += fabs(xd[i]);
	}
	/* n float roundings can each be off by 2^-24 of the running sum */
	const double acc_tol = n * 0x1p-24 * abs_sum + 1e-30;
	double tol = acc_tol + (has_offset(type) ? 0x1p-11 * max_w * sum_x : 0);

	float portable;
	sl_quants_vec_dot_portable(type)(n, &portable, wq, xq);
	CHECK(fabs(portable - ref) <= tol, "%s n=%d portable vec_dot %.9g vs %.9g (tol %g)",
	      ti->name, n, portable, ref, tol);
	sl_vec_dot_fn avx2 = sl_quants_vec_dot_avx2(type);
	if (avx2) {
		float fast;
		avx2(n, &fast, wq, xq);
		CHECK(!memcmp(&fast, &portable, sizeof fast), "%s n=%d avx2 %.9g vs portable %.9g", ti->name, n,
		      fast, portable);
	}

	double ref32 = dot_ref(wd, x, n, &abs_sum);
	float f32 = ti->dot_f32(wq, x, n);
	CHECK(fabs(f32 - ref32) <= n * 0x1p-24 * abs_sum + 1e-30, "%s n=%d dot_f32 %.9g vs %.9g",
	      ti->name, n, f32, ref32);
	free(wq);
	free(xq);
	free(wd);
	free(xd);
}

static void test_dots(void)
{
	enum { N = 4096 };
	static float w[N], x[N];
	if (!sl_quants_vec_dot_avx2(SL_DT_Q4_0))
		printf("note: no AVX2 here, only the portable dot products are tested\n");
	for (size_t k = 0; k < N_WEIGHT_TYPES; k++) {
		int t = weight_types[k];
		int bs = sl_type_info_get(t)->block_size;
		gen_fill(w, N, 100 + k);
		gen_state = 200 + k;
		for (int i = 0; i < N; i++)
			x[i] = gen_unit() + gen_unit();
		/* one block, a length that is not a whole number of 256 chunks
		 * (for the 32-blocks), a long row */
		const int lens[] = {bs, bs == 32 ? 32 * 11 : 256 * 3, N};
		for (int l = 0; l < 3; l++) {
			check_dots(t, lens[l], w, x, false);
			check_dots(t, lens[l], w, x, true);
		}
	}

	/* ggml's check: the quantized dot against the exact F32 dot on its data,
	 * |error|/n below 0.02 (0.04 for Q2_K). */
	cos_fill(w, N, 0);
	cos_fill(x, N, 1);
	double exact = 0;
	for (int i = 0; i < N; i++)
		exact += (double)w[i] * x[i];
	for (size_t k = 0; k < N_WEIGHT_TYPES; k++) {
		int t = weight_types[k];
		const sl_type_info *ti = sl_type_info_get(t);
		uint8_t *wq = malloc(sl_dtype_row_bytes(t, N)),
		        *xq = malloc(sl_dtype_row_bytes(ti->vec_dot_type, N));
		REQUIRE(wq && xq, "out of memory");
		ti->from_float(w, wq, N);
		sl_type_info_get(ti->vec_dot_type)->from_float(x, xq, N);
		float s;
		ti->vec_dot(N, &s, wq, xq);
		double err = fabs(s - exact) / N;
		CHECK(err < (t == SL_DT_Q2_K ? 0.04 : 0.02), "%s: dot error %.5f", ti->name, err);
		free(wq);
		free(xq);
	}
}

enum { TILE_N = 1024, TILE_ROWS = SL_DOT_ROWS_TOKENS };

/* One quantized weight row of type t and TILE_ROWS quantized activation
 * rows from seed; activation row `loud` has some entries of +-1000, so its
 * codes saturate. The caller frees both. */
static void tile_data(int t, uint64_t seed, int loud, uint8_t **wq, size_t *wb, uint8_t **xq, size_t *xb)
{
	static float w[TILE_N], x[TILE_N];
	const sl_type_info *ti = sl_type_info_get(t), *act = sl_type_info_get(ti->vec_dot_type);
	*wb = sl_dtype_row_bytes(t, TILE_N);
	*xb = sl_dtype_row_bytes(ti->vec_dot_type, TILE_N);
	*wq = malloc(*wb);
	*xq = malloc(TILE_ROWS * *xb);
	REQUIRE(*wq && *xq, "out of memory");
	gen_fill(w, TILE_N, seed);
	ti->from_float(w, *wq, TILE_N);
	for (int r = 0; r < TILE_ROWS; r++) {
		gen_state = 100 * seed + r;
		for (int i = 0; i < TILE_N; i++)
			x[i] = r == loud && i % 7 == 0 ? (i % 2 ? 1e3f : -1e3f) : gen_unit() - 0.5f;
		(act->from_float_act ? act->from_float_act : act->from_float)(x, *xq + r * *xb, TILE_N);
	}
}

/* The tiled dot products decode a weight row once for up to SL_DOT_TILE
 * activation rows, and vec_dot_rows up to SL_DOT_ROWS weight rows at once
 * for up to SL_DOT_ROWS_TOKENS activation rows: each result must be the
 * very bits of the one-row vec_dot, for every tile shape (every count of
 * rows and tokens, so the kernels' remainders too) and at the extremes of
 * the codes (saturating activations, full-range weights). */
static void test_tiles(void)
{
	enum { N = TILE_N, ROWS = TILE_ROWS };
	static float w[N];
	int tiled = 0;
	for (size_t k = 0; k < N_WEIGHT_TYPES; k++) {
		int t = weight_types[k];
		const sl_type_info *ti = sl_type_info_get(t);
		if (!ti->vec_dot_tile)
			continue;
		tiled++;
		size_t wb, xb;
		uint8_t *wq, *xq;
		tile_data(t, 300 + k, 3, &wq, &wb, &xq, &xb);
		float one[ROWS], tile[2 * SL_DOT_TILE];
		for (int r = 0; r < ROWS; r++)
			ti->vec_dot(N, &one[r], wq, xq + r * xb);
		for (int nt = 1; nt <= SL_DOT_TILE; nt++)
			for (int r0 = 0; r0 + nt <= ROWS; r0++) {
				memset(tile, 0, sizeof tile);
				ti->vec_dot_tile(N, nt, tile, 2, wq, xq + r0 * xb, xb);
				for (int r = 0; r < nt; r++)
					CHECK(!memcmp(&tile[2 * r], &one[r0 + r], sizeof(float)),
					      "%s: tile of %d, row %d: %.9g vs one row %.9g", ti->name, nt, r0 + r,
					      tile[2 * r], one[r0 + r]);
			}
		if (ti->vec_dot_rows) {
			/* SL_DOT_ROWS weight rows against the tokens */
			enum { NR = SL_DOT_ROWS };
			uint8_t *ws = malloc(NR * wb);
			REQUIRE(ws, "out of memory");
			float ref[NR][ROWS], got[ROWS * NR];
			for (int r = 0; r < NR; r++) {
				gen_fill(w, N, 700 + 10 * k + r);
				ti->from_float(w, ws + r * wb, N);
				for (int j = 0; j < ROWS; j++)
					ti->vec_dot(N, &ref[r][j], ws + r * wb, xq + j * xb);
			}
			for (int nr = 1; nr <= NR; nr++)
				for (int nt = 1; nt <= ROWS; nt++) {
					memset(got, 0, sizeof got);
					ti->vec_dot_rows(N, nr, nt, got, NR, ws + (NR - nr) * wb, wb, xq, xb);
					for (int r = 0; r < nr; r++)
						for (int j = 0; j < nt; j++)
							CHECK(!memcmp(&got[j * NR + r], &ref[NR - nr + r][j], sizeof(float)),
							      "%s: rows %dx%d, (%d, %d): %.9g vs one row %.9g", ti->name, nr, nt, r,
							      j, got[j * NR + r], ref[NR - nr + r][j]);
				}
			free(ws);
		}
		free(wq);
		free(xq);
	}
	if (!tiled)
		printf("note: no tiled dot products on this CPU path\n");

	/* Where the CPU has AVX-512 VNNI the table holds the VNNI dot products;
	 * the AVX2 ones must give the same bits. */
	if (!sl_cpu_vnni()) {
		printf("note: no AVX-512 VNNI here, its dot products are not tested\n");
		return;
	}
	int compared = 0;
	for (size_t k = 0; k < N_WEIGHT_TYPES; k++) {
		int t = weight_types[k];
		const sl_type_info *ti = sl_type_info_get(t);
		sl_vec_dot_fn vnni = sl_quants_vec_dot_avx2(t);
		sl_vec_dot_tile_fn vnni_tile = sl_quants_vec_dot_tile_avx2(t);
		sl_vec_dot_rows_fn vnni_rows = sl_quants_vec_dot_rows_avx2(t);
		setenv("SL_NO_VNNI", "1", 1);
		sl_vec_dot_fn avx2 = sl_quants_vec_dot_avx2(t);
		sl_vec_dot_tile_fn avx2_tile = sl_quants_vec_dot_tile_avx2(t);
		sl_vec_dot_rows_fn avx2_rows = sl_quants_vec_dot_rows_avx2(t);
		unsetenv("SL_NO_VNNI");
		if (vnni == avx2 && vnni_rows == avx2_rows)
			continue;
		compared++;
		size_t wb, xb;
		uint8_t *wq, *xq;
		tile_data(t, 500 + k, 1, &wq, &wb, &xq, &xb);
		float a[ROWS], b[ROWS];
		for (int r = 0; r < ROWS; r++) {
			vnni(N, &a[r], wq, xq + r * xb);
			avx2(N, &b[r], wq, xq + r * xb);
			CHECK(!memcmp(&a[r], &b[r], sizeof(float)), "%s: VNNI %.9g vs AVX2 %.9g", ti->name, a[r], b[r]);
		}
		REQUIRE(vnni_tile && avx2_tile, "%s: tiles on both paths", ti->name);
		vnni_tile(N, SL_DOT_TILE, a, 1, wq, xq, xb);
		avx2_tile(N, SL_DOT_TILE, b, 1, wq, xq, xb);
		CHECK(!memcmp(a, b, SL_DOT_TILE * sizeof *a), "%s: VNNI and AVX2 tiles differ", ti->name);
		REQUIRE(vnni_rows && avx2_rows, "%s: rows on both paths", ti->name);
		/* the weight row SL_DOT_ROWS times against every token */
		float ra[ROWS * SL_DOT_ROWS], rb[ROWS * SL_DOT_ROWS];
		vnni_rows(N, SL_DOT_ROWS, ROWS, ra, SL_DOT_ROWS, wq, 0, xq, xb);
		avx2_rows(N, SL_DOT_ROWS, ROWS, rb, SL_DOT_ROWS, wq, 0, xq, xb);
		CHECK(!memcmp(ra, rb, sizeof ra), "%s: VNNI and AVX2 rows differ", ti->name);
		free(wq);
		free(xq);
	}
	printf("VNNI and AVX2 dot products of %d formats give the same bits\n", compared);
}

/* A product's test data: nr weight rows of type t and nt activation rows
 * of its dot type (every `every`-th token with codes at their extremes),
 * each of length n, and ref[j * nr + r], the one-row vec_dot of each
 * pair. Returns false when out of memory. */
typedef struct {
	uint8_t *w, *x;
	float *ref, *got;
	size_t wb, xb;
} rows_case;

static bool rows_case_make(rows_case *c, int t, int n, int nr, int nt, uint64_t wseed, uint64_t xseed, int every,
                           sl_vec_dot_fn dot, float *v)
{
	const sl_type_info *ti = sl_type_info_get(t), *act = sl_type_info_get(ti->vec_dot_type);
	c->wb = sl_dtype_row_bytes(t, n);
	c->xb = sl_dtype_row_bytes(ti->vec_dot_type, n);
	c->w = malloc(nr * c->wb);
	c->x = malloc(nt * c->xb);
	c->ref = malloc(sizeof(float) * nr * nt);
	c->got = malloc(sizeof(float) * nr * nt);
	if (!c->w || !c->x || !c->ref || !c->got)
		return false;
	for (int r = 0; r < nr; r++) {
		gen_fill(v, n, wseed + r);
		ti->from_float(v, c->w + r * c->wb, n);
	}
	for (int j = 0; j < nt; j++) {
		gen_state = xseed + j;
		for (int i = 0; i < n; i++)
			v[i] = j % every == every / 2 && i % 7 == 0 ? (i % 2 ? 1e3f : -1e3f) : gen_unit() - 0.5f;
		(act->from_float_act ? act->from_float_act : act->from_float)(v, c->x + j * c->xb, n);
		for (int r = 0; r < nr; r++)
			dot(n, &c->ref[j * nr + r], c->w + r * c->wb, c->x + j * c->xb);
	}
	return true;
}

static void rows_case_free(rows_case *c)
{
	free(c->w);
	free(c->x);
	free(c->ref);
	free(c->got);
}

/* vec_dot_gemm takes any count of rows and tokens in one call: every
 * result must be the bits of the one-row vec_dot, for counts that leave
 * partial tiles of rows and tokens and cross the gemm's chunks of tokens,
 * at the extremes of the codes, on the VNNI and the AVX2 path alike. */
static void test_gemm(void)
{
	enum { N = 320, NR = 11, NT = 150 };
	static float v[N];
	static const int counts[][2] = {{1, 16}, {4, 17}, {7, 64}, {NR, 65}, {3, NT}, {NR, NT}};
	int tested = 0;
	for (int path = 0; path < 2; path++) {
		if (path)
			setenv("SL_NO_VNNI", "1", 1);
		for (size_t k = 0; k < N_WEIGHT_TYPES; k++) {
			int t = weight_types[k];
			const sl_type_info *ti = sl_type_info_get(t);
			sl_vec_dot_rows_fn gemm = sl_quants_vec_dot_gemm_avx2(t);
			sl_vec_dot_fn dot = sl_quants_vec_dot_avx2(t);
			if (!gemm || !dot)
				continue;
			tested++;
			rows_case rc;
			REQUIRE(rows_case_make(&rc, t, N, NR, NT, 900 + 10 * k, 1000 * k, 5, dot, v), "out of memory");
			for (size_t c = 0; c < sizeof counts / sizeof *counts; c++) {
				const int nr = counts[c][0], nt = counts[c][1];
				memset(rc.got, 0, sizeof(float) * NR * NT);
				gemm(N, nr, nt, rc.got, NR, rc.w, rc.wb, rc.x, rc.xb);
				int diff = 0;
				for (int j = 0; j < nt; j++)
					diff += memcmp(&rc.got[j * NR], &rc.ref[j * NR], sizeof(float) * nr) != 0;
				CHECK(!diff, "%s (%s): gemm of %d rows x %d tokens: %d tokens differ from vec_dot", ti->name,
				      path ? "AVX2" : "VNNI or AVX2", nr, nt, diff);
			}
			rows_case_free(&rc);
		}
	}
	unsetenv("SL_NO_VNNI");
	if (!tested)
		printf("note: no gemm on this CPU path\n");
	else
		printf("gemm of %d formats x paths: the bits of vec_dot for every count of rows and tokens\n", tested);
}

enum { AMX_NR = 40, AMX_NT = 70, AMX_N = 2816 };

/* One case of an AMX gemm (type t, rows of n): AMX_NR weight rows
 * quantized (weights 0), of random bytes (1: every scale and code, as a
 * hostile file holds them) or (2) random with every other row's codes at
 * an extreme (all bits set, or 0x80 in every byte: Q8_0's -128), against
 * AMX_NT tokens (every fourth at the activations' extremes); each count
 * {rows, tokens} must give the bits of the portable vec_dot. */
static void amx_case(int t, size_t k, int n, int weights, sl_vec_dot_rows_fn gemm, const int (*counts)[2],
                     size_t n_counts)
{
	enum { NR = AMX_NR, NT = AMX_NT };
	static float v[AMX_N];
	const sl_type_info *ti = sl_type_info_get(t);
	sl_vec_dot_fn dot = sl_quants_vec_dot_portable(t);
	rows_case rc;
	REQUIRE(rows_case_make(&rc, t, n, NR, NT, 1700 + 10 * k, 1800 * k, 4, dot, v), "out of memory");
	if (weights) {
		random_blocks(t, rc.w, NR * rc.wb);
		const size_t head = has_offset(t) ? 4 : 2;
		for (int r = 1; weights == 2 && !is_k(t) && r < NR; r += 2)
			for (uint8_t *b = rc.w + r * rc.wb; b < rc.w + (r + 1) * rc.wb; b += ti->block_bytes)
				memset(b + head, r % 4 == 1 ? 0xff : 0x80, ti->block_bytes - head);
		for (int j = 0; j < NT; j++)
			for (int r = 0; r < NR; r++)
				dot(n, &rc.ref[j * NR + r], rc.w + r * rc.wb, rc.x + j * rc.xb);
	}
	static const char *const kind[] = {"quantized", "random", "extreme"};
	for (size_t c = 0; c < n_counts; c++) {
		const int nr = counts[c][0], nt = counts[c][1];
		memset(rc.got, 0, sizeof(float) * NR * NT);
		gemm(n, nr, nt, rc.got, NR, rc.w, rc.wb, rc.x, rc.xb);
		int diff = 0;
		for (int j = 0; j < nt; j++)
			diff += memcmp(&rc.got[j * NR], &rc.ref[j * NR], sizeof(float) * nr) != 0;
		CHECK(!diff, "%s, %s weights, rows of %d: AMX gemm of %d rows x %d tokens: %d tokens differ from "
		      "the portable vec_dot", ti->name, kind[weights], n, nr, nt, diff);
	}
	rows_case_free(&rc);
}

/* The K formats' gemm on AMX tiles: every result the bits of the portable
 * dot product, for rows and tokens that leave partial tiles of 16, rows
 * of one and of eleven super-blocks, weights quantized and random. */
static void test_gemm_amx(void)
{
	static const int lens[] = {256, AMX_N};
	static const int counts[][2] = {{1, 16}, {16, 16}, {17, 33}, {5, AMX_NT}, {AMX_NR, AMX_NT}};
	if (!sl_quants_vec_dot_gemm_amx(SL_DT_Q4_K)) {
		printf("note: no AMX tiles on this CPU (or SL_NO_AMX set): its gemm is not tested\n");
		return;
	}
	int tested = 0;
	for (size_t k = 0; k < N_WEIGHT_TYPES; k++)
		for (size_t l = 0; l < sizeof lens / sizeof *lens; l++)
			for (int random = 0; random < 2; random++) {
				const int t = weight_types[k];
				sl_vec_dot_rows_fn gemm = sl_quants_vec_dot_gemm_amx(t);
				if (!gemm)
					continue;
				REQUIRE(is_k(t), "%s: an AMX gemm for a format outside the K formats", sl_type_info_get(t)->name);
				tested++;
				amx_case(t, k, lens[l], random, gemm, counts, sizeof counts / sizeof *counts);
			}
	REQUIRE(tested == 20, "AMX gemm of %d format cases, not the 5 K formats x 4", tested);
	printf("AMX gemm of the K formats x lengths x weights (%d): the bits of the portable vec_dot\n", tested);
}

/* The legacy formats' gemm on AMX tiles: every result the bits of the
 * portable dot product, for every count of rows from 1 to 40 (partial
 * groups of 16) against 16 to 70 tokens (partial tiles of 16), rows of
 * one to 88 blocks, weights quantized, random and extreme. */
static void test_gemm_amx_legacy(void)
{
	static const int lens[] = {32, 64, 320, AMX_N};
	int counts[AMX_NR][2];
	for (int c = 0; c < AMX_NR; c++) {
		counts[c][0] = c + 1;
		counts[c][1] = 16 + (c * 7) % (AMX_NT - 15);
	}
	counts[AMX_NR - 1][1] = AMX_NT;
	if (!sl_quants_vec_dot_gemm_amx_legacy(SL_DT_Q4_0)) {
		printf("note: no AMX tiles on this CPU (or SL_NO_AMX set): the legacy formats' AMX gemm is not tested\n");
		return;
	}
	int tested = 0;
	for (size_t k = 0; k < N_WEIGHT_TYPES; k++) {
		const int t = weight_types[k];
		sl_vec_dot_rows_fn gemm = sl_quants_vec_dot_gemm_amx_legacy(t);
		if (!gemm)
			continue;
		REQUIRE(!is_k(t), "%s: a legacy AMX gemm for a K format", sl_type_info_get(t)->name);
		for (size_t l = 0; l < sizeof lens / sizeof *lens; l++)
			for (int weights = 0; weights < 3; weights++, tested++)
				amx_case(t, k, lens[l], weights, gemm, (const int (*)[2])counts, AMX_NR);
	}
	REQUIRE(tested == 60, "legacy AMX gemm of %d format cases, not the 5 legacy formats x 12", tested);
	printf("AMX gemm of the legacy formats x lengths x weights (%d): the bits of the portable vec_dot\n", tested);
}

/* vec_dot_rows takes any count of weight rows (a product's share in one
 * call, decoded SL_DOT_ROWS at a time or so, the last group padded): every
 * result must be the bits of the one-row vec_dot, for counts that leave
 * partial groups, for 1 to SL_DOT_ROWS_TOKENS tokens, for rows short and
 * long (past 4096 elements the legacy kernels prepare the activations on
 * the heap), at the extremes of the codes, on the VNNI and AVX2 paths. */
static void test_rows_any(void)
{
	enum { NR = 37, NT = SL_DOT_ROWS_TOKENS };
	static const int lens[] = {256, 4160};
	static const int counts[] = {1, 3, 5, 8, 9, NR};
	static float v[4160];
	int tested = 0;
	for (int path = 0; path < 2; path++) {
		if (path)
			setenv("SL_NO_VNNI", "1", 1);
		for (size_t k = 0; k < N_WEIGHT_TYPES; k++)
			for (size_t l = 0; l < sizeof lens / sizeof *lens; l++) {
				const int t = weight_types[k], N = lens[l];
				const sl_type_info *ti = sl_type_info_get(t);
				sl_vec_dot_rows_fn rows = sl_quants_vec_dot_rows_avx2(t);
				sl_vec_dot_fn dot = sl_quants_vec_dot_avx2(t);
				if (!rows || !dot || N % ti->block_size)
					continue;
				tested++;
				rows_case rc;
				REQUIRE(rows_case_make(&rc, t, N, NR, NT, 1300 + 10 * k, 1400 * k, 3, dot, v), "out of memory");
				for (size_t c = 0; c < sizeof counts / sizeof *counts; c++)
					for (int nt = 1; nt <= NT; nt++) {
						const int nr = counts[c], r0 = NR - nr;
						memset(rc.got, 0, sizeof(float) * NR * NT);
						rows(N, nr, nt, rc.got + r0, NR, rc.w + r0 * rc.wb, rc.wb, rc.x, rc.xb);
						int diff = 0;
						for (int j = 0; j < nt; j++)
							diff += memcmp(&rc.got[j * NR + r0], &rc.ref[j * NR + r0], sizeof(float) * nr) != 0;
						CHECK(!diff, "%s (%s), rows of %d: %d rows x %d tokens: %d tokens differ from vec_dot",
						      ti->name, path ? "AVX2" : "VNNI or AVX2", N, nr, nt, diff);
					}
				rows_case_free(&rc);
			}
	}
	unsetenv("SL_NO_VNNI");
	if (!tested)
		printf("note: no vec_dot_rows on this CPU path\n");
	else
		printf("vec_dot_rows of formats x lengths x paths (%d): the bits of vec_dot for any count of rows\n", tested);
}

/* The AVX2 activation quantizers (Q8_0, Q8_1, Q8_K) write the portable
 * ones' bytes, on ordinary values, ties, zeros, huge values, infinities,
 * subnormals and NaN. */
static void test_act(void)
{
	enum { N = 256 * 8 };
	static float x[N];
	static const int types[] = {SL_DT_Q8_0, SL_DT_Q8_1, SL_DT_Q8_K};
	gen_state = 77;
	for (int i = 0; i < N; i++) {
		int blk = i / 32;
		float v = (gen_unit() - 0.5f) * (blk % 5 == 0 ? 1e-3f : blk % 5 == 1 ? 1e4f : 3.0f);
		if (blk == 7)
			v = (float)(i % 32) - 15.5f; /* ties after scaling by 127/amax? some */
		if (blk == 8)
			v = 0.0f;
		if (blk == 9 && i % 32 == 3)
			v = NAN;
		if (blk == 10 && i % 32 == 5)
			v = INFINITY;
		if (blk == 11 && i % 32 == 6)
			v = -INFINITY;
		if (blk == 12)
			v = i % 32 == 0 ? 127.0f : 0.5f * (float)(i % 32); /* id = 1: exact halves round to even */
		if (blk == 13)
			v = i % 2 ? 3e38f : -3e38f;
		/* Q8_K's blocks of 256 from element 1280: all zeros; subnormals,
		 * whose scale -127/max overflows; two of the largest magnitude,
		 * the first negative, and a NaN. */
		if (i >= 1280)
			v = 0.0f;
		if (i >= 1536)
			v = (float)(i % 7 - 3) * 1e-40f;
		if (i >= 1792)
			v = i == 1800 ? -4.0f : i == 1900 ? 4.0f : i == 1801 ? NAN : (float)(i % 9) * 0.25f - 1.0f;
		x[i] = v;
	}
	int compared = 0;
	for (size_t k = 0; k < sizeof types / sizeof *types; k++) {
		sl_act_fn fast = sl_quants_act_avx2(types[k]), slow = sl_quants_act_portable(types[k]);
		REQUIRE(slow, "a portable quantizer for type %d", types[k]);
		if (!fast)
			continue;
		size_t rb = sl_dtype_row_bytes(types[k], N);
		uint8_t *a = malloc(rb), *b = malloc(rb);
		REQUIRE(a && b, "out of memory");
		fast(x, a, N);
		slow(x, b, N);
		size_t bb = sl_type_info_get(types[k])->block_bytes;
		for (size_t off = 0; off < rb; off += bb)
			CHECK(!memcmp(a + off, b + off, bb), "%s activations: block %zu differs",
			      sl_type_info_get(types[k])->name, off / bb);
		CHECK(sl_type_info_get(types[k])->from_float_act == fast, "%s: the table holds the AVX2 quantizer",
		      sl_type_info_get(types[k])->name);
		compared++;
		free(a);
		free(b);
	}
	if (!compared)
		printf("note: no AVX2 here, only the portable activation quantizers run\n");
}

/* Zeros stay zeros, with no NaN from a zero scale; NaN and infinities in the
 * input give unspecified blocks but no crash or undefined behaviour (run
 * under the sanitizers). */
static void test_degenerate(void)
{
	static const float zero[256];
	float odd[256];
	for (int i = 0; i < 256; i++)
		odd[i] = i % 3 == 0 ? NAN : i % 3 == 1 ? INFINITY : -INFINITY;
	odd[5] = 1e30f;
	for (int t = 0; t < SL_DT_GGML_END; t++) {
		const sl_type_info *ti = sl_type_info_get(t);
		if (!ti || ti->block_size == 1)
			continue;
		uint8_t q[MAXB];
		float y[256];
		ti->from_float(zero, q, ti->block_size);
		ti->to_float(q, y, ti->block_size);
		int bad = 0;
		for (int i = 0; i < ti->block_size; i++)
			bad += y[i] != 0;
		CHECK(!bad, "%s: %d nonzero values from a zero block", ti->name, bad);
		ti->from_float(odd, q, ti->block_size);
		ti->to_float(q, y, ti->block_size);
	}
}

int main(void)
{
	test_table();
	test_hand_blocks();
	test_quantize_by_hand();
	test_ggml_bytes();
	test_round_trip();
	test_dots();
	test_tiles();
	test_rows_any();
	test_gemm();
	test_gemm_amx();
	test_gemm_amx_legacy();
	test_act();
	test_degenerate();
	return test_finish();
}
