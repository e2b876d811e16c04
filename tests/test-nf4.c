/* NF4 against an independent implementation: tests/gen-nf4.py quantized a
 * normal and a heavy-tailed weight matrix by QLoRA's definitions into
 * tests/data/nf4-ref.bin. slimlab's nf4 quantizer must write the
 * reference's absmaxes and codes byte for byte and decode them to the
 * reference's values; nf4-dq its mean, run scales and 8-bit codes, with
 * the reference's dynamic map, and decode within 1e-6 of a block's scale
 * (both sides do the same f32 arithmetic, so that is exact in practice;
 * the mean is summed in double by both); and healing's fake quantization,
 * on scales fixed at the matrix, must round moved weights to the
 * reference's codes and stop the gradient where the reference does. Then
 * healing end to end, through the trainer. */
#include "core/formats.h"
#include "core/optim.h"
#include "test.h"

#define FQ_ROWS 8

typedef struct {
	char name[64];
	uint32_t kind; /* 0 f32, 1 f16, 2 u8 */
	uint64_t n;
	void *data;
} rec;

typedef struct {
	rec r[64];
	int n;
} recs;

static bool read_rec(FILE *f, rec *r)
{
	uint32_t len;
	if (fread(&len, 4, 1, f) != 1 || len >= sizeof r->name || fread(r->name, 1, len, f) != len)
		return false;
	r->name[len] = 0;
	if (fread(&r->kind, 4, 1, f) != 1 || fread(&r->n, 8, 1, f) != 1 || r->kind > 2 || r->n > (1u << 24))
		return false;
	size_t size = r->kind == 0 ? 4 : r->kind == 1 ? 2 : 1;
	r->data = malloc(r->n * size + 1);
	return r->data && fread(r->data, size, r->n, f) == r->n;
}

static const rec *get(const recs *rs, const char *matrix, const char *what, uint32_t kind)
{
	char key[64];
	snprintf(key, sizeof key, "%s%s%s", matrix, *matrix ? "." : "", what);
	for (int i = 0; i < rs->n; i++)
		if (!strcmp(rs->r[i].name, key) && rs->r[i].kind == kind)
			return &rs->r[i];
	CHECK(0, "no record %s in tests/data/nf4-ref.bin", key);
	return NULL;
}

static int code_at(const uint8_t *packed, size_t i)
{
	return packed[i / 2] >> (i % 2 * 4) & 0xf;
}

/* The reference's codes and scales in slimlab's byte layout: nf4 blocks
 * are the f32 absmax and 32 bytes holding values j (low nibble) and j + 32;
 * nf4-dq rows begin with the mean and their run's scale, and each block
 * with its 8-bit code. */
static void expected_bytes(int type, const uint8_t *codes, const float *absmax, float mean, const float *run_scale,
                           const uint8_t *dq_code, int rows, int cols, uint8_t *out)
{
	int nb = cols / 64;
	for (int r = 0; r < rows; r++) {
		if (type == SL_DT_NF4_DQ) {
			memcpy(out, &mean, 4);
			memcpy(out + 4, &run_scale[r * nb / 256], 4);
			out += 8;
		}
		for (int b = 0; b < nb; b++) {
			size_t k = (size_t)r * nb + b, base = k * 64;
			if (type == SL_DT_NF4) {
				memcpy(out, &absmax[k], 4);
				out += 4;
			} else {
				*out++ = dq_code[k];
			}
			for (int j = 0; j < 32; j++)
				*out++ = (uint8_t)(code_at(codes, base + j) | code_at(codes, base + j + 32) << 4);
		}
	}
}

