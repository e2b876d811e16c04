/* slimlab's own storage formats against their published definitions:
 * every FP8 code decodes as the OCP spec says and NF4's as QLoRA's table,
 * encoding picks the nearest value (ties to even, for NF4 to the lower;
 * saturating), blocks whose bytes are derived by hand below come out byte
 * for byte, round trips stay within error bounds, and every dot product
 * (F32, integer, AVX2 and portable) agrees with the dequantize-then-F32
 * reference, as ggml's test-quantize-fns checks. (tests/test-nf4 checks
 * NF4 against an independent implementation too.) */
#include <float.h>
#include <stdint.h>

#include "kernels/cpu/formats.h"
#include "kernels/dtype.h"
#include "test.h"

/* ---- the FP8 and FP4 code tables ---------------------------------------- */

/* The value of a code straight from the definition, in double:
 * (-1)^s * 2^(e - bias) * (1 + m / 2^M), subnormal 2^(1 - bias) * m / 2^M. */
static double spec_value(unsigned c, int E, int M, int bias, int *kind)
{
	unsigned s = c >> (E + M) & 1, e = c >> M & ((1u << E) - 1), m = c & ((1u << M) - 1);
	*kind = 0;
	double v = e ? ldexp(1.0 + m / (double)(1 << M), (int)e - bias) : ldexp(m / (double)(1 << M), 1 - bias);
	return s ? -v : v;
}

static void test_fp8_tables(void)
{
	int kind, nan4 = 0, nan5 = 0, inf5 = 0;
	for (unsigned c = 0; c < 256; c++) {
		/* E4M3: bias 7, no infinities, only S.1111.111 is NaN. */
		float v = sl_fp8_e4m3_to_f32((uint8_t)c);
		if ((c & 0x7f) == 0x7f) {
			CHECK(isnan(v), "e4m3 %#x should be NaN", c);
			nan4++;
		} else {
			CHECK(v == spec_value(c, 4, 3, 7, &kind), "e4m3 %#x -> %g", c, v);
			CHECK(!!signbit(v) == !!(c & 0x80), "e4m3 %#x sign", c);
			CHECK(sl_f32_to_fp8_e4m3(v) == c, "e4m3 %#x does not encode back", c);
		}
		/* E5M2: bias 15, IEEE-like: exponent 31 is infinity (m = 0) or NaN. */
		v = sl_fp8_e5m2_to_f32((uint8_t)c);
		if ((c >> 2 & 31) == 31) {
			if (c & 3) {
				CHECK(isnan(v), "e5m2 %#x should be NaN", c);
				nan5++;
			} else {
				CHECK(isinf(v) && !!signbit(v) == !!(c & 0x80), "e5m2 %#x should be infinite", c);
				inf5++;
			}
		} else {
			CHECK(v == spec_value(c, 5, 2, 15, &kind), "e5m2 %#x -> %g", c, v);
			CHECK(sl_f32_to_fp8_e5m2(v) == c, "e5m2 %#x does not encode back", c);
		}
	}
	CHECK(nan4 == 2 && nan5 == 6 && inf5 == 2, "special codes: %d %d %d", nan4, nan5, inf5);
	/* Landmarks from the OCP FP8 spec's table. */
	CHECK(sl_fp8_e4m3_to_f32(0x7e) == 448.0f, "e4m3 max");
	CHECK(sl_fp8_e4m3_to_f32(0x08) == 0x1p-6f, "e4m3 min normal");
	CHECK(sl_fp8_e4m3_to_f32(0x01) == 0x1p-9f, "e4m3 min subnormal");
	CHECK(sl_fp8_e4m3_to_f32(0x07) == 0.875f * 0x1p-6f, "e4m3 max subnormal");
	CHECK(sl_fp8_e4m3_to_f32(0x38) == 1.0f, "e4m3 one");
	CHECK(sl_fp8_e5m2_to_f32(0x7b) == 57344.0f, "e5m2 max");
	CHECK(sl_fp8_e5m2_to_f32(0x04) == 0x1p-14f, "e5m2 min normal");
	CHECK(sl_fp8_e5m2_to_f32(0x01) == 0x1p-16f, "e5m2 min subnormal");
	CHECK(sl_fp8_e5m2_to_f32(0x3c) == 1.0f, "e5m2 one");

	/* E2M1: 0, 0.5, 1, 1.5, 2, 3, 4, 6 and their negatives. */
	static const float e2m1[8] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6};
	for (unsigned c = 0; c < 16; c++) {
		float want = c & 8 ? -e2m1[c & 7] : e2m1[c & 7];
		CHECK(sl_e2m1_to_f32((uint8_t)c) == want && !!signbit(sl_e2m1_to_f32((uint8_t)c)) == !!(c & 8),
		      "e2m1 %#x -> %g", c, sl_e2m1_to_f32((uint8_t)c));
		CHECK(sl_f32_to_e2m1(want) == c, "e2m1 %g encodes to %#x", want, sl_f32_to_e2m1(want));
	}
}

/* The code a correct encoder must give: the nearest finite value, ties
 * to the even code (mantissa bit 0 clear), beyond the largest finite
 * value the largest. Searched over every code, so it shares nothing with
 * the encoder. */
