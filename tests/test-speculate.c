/* Speculative decoding: greedy output is, token for token, the target's own
 * greedy output for every draft source (another model, the target
 * compressed by a recipe, early exit, prompt lookup), on stories260K, the
 * workshop model and the real TinyStories-656K pair; speculative sampling's
 * next token is distributed as the target's (a chi-square test over 20,000
 * draws that the always-accept rule fails); the counts add up; hostile
 * settings are refused with a clear error. */
#include "core/compress.h"
#include "core/forward.h"
#include "core/recipe.h"
#include "core/speculate.h"
#include "core/tokenizer.h"
#include "test.h"

static sl_model *load_with(const char *path, const char *tokenizer)
{
	sl_model *m = NULL;
	sl_error err = {0};
	sl_load_opts lo = {.tokenizer_path = tokenizer, .check_finite = true};
	if (sl_model_load(path, &lo, &m, &err))
		fprintf(stderr, "%s: %s\n", path, err.msg);
	return m;
}

static sl_model *load(const char *path)
{
	return load_with(path, NULL);
}

static sl_model *compressed(const sl_model *base, const char *format)
{
	char json[256];
	snprintf(json, sizeof json, "{\"slimlab_recipe\": 1, \"default\": {\"format\": \"%s\"}}", format);
	sl_recipe *r = NULL;
	sl_model *m = NULL;
	sl_error err = {0};
	sl_apply_report rep = {0};
	if (sl_recipe_parse(json, strlen(json), &r, &err) || sl_recipe_apply(base, r, NULL, &m, &rep, &err))
		fprintf(stderr, "%s: %s\n", format, err.msg);
	sl_apply_report_free(&rep);
	sl_recipe_free(r);
	return m;
}

/* The target's own greedy continuation, one token per forward pass. */
static int32_t *greedy(const sl_model *m, const int32_t *prompt, int n_prompt, int n)
{
	sl_state *s = NULL;
	sl_error err = {0};
	int V = m->cfg.vocab_size;
	float *lg = malloc((size_t)V * sizeof *lg);
	int32_t *out = malloc((size_t)n * sizeof *out);
	if (sl_state_new(m, n_prompt + n + 1, &s, &err) || sl_forward(s, prompt, n_prompt, lg, n_prompt - 1, &err)) {
		fprintf(stderr, "greedy: %s\n", err.msg);
		n = 0;
	}
	for (int i = 0; i < n; i++) {
		out[i] = sl_argmax(lg, V);
		if (i + 1 < n && sl_forward(s, &out[i], 1, lg, 0, &err))
			break;
	}
	sl_state_free(s);
	free(lg);
	return out;
}

static int32_t *prompt_of(const sl_model *m, const char *text, int *n)
{
	int32_t *ids = NULL;
	size_t k = 0;
	sl_error err = {0};
	if (sl_tok_encode(m->tok, text, strlen(text), true, &ids, &k, &err))
		fprintf(stderr, "encode: %s\n", err.msg);
	*n = (int)k;
	return ids;
}

/* Speculative greedy decoding gives exactly plain greedy decoding, and the
 * counts add up. */
/* Passes that rejected a draft token, counted from what each pass reports. */
static void count_rejections(void *ctx, const sl_spec_pass *pass)
{
	*(int64_t *)ctx += pass->n_rejected > 0;
}

