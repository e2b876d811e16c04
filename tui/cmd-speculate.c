/* slimlab speculate TARGET: speculative decoding with a draft (another
 * model, the target under a recipe or one format, its first blocks, or
 * prompt lookup), its acceptance and speed against the target alone in
 * the same run; over windows of a text with --text; and --compare, one
 * table of draft sources by k. */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/fileio.h"
#include "core/formats.h"
#include "core/speculate.h"
#include "core/tokenizer.h"

static const char speculate_usage[] =
	"Usage: slimlab speculate TARGET (--draft MODEL | --draft-recipe R | --draft-format FMT | --draft-layers N |\n"
	"                         --draft-ngram N) [-p PROMPT | --text FILE] [-n N] [--k K] [--p-min P]\n"
	"                         [--temp T] [--top-k K] [--top-p P] [--seed S] [--json]\n"
	"       slimlab speculate TARGET --compare [--k-range 1-8] [--draft-recipe R] [-p PROMPT | --text FILE]\n"
	"A draft proposes up to K tokens, the target scores them in one batched pass\n"
	"and keeps what it agrees with. Greedy output is the target's own, token for\n"
	"token; sampled output is distributed as the target's. Reports acceptance,\n"
	"tokens per target pass, per-position acceptance, tokens/s of the speculative\n"
	"run and of the target alone (measured in the same run), the speed-up and the\n"
	"speed-up predicted from the acceptance a of the draft tokens the target\n"
	"checked, the draft's cost c and the verification's cost v (one step of the\n"
	"target alone is 1): (1 - a^(k+1)) / ((1 - a)(k c + v)), over the passes as\n"
	"drafted (a pass that drafts j < k tokens counts with j), and with v = 1.\n"
	"  --draft MODEL       a draft model with the target's vocabulary\n"
	"  --draft-recipe R    the target compressed by recipe R\n"
	"  --draft-format FMT  the target with every module in FMT (rounded to nearest)\n"
	"  --draft-layers N    the target's first N blocks, then its norm and head\n"
	"  --draft-ngram N     prompt lookup: what followed the last N tokens earlier\n"
	"                      (or fewer: one token)\n"
	"  -p, --prompt TEXT   text to continue (default: the start of a text)\n"
	"  --text FILE         continue windows of FILE instead (--windows N, default 4)\n"
	"  -n, --tokens N      tokens to generate per prompt (default 128)\n"
	"  --k K               draft tokens per pass, 1..64 (default 4)\n"
	"  --p-min P           stop drafting when the draft's top probability is below P\n"
	"  --temp T            0 is greedy (default); --top-k K, --top-p P as for generate\n"
	"  --seed S            random seed (default 1)\n"
	"  --compare           draft sources (two formats, the recipe, half the blocks,\n"
	"                      lookup) by k (--k-range A-B, default 1-8): one table\n"
	"  --tokenizer FILE    llama2.c tokenizer.bin; --threads N; --json\n";

typedef struct {
	const char *draft, *recipe, *format, *prompt, *text, *tok;
	long layers, ngram, n, k, windows, top_k, seed, threads, k_lo, k_hi;
	double p_min, temp, top_p;
	bool json, compare;
} spec_args;

/* The prompts the run continues: the prompt, or windows spread over a text. */
typedef struct {
	int32_t **ids;
	int *n;
	int count;
} prompts;

static void prompts_free(prompts *p)
{
	for (int i = 0; i < p->count; i++)
		free(p->ids[i]);
	free(p->ids);
	free(p->n);
}

