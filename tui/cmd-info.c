/* slimlab info MODEL: configuration, tokenizer and tensors of a model. */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/tokenizer.h"
#include "core/units.h"

static const char info_usage[] =
	"Usage: slimlab info MODEL [--tokenizer FILE] [--tensors] [--json]\n"
	"Shows a model's architecture, tokenizer, size and (with --tensors) every tensor.\n"
	"MODEL is a GGUF file, a safetensors model (file, index or directory) or a\n"
	"llama2.c checkpoint.\n"
	"  --tokenizer FILE  llama2.c tokenizer.bin (default: beside the model)\n"
	"  --tensors         list every tensor with its format, shape and bytes\n"
	"  --json            print one JSON object instead of text\n";

static const char *rope_name(sl_rope_style s)
{
	return s == SL_ROPE_NORM ? "interleaved" : s == SL_ROPE_NEOX ? "neox" : "none";
}

static void print_json(const sl_model *m)
{
	const sl_config *c = &m->cfg;
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "path", m->path);
	cJSON_AddStringToObject(o, "format", m->format);
	cJSON_AddStringToObject(o, "architecture", c->arch_name);
	cJSON_AddNumberToObject(o, "layers", c->n_layers);
	cJSON_AddNumberToObject(o, "dim", c->dim);
	cJSON_AddNumberToObject(o, "hidden_dim", c->hidden_dim);
	cJSON_AddNumberToObject(o, "heads", c->n_heads);
	cJSON_AddNumberToObject(o, "kv_heads", c->n_kv_heads);
	cJSON_AddNumberToObject(o, "head_dim", c->head_dim);
	cJSON_AddNumberToObject(o, "vocab_size", c->vocab_size);
	cJSON_AddNumberToObject(o, "context", c->max_seq_len);
	cJSON_AddNumberToObject(o, "rope_theta", c->rope_theta);
	cJSON_AddStringToObject(o, "rope", rope_name(c->rope_style));
	cJSON_AddNumberToObject(o, "norm_eps", c->norm_eps);
	cJSON_AddStringToObject(o, "tokenizer", sl_tok_kind_of(m->tok) == SL_TOK_SPM ? "spm" : "bpe");
	cJSON_AddStringToObject(o, "pre_tokenizer", sl_tok_pre_name(m->tok));
	cJSON_AddNumberToObject(o, "params", (double)sl_model_n_params(m));
	cJSON_AddNumberToObject(o, "bytes", (double)sl_model_bytes(m));
	cJSON *ts = cJSON_AddArrayToObject(o, "tensors");
	for (int i = 0; i < m->n_tensors; i++) {
		const sl_tensor *t = m->tensors[i];
		cJSON *j = cJSON_CreateObject();
		cJSON_AddStringToObject(j, "name", t->name);
		cJSON_AddStringToObject(j, "type", sl_dtype_name(t->type));
		cJSON *shape = cJSON_AddArrayToObject(j, "shape");
		for (int d = t->n_dims - 1; d >= 0; d--)
			cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t->ne[d]));
		cJSON_AddNumberToObject(j, "bytes", (double)t->nbytes);
		if (t->lr_a) {
			cJSON_AddNumberToObject(j, "rank", sl_tensor_rank(t));
			cJSON *f = cJSON_AddArrayToObject(j, "factors");
			cJSON_AddItemToArray(f, cJSON_CreateString(t->lr_a->name));
			cJSON_AddItemToArray(f, cJSON_CreateString(t->lr_b->name));
		}
		cJSON_AddItemToArray(ts, j);
	}
	cli_print_json(o);
}

static void print_text(const sl_model *m, bool tensors)
{
	const sl_config *c = &m->cfg;
	char params[32], bytes[32];
	sl_fmt_count((double)sl_model_n_params(m), params, sizeof params);
	sl_fmt_bytes((double)sl_model_bytes(m), bytes, sizeof bytes);
	printf("model        %s (%s)\n", m->path, m->format);
	printf("architecture %s: %d blocks, dim %d, %d heads (%d key/value), head dim %d, mlp %d\n",
	       c->arch_name, c->n_layers, c->dim, c->n_heads, c->n_kv_heads, c->head_dim, c->hidden_dim);
	printf("context      %d positions, rope %s (theta %g), norm eps %g\n", c->max_seq_len,
	       rope_name(c->rope_style), c->rope_theta, c->norm_eps);
	printf("tokenizer    %s, %d tokens, pre-tokenizer %s, bos %d, eos %d\n",
	       sl_tok_kind_of(m->tok) == SL_TOK_SPM ? "sentencepiece bpe" : "byte-level bpe",
	       sl_tok_n_vocab(m->tok), sl_tok_pre_name(m->tok), sl_tok_bos(m->tok), sl_tok_eos(m->tok));
	printf("size         %s parameters, %s (%.2f bits per weight)\n", params, bytes,
	       8.0 * (double)sl_model_bytes(m) / (double)sl_model_n_params(m));
	/* Bytes by storage format. */
	size_t by_type[SL_DT_COUNT] = {0};
	for (int i = 0; i < m->n_tensors; i++)
		by_type[m->tensors[i]->type] += m->tensors[i]->nbytes;
	printf("formats     ");
	for (int t = 0; t < SL_DT_COUNT; t++)
		if (by_type[t]) {
			sl_fmt_bytes((double)by_type[t], bytes, sizeof bytes);
			printf(" %s %s;", sl_dtype_name(t), bytes);
		}
	printf("\n");
	int factored = 0, lo = 0, hi = 0;
	for (int i = 0; i < m->n_tensors; i++) {
		int r = sl_tensor_rank(m->tensors[i]);
		if (r) {
			lo = factored++ ? (r < lo ? r : lo) : r;
			hi = r > hi ? r : hi;
		}
	}
	if (factored)
		printf("low rank     %d weights are products of two factors (rank %d to %d), counted by their factors\n",
		       factored, lo, hi);
	if (!tensors)
		return;
	printf("\n%-32s %-6s %-16s %12s\n", "tensor", "format", "shape", "bytes");
	for (int i = 0; i < m->n_tensors; i++) {
		const sl_tensor *t = m->tensors[i];
		char shape[64];
		sl_tensor_shape_str(t, shape, sizeof shape);
		if (t->lr_a)
			printf("%-32s %-6s %-16s %12s rank %d: %s x %s\n", t->name, "-", shape, "-", sl_tensor_rank(t),
			       t->lr_a->name, t->lr_b->name);
		else
			printf("%-32s %-6s %-16s %12zu\n", t->name, sl_dtype_name(t->type), shape, t->nbytes);
	}
}

int sl_cmd_info(int argc, char **argv)
{
	static const struct option opts[] = {
		{"tokenizer", required_argument, 0, 't'},
		{"tensors", no_argument, 0, 'T'},
		{"json", no_argument, 0, 'j'},
		{"help", no_argument, 0, 'h'},
		{0, 0, 0, 0},
	};
	const char *tok = NULL;
	bool json = false, tensors = false;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "t:h", opts, NULL)) != -1) {
		switch (c) {
		case 't': tok = optarg; break;
		case 'T': tensors = true; break;
		case 'j': json = true; break;
		case 'h': fputs(info_usage, stdout); return CLI_OK;
		default: return cli_usage_error("info", "unknown option");
		}
	}
	if (optind != argc - 1)
		return cli_usage_error("info", "expects one MODEL");
	sl_model *m = cli_load_model(argv[optind], tok);
	if (!m)
		return CLI_FAIL;
	if (json)
		print_json(m);
	else
		print_text(m, tensors);
	sl_model_free(m);
	return CLI_OK;
}