static void same_as_greedy(const char *what, const sl_model *target, const sl_draft *d, const int32_t *prompt,
                           int n_prompt, int n, int k)
{
	int32_t *want = greedy(target, prompt, n_prompt, n), *got = NULL;
	sl_spec_opts o = {.k = k, .n_predict = n, .eos = -1, .seed = 7};
	sl_spec_stats st;
	int n_got = 0;
	sl_error err = {0};
	int64_t rejected = 0;
	sl_status s = sl_speculate(target, d, prompt, n_prompt, &o, count_rejections, &rejected, NULL, &got, &n_got, &st,
	                           &err);
	CHECK(s == SL_OK && n_got == n, "%s: speculate: %s (%d tokens)", what, err.msg, n_got);
	int first = -1;
	for (int i = 0; s == SL_OK && i < n && first < 0; i++)
		if (got[i] != want[i])
			first = i;
	CHECK(first < 0, "%s: token %d is %d, the target's greedy token is %d", what, first, first >= 0 ? got[first] : 0,
	      first >= 0 ? want[first] : 0);
	int64_t kept = 0, passes = 0;
	for (int i = 0; i <= k; i++) {
		kept += i * st.kept[i];
		passes += st.kept[i];
		if (i > 0)
			CHECK(st.at_least[i] <= st.at_least[i - 1 > 0 ? i - 1 : 1], "%s: per-position counts fall", what);
	}
	CHECK(rejected == st.rejections && st.token_acceptance >= st.acceptance &&
	          (st.accepted + st.rejections == 0 ||
	           st.token_acceptance == (double)st.accepted / (double)(st.accepted + st.rejections)),
	      "%s: %lld passes rejected a token, %lld counted; acceptance %.4f of checked, %.4f of drafted", what,
	      (long long)rejected, (long long)st.rejections, st.token_acceptance, st.acceptance);
	CHECK(kept == st.accepted && passes == st.passes && st.accepted <= st.drafted &&
	      st.accepted + st.passes == st.generated,
	      "%s: counts: %lld kept in %lld passes, %lld drafted, %lld generated", what, (long long)st.accepted,
	      (long long)st.passes, (long long)st.drafted, (long long)st.generated);
	printf("%-34s k=%d: %3d tokens identical; acceptance %.3f, %.2f tokens per target pass\n", what, k, n,
	       st.acceptance, st.mean_len);
	free(want);
	free(got);
}

static void greedy_checks(const char *label, const sl_model *m, const char *text, int n)
{
	int n_prompt;
	int32_t *prompt = prompt_of(m, text, &n_prompt);
	static const char *const formats[] = {"q8_0", "q4_0", "int4-g32"};
	for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++) {
		sl_model *dm = compressed(m, formats[i]);
		if (!dm)
			continue;
		sl_draft d = {.kind = SL_DRAFT_MODEL, .model = dm};
		char what[96];
		snprintf(what, sizeof what, "%s, %s draft", label, formats[i]);
		same_as_greedy(what, m, &d, prompt, n_prompt, n, 4);
		sl_model_free(dm);
	}
	sl_draft ee = {.kind = SL_DRAFT_EARLY_EXIT, .layers = m->cfg.n_layers / 2};
	char what[96];
	snprintf(what, sizeof what, "%s, first %d blocks", label, ee.layers);
	same_as_greedy(what, m, &ee, prompt, n_prompt, n, 3);
	sl_draft lk = {.kind = SL_DRAFT_LOOKUP, .ngram = 2};
	snprintf(what, sizeof what, "%s, prompt lookup", label);
	same_as_greedy(what, m, &lk, prompt, n_prompt, n, 8);
	free(prompt);
}

/* The first token speculative sampling emits is distributed as the
 * target's next token: 20,000 draws against p by chi-square, with bins of
 * fewer than 5 expected draws pooled. The always-accept rule, which emits
 * the draft's token, must fail the same threshold. */
static double chi2(const int *count, const float *p, int V, int draws, int *df)
{
	double stat = 0, pool_e = 0, pool_o = 0;
	*df = -1;
	for (int v = 0; v < V; v++) {
		double e = (double)p[v] * draws;
		if (e < 5) {
			pool_e += e;
			pool_o += count[v];
			continue;
		}
		stat += (count[v] - e) * (count[v] - e) / e;
		(*df)++;
	}
	if (pool_e > 0) {
		stat += (pool_o - pool_e) * (pool_o - pool_e) / (pool_e > 1e-9 ? pool_e : 1e-9);
		(*df)++;
	}
	return stat;
}

/* The chi-square quantile at 1 - 1e-4 (Wilson and Hilferty). */
static double chi2_limit(int df)
{
	double z = 3.719, h = 2.0 / (9.0 * df);
	return df * pow(1 - h + z * sqrt(h), 3);
}