static unsigned nearest_code(float x, float (*dec)(uint8_t), int ncodes, float maxv)
{
	double a = fabs((double)x);
	unsigned best = 0;
	double bd = INFINITY;
	for (int c = 0; c < ncodes / 2; c++) {
		float v = dec((uint8_t)c);
		if (isnan(v) || isinf(v))
			continue;
		double dd = fabs(v - a);
		if (dd < bd || (dd == bd && !(c & 1))) {
			bd = dd;
			best = (unsigned)c;
		}
	}
	if (a >= maxv)
		best = 0;
	for (int c = 0; a >= maxv && c < ncodes / 2; c++)
		if (dec((uint8_t)c) == maxv)
			best = (unsigned)c;
	return signbit(x) ? best | (unsigned)ncodes / 2 : best;
}

static float dec_e2m1(uint8_t c)
{
	return sl_e2m1_to_f32(c);
}

static void test_minifloat_rounding(void)
{
	/* Hand-picked ties and edges (E4M3 step above 1 is 1/8, above 2 is 1/4). */
	CHECK(sl_f32_to_fp8_e4m3(1.0625f) == 0x38, "1.0625 ties to 1.0 (even)");
	CHECK(sl_f32_to_fp8_e4m3(1.1875f) == 0x3a, "1.1875 ties to 1.25 (even)");
	CHECK(sl_f32_to_fp8_e4m3(0x1p-10f) == 0x00, "half the smallest subnormal ties to 0");
	CHECK(sl_f32_to_fp8_e4m3(3 * 0x1p-10f) == 0x02, "1.5 subnormal steps tie to 2");
	CHECK(sl_f32_to_fp8_e4m3(0.9999f * 0x1p-6f) == 0x08, "just under the min normal rounds up to it");
	CHECK(sl_f32_to_fp8_e4m3(464.0f) == 0x7e && sl_f32_to_fp8_e4m3(1e9f) == 0x7e, "e4m3 saturates");
	CHECK(sl_f32_to_fp8_e4m3(INFINITY) == 0x7e && sl_f32_to_fp8_e4m3(-INFINITY) == 0xfe, "e4m3 inf saturates");
	CHECK((sl_f32_to_fp8_e4m3(NAN) & 0x7f) == 0x7f, "e4m3 NaN");
	CHECK(sl_f32_to_fp8_e4m3(-0.0f) == 0x80, "e4m3 -0");
	CHECK(sl_f32_to_fp8_e5m2(61440.0f) == 0x7b && sl_f32_to_fp8_e5m2(1e30f) == 0x7b, "e5m2 saturates");
	CHECK(sl_f32_to_fp8_e5m2(1.125f) == 0x3c, "e5m2 1.125 ties to 1.0");
	CHECK(sl_f32_to_fp8_e5m2(1.375f) == 0x3e, "e5m2 1.375 ties to 1.5");
	CHECK(sl_f32_to_e2m1(0.25f) == 0 && sl_f32_to_e2m1(0.75f) == 2 && sl_f32_to_e2m1(1.25f) == 2 &&
	      sl_f32_to_e2m1(1.75f) == 4 && sl_f32_to_e2m1(2.5f) == 4 && sl_f32_to_e2m1(3.5f) == 6 &&
	      sl_f32_to_e2m1(5.0f) == 6 && sl_f32_to_e2m1(100.0f) == 7 && sl_f32_to_e2m1(-5.5f) == 15,
	      "e2m1 ties to even and saturates");

	/* Random values over each format's whole range, ties included. */
	uint64_t s = 12345;
	int bad4 = 0, bad5 = 0, bad1 = 0;
	for (int i = 0; i < 20000; i++) {
		s = s * 6364136223846793005ull + 1442695040888963407ull;
		int e = (int)(s >> 40 & 31) - 18;
		float m = (float)(s >> 12 & 0xffff) / 65536.0f + 1.0f;
		if (i % 4 == 0)
			m = 1.0f + (float)(s >> 20 & 15) / 16.0f + 1.0f / 32.0f; /* exact ties */
		float x = ldexpf(m, e) * (s >> 63 ? -1.0f : 1.0f);
		bad4 += sl_f32_to_fp8_e4m3(x) != nearest_code(x, sl_fp8_e4m3_to_f32, 256, 448.0f);
		bad5 += sl_f32_to_fp8_e5m2(x) != nearest_code(x, sl_fp8_e5m2_to_f32, 256, 57344.0f);
		bad1 += sl_f32_to_e2m1(x) != nearest_code(x, dec_e2m1, 16, 6.0f);
	}
	CHECK(!bad4 && !bad5 && !bad1, "encoders disagree with the nearest code: e4m3 %d, e5m2 %d, e2m1 %d", bad4,
	      bad5, bad1);
}

/* NF4: QLoRA's sixteen values ascending, code 7 zero; the encoder gives
 * the nearest (searched over every code), the lower on a tie, and
 * saturates. */