static bool make_prompts(const sl_model *m, const spec_args *a, prompts *p)
{
	sl_error err = {0};
	char *text = NULL;
	size_t len = 0;
	int32_t *all = NULL;
	size_t n_all = 0;
	const char *src = a->prompt ? a->prompt : "";
	if (a->text) {
		if (sl_read_file(a->text, (size_t)64 << 20, &text, &len, &err)) {
			cli_error(&err);
			return false;
		}
		src = text;
	} else {
		len = strlen(src);
	}
	bool ok = !sl_tok_encode(m->tok, src, len, true, &all, &n_all, &err);
	free(text);
	if (!ok) {
		cli_error(&err);
		return false;
	}
	int windows = a->text ? (int)a->windows : 1, plen = a->text ? 64 : (int)n_all;
	if (a->text && n_all < (size_t)plen + 1) {
		fprintf(stderr, "slimlab speculate: %s holds %zu tokens, fewer than one window of %d\n", a->text, n_all, plen);
		free(all);
		return false;
	}
	p->ids = calloc((size_t)windows, sizeof *p->ids);
	p->n = calloc((size_t)windows, sizeof *p->n);
	for (int w = 0; p->ids && p->n && w < windows; w++) {
		size_t start = windows > 1 ? (n_all - (size_t)plen) * (size_t)w / (size_t)(windows - 1) : 0;
		if (!(p->ids[w] = malloc((size_t)(plen + 1) * sizeof(int32_t))))
			break;
		/* Each window starts with BOS, as a prompt does. */
		p->ids[w][0] = all[0];
		int k = 1;
		for (size_t i = start + (start ? 0 : 1); k < plen && i < n_all; i++)
			p->ids[w][k++] = all[i];
		p->n[w] = k;
		p->count++;
	}
	free(all);
	return p->count == windows;
}

/* Streams the text of a greedy or sampled run as it is accepted. */
typedef struct {
	const sl_model *m;
	int32_t prev;
	bool print;
} streamer;

static void on_pass(void *ctx, const sl_spec_pass *p)
{
	streamer *s = ctx;
	if (!s->print)
		return;
	for (int i = 0; i <= p->n_kept; i++) {
		int32_t id = i < p->n_kept ? p->kept[i] : p->own;
		size_t len;
		const char *t = sl_tok_decode(s->m->tok, s->prev, id, &len);
		if (t)
			fwrite(t, 1, len, stdout);
		s->prev = id;
	}
	fflush(stdout);
}

/* Runs the draft over every prompt; the stats summed. */
static bool run_all(const sl_model *target, const sl_draft *d, const prompts *ps, const spec_args *a, int k,
                    bool print, sl_spec_stats *sum, char **text)
{
	memset(sum, 0, sizeof *sum);
	if (text)
		*text = NULL;
	for (int w = 0; w < ps->count; w++) {
		sl_spec_opts o = {.k = k, .p_min = (float)a->p_min, .temp = (float)a->temp, .top_p = (float)a->top_p,
		                  .top_k = (int)a->top_k, .seed = (uint64_t)a->seed, .n_predict = (int)a->n,
		                  .eos = sl_tok_eos(target->tok), .baseline = true};
		streamer s = {target, ps->ids[w][ps->n[w] - 1], print};
		int32_t *out = NULL;
		int n = 0;
		sl_spec_stats st;
		sl_error err = {0};
		cli_bar bar;
		cli_bar_init(&bar, "speculate");
		bar.tty = bar.tty && !print;
		sl_status status = sl_speculate(target, d, ps->ids[w], ps->n[w], &o, on_pass, &s, &bar.p, &out, &n, &st, &err);
		cli_bar_done(&bar);
		if (status) {
			free(out);
			cli_error(&err);
			return false;
		}
		sl_spec_stats_add(sum, &st);
		if (text && w == 0) {
			sl_buf b = {0};
			int32_t prev = ps->ids[w][ps->n[w] - 1];
			for (int i = 0; i < n; i++) {
				size_t len;
				const char *t = sl_tok_decode(target->tok, prev, out[i], &len);
				if (t)
					sl_buf_put(&b, t, len);
				prev = out[i];
			}
			sl_buf_put(&b, "", 1);
			*text = b.data;
		}
		free(out);
	}
	return true;
}

static void print_stats(const char *label, const sl_spec_stats *s)
{
	printf("draft          %s, k = %d\n", label, s->k);
	printf("acceptance     %.3f (%lld of %lld drafted; %.3f of the %lld checked), %.2f tokens per target pass (%lld "
	       "passes)\n",
	       s->acceptance, (long long)s->accepted, (long long)s->drafted, s->token_acceptance,
	       (long long)(s->accepted + s->rejections), s->mean_len, (long long)s->passes);
	printf("per position  ");
	for (int i = 1; i <= s->k; i++)
		printf(" %d:%.2f", i, s->passes ? (double)s->at_least[i] / (double)s->passes : 0);
	printf("  (share of passes keeping at least i draft tokens)\n");
	printf("kept           ");
	for (int i = 0; i <= s->k; i++)
		printf("%s%d:%lld", i ? " " : "", i, (long long)s->kept[i]);
	printf("  (passes by draft tokens kept)\n");
	printf("speed          %.1f tokens/s speculative, %.1f target alone: %.2fx\n", s->tps, s->target_tps, s->speedup);
	printf("predicted      %.2fx at the verification's measured cost (%.2f target steps), %.2fx taking it for one; "
	       "draft/target cost %.3f\n",
	       s->predicted_costed, s->verify_steps, s->predicted_speedup, s->cost_ratio);
}