static void test_sampling(const sl_model *target, const sl_model *draft)
{
	enum { DRAWS = 20000 };
	int V = target->cfg.vocab_size;
	static const int32_t prefix[] = {1, 403, 407, 261, 378, 423};
	int n = (int)(sizeof prefix / sizeof prefix[0]);
	float *pl = malloc((size_t)V * sizeof *pl), *ql = malloc((size_t)V * sizeof *ql);
	float *p = malloc(2 * (size_t)V * sizeof *p), *q = malloc((size_t)V * sizeof *q);
	int *good = calloc((size_t)V, sizeof *good), *bad = calloc((size_t)V, sizeof *bad);
	sl_state *ts = NULL, *ds = NULL;
	sl_error err = {0};
	REQUIRE(!sl_state_new(target, 16, &ts, &err) && !sl_state_new(draft, 16, &ds, &err) &&
	        !sl_forward(ts, prefix, n, pl, n - 1, &err) && !sl_forward(ds, prefix, n, ql, n - 1, &err),
	        "forward: %s", err.msg);
	sl_sampler smp;
	sl_sampler_init(&smp, 0.9f, 0.95f, 40, 1);
	sl_sampler_probs(&smp, pl, p, V);
	memcpy(p + V, p, (size_t)V * sizeof *p); /* the bonus row; only the first token is counted */
	sl_sampler_probs(&smp, ql, q, V);
	uint64_t rng = 12345;
	double tv = 0;
	for (int v = 0; v < V; v++)
		tv += fabs(p[v] - q[v]) / 2;
	for (int i = 0; i < DRAWS; i++) {
		int32_t x = sl_sample_from(&rng, q, V, 1.0), emit[2];
		sl_spec_verify(p, q, &x, 1, V, false, &rng, emit);
		good[emit[0]]++;
		bad[x]++;
	}
	int df_good, df_bad;
	double c_good = chi2(good, p, V, DRAWS, &df_good), c_bad = chi2(bad, p, V, DRAWS, &df_bad);
	printf("speculative sampling, 20000 draws (draft and target %.3f apart in total variation): chi-square %.1f on %d "
	       "degrees (limit %.1f); always accepting: %.1f on %d (limit %.1f)\n",
	       tv, c_good, df_good, chi2_limit(df_good), c_bad, df_bad, chi2_limit(df_bad));
	CHECK(tv > 0.05, "the draft differs from the target enough to tell the rules apart (%g)", tv);
	CHECK(c_good < chi2_limit(df_good), "speculative sampling draws as the target does (chi-square %g)", c_good);
	CHECK(c_bad > chi2_limit(df_bad), "the always-accept rule is caught (chi-square %g)", c_bad);
	sl_state_free(ts);
	sl_state_free(ds);
	free(pl), free(ql), free(p), free(q), free(good), free(bad);
}

/* A sampled run is repeatable with its seed, and its counts add up. */
static void test_sampled_run(const sl_model *target, const sl_model *draft)
{
	static const int32_t prompt[] = {1, 403, 407};
	sl_draft d = {.kind = SL_DRAFT_MODEL, .model = draft};
	sl_spec_opts o = {.k = 4, .n_predict = 60, .temp = 0.8f, .top_p = 0.95f, .seed = 3, .eos = -1};
	int32_t *a = NULL, *b = NULL;
	int na = 0, nb = 0;
	sl_spec_stats st;
	sl_error err = {0};
	CHECK(!sl_speculate(target, &d, prompt, 3, &o, NULL, NULL, NULL, &a, &na, &st, &err), "sampled: %s", err.msg);
	CHECK(!sl_speculate(target, &d, prompt, 3, &o, NULL, NULL, NULL, &b, &nb, &st, &err), "sampled: %s", err.msg);
	CHECK(na == 60 && nb == 60 && !memcmp(a, b, sizeof(int32_t) * 60), "the same seed gives the same tokens");
	CHECK(st.accepted + st.passes == st.generated && st.acceptance > 0, "sampled counts (acceptance %g)",
	      st.acceptance);
	free(a);
	free(b);
}