static void test_nf4_codes(void)
{
	static const float nf4[16] = {-1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
	                              -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
	                              0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f,
	                              0.33791524171829224f, 0.44070982933044434f, 0.5626170039176941f,
	                              0.7229568362236023f, 1.0f};
	for (unsigned c = 0; c < 16; c++)
		CHECK(sl_nf4_to_f32((uint8_t)c) == nf4[c] && sl_f32_to_nf4(nf4[c]) == c, "nf4 %u -> %g", c,
		      sl_nf4_to_f32((uint8_t)c));
	/* Exact ties: halfway to zero from the values beside it. */
	CHECK(sl_f32_to_nf4(nf4[8] / 2) == 7 && sl_f32_to_nf4(nextafterf(nf4[8] / 2, 1.0f)) == 8 &&
	      sl_f32_to_nf4(nf4[6] / 2) == 6 && sl_f32_to_nf4(nextafterf(nf4[6] / 2, 1.0f)) == 7,
	      "nf4 ties go to the lower value");
	CHECK(sl_f32_to_nf4(-7.0f) == 0 && sl_f32_to_nf4(1.5f) == 15 && sl_f32_to_nf4(-INFINITY) == 0 &&
	      sl_f32_to_nf4(NAN) == 7 && sl_f32_to_nf4(-0.0f) == 7, "nf4 saturates, NaN and -0 give 0");
	uint64_t s = 99;
	int bad = 0;
	for (int i = 0; i < 20000; i++) {
		s = s * 6364136223846793005ull + 1442695040888963407ull;
		float x = (float)((double)(s >> 11) / 9007199254740992.0 * 2.4 - 1.2);
		unsigned best = 0;
		for (unsigned c = 1; c < 16; c++)
			if (fabsf(x - nf4[c]) < fabsf(x - nf4[best]))
				best = c;
		bad += sl_f32_to_nf4(x) != best;
	}
	CHECK(!bad, "nf4: %d values encode to a code that is not the nearest", bad);
}

/* ---- hand-derived blocks ------------------------------------------------------ */

static void quantize(int type, const float *x, uint8_t *out, int64_t rows, int64_t n)
{
	sl_dtype_rows_from_float(type, x, out, rows, n);
}

static void check_bytes(const uint8_t *got, const uint8_t *want, size_t n, const char *what)
{
	size_t bad = n;
	for (size_t i = 0; i < n && bad == n; i++)
		if (got[i] != want[i])
			bad = i;
	CHECK(bad == n, "%s: byte %zu is %#04x, expected %#04x", what, bad, bad < n ? got[bad] : 0,
	      bad < n ? want[bad] : 0);
}

