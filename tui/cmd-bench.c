/* slimlab bench MODEL: prompt-processing and decoding speed, printed as
 * llama.cpp's llama-bench prints them (its markdown table, or its JSON
 * records with --json) so that the two can be compared on the same file,
 * with the resident memory, the key/value cache's bytes (in a KV-cache
 * format with --kv-cache) and, for decoding, the weight bandwidth the
 * speed implies beside the machine's. */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "core/formats.h"
#include "core/forward.h"
#include "core/speed.h"
#include "core/units.h"

static const char bench_usage[] =
	"Usage: slimlab bench MODEL [-p N] [-n N] [-t N] [-r N] [--kv-cache FORMAT] [--json]\n"
	"Measures prompt processing (ppN: one batch of N tokens from an empty cache)\n"
	"and decoding (tgN: N tokens one at a time from an empty cache) in tokens/s,\n"
	"as llama.cpp's llama-bench does: a warm-up run, then R timed repetitions,\n"
	"mean and standard deviation. Prints llama-bench's table, with the weight\n"
	"bandwidth decoding implies, the machine's memory read bandwidth and the\n"
	"resident memory (VmRSS, and its peak VmHWM).\n"
	"  -p, --n-prompt N   prompt tokens (default 512; 0 skips the test)\n"
	"  -n, --n-gen N      decoded tokens (default 128; 0 skips the test)\n"
	"  -t, --threads N    CPU threads (default: one per core)\n"
	"  -r, --repetitions N  timed runs of each test (default 5)\n"
	"  --kv-cache FORMAT  hold the key/value cache in FORMAT, one a recipe's kv_cache takes\n"
	"                     (default f32), and print its bytes beside F32's\n"
	"  --json             llama-bench's JSON records, with slimlab's figures added\n"
	"  --tokenizer FILE   llama2.c tokenizer.bin\n";

/* What llama-bench calls the model's type: architecture, size, and the
 * storage type holding most of the matrices' bytes ("mix" when others
 * hold some too). */
static void model_type(const sl_model *m, char *buf, size_t n)
{
	double by_type[SL_DT_COUNT] = {0};
	int kinds = 0, top = SL_DT_F32;
	for (int i = 0; i < m->n_tensors; i++)
		if (m->tensors[i]->n_dims == 2)
			by_type[m->tensors[i]->type] += (double)m->tensors[i]->nbytes;
	for (int t = 0; t < SL_DT_COUNT; t++) {
		kinds += by_type[t] > 0;
		if (by_type[t] > by_type[top])
			top = t;
	}
	char params[32], type[32];
	sl_fmt_count((double)sl_model_n_params(m), params, sizeof params);
	snprintf(type, sizeof type, "%s", sl_dtype_name(top));
	for (char *c = type; *c; c++)
		*c = (char)toupper((unsigned char)*c);
	snprintf(buf, n, "%s %s %s%s", m->cfg.arch_name, params, type, kinds > 1 ? " mix" : "");
}

static void test_name(const sl_speed_test *t, char *buf, size_t n)
{
	snprintf(buf, n, "%s%d", t->n_prompt ? "pp" : "tg", t->n_prompt + t->n_gen);
}

/* llama-bench's columns (model, size, params, backend, threads, test,
 * t/s) and one of slimlab's: the weight bytes a decoded token reads times
 * the tokens/s. */
static void table_header(void)
{
	printf("| %-30s | %10s | %10s | %-10s | %7s | %13s | %20s | %11s |\n", "model", "size", "params", "backend",
	       "threads", "test", "t/s", "weight GB/s");
	printf("| ------------------------------ | ---------: | ---------: | ---------- | ------: | ------------: |"
	       " -------------------: | ----------: |\n");
}

static void table_row(const sl_model *m, const char *type, int threads, const sl_speed_test *t, double tok_bytes)
{
	char size[32], params[32], test[32], ts[64], gbs[32] = "";
	double bytes = (double)sl_model_bytes(m), np = (double)sl_model_n_params(m);
	if (bytes < 1024.0 * 1024 * 1024)
		snprintf(size, sizeof size, "%.2f MiB", bytes / 1024 / 1024);
	else
		snprintf(size, sizeof size, "%.2f GiB", bytes / 1024 / 1024 / 1024);
	snprintf(params, sizeof params, np < 1e9 ? "%.2f M" : "%.2f B", np < 1e9 ? np / 1e6 : np / 1e9);
	test_name(t, test, sizeof test);
	snprintf(ts, sizeof ts, "%.2f \xc2\xb1 %.2f", t->avg_ts, t->stddev_ts);
	if (t->n_gen)
		snprintf(gbs, sizeof gbs, "%.2f", tok_bytes * t->avg_ts / 1e9);
	/* ± is two bytes wide in UTF-8 and one column on screen. */
	printf("| %-30s | %10s | %10s | %-10s | %7d | %13s | %21s | %11s |\n", type, size, params, "CPU", threads, test,
	       ts, gbs);
	fflush(stdout);
}