static cJSON *stats_json(const sl_spec_stats *s)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "k", s->k);
	cJSON_AddNumberToObject(o, "drafted", (double)s->drafted);
	cJSON_AddNumberToObject(o, "accepted", (double)s->accepted);
	cJSON_AddNumberToObject(o, "acceptance", s->acceptance);
	cJSON_AddNumberToObject(o, "token_acceptance", s->token_acceptance);
	cJSON_AddNumberToObject(o, "passes", (double)s->passes);
	cJSON_AddNumberToObject(o, "generated", (double)s->generated);
	cJSON_AddNumberToObject(o, "mean_accepted_length", s->mean_len);
	cJSON *pp = cJSON_AddArrayToObject(o, "per_position"), *h = cJSON_AddArrayToObject(o, "accepted_length_histogram");
	for (int i = 1; i <= s->k; i++)
		cJSON_AddItemToArray(pp, cJSON_CreateNumber(s->passes ? (double)s->at_least[i] / (double)s->passes : 0));
	for (int i = 0; i <= s->k; i++)
		cJSON_AddItemToArray(h, cJSON_CreateNumber((double)s->kept[i]));
	cJSON_AddNumberToObject(o, "tokens_per_second", s->tps);
	cJSON_AddNumberToObject(o, "target_tokens_per_second", s->target_tps);
	cJSON_AddNumberToObject(o, "speedup", s->speedup);
	cJSON_AddNumberToObject(o, "predicted_speedup", s->predicted_speedup);
	cJSON_AddNumberToObject(o, "verify_steps", s->verify_steps);
	cJSON_AddNumberToObject(o, "predicted_speedup_costed", s->predicted_costed);
	cJSON_AddNumberToObject(o, "cost_ratio", s->cost_ratio);
	cJSON_AddNumberToObject(o, "draft_seconds", s->draft_s);
	cJSON_AddNumberToObject(o, "target_seconds", s->target_s);
	return o;
}

/* The draft the options name; *owned is a model to free afterwards. */
static bool make_draft(const sl_model *target, const spec_args *a, sl_draft *d, sl_model **owned)
{
	*owned = NULL;
	memset(d, 0, sizeof *d);
	int given = !!a->draft + !!a->recipe + !!a->format + (a->layers > 0) + (a->ngram > 0);
	if (given != 1) {
		cli_usage_error("speculate", given ? "name one draft" : "name a draft (--draft, --draft-recipe, "
		                                                        "--draft-format, --draft-layers or --draft-ngram)");
		return false;
	}
	if (a->layers > 0) {
		*d = (sl_draft){.kind = SL_DRAFT_EARLY_EXIT, .layers = (int)a->layers};
		snprintf(d->label, sizeof d->label, "first %ld blocks", a->layers);
		return true;
	}
	if (a->ngram > 0) {
		*d = (sl_draft){.kind = SL_DRAFT_LOOKUP, .ngram = (int)a->ngram};
		snprintf(d->label, sizeof d->label, "prompt lookup, %ld tokens", a->ngram);
		return true;
	}
	if (a->draft) {
		if (!(*owned = cli_load_model(a->draft, a->tok)))
			return false;
		snprintf(d->label, sizeof d->label, "%.60s", a->draft);
	} else {
		cli_recipe_opts ro = {.recipe = a->recipe, .format = a->format};
		sl_recipe *r = cli_recipe_load("speculate", &ro, target);
		sl_apply_report rep = {0};
		if (!r || !(*owned = cli_apply(target, r, false, &rep))) {
			sl_recipe_free(r);
			return false;
		}
		snprintf(d->label, sizeof d->label, "%.60s", a->recipe ? a->recipe : a->format);
		sl_apply_report_free(&rep);
		sl_recipe_free(r);
	}
	d->kind = SL_DRAFT_MODEL;
	d->model = *owned;
	return true;
}