static void test_hand_blocks(void)
{
	float x[32];
	uint8_t out[64];

	/* int4-g32 = Q4_0. x[i] = (i - 16)/2: the value of largest magnitude
	 * is x[0] = -8, so d = -8 / -8 = 1 (f16 0x3c00) and code =
	 * trunc(x + 8.5) capped at 15: code(i) = floor((i + 1) / 2), 15 from
	 * i = 29. Byte j = code(j) | code(j + 16) << 4. */
	for (int i = 0; i < 32; i++)
		x[i] = (float)(i - 16) * 0.5f;
	static const uint8_t q4_0[18] = {0x00, 0x3c, 0x80, 0x91, 0x91, 0xa2, 0xa2, 0xb3, 0xb3, 0xc4,
	                                 0xc4, 0xd5, 0xd5, 0xe6, 0xe6, 0xf7, 0xf7, 0xf8};
	quantize(sl_dtype_int_group(4, 32, 0), x, out, 1, 32);
	check_bytes(out, q4_0, 18, "int4-g32");

	/* int8-g32 = Q8_0. x[0] = -7.9375 = -127/16 is the largest magnitude,
	 * so d = 1/16 (f16 0x2c00), code = round(16 x): x[1] = 1.5/16 rounds
	 * away from zero to 2, x[2] to -2, x[i] = (i - 16)/4 gives 4(i - 16). */
	x[0] = -7.9375f;
	x[1] = 0.09375f;
	x[2] = -0.09375f;
	for (int i = 3; i < 32; i++)
		x[i] = (float)(i - 16) * 0.25f;
	uint8_t q8_0[34] = {0x00, 0x2c, 0x81, 0x02, 0xfe};
	for (int i = 3; i < 32; i++)
		q8_0[2 + i] = (uint8_t)(int8_t)(4 * (i - 16));
	quantize(sl_dtype_int_group(8, 32, 0), x, out, 1, 32);
	check_bytes(out, q8_0, 34, "int8-g32");

	/* int4-g32-asym = Q4_1. x = -2 + c/2 with codes c(j) = j, c(j+16) =
	 * 15 - j: min -2 (f16 0xc000), max 5.5, d = 7.5/15 = 0.5 (f16 0x3800),
	 * code = trunc((x + 2) * 2 + 0.5). x[3] = -0.25 sits halfway between
	 * codes 3 and 4 and goes up to 4. */
	for (int j = 0; j < 16; j++) {
		x[j] = -2.0f + 0.5f * (float)j;
		x[j + 16] = -2.0f + 0.5f * (float)(15 - j);
	}
	x[3] = -0.25f;
	static const uint8_t q4_1[20] = {0x00, 0x38, 0x00, 0xc0, 0xf0, 0xe1, 0xd2, 0xc4, 0xb4, 0xa5,
	                                 0x96, 0x87, 0x78, 0x69, 0x5a, 0x4b, 0x3c, 0x2d, 0x1e, 0x0f};
	quantize(sl_dtype_int_group(4, 32, 1), x, out, 1, 32);
	check_bytes(out, q4_1, 20, "int4-g32-asym");

	/* int3-g32: levels -4..3, x[i] = i % 8 - 4, so x[0] = -4 gives d = 1 and
	 * codes i % 8. Low two bits in a 2-bit plane (byte j: codes j, j+8,
	 * j+16, j+24 = j % 8 each, so (j & 3) * 0x55), then the third bit in a
	 * 1-bit plane (byte j: codes j, j+4, ..., j+28, set for odd k: 0xaa). */
	for (int i = 0; i < 32; i++)
		x[i] = (float)(i % 8 - 4);
	static const uint8_t i3[14] = {0x00, 0x3c, 0x00, 0x55, 0xaa, 0xff, 0x00, 0x55, 0xaa, 0xff,
	                               0xaa, 0xaa, 0xaa, 0xaa};
	quantize(sl_dtype_int_group(3, 32, 0), x, out, 1, 32);
	check_bytes(out, i3, 14, "int3-g32");

	/* int2-g32: levels -2..1, x[i] = i % 4 - 2, d = 1, codes i % 4; byte j
	 * holds codes j, j+8, j+16, j+24, all j % 4. */
	for (int i = 0; i < 32; i++)
		x[i] = (float)(i % 4 - 2);
	static const uint8_t i2[10] = {0x00, 0x3c, 0x00, 0x55, 0xaa, 0xff, 0x00, 0x55, 0xaa, 0xff};
	quantize(sl_dtype_int_group(2, 32, 0), x, out, 1, 32);
	check_bytes(out, i2, 10, "int2-g32");

	/* int8 per channel: row {127, -1.4, 0.5, 0.26}: s = 127/127 = 1 (f32
	 * 0x3f800000), codes 127, -1, round(0.5) = 1, 0. */
	float r[4] = {127.0f, -1.4f, 0.5f, 0.26f};
	static const uint8_t i8ch[8] = {0x00, 0x00, 0x80, 0x3f, 0x7f, 0xff, 0x01, 0x00};
	quantize(SL_DT_I8_CH, r, out, 1, 4);
	check_bytes(out, i8ch, 8, "int8");

	/* fp8-e4m3-ch: row {448, -1, 0.5, 3.3}: s = 448/448 = 1; 448 = 1.75*2^8
	 * -> 0.1111.110; -1 -> 1.0111.000; 0.5 -> 0.0110.000; 3.3 = 1.65*2 ->
	 * mantissa 0.65*8 = 5.2 rounds to 5: 0.1000.101. */
	float f8[4] = {448.0f, -1.0f, 0.5f, 3.3f};
	static const uint8_t e4m3[8] = {0x00, 0x00, 0x80, 0x3f, 0x7e, 0xb8, 0x30, 0x45};
	quantize(SL_DT_FP8_E4M3_CH, f8, out, 1, 4);
	check_bytes(out, e4m3, 8, "fp8-e4m3-ch");

	/* fp8-e5m2 per tensor over two rows {1024, 3}, {-0.75, 0}: amax 1024,
	 * s = 1024/57344 = 1/56, copied into both row headers; 1024*56 = 57344
	 * -> 0.11110.11; 3*56 = 168 = 1.3125*2^7, two mantissa bits hold
	 * 0.3125*4 = 1.25, rounded to 1 -> 0.10110.01; -0.75*56 = -42 =
	 * -1.3125*2^5 -> 1.10100.01. */
	float f5[4] = {1024.0f, 3.0f, -0.75f, 0.0f};
	quantize(SL_DT_FP8_E5M2, f5, out, 2, 2);
	float s56 = 1024.0f / 57344.0f;
	uint8_t e5m2[12];
	memcpy(e5m2, &s56, 4);
	e5m2[4] = 0x7b;
	e5m2[5] = 0x59;
	memcpy(e5m2 + 6, &s56, 4);
	e5m2[10] = 0xd1;
	e5m2[11] = 0x00;
	check_bytes(out, e5m2, 12, "fp8-e5m2 (two rows)");

	/* NVFP4 over one row of 32. Block 1 holds the tensor's amax 2688 =
	 * 448*6, so the global scale S = 1 (f32 0x3f800000); its E4M3 scale is
	 * 2688/6/S = 448 (0x7e) and 2688/448 = 6 is code 7. Block 0 has amax
	 * 6: scale e4m3(6/6) = 1 (0x38), values 0, .5, 1, 1.5, 2, 3, 4, 6,
	 * -0.5, 2.5 (tie: 2, code 4), 5 (tie: 4, code 6), -6, 0.25 (tie: 0),
	 * -3, 1.75 (tie: 2), -1. Byte j = code(j) | code(j + 8) << 4. */
	float nv[32] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6, -0.5f, 2.5f, 5, -6, 0.25f, -3, 1.75f, -1};
	for (int i = 16; i < 32; i++)
		nv[i] = i == 20 ? 2688.0f : 0.0f;
	static const uint8_t nvfp4[22] = {0x00, 0x00, 0x80, 0x3f, 0x38, 0x90, 0x41, 0x62, 0xf3, 0x04,
	                                  0xd5, 0x46, 0xa7, 0x7e, 0x00, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00};
	quantize(SL_DT_NVFP4, nv, out, 1, 32);
	check_bytes(out, nvfp4, 22, "nvfp4");

	/* MXFP4, two blocks. Block 0: amax 7, floor(log2 7) = 2, X = 2 - 2 = 0
	 * (E8M0 127 = 0x7f): x = 7 saturates to 6 (code 7), 2.5 ties to 2
	 * (code 4), -1 is code 0xa. Block 1: amax 0.75, floor(log2 .75) = -1,
	 * X = -3 (E8M0 124 = 0x7c), scale 1/8: 0.75 -> 6 (code 7), -0.0625 ->
	 * -0.5 (code 9). Byte j = code(j) | code(j + 16) << 4. */
	float mx[64] = {0};
	mx[0] = 7.0f;
	mx[16] = 2.5f;
	mx[1] = -1.0f;
	mx[32 + 2] = 0.75f;
	mx[32 + 18] = -0.0625f;
	uint8_t mxfp4[34] = {0x7f, 0x47, 0x0a};
	mxfp4[17] = 0x7c;
	mxfp4[17 + 1 + 2] = 0x97;
	quantize(SL_DT_MXFP4, mx, out, 1, 64);
	check_bytes(out, mxfp4, 34, "mxfp4");

	/* NF4, one block: values 0..31 are the table in order, 32..63 the
	 * table backwards, so the absmax is 1 (f32 0x3f800000) and the codes
	 * are j % 16 and 15 - j % 16, except value 33, halfway between the
	 * table's 0 and 0.0796, which ties to the lower: code 7. Byte j =
	 * code(j) | code(j + 32) << 4. */
	float nf[64];
	uint8_t want[4 + 32] = {0x00, 0x00, 0x80, 0x3f}, big[2 * (8 + 33)];
	for (int j = 0; j < 32; j++) {
		nf[j] = sl_nf4_to_f32((uint8_t)(j % 16));
		nf[j + 32] = sl_nf4_to_f32((uint8_t)(15 - j % 16));
		want[4 + j] = (uint8_t)(j % 16 | (15 - j % 16) << 4);
	}
	nf[33] = sl_nf4_to_f32(8) / 2;
	want[4 + 1] = 0x71;
	quantize(SL_DT_NF4, nf, out, 1, 64);
	check_bytes(out, want, 36, "nf4");

	/* nf4-dq, two rows of one block, absmax 1 and 3: the mean c = 2 (f32
	 * 0x40000000), the group's scale s = max |a - c| = 1; (1 - 2)/1 = -1
	 * maps to the dynamic map's lowest value -0.99297 (code 0), (3 - 2)/1
	 * to its 1 (code 255). The codes are nf4's: the block's own absmax
	 * chose them. */
	float two[128];
	for (int i = 0; i < 64; i++) {
		two[i] = nf[i];
		two[64 + i] = 3.0f * nf[i];
	}
	quantize(SL_DT_NF4_DQ, two, big, 2, 64);
	for (int ri = 0; ri < 2; ri++) {
		uint8_t row[8 + 33] = {0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0x80, 0x3f, ri ? 0xff : 0x00};
		memcpy(row + 9, want + 4, 32);
		check_bytes(big + ri * 41, row, 41, ri ? "nf4-dq row 1" : "nf4-dq row 0");
	}
	float back[128];
	sl_dtype_rows_to_float(SL_DT_NF4_DQ, big, back, 2, 64);
	float d0 = (float)-0.99296875 * 1.0f + 2.0f;
	CHECK(back[0] == -d0 && back[15] == d0 && back[64] == -3.0f && back[64 + 15] == 3.0f,
	      "nf4-dq scales: %.9g %.9g, want %.9g and 3", back[15], back[64 + 15], d0);
}