static void test_matrix(const recs *rs, const char *m, const float *table)
{
	const rec *shape = get(rs, m, "shape", 0), *w16 = get(rs, m, "w", 1), *codes = get(rs, m, "codes", 2);
	const rec *am = get(rs, m, "absmax", 0);
	const rec *mean = get(rs, m, "dq.mean", 0), *scale = get(rs, m, "dq.scale", 0);
	const rec *dqc = get(rs, m, "dq.code", 2), *dqa = get(rs, m, "dq.absmax", 0);
	REQUIRE(shape && shape->n == 2 && w16 && codes && am && mean && scale && dqc && dqa, "%s: records", m);
	int nblocks = (int)am->n, rows = (int)((float *)shape->data)[0], cols = (int)((float *)shape->data)[1];
	REQUIRE(w16->n == (size_t)rows * cols && codes->n * 2 == w16->n && (size_t)nblocks * 64 == w16->n, "%s: sizes",
	        m);
	size_t n = w16->n;
	float *W = malloc(n * sizeof *W), *got = malloc(n * sizeof *got), *moved = malloc(n * sizeof *moved);
	unsigned char *inside = malloc(n);
	const uint16_t *h = w16->data;
	for (size_t i = 0; i < n; i++)
		W[i] = sl_f16_to_f32(h[i]);
	/* Where the weights move to in training (the reference's formula). */
	for (size_t i = 0; i < n; i++)
		moved[i] = W[i] + (float)((int64_t)(i * 7919 % 201) - 100) * 2e-4f;

	static const int types[2] = {SL_DT_NF4, SL_DT_NF4_DQ};
	for (int t = 0; t < 2; t++) {
		int type = types[t];
		const char *fmt = sl_dtype_name(type);
		bool dq = type == SL_DT_NF4_DQ;
		size_t bytes = (size_t)rows * sl_dtype_row_bytes(type, cols);
		uint8_t *q = malloc(bytes), *want = malloc(bytes);
		sl_dtype_rows_from_float(type, W, q, rows, cols);
		expected_bytes(type, codes->data, am->data, *(float *)mean->data, scale->data, dqc->data, rows, cols,
		               want);
		size_t bad = 0, first = bytes;
		for (size_t i = 0; i < bytes; i++)
			if (q[i] != want[i]) {
				bad++;
				first = first < bytes ? first : i;
			}
		CHECK(bad == 0, "%s %s: %zu of %zu bytes differ from the reference, the first at %zu (%#04x, want %#04x)",
		      m, fmt, bad, bytes, first, first < bytes ? q[first] : 0, first < bytes ? want[first] : 0);

		/* Values: the reference's table at its codes times its scales. */
		sl_dtype_rows_to_float(type, q, got, rows, cols);
		const float *d = dq ? dqa->data : am->data;
		double worst = 0;
		size_t off = 0;
		for (size_t i = 0; i < n; i++) {
			float v = table[code_at(codes->data, i)] * d[i / 64];
			double e = fabs((double)got[i] - v) / fmax(fabs((double)d[i / 64]), 1e-30);
			worst = fmax(worst, e);
			off += got[i] != v;
		}
		if (dq)
			CHECK(worst <= 1e-6, "%s %s: values differ by %.3g of their block's scale", m, fmt, worst);
		else
			CHECK(off == 0, "%s %s: %zu of %zu values differ from the reference's", m, fmt, off, n);

		/* Healing: scales fixed at W, the moved weights rounded on them. */
		const char *why = NULL;
		sl_qgrid *g = sl_qgrid_new(type, rows, cols, &why);
		if (!g) {
			CHECK(0, "%s: no grid: %s", fmt, why);
		} else {
			char key[48];
			snprintf(key, sizeof key, "fq.%s.codes", fmt);
			const rec *fc = get(rs, m, key, 2);
			snprintf(key, sizeof key, "fq.%s.inside", fmt);
			const rec *fi = get(rs, m, key, 2);
			sl_qgrid_fit_all(g, W);
			sl_qgrid_apply(g, moved, got, inside);
			size_t nf = (size_t)FQ_ROWS * cols, vals = 0, ins = 0;
			double fworst = 0;
			for (size_t i = 0; fc && fi && i < nf && fc->n * 2 == nf && fi->n * 8 == nf; i++) {
				float v = table[code_at(fc->data, i)] * d[i / 64];
				bool in = ((const uint8_t *)fi->data)[i / 8] >> (i % 8) & 1;
				vals += got[i] != v;
				fworst = fmax(fworst, fabs((double)got[i] - v) / fmax(fabs((double)d[i / 64]), 1e-30));
				ins += inside[i] != in;
			}
			CHECK(dq ? fworst <= 1e-6 : vals == 0, "%s %s: fake quantization gives %zu values off the reference's "
			      "(%.3g of the scale at most)", m, fmt, vals, fworst);
			CHECK(ins == 0, "%s %s: the gradient passes differently at %zu of %zu weights", m, fmt, ins, nf);
			printf("%-7s %-7s %zu bytes as the reference's (%zu differ), values within %.2g of the scale, "
			       "fake quantization of %zu moved weights: %zu values and %zu gradient gates differ\n",
			       m, fmt, bytes, bad, worst, nf, vals, ins);
			sl_qgrid_free(g);
		}
		free(q);
		free(want);
	}
	free(W);
	free(got);
	free(moved);
	free(inside);
}