/* --compare: every draft source by k, one table. */
static int compare(const sl_model *target, const spec_args *a, const prompts *ps)
{
	typedef struct {
		sl_draft d;
		sl_model *owned;
	} source;
	source src[16];
	int n_src = 0;
	/* The registry's draft formats, then the recipe if one was named. */
	for (int i = 0; i <= sl_format_count() && n_src < 13; i++) {
		const sl_format *f = sl_format_at(i);
		if (f ? !sl_format_is_draft(f) : !a->recipe)
			continue;
		spec_args one = *a;
		one.draft = NULL;
		one.format = f ? f->name : NULL;
		one.recipe = f ? NULL : a->recipe;
		one.layers = one.ngram = 0;
		if (make_draft(target, &one, &src[n_src].d, &src[n_src].owned))
			n_src++;
	}
	if (target->cfg.n_layers > 1) {
		src[n_src] = (source){{.kind = SL_DRAFT_EARLY_EXIT, .layers = target->cfg.n_layers / 2}, NULL};
		snprintf(src[n_src].d.label, sizeof src[n_src].d.label, "first %d blocks", target->cfg.n_layers / 2);
		n_src++;
	}
	src[n_src++] = (source){{.kind = SL_DRAFT_LOOKUP, .ngram = 3, .label = "prompt lookup, 3 tokens"}, NULL};
	cJSON *rows = a->json ? cJSON_CreateArray() : NULL;
	if (!a->json)
		printf("%-26s %3s %10s %9s %8s %10s %9s %9s %9s\n", "draft", "k", "acceptance", "a checked", "tok/pass",
		       "tokens/s", "speed-up", "predicted", "1-step");
	/* Every row times the target alone beside its own run, as a single
	 * run does, so that each speed-up meets the load of its own moment. */
	sl_spec_stats all = {0};
	int rc = CLI_OK;
	for (int s = 0; s < n_src && rc == CLI_OK; s++)
		for (long k = a->k_lo; k <= a->k_hi; k++) {
			sl_spec_stats st;
			if (!run_all(target, &src[s].d, ps, a, (int)k, false, &st, NULL)) {
				rc = CLI_FAIL;
				break;
			}
			all.baseline_s += st.baseline_s;
			all.baseline_tokens += st.baseline_tokens;
			if (a->json) {
				cJSON *o = stats_json(&st);
				cJSON_AddStringToObject(o, "draft", src[s].d.label);
				cJSON_AddItemToArray(rows, o);
			} else {
				printf("%-26.26s %3ld %10.3f %9.3f %8.2f %10.1f %8.2fx %8.2fx %8.2fx\n", src[s].d.label, k,
				       st.acceptance, st.token_acceptance, st.mean_len, st.tps, st.speedup, st.predicted_costed,
				       st.predicted_speedup);
				fflush(stdout);
			}
		}
	if (a->json)
		cli_print_json(rows);
	else if (rc == CLI_OK)
		printf("target alone: %.1f tokens/s over all rows\n",
		       all.baseline_s > 0 ? (double)all.baseline_tokens / all.baseline_s : 0);
	for (int s = 0; s < n_src; s++)
		sl_model_free(src[s].owned);
	return rc;
}