/* ---- round trips and dot products ------------------------------------------------ */

/* Every slimlab type, with the RMS error allowed for the test signal
 * (relative to its RMS). A uniform step q costs about q/sqrt(12): for
 * int8 that is 2*2.1/254/sqrt(12)/1.45 = 0.0033 of the signal's RMS, and
 * each bit less doubles it; FP8's relative step is 2^-3 (E4M3) or 2^-2
 * (E5M2). The bounds leave about 15% over what these definitions give. */
typedef struct {
	int type;
	double max_rel_rmse;
} type_case;

static int make_cases(type_case *c)
{
	int n = 0;
	c[n++] = (type_case){SL_DT_I8_CH, 0.004};
	c[n++] = (type_case){SL_DT_FP8_E4M3, 0.029};
	c[n++] = (type_case){SL_DT_FP8_E4M3_CH, 0.029};
	c[n++] = (type_case){SL_DT_FP8_E5M2, 0.053};
	c[n++] = (type_case){SL_DT_FP8_E5M2_CH, 0.053};
	c[n++] = (type_case){SL_DT_NVFP4, 0.125};
	c[n++] = (type_case){SL_DT_MXFP4, 0.098};
	/* NF4's values crowd near zero, for normal weights; a cosine's lie
	 * mostly near its extremes, which NF4 spaces widest: 0.097. */
	c[n++] = (type_case){SL_DT_NF4, 0.111};
	c[n++] = (type_case){SL_DT_NF4_DQ, 0.111};
	static const int bits[4] = {8, 4, 3, 2};
	static const double err[4] = {0.004, 0.06, 0.135, 0.335};
	for (int b = 0; b < 4; b++)
		for (int g = 32; g <= 128; g *= 2)
			for (int a = 0; a < 2; a++)
				c[n++] = (type_case){sl_dtype_int_group(bits[b], g, a), err[b]};
	return n;
}

