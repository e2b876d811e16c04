/* bench/speculate: speculative decoding against the target alone in the
 * same run, for k = 1..8 and every draft source (the registry's draft
 * formats packed, the target's first half of blocks, prompt lookup), with
 * the speed-up predicted from the acceptance and the draft's cost beside
 * the measured one ("acceptance" is accepted / drafted, "a checked" the
 * share of the draft tokens the target checked that it kept, the a the
 * prediction takes). On the workshop model by default, greedy, continuing
 * 64-token windows spread over the evaluation text (--windows W, default 4;
 * each row adds the windows' counts and times). Both speeds are timed as
 * sl_speculate defines (core/speculate.h: the target alone decodes beside
 * the run, catching up after every pass), on the clock and in CPU seconds:
 * "cpu s-up" is the speed-up in CPU time, steadier than the clock's where
 * other work shares the machine. Where the time goes: c is one draft step
 * over one step of the target alone, "verify" one verification of up to
 * k + 1 tokens in such steps (the prediction counts it as 1; "pred(v)"
 * is the prediction with this measured cost instead, sl_spec_stats'
 * predicted_costed), "loop" the
 * share of the passes' time outside drafting and verification (the
 * caches' rewind, bookkeeping). --draft NAME keeps the sources whose
 * label starts with NAME. --shape 110m runs a model of
 * stories110M's shape with random weights (speeds only: its acceptance
 * means nothing). With $LLAMA_SPECULATIVE naming llama.cpp's
 * llama-speculative, the same target and q4_0 draft (exported by slimlab)
 * run there too, and the tokens/s ratio is printed. --rounds N runs every
 * row N times and prints the median of each timed figure (acceptance does
 * not change between rounds): on a machine that other work shares, a
 * round the scheduler took the cores from does not decide the row.
 *
 *   bench/speculate [MODEL] [--n N] [--k-max K] [--threads N] [--shape 110m] [--draft NAME] [--rounds N]
 *                   [--windows W] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "core/compress.h"
#include "core/fileio.h"
#include "core/recipe.h"
#include "core/speculate.h"
#include "core/tokenizer.h"

typedef struct {
	sl_draft d;
	sl_model *owned;
} source;

static sl_model *packed(const sl_model *m, const char *format)
{
	char json[160];
	snprintf(json, sizeof json, "{\"slimlab_recipe\": 1, \"default\": {\"format\": \"%s\"}}", format);
	sl_recipe *r = NULL;
	sl_model *out = NULL;
	sl_apply_report rep = {0};
	sl_error err = {0};
	if (sl_recipe_parse(json, strlen(json), &r, &err) || sl_recipe_apply(m, r, NULL, &out, &rep, &err))
		fprintf(stderr, "bench/speculate: %s: %s\n", format, err.msg);
	sl_apply_report_free(&rep);
	sl_recipe_free(r);
	return out;
}

/* A file that ships with slimlab: found as the program finds it, else
 * under $SL_SRCDIR or the current directory (benchmarks run from the tree). */
static bool shipped(const char *rel, char *out, size_t n)
{
	sl_error err = {0};
	if (!sl_shipped_find(rel, out, n, &err))
		return true;
	const char *src = getenv("SL_SRCDIR");
	snprintf(out, n, "%s/%s", src && *src ? src : ".", rel);
	return sl_file_exists(out);
}

/* The prompts: W windows of 64 tokens spread evenly over the evaluation
 * text (the first at its start), or (no tokenizer) fixed patterns of ids.
 * ids holds W rows of PLEN; returns the tokens per prompt. */
enum { PLEN = 64, MAX_WINDOWS = 64 }; /* windows as `slimlab speculate --text` takes them */
static int prompts_of(const sl_model *m, int32_t *ids, int W)
{
	char path[4096];
	sl_error err = {0};
	char *text = NULL;
	size_t len = 0;
	int32_t *all = NULL;
	size_t n = 0;
	int got = 0;
	if (m->tok && shipped("data/eval.txt", path, sizeof path) &&
	    !sl_read_file(path, (size_t)64 << 20, &text, &len, &err) &&
	    !sl_tok_encode(m->tok, text, len, sl_tok_add_bos(m->tok), &all, &n, &err) && n >= PLEN) {
		for (int w = 0; w < W; w++) {
			size_t start = W > 1 ? (n - PLEN) * (size_t)w / (size_t)(W - 1) : 0;
			memcpy(ids + (size_t)w * PLEN, all + start, PLEN * sizeof *ids);
		}
		got = PLEN;
	}
	free(text);
	free(all);
	if (got)
		return got;
	for (int w = 0; w < W; w++)
		for (int i = 0; i < PLEN; i++)
			ids[(size_t)w * PLEN + i] = (int32_t)((i * 7919 + w * 104729 + 13) % m->cfg.vocab_size);
	return PLEN;
}