int sl_cmd_speculate(int argc, char **argv)
{
	static const struct option opts[] = {
		{"draft", required_argument, 0, 'D'}, {"draft-recipe", required_argument, 0, 'R'},
		{"draft-format", required_argument, 0, 'F'}, {"draft-layers", required_argument, 0, 'L'},
		{"draft-ngram", required_argument, 0, 'G'}, {"prompt", required_argument, 0, 'p'},
		{"text", required_argument, 0, 'x'}, {"windows", required_argument, 0, 'w'},
		{"tokens", required_argument, 0, 'n'}, {"k", required_argument, 0, 'k'},
		{"p-min", required_argument, 0, 'm'}, {"temp", required_argument, 0, 'T'},
		{"top-k", required_argument, 0, 'K'}, {"top-p", required_argument, 0, 'P'},
		{"seed", required_argument, 0, 's'}, {"json", no_argument, 0, 'j'},
		{"compare", no_argument, 0, 'c'}, {"k-range", required_argument, 0, 'r'},
		{"tokenizer", required_argument, 0, 'z'}, {"threads", required_argument, 0, 't'},
		{"help", no_argument, 0, 'h'}, {0, 0, 0, 0},
	};
	spec_args a = {.n = 128, .k = 4, .windows = 4, .seed = 1, .top_p = 1, .k_lo = 1, .k_hi = 8};
	const char *cmd = "speculate";
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "p:n:h", opts, NULL)) != -1) {
		switch (c) {
		case 'D': a.draft = optarg; break;
		case 'R': a.recipe = optarg; break;
		case 'F': a.format = optarg; break;
		case 'L': if (!cli_parse_int(cmd, "--draft-layers", optarg, 1, 1 << 16, &a.layers)) return CLI_USAGE; break;
		case 'G': if (!cli_parse_int(cmd, "--draft-ngram", optarg, 1, 64, &a.ngram)) return CLI_USAGE; break;
		case 'p': a.prompt = optarg; break;
		case 'x': a.text = optarg; break;
		case 'w': if (!cli_parse_int(cmd, "--windows", optarg, 1, 1 << 16, &a.windows)) return CLI_USAGE; break;
		case 'n': if (!cli_parse_int(cmd, "-n", optarg, 1, 1 << 20, &a.n)) return CLI_USAGE; break;
		case 'k': if (!cli_parse_int(cmd, "--k", optarg, 1, SL_SPEC_MAX_K, &a.k)) return CLI_USAGE; break;
		case 'm': if (!cli_parse_float(cmd, "--p-min", optarg, 0, 1, &a.p_min)) return CLI_USAGE; break;
		case 'T': if (!cli_parse_float(cmd, "--temp", optarg, 0, 100, &a.temp)) return CLI_USAGE; break;
		case 'K': if (!cli_parse_int(cmd, "--top-k", optarg, 0, 1 << 24, &a.top_k)) return CLI_USAGE; break;
		case 'P': if (!cli_parse_float(cmd, "--top-p", optarg, 0, 1, &a.top_p)) return CLI_USAGE; break;
		case 's': if (!cli_parse_int(cmd, "--seed", optarg, 0, 0x7fffffffL, &a.seed)) return CLI_USAGE; break;
		case 'j': a.json = true; break;
		case 'c': a.compare = true; break;
		case 'r':
			if (sscanf(optarg, "%ld-%ld", &a.k_lo, &a.k_hi) != 2 || a.k_lo < 1 || a.k_hi > SL_SPEC_MAX_K ||
			    a.k_lo > a.k_hi)
				return cli_usage_error(cmd, "--k-range wants A-B with 1 <= A <= B <= %d, not '%s'", SL_SPEC_MAX_K,
				                       optarg);
			break;
		case 'z': a.tok = optarg; break;
		case 't': if (!cli_parse_int(cmd, "--threads", optarg, 1, 256, &a.threads)) return CLI_USAGE; break;
		case 'h': fputs(speculate_usage, stdout); return CLI_OK;
		default: return cli_usage_error(cmd, "unknown option");
		}
	}
	if (optind != argc - 1)
		return cli_usage_error(cmd, "expects one TARGET model");
	if (a.prompt && a.text)
		return cli_usage_error(cmd, "-p and --text exclude each other");
	if (a.threads)
		sl_kernels_set_threads((int)a.threads);
	sl_model *target = cli_load_model(argv[optind], a.tok);
	if (!target)
		return CLI_FAIL;
	prompts ps = {0};
	int rc = CLI_FAIL;
	if (!make_prompts(target, &a, &ps))
		goto done;
	if (a.compare) {
		rc = compare(target, &a, &ps);
		goto done;
	}
	sl_draft d;
	sl_model *owned = NULL;
	if (!make_draft(target, &a, &d, &owned))
		goto done;
	sl_spec_stats st;
	char *text = NULL;
	bool stream = !a.json && !a.text;
	if (stream && a.prompt)
		fputs(a.prompt, stdout);
	if (run_all(target, &d, &ps, &a, (int)a.k, stream, &st, &text)) {
		rc = CLI_OK;
		if (a.json) {
			cJSON *o = stats_json(&st);
			cJSON_AddStringToObject(o, "draft", d.label);
			cJSON_AddStringToObject(o, "text", text ? text : "");
			cli_print_json(o);
		} else {
			if (stream)
				printf("\n\n");
			print_stats(d.label, &st);
		}
	}
	free(text);
	sl_model_free(owned);
done:
	prompts_free(&ps);
	sl_model_free(target);
	return rc;
}