/* ggml's test signal: 0.1 + 2 cos(i + offset), plus a few outliers. */
static void signal(float *x, int64_t n, float offset)
{
	for (int64_t i = 0; i < n; i++)
		x[i] = 0.1f + 2.0f * cosf((float)i + offset);
	x[n / 3] *= 4.0f;
}

static double dot_ref(const float *a, const float *b, int64_t n)
{
	double s = 0;
	for (int64_t i = 0; i < n; i++)
		s += (double)a[i] * b[i];
	return s;
}

static void test_round_trips_and_dots(bool portable)
{
	enum { ROWS = 4, N = 1024 };
	type_case cases[40];
	int nc = make_cases(cases);
	static float w[ROWS * N], x[N], y[ROWS * N], xd[N];
	static uint8_t q[ROWS * N * 2], xq[N * 2];
	signal(w, ROWS * N, 0.0f);
	signal(x, N, 1.0f);
	const int act = sl_dtype_int_group(8, 32, 0);
	const sl_type_info *at = sl_type_info_get(act);
	at->from_float(x, xq, N);
	at->to_float(xq, xd, N);
	for (int c = 0; c < nc; c++) {
		const sl_type_info *ti = sl_type_info_get(cases[c].type);
		REQUIRE(ti && ti->to_float && ti->from_float && ti->dot_f32, "type %d is not registered", cases[c].type);
		size_t rb = sl_dtype_row_bytes(cases[c].type, N);
		REQUIRE(rb > 0 && rb * ROWS <= sizeof q, "%s: row bytes %zu", ti->name, rb);
		sl_dtype_rows_from_float(cases[c].type, w, q, ROWS, N);
		sl_dtype_rows_to_float(cases[c].type, q, y, ROWS, N);
		double se = 0, ss = 0;
		for (int i = 0; i < ROWS * N; i++) {
			se += (double)(y[i] - w[i]) * (y[i] - w[i]);
			ss += (double)w[i] * w[i];
		}
		double rel = sqrt(se / ss);
		CHECK(rel <= cases[c].max_rel_rmse, "%s: relative RMS error %.4f > %.4f", ti->name, rel,
		      cases[c].max_rel_rmse);
		for (int r = 0; r < ROWS; r++) {
			const uint8_t *row = q + (size_t)r * rb;
			double ref = dot_ref(y + (size_t)r * N, x, N);
			double mag = dot_ref(y + (size_t)r * N, y + (size_t)r * N, N);
			double tol = 1e-5 * sqrt(mag * dot_ref(x, x, N)) + 1e-4;
			float d = ti->dot_f32(row, x, N);
			CHECK(fabs(d - ref) <= tol, "%s%s row %d: dot_f32 %.6f vs dequantized %.6f", ti->name,
			      portable ? " (portable)" : "", r, d, ref);
			if (!ti->vec_dot)
				continue;
			/* int8-g32 activations, or Q8_0's, which are the same bytes */
			CHECK(ti->vec_dot_type == act || sl_type_info_get(act)->same_bytes_as == ti->vec_dot_type,
			      "%s: activations are int8-g32", ti->name);
			float s;
			ti->vec_dot(N, &s, row, xq);
			/* Against the quantized activations: only float rounding differs. */
			double refq = dot_ref(y + (size_t)r * N, xd, N);
			CHECK(fabs(s - refq) <= tol, "%s%s row %d: vec_dot %.6f vs dequantized %.6f", ti->name,
			      portable ? " (portable)" : "", r, s, refq);
			/* Against F32 activations: int8 activations cost about 1%. */
			CHECK(fabs(s - ref) <= 0.02 * sqrt(mag * dot_ref(x, x, N)), "%s row %d: vec_dot %.6f vs F32 %.6f",
			      ti->name, r, s, ref);
		}
	}
}

/* What the AVX2 kernel computes for a row of type (as vec_dot or dot_f32
 * would return it). */
static float avx2_dot(int type, const uint8_t *row, const void *xq, const float *x, int64_t n)
{
	const sl_act_block *a = xq;
	float scale;
	memcpy(&scale, row, 4);
	switch (type) {
	case SL_DT_I8_CH: return scale * sl_dot_i8ch_avx2((const int8_t *)(row + 4), a, n);
	case SL_DT_FP8_E4M3: case SL_DT_FP8_E4M3_CH: return scale * sl_dot_e4m3_f32_avx2(row + 4, x, n);
	case SL_DT_FP8_E5M2: case SL_DT_FP8_E5M2_CH: return scale * sl_dot_e5m2_f32_avx2(row + 4, x, n);
	case SL_DT_NVFP4: return sl_dot_nvfp4_avx2(row, a, n);
	case SL_DT_MXFP4: return sl_dot_mxfp4_avx2(row, a, n);
	}
	const char *name = sl_dtype_name(type);
	int bits = name[3] - '0', group = atoi(name + 6);
	bool asym = strstr(name, "-asym") != NULL;
	if (bits == 8)
		return sl_dot_int8g_avx2(row, a, n, group, asym);
	if (bits == 4)
		return sl_dot_int4g_avx2(row, a, n, group, asym);
	return sl_dot_intk_avx2(row, a, n, bits, group, asym);
}