/* slimlab's dynamic map is the reference's: a row of 256 blocks under
 * mean 0 and scale 1, block k with map code k and every NF4 code 15 (the
 * value 1), decodes to the map's values. */
static void test_map(const float *map)
{
	enum { K = 256 };
	static uint8_t row[8 + K * 33];
	static float out[K * 64];
	float one = 1.0f;
	memset(row, 0xff, sizeof row);
	memset(row, 0, 4);
	memcpy(row + 4, &one, 4);
	for (int k = 0; k < K; k++)
		row[8 + k * 33] = (uint8_t)k;
	sl_dtype_rows_to_float(SL_DT_NF4_DQ, row, out, 1, K * 64);
	int bad = 0;
	for (int k = 0; k < K; k++)
		bad += out[k * 64] != map[k] || out[k * 64 + 63] != map[k];
	CHECK(bad == 0, "%d of the dynamic map's 256 values are not the reference's", bad);
}

static void heal_spec(void *ctx, const sl_tensor *t, sl_heal_spec *s)
{
	if (t->n_dims == 2 && !strncmp(t->name, "blk.", 4))
		s->format = ctx;
}

/* Healing through NF4 end to end: a small random Llama whose block
 * matrices train through the format's fake quantization learns a pattern
 * (the loss falls over twenty AdamW steps), and what sl_trainer_finish
 * leaves lies on the grid fixed where training started, every weight one
 * of the sixteen values times its block's scale then; nf4 packs it
 * without changing a value. */