static void test_hostile(const sl_model *target, const sl_model *other)
{
	static const int32_t prompt[] = {1, 403, 407};
	sl_spec_opts o = {.k = 4, .n_predict = 10, .eos = -1};
	sl_spec_stats st;
	int32_t *out = NULL;
	int n = 0;
	sl_error err = {0};
	sl_draft d = {.kind = SL_DRAFT_MODEL, .model = other};
	if (other) {
		CHECK(sl_speculate(target, &d, prompt, 3, &o, NULL, NULL, NULL, &out, &n, &st, &err) == SL_ERR_ARG &&
		      strstr(err.msg, "vocabularies differ at token"),
		      "another vocabulary is refused, naming the token: %s", err.msg);
		free(out);
	}
	sl_draft ee = {.kind = SL_DRAFT_EARLY_EXIT, .layers = target->cfg.n_layers};
	CHECK(sl_speculate(target, &ee, prompt, 3, &o, NULL, NULL, NULL, &out, &n, &st, &err) == SL_ERR_ARG &&
	      strstr(err.msg, "early-exit"), "an exit beyond the blocks is refused: %s", err.msg);
	sl_draft lk = {.kind = SL_DRAFT_LOOKUP, .ngram = 2};
	o.k = 0;
	CHECK(sl_speculate(target, &lk, prompt, 3, &o, NULL, NULL, NULL, &out, &n, &st, &err) == SL_ERR_ARG &&
	      strstr(err.msg, "k = 0"), "k = 0 is refused: %s", err.msg);
	o.k = 65;
	CHECK(sl_speculate(target, &lk, prompt, 3, &o, NULL, NULL, NULL, &out, &n, &st, &err) == SL_ERR_ARG,
	      "k = 65 is refused: %s", err.msg);
	o.k = 4;
	o.n_predict = target->cfg.max_seq_len;
	CHECK(sl_speculate(target, &lk, prompt, 3, &o, NULL, NULL, NULL, &out, &n, &st, &err) == SL_ERR_ARG &&
	      strstr(err.msg, "positions"), "more than the context holds is refused: %s", err.msg);
}

/* The first pass of prompt lookup, caught by the callback: the tokens it
 * proposed (kept and rejected together). */
typedef struct {
	int passes, n;
	int32_t x[SL_SPEC_MAX_K];
} first_pass;

static void on_first(void *ctx, const sl_spec_pass *ps)
{
	first_pass *f = ctx;
	if (f->passes++)
		return;
	f->n = 0;
	for (int i = 0; i < ps->n_kept; i++)
		f->x[f->n++] = ps->kept[i];
	for (int i = 0; i < ps->n_rejected; i++)
		f->x[f->n++] = ps->rejected[i];
}

/* What prompt lookup proposes, worked out by hand: with all n last tokens
 * found, the k that followed their latest occurrence (or as many as there
 * are); with only a shorter tail found, the one token after its latest
 * occurrence; with nothing found, nothing. */
static void test_lookup(const sl_model *m)
{
	static const struct {
		int32_t prompt[12];
		int len, want[4], n_want;
	} cases[] = {
		{{1, 50, 60, 70, 80, 50, 60, 70}, 8, {80, 50, 60, 70}, 4},     /* 50 60 70 seen: 4 tokens */
		{{1, 50, 60, 70, 50, 60, 70, 90, 60, 70}, 10, {90}, 1},        /* latest 60 70: one token */
		{{1, 50, 60, 70, 80, 90, 70}, 7, {80}, 1},                     /* only 70 found: one token */
		{{1, 50, 60, 70, 80, 50, 60, 70, 81, 82}, 10, {0}, 0},          /* 82 never seen */
		{{1, 50, 60, 70, 80, 60, 70, 80}, 8, {60, 70, 80}, 3},         /* 70 80 after 60: runs to the end */
	};
	for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
		sl_draft lk = {.kind = SL_DRAFT_LOOKUP, .ngram = 3};
		sl_spec_opts o = {.k = 4, .n_predict = 8, .eos = -1, .seed = 1};
		first_pass f = {0};
		int32_t *out = NULL;
		int n = 0;
		sl_spec_stats st;
		sl_error err = {0};
		sl_status s = sl_speculate(m, &lk, cases[c].prompt, cases[c].len, &o, on_first, &f, NULL, &out, &n, &st, &err);
		free(out);
		bool same = !s && f.n == cases[c].n_want;
		for (int i = 0; same && i < f.n; i++)
			same = f.x[i] == cases[c].want[i];
		CHECK(same, "lookup case %zu: the first pass proposes %d tokens (%d %d %d %d), %d wanted", c, f.n, f.x[0],
		      f.x[1], f.x[2], f.x[3], cases[c].n_want);
	}
}

/* The predicted speed-up against the formula, worked by hand: all passes
 * drafting k, then passes drafting different numbers of tokens. */