/* The AVX2 kernels give what the portable ones give (up to float order). */
static void test_avx2_matches_portable(void)
{
	__builtin_cpu_init();
	if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma") || !__builtin_cpu_supports("f16c")) {
		printf("note: this CPU lacks AVX2/FMA/F16C; only the portable kernels were tested\n");
		return;
	}
	enum { N = 512 };
	static float w[N], x[N];
	static uint8_t q[N * 2], xq[N * 2];
	signal(w, N, 0.3f);
	signal(x, N, 2.0f);
	sl_type_info_get(sl_dtype_int_group(8, 32, 0))->from_float(x, xq, N);
	type_case cases[40];
	int nc = make_cases(cases), tested = 0;
	for (int c = 0; c < nc; c++) {
		const sl_type_info *ti = sl_type_info_get(cases[c].type);
		ti->from_float(w, q, N);
		float want; /* portable: SL_NO_AVX2 is set */
		bool fp8 = cases[c].type >= SL_DT_FP8_E4M3 && cases[c].type <= SL_DT_FP8_E5M2_CH;
		if (!fp8 && !ti->vec_dot)
			continue; /* NF4: F32 dot products only, no AVX2 kernel */
		if (fp8)
			want = ti->dot_f32(q, x, N);
		else
			ti->vec_dot(N, &want, q, xq);
		float got = avx2_dot(cases[c].type, q, xq, x, N);
		CHECK(fabsf(got - want) <= 1e-4f * (fabsf(want) + 1.0f), "%s: AVX2 %.6f vs portable %.6f", ti->name, got,
		      want);
		tested++;
	}
	CHECK(tested == 31, "%d AVX2 kernels", tested);
	/* NF4 decodes through its table to the same bits with AVX2. */
	float table[16], port[N], fast[N];
	for (int c = 0; c < 16; c++)
		table[c] = sl_nf4_to_f32((uint8_t)c);
	const sl_type_info *nf = sl_type_info_get(SL_DT_NF4);
	nf->from_float(w, q, N);
	nf->to_float(q, port, N); /* portable: SL_NO_AVX2 is set */
	for (int b = 0; b < N / 64; b++) {
		float scale;
		memcpy(&scale, q + b * 36, 4);
		sl_lut16_decode_avx2(q + b * 36 + 4, 64, table, scale, fast + b * 64);
	}
	CHECK(!memcmp(port, fast, sizeof port), "nf4: AVX2 decoding differs from the portable loop");
	/* F16 and BF16 against F32, on a length with a tail. */
	uint16_t h[N], b[N];
	double want_h = 0, want_b = 0;
	for (int i = 0; i < N - 3; i++) {
		h[i] = sl_f32_to_f16(w[i]);
		b[i] = sl_f32_to_bf16(w[i]);
		want_h += (double)sl_f16_to_f32(h[i]) * x[i];
		want_b += (double)sl_bf16_to_f32(b[i]) * x[i];
	}
	float got_h = sl_dot_f16_f32_avx2(h, x, N - 16), got_b = sl_dot_bf16_f32_avx2(b, x, N - 16);
	for (int i = N - 16; i < N - 3; i++) {
		got_h += sl_f16_to_f32(h[i]) * x[i];
		got_b += sl_bf16_to_f32(b[i]) * x[i];
	}
	CHECK(fabs(got_h - want_h) <= 1e-4 * (fabs(want_h) + 1), "f16: AVX2 %.6f vs %.6f", got_h, want_h);
	CHECK(fabs(got_b - want_b) <= 1e-4 * (fabs(want_b) + 1), "bf16: AVX2 %.6f vs %.6f", got_b, want_b);
}

/* Per-tensor scales: every row carries the tensor's scale, and one row
 * quantized alone is a tensor of one row. */
static void test_tensor_scales(void)
{
	float w[2 * 32];
	uint8_t q[2 * (4 + 32 + 32)];
	for (int i = 0; i < 64; i++)
		w[i] = i < 32 ? 0.01f * (float)i : -3.0f * (float)(i - 32);
	int types[3] = {SL_DT_FP8_E4M3, SL_DT_FP8_E5M2, SL_DT_NVFP4};
	float maxes[3] = {448.0f, 57344.0f, 448.0f * 6.0f};
	for (int t = 0; t < 3; t++) {
		size_t rb = sl_dtype_row_bytes(types[t], 32);
		sl_dtype_rows_from_float(types[t], w, q, 2, 32);
		float s0, s1;
		memcpy(&s0, q, 4);
		memcpy(&s1, q + rb, 4);
		CHECK(s0 == s1 && s0 == 93.0f / maxes[t], "%s: row scales %g %g, want amax/%g", sl_dtype_name(types[t]),
		      s0, s1, maxes[t]);
	}
	sl_dtype_rows_from_float(SL_DT_FP8_E4M3_CH, w, q, 2, 32);
	float s0;
	memcpy(&s0, q, 4);
	CHECK(s0 == w[31] / 448.0f, "fp8-e4m3-ch: first row's own scale %g", s0);
	/* All zeros stay zeros, with no NaN from a zero scale. */
	float z[32] = {0}, back[32];
	int all[] = {SL_DT_I8_CH, SL_DT_FP8_E4M3, SL_DT_FP8_E5M2_CH, SL_DT_NVFP4, SL_DT_MXFP4,
	             sl_dtype_int_group(4, 32, 1), sl_dtype_int_group(3, 32, 0)};
	for (size_t t = 0; t < sizeof all / sizeof all[0]; t++) {
		sl_dtype_rows_from_float(all[t], z, q, 1, 32);
		sl_dtype_rows_to_float(all[t], q, back, 1, 32);
		bool ok = true;
		for (int i = 0; i < 32; i++)
			ok = ok && back[i] == 0.0f;
		CHECK(ok, "%s: zeros do not come back as zeros", sl_dtype_name(all[t]));
	}
}