/* What an F32 cache of test t's positions would take. */
static size_t f32_cache_bytes(const sl_model *m, const sl_speed_test *t)
{
	return sl_kv_cache_bytes(m, SL_DT_F32, t->n_prompt + t->n_gen);
}

static void table_footer(const sl_model *m, const sl_speed_test *t, int n, double tok_bytes, double bw, size_t rss,
                         size_t hwm, const sl_huge_usage *hu)
{
	char a[32], b[32];
	putchar('\n');
	for (int i = 0; i < n; i++) {
		char test[32];
		test_name(&t[i], test, sizeof test);
		sl_fmt_bytes((double)t[i].kv_bytes, a, sizeof a);
		printf("%s%s key/value cache %s", i ? ", " : "", test, a);
		if (m->cfg.kv_type != SL_DT_F32) {
			size_t f32 = f32_cache_bytes(m, &t[i]);
			sl_fmt_bytes((double)f32, b, sizeof b);
			printf(" (%s; F32 %s, %.3fx)", sl_dtype_name(m->cfg.kv_type), b, (double)t[i].kv_bytes / (double)f32);
		}
	}
	putchar('\n');
	if (bw > 0) {
		sl_fmt_bytes(tok_bytes, a, sizeof a);
		printf("decoding reads %s of weights per token; memory read bandwidth %.2f GB/s\n", a, bw);
	}
	sl_fmt_bytes((double)rss, a, sizeof a);
	sl_fmt_bytes((double)hwm, b, sizeof b);
	printf("resident %s, peak %s\n", a, b);
	if (hu && hu->bytes) {
		sl_fmt_bytes((double)hu->huge, a, sizeof a);
		sl_fmt_bytes((double)hu->bytes, b, sizeof b);
		printf("weights in 2 MB pages: %s of %s (%.0f%%)\n", a, b, 100.0 * (double)hu->huge / (double)hu->bytes);
		/* a model this large is read from memory */
		if (2 * hu->huge < hu->bytes && hu->bytes >= ((size_t)64 << 20) && m->n_maps)
			printf("(the page cache holds most of the file in 4 KB pieces, which decode slower: see bench in "
			       "slimlab(1))\n");
	}
}

static cJSON *numbers(const double *v, int n, double scale, bool rate, int tokens)
{
	cJSON *a = cJSON_CreateArray();
	for (int i = 0; i < n; i++)
		cJSON_AddItemToArray(a, cJSON_CreateNumber(rate ? tokens / v[i] : (double)(long long)(v[i] * scale)));
	return a;
}

/* One of llama-bench's JSON records (the fields that describe this run)
 * and slimlab's additions. */
static cJSON *json_record(const sl_model *m, const char *path, const char *type, int threads, const sl_speed_test *t,
                          double tok_bytes, double bw, size_t rss, size_t hwm, const sl_huge_usage *hu)
{
	cJSON *o = cJSON_CreateObject();
	int tokens = t->n_prompt + t->n_gen;
	double sum = 0, sq = 0;
	for (int r = 0; r < t->reps; r++)
		sum += t->samples_s[r] * 1e9;
	double avg_ns = sum / t->reps;
	for (int r = 0; r < t->reps; r++)
		sq += (t->samples_s[r] * 1e9 - avg_ns) * (t->samples_s[r] * 1e9 - avg_ns);
	char when[32];
	time_t now = time(NULL);
	strftime(when, sizeof when, "%FT%TZ", gmtime(&now));
	cJSON_AddStringToObject(o, "model_filename", path);
	cJSON_AddStringToObject(o, "model_type", type);
	cJSON_AddNumberToObject(o, "model_size", (double)sl_model_bytes(m));
	cJSON_AddNumberToObject(o, "model_n_params", (double)sl_model_n_params(m));
	cJSON_AddStringToObject(o, "backends", "CPU");
	cJSON_AddNumberToObject(o, "n_threads", threads);
	cJSON_AddNumberToObject(o, "n_prompt", t->n_prompt);
	cJSON_AddNumberToObject(o, "n_gen", t->n_gen);
	cJSON_AddStringToObject(o, "test_time", when);
	cJSON_AddNumberToObject(o, "avg_ns", (double)(long long)avg_ns);
	cJSON_AddNumberToObject(o, "stddev_ns", (double)(long long)(t->reps > 1 ? sqrt(sq / (t->reps - 1)) : 0));
	cJSON_AddNumberToObject(o, "avg_ts", t->avg_ts);
	cJSON_AddNumberToObject(o, "stddev_ts", t->stddev_ts);
	cJSON_AddItemToObject(o, "samples_ns", numbers(t->samples_s, t->reps, 1e9, false, tokens));
	cJSON_AddItemToObject(o, "samples_ts", numbers(t->samples_s, t->reps, 1, true, tokens));
	cJSON_AddNumberToObject(o, "rss_bytes", (double)rss);
	cJSON_AddNumberToObject(o, "hwm_bytes", (double)hwm);
	if (hu) {
		cJSON_AddNumberToObject(o, "weight_bytes", (double)hu->bytes);
		cJSON_AddNumberToObject(o, "weight_huge_page_bytes", (double)hu->huge);
	}
	cJSON_AddNumberToObject(o, "kv_cache_bytes", (double)t->kv_bytes);
	cJSON_AddStringToObject(o, "kv_cache_type", sl_dtype_name(m->cfg.kv_type));
	cJSON_AddNumberToObject(o, "kv_cache_f32_bytes", (double)f32_cache_bytes(m, t));
	if (t->n_gen) {
		cJSON_AddNumberToObject(o, "weight_bytes_per_token", tok_bytes);
		cJSON_AddNumberToObject(o, "weight_gbps", tok_bytes * t->avg_ts / 1e9);
		cJSON_AddNumberToObject(o, "memory_bandwidth_gbps", bw);
	}
	return o;
}

