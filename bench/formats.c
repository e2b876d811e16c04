/* bench/formats: what each storage format does to a model, all in one run
 * against F32: bytes of its weights, resident memory it takes, decoding
 * tokens/s, and the time its reference quantizer (RTN) takes. The model
 * has random weights and a Llama shape (default 1024 wide, 8 blocks, a
 * 32000-token vocabulary); every linear module, embedding and output
 * included, is stored in the format (falling back where rows do not fit).
 * Decoding is the best of three runs of 32 tokens after a 16-token prompt,
 * taken in turn with the same runs of the F32 model.
 * Usage: bench/formats [DIM LAYERS HIDDEN VOCAB] [--formats a,b,c] */
#include <malloc.h>
#include <stdio.h>
#include <unistd.h>

#include "bench.h"
#include "core/formats.h"
#include "core/forward.h"
#include "core/model.h"
#include "core/speed.h"

static const char *default_formats =
	"f32,f16,bf16,q8_0,q6_k,q5_k,q5_0,q4_k,q4_0,q3_k,q2_k,int8,int8-g32,int4-g32,int4-g128,int4-g128-asym,"
	"int3-g128,int2-g64,fp8-e4m3,fp8-e4m3-ch,fp8-e5m2,nvfp4,mxfp4,nf4,nf4-dq";

/* Resident set size in bytes. */
static double resident_bytes(void)
{
	size_t rss, hwm;
	sl_resident_memory(&rss, &hwm);
	return (double)rss;
}

/* The base model with every module stored in format f; *quant_s gets the
 * seconds the quantizer took (one thread, as the reference runs). */
static sl_model *convert(const sl_model *base, const sl_format *f, double *quant_s, int *fallbacks)
{
	sl_model *m;
	sl_error err;
	*quant_s = 0;
	*fallbacks = 0;
	if (sl_model_clone(base, &m, &err)) {
		fprintf(stderr, "clone: %s\n", err.msg);
		return NULL;
	}
	int n = sl_model_modules(m, NULL, 0);
	sl_module *mods = calloc((size_t)n, sizeof *mods);
	sl_model_modules(m, mods, n);
	for (int i = 0; i < n; i++) {
		sl_tensor *t = mods[i].w;
		const sl_format *use = sl_format_fallback(f, t->ne[0]);
		*fallbacks += use != f;
		if (use->dtype == SL_DT_F32)
			continue;
		size_t nb = sl_tensor_bytes_for(use->dtype, t->ne, t->n_dims);
		void *d = malloc(nb);
		double t0 = bench_now();
		sl_dtype_rows_from_float(use->dtype, t->data, d, sl_tensor_nrows(t), t->ne[0]);
		*quant_s += bench_now() - t0;
		sl_tensor_release(t);
		t->data = d;
		t->nbytes = nb;
		t->owned = true;
		t->type = use->dtype;
	}
	free(mods);
	return m;
}

/* Seconds to decode n_dec tokens after an n_prompt-token prompt. */
static double decode_seconds(sl_state *s, const int32_t *toks, float *logits, int n_prompt, int n_dec)
{
	sl_error err;
	sl_state_reset(s);
	sl_forward(s, toks, n_prompt, NULL, 0, &err);
	double t0 = bench_now();
	for (int i = 0; i < n_dec; i++)
		sl_forward(s, &toks[n_prompt + i], 1, logits, 0, &err);
	return bench_now() - t0;
}

/* Decoding tokens/s of m and of the F32 base, runs taken in turn so that
 * other work on the machine weighs on both alike; best of three each. */
static void decode_tps(const sl_model *m, const sl_model *base, double *tps, double *base_tps)
{
	enum { PROMPT = 16, DEC = 32 };
	sl_state *s, *sb;
	sl_error err;
	if (sl_state_new(m, PROMPT + DEC, &s, &err) || sl_state_new(base, PROMPT + DEC, &sb, &err)) {
		fprintf(stderr, "state: %s\n", err.msg);
		exit(1);
	}
	int V = m->cfg.vocab_size;
	float *logits = malloc(sizeof(float) * (size_t)V);
	int32_t toks[PROMPT + DEC];
	for (int i = 0; i < PROMPT + DEC; i++)
		toks[i] = (int32_t)((i * 7919 + 13) % V);
	double best = 1e30, best_base = 1e30;
	for (int rep = 0; rep < 3; rep++) {
		double t = decode_seconds(sb, toks, logits, PROMPT, DEC);
		best_base = t < best_base ? t : best_base;
		t = decode_seconds(s, toks, logits, PROMPT, DEC);
		best = t < best ? t : best;
	}
	sl_state_free(s);
	sl_state_free(sb);
	free(logits);
	*tps = DEC / best;
	*base_tps = DEC / best_base;
}

int main(int argc, char **argv)
{
	/* A fixed threshold keeps every tensor in its own mapping, so freeing
	 * one gives its pages back and resident memory follows the model. */
	mallopt(M_MMAP_THRESHOLD, 1 << 16);
	int dims[4] = {1024, 8, 2816, 32000};
	const char *list = default_formats;
	int k = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--formats") && i + 1 < argc)
			list = argv[++i];
		else if (k < 4)
			dims[k++] = atoi(argv[i]);
	}
	sl_config c = {.arch = SL_ARCH_LLAMA, .dim = dims[0], .n_layers = dims[1], .hidden_dim = dims[2],
	               .vocab_size = dims[3], .n_heads = dims[0] / 64, .n_kv_heads = dims[0] / 64, .max_seq_len = 256,
	               .rope_style = SL_ROPE_NORM};
	sl_model *base;
	sl_error err;
	if (sl_model_init_random(&c, false, 0.02f, 42, &base, &err)) {
		fprintf(stderr, "random model: %s\n", err.msg);
		return 1;
	}
	printf("model: dim %d, %d blocks, hidden %d, vocab %d, %.1fM parameters; %d threads\n", c.dim, c.n_layers,
	       c.hidden_dim, c.vocab_size, (double)sl_model_n_params(base) / 1e6, sl_kernels_threads());
	printf("%-16s %10s %7s %12s %9s %9s %8s %8s %9s %s\n", "format", "MB", "bpw", "resident MB", "decode", "f32",
	       "ratio", "quant s", "MB/s in", "fallbacks");
	char *names = strdup(list);
	for (char *save = NULL, *name = strtok_r(names, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
		const sl_format *f = sl_format_find(name);
		if (!f) {
			fprintf(stderr, "unknown format '%s'\n", name);
			continue;
		}
		double rss0 = resident_bytes(), qs;
		int fb;
		sl_model *m = convert(base, f, &qs, &fb);
		if (!m)
			continue;
		double rss = resident_bytes() - rss0;
		double bytes = (double)sl_model_bytes(m);
		double tps, f32_tps;
		decode_tps(m, base, &tps, &f32_tps);
		double in_mb = 4.0 * (double)sl_model_n_params(m) / 1e6;
		printf("%-16s %10.1f %7.3f %12.1f %7.1f/s %7.1f/s %7.2fx %8.2f %9.1f %d\n", name, bytes / 1e6,
		       8.0 * bytes / (double)sl_model_n_params(m), rss / 1e6, tps, f32_tps, tps / f32_tps, qs,
		       qs > 0 ? in_mb / qs : 0, fb);
		fflush(stdout);
		sl_model_free(m);
	}
	free(names);
	sl_model_free(base);
	return 0;
}