/* llama-speculative on target and draft files, greedy: its decoding speed. */
static double llama_speculative(const char *bin, const char *target, const char *draft, int k, int n)
{
	char cmd[8192];
	snprintf(cmd, sizeof cmd,
	         "'%s' -m '%s' -md '%s' --draft-max %d --draft-min 0 -n %d --temp 0 -p 'One day, a little' -t %d "
	         "-td %d 2>&1",
	         bin, target, draft, k, n, sl_kernels_threads(), sl_kernels_threads());
	FILE *p = popen(cmd, "r");
	if (!p)
		return 0;
	char line[1024];
	double tps = 0;
	while (fgets(line, sizeof line, p)) {
		const char *s = strstr(line, "speed: ");
		if (strstr(line, "decoded") && s)
			tps = atof(s + 7);
	}
	return pclose(p) == 0 ? tps : 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The timed figures of a row, one array of rounds each. */
enum { F_TPS, F_ALONE, F_SPEEDUP, F_PRED, F_PREDV, F_CPU, F_C, F_VERIFY, F_LOOP, N_FIG };
#define MAX_ROUNDS 99

int main(int argc, char **argv)
{
	const char *path = NULL, *shape = NULL, *only = NULL;
	int n_predict = 128, k_max = 8, rounds = 1, windows = 4;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--n") && i + 1 < argc)
			n_predict = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--k-max") && i + 1 < argc)
			k_max = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
			sl_kernels_set_threads(atoi(argv[++i]));
		else if (!strcmp(argv[i], "--shape") && i + 1 < argc)
			shape = argv[++i];
		else if (!strcmp(argv[i], "--draft") && i + 1 < argc)
			only = argv[++i];
		else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
			rounds = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--windows") && i + 1 < argc)
			windows = atoi(argv[++i]);
		else if (argv[i][0] != '-' && !path)
			path = argv[i];
		else {
			fprintf(stderr, "bench/speculate: bad option '%s' (see the comment at the top of bench/speculate.c)\n",
			        argv[i]);
			return 2;
		}
	}
	if (n_predict < 8 || k_max < 1 || k_max > SL_SPEC_MAX_K || (shape && strcmp(shape, "110m")) || rounds < 1 ||
	    rounds > MAX_ROUNDS || windows < 1 || windows > MAX_WINDOWS) {
		fprintf(stderr,
		        "bench/speculate: --n is at least 8, --k-max 1..%d, --shape 110m, --rounds 1..%d, --windows 1..%d\n",
		        SL_SPEC_MAX_K, MAX_ROUNDS, MAX_WINDOWS);
		return 2;
	}
	sl_error err = {0};
	sl_model *m = NULL;
	char found[4096];
	if (shape) {
		sl_config c = {.arch = SL_ARCH_LLAMA, .dim = 768, .hidden_dim = 2048, .n_layers = 12, .n_heads = 12,
		               .n_kv_heads = 12, .vocab_size = 32000, .max_seq_len = 1024, .rope_style = SL_ROPE_NORM};
		if (sl_model_init_random(&c, true, 0.02f, 7, &m, &err))
			m = NULL;
	} else {
		if (!path && shipped("models/workshop.gguf", found, sizeof found))
			path = found;
		sl_load_opts lo = {.check_finite = true};
		if (!path || sl_model_load(path, &lo, &m, &err))
			m = NULL;
	}
	if (!m) {
		fprintf(stderr, "bench/speculate: %s\n", err.msg);
		return 1;
	}
	printf("target: %s (%d blocks, dim %d); %d tokens greedy after each of %d windows of the text; %d threads%s\n",
	       shape ? "110M shape, random" : path, m->cfg.n_layers, m->cfg.dim, n_predict, windows, sl_kernels_threads(),
	       rounds > 1 ? "; timed figures the median of the rounds" : "");
	source src[16];
	int n_src = 0;
	for (int i = 0; i < sl_format_count() && n_src < 12; i++) {
		const sl_format *f = sl_format_at(i);
		if (!sl_format_is_draft(f))
			continue;
		sl_model *d = packed(m, f->name);
		if (!d)
			continue;
		src[n_src] = (source){{.kind = SL_DRAFT_MODEL, .model = d}, d};
		snprintf(src[n_src++].d.label, sizeof src[0].d.label, "%s", f->name);
	}
	src[n_src] = (source){{.kind = SL_DRAFT_EARLY_EXIT, .layers = m->cfg.n_layers / 2}, NULL};
	snprintf(src[n_src++].d.label, sizeof src[0].d.label, "first %d blocks", m->cfg.n_layers / 2);
	src[n_src++] = (source){{.kind = SL_DRAFT_LOOKUP, .ngram = 3, .label = "prompt lookup, 3"}, NULL};

	int32_t prompts[MAX_WINDOWS * PLEN];
	int n_prompt = prompts_of(m, prompts, windows);
	printf("%-18s %2s %10s %9s %8s %10s %10s %8s %9s %7s %8s %7s %8s %5s %6s %5s\n", "draft", "k", "acceptance",
	       "a checked", "tok/pass", "spec t/s", "alone t/s", "speed-up", "predicted", "pred/meas", "pred(v)", "pv/meas", "cpu s-up",
	       "c", "verify", "loop");
	double best = 0;
	const char *best_label = "";
	int best_k = 0;
	for (int s = 0; s < n_src; s++)
		for (int k = 1; k <= k_max && (!only || !strncmp(src[s].d.label, only, strlen(only))); k++) {
			sl_spec_opts o = {.k = k, .n_predict = n_predict, .eos = -1, .baseline = true, .seed = 1};
			double fig[N_FIG][MAX_ROUNDS];
			sl_spec_stats st;
			int done = 0;
			for (; done < rounds; done++) {
				int w = 0;
				for (; w < windows; w++) {
					int32_t *out = NULL;
					int n = 0;
					sl_spec_stats one;
					if (sl_speculate(m, &src[s].d, prompts + (size_t)w * PLEN, n_prompt, &o, NULL, NULL, NULL,
					                 &out, &n, &one, &err)) {
						fprintf(stderr, "bench/speculate: %s, k %d: %s\n", src[s].d.label, k, err.msg);
						free(out);
						break;
					}
					free(out);
					if (w)
						sl_spec_stats_add(&st, &one);
					else
						st = one;
				}
				if (w < windows)
					break;
				sl_spec_finish(&st);
				fig[F_TPS][done] = st.tps;
				fig[F_ALONE][done] = st.target_tps;
				fig[F_SPEEDUP][done] = st.speedup;
				fig[F_PRED][done] = st.predicted_speedup;
				fig[F_CPU][done] = st.speedup_cpu;
				fig[F_C][done] = st.cost_ratio;
				fig[F_VERIFY][done] = st.verify_steps;
				fig[F_LOOP][done] = st.total_s > 0 ? (st.total_s - st.draft_s - st.target_s) / st.total_s : 0;
				fig[F_PREDV][done] = st.predicted_costed;
			}
			if (done < rounds)
				continue;
			double med[N_FIG];
			for (int f = 0; f < N_FIG; f++)
				med[f] = median(fig[f], rounds);
			st.speedup = med[F_SPEEDUP];
			printf("%-18.18s %2d %10.3f %9.3f %8.2f %10.1f %10.1f %7.2fx %8.2fx %7.2f %6.2fx %7.2f %7.2fx %5.2f %6.2f "
			       "%4.1f%%\n",
			       src[s].d.label, k, st.acceptance, st.token_acceptance, st.mean_len, med[F_TPS], med[F_ALONE], med[F_SPEEDUP],
			       med[F_PRED], med[F_SPEEDUP] > 0 ? med[F_PRED] / med[F_SPEEDUP] : 0, med[F_PREDV],
			       med[F_SPEEDUP] > 0 ? med[F_PREDV] / med[F_SPEEDUP] : 0, med[F_CPU], med[F_C], med[F_VERIFY],
			       100 * med[F_LOOP]);
			fflush(stdout);
			if (st.speedup > best) {
				best = st.speedup;
				best_label = src[s].d.label;
				best_k = k;
			}
		}
	printf("best: %s at k = %d, %.2fx the target alone\n", best_label, best_k, best);

	const char *bin = getenv("LLAMA_SPECULATIVE");
	if (bin && *bin && !shape) {
		char dpath[] = "/tmp/slimlab-bench-draft-XXXXXX";
		int fd = mkstemp(dpath);
		sl_model *d = fd >= 0 ? packed(m, "q4_0") : NULL;
		if (fd >= 0)
			close(fd);
		if (d && !sl_export_gguf(d, NULL, dpath, NULL, &err)) {
			sl_draft dd = {.kind = SL_DRAFT_MODEL, .model = d};
			sl_spec_opts o = {.k = 4, .n_predict = n_predict, .eos = -1, .seed = 1};
			int32_t *out = NULL;
			int n = 0;
			sl_spec_stats st;
			if (!sl_speculate(m, &dd, prompts, n_prompt, &o, NULL, NULL, NULL, &out, &n, &st, &err)) {
				sl_spec_finish(&st);
				double theirs = llama_speculative(bin, path, dpath, 4, n_predict);
				printf("q4_0 draft, k = 4: slimlab %.1f tokens/s, llama-speculative %.1f: ratio %.2f\n", st.tps,
				       theirs, theirs > 0 ? st.tps / theirs : 0);
			}
			free(out);
		}
		remove(dpath);
		sl_model_free(d);
	}
	for (int s = 0; s < n_src; s++)
		sl_model_free(src[s].owned);
	sl_model_free(m);
	return 0;
}