/* Exports keep ggml block types: every group-wise int type with a twin
 * gives the same values from the twin's bytes, read both as slimlab's
 * int4-g32 / int4-g32-asym / int8-g32 (the same layouts) and, once ggml's
 * types are registered, as Q4_0 / Q4_1 / Q8_0 themselves. */
static void test_ggml_twins(void)
{
	enum { N = 256 };
	float w[N], a[N], b[N];
	uint8_t q[N * 2], t[N * 2];
	signal(w, N, 0.7f);
	int twins = 0;
	for (int type = SL_DT_INT_BASE; type < SL_DT_INT_END; type++) {
		int twin = sl_dtype_ggml_twin(type);
		const sl_type_info *ti = sl_type_info_get(type);
		bool asym = strstr(ti->name, "-asym") != NULL;
		if (twin < 0) {
			CHECK(!strncmp(ti->name, "int8-", 5) && asym, "%s should have a ggml twin", ti->name);
			continue;
		}
		twins++;
		CHECK(twin == (ti->name[3] == '8' ? SL_DT_Q8_0 : asym ? SL_DT_Q4_1 : SL_DT_Q4_0), "%s: twin %d", ti->name,
		      twin);
		ti->from_float(w, q, N);
		ti->to_float(q, a, N);
		sl_dtype_to_ggml_twin(type, q, t, N);
		int same = twin == SL_DT_Q8_0 ? sl_dtype_int_group(8, 32, 0) : sl_dtype_int_group(4, 32, twin == SL_DT_Q4_1);
		sl_type_info_get(same)->to_float(t, b, N);
		CHECK(!memcmp(a, b, sizeof a), "%s: values change in its twin", ti->name);
		const sl_type_info *gi = sl_type_info_get(twin);
		if (gi && gi->to_float) {
			gi->to_float(t, b, N);
			CHECK(!memcmp(a, b, sizeof a), "%s: values change when ggml reads its twin", ti->name);
		}
	}
	CHECK(twins == 21, "%d types have twins", twins);
	/* Where the layouts are the same, so are the reference quantizers. */
	static const int same[3][2] = {{4, SL_DT_Q4_0}, {8, SL_DT_Q8_0}, {-4, SL_DT_Q4_1}};
	for (int i = 0; i < 3; i++) {
		const sl_type_info *gi = sl_type_info_get(same[i][1]);
		if (!gi || !gi->from_float)
			continue;
		int type = sl_dtype_int_group(abs(same[i][0]), 32, same[i][0] < 0);
		sl_type_info_get(type)->from_float(w, q, N);
		gi->from_float(w, t, N);
		CHECK(!memcmp(q, t, sl_dtype_row_bytes(type, N)), "%s and %s quantize differently",
		      sl_dtype_name(type), gi->name);
	}
	CHECK(sl_dtype_ggml_twin(SL_DT_I8_CH) == -1 && sl_dtype_ggml_twin(SL_DT_NVFP4) == -1, "no twins for these");
}

static void test_table(void)
{
	CHECK(sl_dtype_row_bytes(SL_DT_I8_CH, 288) == 4 + 288, "int8 row bytes");
	CHECK(sl_dtype_row_bytes(SL_DT_NVFP4, 64) == 4 + 4 * 9, "nvfp4 row bytes");
	CHECK(sl_dtype_row_bytes(SL_DT_MXFP4, 64) == 2 * 17, "mxfp4 row bytes");
	CHECK(sl_dtype_row_bytes(SL_DT_NF4, 128) == 2 * 36, "nf4 row bytes");
	CHECK(sl_dtype_row_bytes(SL_DT_NF4_DQ, 128) == 8 + 2 * 33, "nf4-dq row bytes");
	CHECK(sl_dtype_row_bytes(SL_DT_NF4_DQ, 96) == 0, "nf4-dq: 96 is not a multiple of 64");
	CHECK(sl_dtype_row_bytes(sl_dtype_int_group(4, 32, 0), 64) == 2 * 18, "int4-g32 is Q4_0-sized");
	CHECK(sl_dtype_row_bytes(sl_dtype_int_group(3, 128, 1), 256) == 2 * (4 + 48), "int3-g128-asym");
	CHECK(sl_dtype_row_bytes(sl_dtype_int_group(2, 64, 0), 96) == 0, "96 is not a multiple of 64");
	CHECK(!strcmp(sl_dtype_name(sl_dtype_int_group(2, 128, 1)), "int2-g128-asym"), "names");
	CHECK(!strcmp(sl_dtype_name(SL_DT_FP8_E5M2_CH), "fp8-e5m2-ch"), "names");
}

int main(void)
{
	/* The registered kernels run portable; the AVX2 ones are called directly. */
	setenv("SL_NO_AVX2", "1", 1);
	test_table();
	test_fp8_tables();
	test_minifloat_rounding();
	test_nf4_codes();
	test_hand_blocks();
	test_tensor_scales();
	test_ggml_twins();
	test_round_trips_and_dots(true);
	test_avx2_matches_portable();
	return test_finish();
}