int sl_cmd_bench(int argc, char **argv)
{
	static const struct option opts[] = {
		{"n-prompt", required_argument, 0, 'p'},
		{"n-gen", required_argument, 0, 'n'},
		{"threads", required_argument, 0, 't'},
		{"repetitions", required_argument, 0, 'r'},
		{"json", no_argument, 0, 'j'},
		{"tokenizer", required_argument, 0, 'z'},
		{"kv-cache", required_argument, 0, 'k'},
		{"help", no_argument, 0, 'h'},
		{0, 0, 0, 0},
	};
	long n_prompt = 512, n_gen = 128, threads = 0, reps = 5;
	bool json = false;
	const char *tok = NULL;
	const sl_format *kv = NULL;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "p:n:t:r:h", opts, NULL)) != -1) {
		switch (c) {
		case 'p': if (!cli_parse_int("bench", "-p", optarg, 0, 1 << 20, &n_prompt)) return CLI_USAGE; break;
		case 'n': if (!cli_parse_int("bench", "-n", optarg, 0, 1 << 20, &n_gen)) return CLI_USAGE; break;
		case 't': if (!cli_parse_int("bench", "-t", optarg, 1, 256, &threads)) return CLI_USAGE; break;
		case 'r': if (!cli_parse_int("bench", "-r", optarg, 1, 1000, &reps)) return CLI_USAGE; break;
		case 'j': json = true; break;
		case 'z': tok = optarg; break;
		case 'k':
			kv = sl_format_find(optarg);
			if (!kv || !kv->kv) {
				char known[256];
				sl_format_names(sl_format_is_kv, ", ", known, sizeof known);
				return cli_usage_error("bench", "'%s' is not a KV-cache format (known: %s)", optarg, known);
			}
			break;
		case 'h': fputs(bench_usage, stdout); return CLI_OK;
		default: return cli_usage_error("bench", "unknown option");
		}
	}
	if (optind != argc - 1)
		return cli_usage_error("bench", "expects one MODEL");
	if (!n_prompt && !n_gen)
		return cli_usage_error("bench", "-p 0 and -n 0 leave nothing to measure");
	if (threads)
		sl_kernels_set_threads((int)threads);
	const char *path = argv[optind];
	sl_model *m = cli_load_model(path, tok);
	if (!m)
		return CLI_FAIL;
	if (kv)
		m->cfg.kv_type = kv->dtype;
	char type[128];
	model_type(m, type, sizeof type);
	int nt = sl_kernels_threads(), n_tests = 0;
	double tok_bytes = sl_model_token_bytes(m);
	sl_speed_test tests[2];
	sl_error err = {0};
	sl_status st = SL_OK;
	cli_bar bar;
	cli_bar_init(&bar, "bench");
	if (!json)
		table_header();
	for (int k = 0; k < 2 && !st; k++) {
		int np = k ? 0 : (int)n_prompt, ng = k ? (int)n_gen : 0;
		if (!np && !ng)
			continue;
		st = sl_speed_run(m, np, ng, (int)reps, (uint64_t)(k + 1), &bar.p, &tests[n_tests], &err);
		if (st) {
			sl_speed_test_free(&tests[n_tests]);
			break;
		}
		if (!json) {
			cli_bar_done(&bar);
			table_row(m, type, nt, &tests[n_tests], tok_bytes);
			cli_bar_init(&bar, "bench");
		}
		n_tests++;
	}
	cli_bar_done(&bar);
	/* Read before the bandwidth test, whose buffer would count. */
	size_t rss, hwm;
	sl_resident_memory(&rss, &hwm);
	sl_huge_usage huse;
	const sl_huge_usage *hu = sl_model_huge_usage(m, &huse) ? &huse : NULL;
	double bw = !st && n_gen ? sl_memory_bandwidth() : 0;
	if (!st && json) {
		cJSON *a = cJSON_CreateArray();
		for (int i = 0; i < n_tests; i++)
			cJSON_AddItemToArray(a, json_record(m, path, type, nt, &tests[i], tok_bytes, bw, rss, hwm, hu));
		cli_print_json(a);
	} else if (!st) {
		table_footer(m, tests, n_tests, tok_bytes, bw, rss, hwm, hu);
	}
	for (int i = 0; i < n_tests; i++)
		sl_speed_test_free(&tests[i]);
	sl_model_free(m);
	return st ? cli_error(&err) : CLI_OK;
}