static void test_heal(const char *fmt, const float *table)
{
	sl_config c = {.arch = SL_ARCH_LLAMA, .dim = 64, .hidden_dim = 128, .n_layers = 2, .n_heads = 4,
	               .n_kv_heads = 2, .vocab_size = 32, .max_seq_len = 16};
	const sl_format *f = sl_format_find(fmt);
	sl_model *m = NULL;
	sl_trainer *tr = NULL;
	sl_adamw opt = {0};
	sl_error err = {0};
	float *start[16] = {0};
	int n_start = 0;
	REQUIRE(sl_model_init_random(&c, false, 0.05f, 11, &m, &err) == SL_OK, "model: %s", err.msg);
	/* Each block matrix's scales where training starts: its round trip's
	 * largest magnitude per block of 64. */
	for (int i = 0; i < m->n_tensors && n_start < 16; i++) {
		const sl_tensor *t = m->tensors[i];
		if (t->n_dims != 2 || strncmp(t->name, "blk.", 4))
			continue;
		int rows = (int)t->ne[1], cols = (int)t->ne[0];
		float *rt = malloc((size_t)rows * cols * sizeof *rt);
		sl_roundtrip(f->dtype, t->data, rt, rows, cols, NULL);
		start[n_start] = malloc((size_t)rows * cols / 64 * sizeof(float));
		for (int b = 0; b < rows * cols / 64; b++) {
			float d = 0;
			for (int j = 0; j < 64; j++)
				d = fmaxf(d, fabsf(rt[b * 64 + j]));
			start[n_start][b] = d;
		}
		n_start++;
		free(rt);
	}
	sl_trainer_opts o = {.spec = heal_spec, .ctx = (void *)f, .seed = 1};
	if (sl_trainer_new(m, sl_train_kernels_cpu(), 2, 16, &o, &tr, &err) ||
	    sl_adamw_init(&opt, sl_trainer_n_weights(tr), &err)) {
		CHECK(0, "%s: trainer: %s", fmt, err.msg);
		goto done;
	}
	int32_t in[32], tg[32];
	for (int i = 0; i < 32; i++) {
		in[i] = (int32_t)(i * 7 % 32);
		tg[i] = (int32_t)((i + 1) * 7 % 32);
	}
	sl_adamw_opts ao = {.lr = 3e-3f, .min_lr = 3e-3f, .total = 20, .beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f};
	sl_loss loss = {SL_LOSS_CE, 1, 1};
	double first = 0, last = 0;
	for (int s = 0; s < 20; s++) {
		sl_step_info info;
		if (sl_train_step(tr, &opt, &ao, in, tg, 1, 2, &loss, NULL, &info, &err)) {
			CHECK(0, "%s: step %d: %s", fmt, s, err.msg);
			goto done;
		}
		first = s ? first : info.loss;
		last = info.loss;
	}
	CHECK(last < 0.8 * first, "%s: healing learns (loss %.4f to %.4f)", fmt, first, last);
	REQUIRE(sl_trainer_finish(tr, &err) == SL_OK, "%s: finish: %s", fmt, err.msg);
	size_t off = 0, moved = 0, n = 0;
	for (int i = 0, k = 0; i < m->n_tensors && k < n_start; i++) {
		const sl_tensor *t = m->tensors[i];
		if (t->n_dims != 2 || strncmp(t->name, "blk.", 4))
			continue;
		const float *w = t->data;
		int rows = (int)t->ne[1], cols = (int)t->ne[0];
		for (int j = 0; j < rows * cols; j++) {
			bool on = false;
			for (int q = 0; q < 16 && !on; q++)
				on = w[j] == table[q] * start[k][j / 64];
			off += !on;
		}
		float *rt = malloc((size_t)rows * cols * sizeof *rt);
		sl_roundtrip(f->dtype, w, rt, rows, cols, NULL);
		for (int j = 0; j < rows * cols; j++)
			moved += rt[j] != w[j];
		n += (size_t)rows * cols;
		free(rt);
		k++;
	}
	CHECK(n > 0 && off == 0, "%s: %zu of %zu healed weights lie off the starting grid", fmt, off, n);
	if (f->dtype == SL_DT_NF4)
		CHECK(moved == 0, "%s: packing the healed weights moves %zu values", fmt, moved);
	printf("healing through %-6s loss %.4f to %.4f in 20 steps; %zu weights on the starting grid, %zu off; "
	       "packed again, %zu move\n", fmt, first, last, n - off, off, moved);
done:
	for (int i = 0; i < n_start; i++)
		free(start[i]);
	sl_adamw_free(&opt);
	sl_trainer_free(tr);
	sl_model_free(m);
}

int main(void)
{
	FILE *f = fopen(test_srcpath("tests/data/nf4-ref.bin"), "rb");
	if (!f) {
		printf("tests/data/nf4-ref.bin is missing (tests/gen-nf4.py writes it)\n");
		return 1;
	}
	static recs rs;
	while (rs.n < 64 && read_rec(f, &rs.r[rs.n]))
		rs.n++;
	CHECK(feof(f) || fgetc(f) == EOF, "tests/data/nf4-ref.bin reads to its end");
	fclose(f);
	const rec *table = get(&rs, "", "nf4.table", 0), *map = get(&rs, "", "dyn.map", 0);
	if (table && table->n == 16) {
		int bad = 0;
		for (int c = 0; c < 16; c++)
			bad += sl_nf4_to_f32((uint8_t)c) != ((const float *)table->data)[c];
		CHECK(bad == 0, "%d of NF4's values are not the reference's", bad);
		if (map && map->n == 256)
			test_map(map->data);
		test_matrix(&rs, "normal", table->data);
		test_matrix(&rs, "heavy", table->data);
		test_heal("nf4", table->data);
		test_heal("nf4-dq", table->data);
	}
	for (int i = 0; i < rs.n; i++)
		free(rs.r[i].data);
	return test_finish();
}