static void test_prediction(void)
{
	/* Ten passes of 4: 28 kept, 7 passes ended by a rejection, so 35 were
	 * checked and a = 0.8 (28 of 40 drafted: 0.7). Verification took 1.5
	 * steps of the target alone (15 s over 10 passes of 1 s steps). */
	sl_spec_stats st = {.k = 4, .drafted = 40, .accepted = 28, .rejections = 7, .passes = 10,
	                    .draft_token_s = 0.25, .target_token_s = 1, .target_s = 15};
	st.proposed[4] = 10;
	sl_spec_finish(&st);
	CHECK(st.acceptance == 0.7 && st.token_acceptance == 0.8, "acceptance %.15g of drafted, %.15g of checked",
	      st.acceptance, st.token_acceptance);
	double want = (1 - pow(0.8, 5)) / ((1 - 0.8) * (4 * 0.25 + 1));
	CHECK(fabs(st.predicted_speedup - want) < 1e-12, "every pass drafting k: %.15g, the formula %.15g",
	      st.predicted_speedup, want);
	want = (1 - pow(0.8, 5)) / ((1 - 0.8) * (4 * 0.25 + 1.5));
	CHECK(fabs(st.verify_steps - 1.5) < 1e-12 && fabs(st.predicted_costed - want) < 1e-12,
	      "at the verification's cost (%.15g steps): %.15g, by hand %.15g", st.verify_steps, st.predicted_costed,
	      want);
	sl_spec_stats mix = {.k = 4, .drafted = 12, .accepted = 6, .rejections = 6, .passes = 10, .draft_token_s = 0.5,
	                     .target_token_s = 1};
	mix.proposed[0] = 4;
	mix.proposed[2] = 6;
	sl_spec_finish(&mix);
	/* a = 1/2: 1 token from each empty pass, 1 + 1/2 + 1/4 from each of the
	 * others; 1.2 drafted per pass at half a step each. No verification
	 * timed: no costed prediction. */
	want = (4 * 1.0 + 6 * 1.75) / 10 / (1.2 * 0.5 + 1);
	CHECK(fabs(mix.predicted_speedup - want) < 1e-12 && mix.predicted_costed == 0,
	      "passes drafting 0 and 2: %.15g, by hand %.15g", mix.predicted_speedup, want);
	/* Every token checked was kept: a = 1, each pass yields all it drafted. */
	sl_spec_stats all = {.k = 3, .drafted = 9, .accepted = 9, .passes = 3, .draft_token_s = 0, .target_token_s = 1};
	all.proposed[3] = 3;
	sl_spec_finish(&all);
	CHECK(all.token_acceptance == 1 && fabs(all.predicted_speedup - 4) < 1e-12, "all kept: a %g, predicted %g",
	      all.token_acceptance, all.predicted_speedup);
}

int main(void)
{
	const char *path = test_fixture("models/stories260K.gguf");
	if (!path)
		return 77;
	sl_model *m = load(path);
	if (!m)
		return 1;
	greedy_checks("stories260K", m, "Once upon a time, there was a little", 120);
	test_lookup(m);
	test_prediction();
	sl_model *q4 = compressed(m, "q4_0");
	if (q4) {
		test_sampling(m, q4);
		test_sampled_run(m, q4);
	}
	const char *other = test_fixture("models/extra/aidreams260K.bin");
	const char *other_tok = test_fixture("models/extra/aidreams-tok512.bin");
	sl_model *o = other && other_tok ? load_with(other, other_tok) : NULL;
	CHECK(!other || !other_tok || o, "aidreams260K loads");
	test_hostile(m, o);
	sl_model_free(o);
	sl_model_free(q4);
	sl_model_free(m);

	sl_model *w = load(test_srcpath("models/workshop.gguf"));
	if (w)
		greedy_checks("workshop", w, "The jury said that the city", 100);
	else
		printf("SKIP (part): models/workshop.gguf is absent\n");
	sl_model_free(w);

	const char *hf = test_fixture("models/tinystories656K"), *q8 = test_fixture("models/TinyStories-656K-Q8_0.gguf");
	sl_model *t = hf ? load(hf) : NULL, *d = q8 ? load(q8) : NULL;
	if (t && d) {
		int n_prompt;
		int32_t *prompt = prompt_of(t, "Once upon a time", &n_prompt);
		sl_draft dr = {.kind = SL_DRAFT_MODEL, .model = d};
		same_as_greedy("tinystories656K, its Q8_0 GGUF draft", t, &dr, prompt, n_prompt, 100, 4);
		free(prompt);
	}
	sl_model_free(t);
	sl_model_free(d);
	return test_finish();
}
