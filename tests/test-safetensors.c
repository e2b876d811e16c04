/* Hugging Face safetensors models: stories260K rewritten the way HF stores
 * Llama (half-split rotary rows; one file, two shards, F16/BF16 variants;
 * its tied head stored as the embedding, the head or both) must compute the
 * GGUF model's logits; TinyStories-656K as its trainer published it must
 * agree with llama.cpp's Q8_0 conversion and its tokenizer.json with
 * Hugging Face's tokenizers; a tiny GPT-2 (Conv1D weights stored [in, out])
 * must match an independent reference forward written here; hostile files
 * and folders get clear errors, never a crash. */
#define _GNU_SOURCE /* nftw, to clean up */
#include <cjson/cJSON.h>
#include <ftw.h>
#include <stdint.h>
#include <sys/stat.h>

#include "core/fileio.h"
#include "core/forward.h"
#include "core/compress.h"
#include "core/gguf.h"
#include "core/model.h"
#include "core/tokenizer.h"
#include "test.h"

/* ---- a safetensors writer ------------------------------------------ */

typedef struct {
	char name[96];
	const char *dtype;
	int n_dims;
	int64_t shape[4]; /* outermost first, as safetensors lists it */
	void *data;
	size_t nbytes;
} st_tensor;

typedef struct {
	st_tensor t[128];
	int n;
	const char *meta; /* more "name": "value" pairs for __metadata__, or NULL */
} st_list;

/* Appends a tensor holding the n floats at x, stored as dtype. */
static void st_add(st_list *l, const char *name, const char *dtype, int n_dims, const int64_t *shape,
                   const float *x)
{
	st_tensor *t = &l->t[l->n++];
	size_t n = 1;
	snprintf(t->name, sizeof t->name, "%s", name);
	t->dtype = dtype;
	t->n_dims = n_dims;
	for (int i = 0; i < n_dims; i++) {
		t->shape[i] = shape[i];
		n *= (size_t)shape[i];
	}
	bool f32 = !strcmp(dtype, "F32");
	t->nbytes = n * (f32 ? 4 : 2);
	t->data = malloc(t->nbytes);
	uint16_t *h = t->data;
	for (size_t i = 0; i < n; i++) {
		if (f32)
			((float *)t->data)[i] = x[i];
		else
			h[i] = !strcmp(dtype, "F16") ? sl_f32_to_f16(x[i]) : sl_f32_to_bf16(x[i]);
	}
}

static void st_free(st_list *l)
{
	for (int i = 0; i < l->n; i++)
		free(l->t[i].data);
	l->n = 0;
}

static void write_bytes(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	if (!f || (n && fwrite(p, n, 1, f) != 1) || fclose(f)) {
		perror(path);
		exit(99);
	}
}

/* A safetensors file: 8-byte header length (hlen, or the true length when
 * 0), the header text, then data. */
static void write_raw(const char *path, const char *header, uint64_t hlen, const void *data, size_t n)
{
	sl_buf b = {0};
	uint64_t len = hlen ? hlen : strlen(header);
	sl_buf_put(&b, &len, 8);
	sl_buf_put(&b, header, strlen(header));
	sl_buf_put(&b, data, n);
	write_bytes(path, b.data, b.len);
	sl_buf_free(&b);
}

/* Writes tensors [from, to) of l into path. */
static void st_write(const char *path, const st_list *l, int from, int to)
{
	sl_buf h = {0}, d = {0};
	sl_buf_printf(&h, "{\"__metadata__\":{\"format\":\"pt\"%s%s}", l->meta ? "," : "", l->meta ? l->meta : "");
	for (int i = from; i < to; i++) {
		const st_tensor *t = &l->t[i];
		sl_buf_printf(&h, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[", t->name, t->dtype);
		for (int k = 0; k < t->n_dims; k++)
			sl_buf_printf(&h, "%s%lld", k ? "," : "", (long long)t->shape[k]);
		sl_buf_printf(&h, "],\"data_offsets\":[%zu,%zu]}", d.len, d.len + t->nbytes);
		sl_buf_put(&d, t->data, t->nbytes);
	}
	sl_buf_put(&h, "}", 1);
	while (h.len % 8) /* as the reference writer pads, so data starts aligned */
		sl_buf_put(&h, " ", 1);
	sl_buf_put(&h, "", 1);
	write_raw(path, h.data, 0, d.data, d.len);
	sl_buf_free(&h);
	sl_buf_free(&d);
}

static void write_json(const char *path, cJSON *j)
{
	char *s = cJSON_PrintUnformatted(j);
	write_bytes(path, s, strlen(s));
	free(s);
	cJSON_Delete(j);
}

static char *path_in(const char *dir, const char *name)
{
	static char buf[32][512];
	static int slot;
	char *p = buf[slot++ % 32];
	snprintf(p, 512, "%s/%s", dir, name);
	return p;
}

static const char *subdir(const char *name)
{
	static char buf[16][512];
	static int slot;
	char *p = buf[slot++ % 16];
	snprintf(p, 512, "%s/%s", test_tmpdir(), name);
	mkdir(p, 0755);
	return p;
}

/* ---- stories260K as Hugging Face would store it ---------------------- */

static const struct {
	const char *gguf, *hf;
} llama_names[] = {
	{"attn_norm", "input_layernorm"},    {"attn_q", "self_attn.q_proj"},
	{"attn_k", "self_attn.k_proj"},      {"attn_v", "self_attn.v_proj"},
	{"attn_output", "self_attn.o_proj"}, {"ffn_norm", "post_attention_layernorm"},
	{"ffn_gate", "mlp.gate_proj"},       {"ffn_up", "mlp.up_proj"},
	{"ffn_down", "mlp.down_proj"},
};

static void hf_llama_name(const char *gguf, char *out, size_t n)
{
	int layer;
	char part[64];
	if (sscanf(gguf, "blk.%d.%63[^.].weight", &layer, part) == 2) {
		for (size_t i = 0; i < sizeof llama_names / sizeof llama_names[0]; i++)
			if (!strcmp(part, llama_names[i].gguf)) {
				snprintf(out, n, "model.layers.%d.%s.weight", layer, llama_names[i].hf);
				return;
			}
	}
	snprintf(out, n, "%s", !strcmp(gguf, "token_embd.weight")  ? "model.embed_tokens.weight"
	                       : !strcmp(gguf, "output_norm.weight") ? "model.norm.weight"
	                       : !strcmp(gguf, "output.weight")      ? "lm_head.weight"
	                                                             : "?");
}

/* Row r of an attn_q/attn_k weight in HF's layout comes from this row of
 * GGUF's: llama.cpp's converter interleaves each head's two rotary halves
 * (HF rows j and hd/2 + j become GGUF rows 2j and 2j + 1). */
static int64_t gguf_row(int64_t r, int hd)
{
	int64_t head = r / hd, i = r % hd, half = hd / 2;
	return head * hd + (i % half) * 2 + i / half;
}

static int rotary_head_dim(const sl_model *g, const char *name)
{
	return strstr(name, "attn_q.weight") || strstr(name, "attn_k.weight") ? g->cfg.head_dim : 0;
}

/* dtype "F32", or "mixed": the tensors cycle through F32, F16 and BF16. */
static void export_llama(const sl_model *g, const char *dtype, st_list *l)
{
	static const char *cycle[3] = {"F32", "F16", "BF16"};
	for (int i = 0; i < g->n_tensors; i++) {
		const sl_tensor *t = g->tensors[i];
		int64_t rows = sl_tensor_nrows(t), cols = t->ne[0];
		float *x = malloc((size_t)(rows * cols) * sizeof *x);
		float *y = malloc((size_t)(rows * cols) * sizeof *y);
		sl_tensor_rows_to_f32(t, 0, rows, x);
		int hd = rotary_head_dim(g, t->name);
		for (int64_t r = 0; r < rows; r++)
			memcpy(y + r * cols, x + (hd ? gguf_row(r, hd) : r) * cols, (size_t)cols * sizeof *y);
		char name[96];
		hf_llama_name(t->name, name, sizeof name);
		int64_t shape[2] = {rows, cols};
		st_add(l, name, strcmp(dtype, "mixed") ? dtype : cycle[i % 3], t->n_dims,
		       t->n_dims == 2 ? shape : &cols, y);
		free(x);
		free(y);
	}
}

/* tie: 1 or 0 for tie_word_embeddings true or false, -1 to leave it out
 * (transformers then unties a Llama). */
static void write_llama_config(const sl_model *g, const char *dir, int tie)
{
	const sl_config *c = &g->cfg;
	cJSON *j = cJSON_CreateObject();
	const char *arch[] = {"LlamaForCausalLM"};
	cJSON_AddItemToObject(j, "architectures", cJSON_CreateStringArray(arch, 1));
	cJSON_AddNumberToObject(j, "hidden_size", c->dim);
	cJSON_AddNumberToObject(j, "intermediate_size", c->hidden_dim);
	cJSON_AddNumberToObject(j, "num_hidden_layers", c->n_layers);
	cJSON_AddNumberToObject(j, "num_attention_heads", c->n_heads);
	cJSON_AddNumberToObject(j, "num_key_value_heads", c->n_kv_heads);
	cJSON_AddNumberToObject(j, "vocab_size", c->vocab_size);
	cJSON_AddNumberToObject(j, "max_position_embeddings", c->max_seq_len);
	cJSON_AddNumberToObject(j, "rms_norm_eps", c->norm_eps);
	cJSON_AddNumberToObject(j, "rope_theta", c->rope_theta);
	cJSON_AddStringToObject(j, "hidden_act", "silu");
	cJSON_AddNullToObject(j, "rope_scaling");
	if (tie >= 0)
		cJSON_AddBoolToObject(j, "tie_word_embeddings", tie);
	write_json(path_in(dir, "config.json"), j);
}

/* ---- tokenizer.json as HF's LlamaConverter writes it ---------------- */

typedef struct {
	int l, r, piece;
	float score;
} merge;

static int cmp_merge(const void *a, const void *b)
{
	const merge *x = a, *y = b;
	if (x->score != y->score)
		return x->score > y->score ? -1 : 1;
	if (x->piece != y->piece)
		return x->piece - y->piece;
	return x->l != y->l ? x->l - y->l : x->r - y->r;
}

static int vocab_id(char **pieces, int n, const char *s, size_t len)
{
	for (int i = 0; i < n; i++)
		if (strlen(pieces[i]) == len && !memcmp(pieces[i], s, len))
			return i;
	return -1;
}

/* Vocabulary and scores from the GGUF; merges derived as the converter
 * does: every split of a piece into two pieces of the vocabulary, ordered
 * by the merged piece's score, best first. */
static void write_llama_tokenizer(const char *gguf_path, const char *dir)
{
	sl_gguf *g;
	sl_error err;
	if (sl_gguf_open(gguf_path, &g, &err)) {
		fprintf(stderr, "%s\n", err.msg);
		exit(99);
	}
	const sl_gguf_kv *toks = sl_gguf_find(g, "tokenizer.ggml.tokens");
	const sl_gguf_kv *scores = sl_gguf_find(g, "tokenizer.ggml.scores");
	const sl_gguf_kv *types = sl_gguf_find(g, "tokenizer.ggml.token_type");
	int n = (int)toks->n;
	char **pieces = malloc((size_t)n * sizeof *pieces);
	for (int i = 0; i < n; i++) {
		size_t len;
		const char *s = sl_gguf_arr_str(toks, (uint64_t)i, &len);
		pieces[i] = malloc(len + 1);
		memcpy(pieces[i], s, len);
		pieces[i][len] = 0;
	}
	cJSON *vocab = cJSON_CreateObject(), *added = cJSON_CreateArray();
	merge *merges = NULL;
	int n_merges = 0;
	for (int i = 0; i < n; i++) {
		cJSON_AddNumberToObject(vocab, pieces[i], i);
		int type = (int)sl_gguf_arr_num(types, (uint64_t)i);
		if (type == SL_TOKEN_CONTROL || type == SL_TOKEN_UNKNOWN) {
			cJSON *a = cJSON_CreateObject();
			cJSON_AddNumberToObject(a, "id", i);
			cJSON_AddStringToObject(a, "content", pieces[i]);
			cJSON_AddBoolToObject(a, "single_word", false);
			cJSON_AddBoolToObject(a, "lstrip", false);
			cJSON_AddBoolToObject(a, "rstrip", false);
			cJSON_AddBoolToObject(a, "normalized", false);
			cJSON_AddBoolToObject(a, "special", true);
			cJSON_AddItemToArray(added, a);
		}
		size_t len = strlen(pieces[i]);
		for (size_t k = 1; k < len; k++) {
			if (((unsigned char)pieces[i][k] & 0xC0) == 0x80)
				continue; /* splits fall between characters, not inside one */
			int l = vocab_id(pieces, n, pieces[i], k), r = vocab_id(pieces, n, pieces[i] + k, len - k);
			if (l < 0 || r < 0)
				continue;
			merges = realloc(merges, (size_t)(n_merges + 1) * sizeof *merges);
			merges[n_merges++] = (merge){l, r, i, (float)sl_gguf_arr_num(scores, (uint64_t)i)};
		}
	}
	qsort(merges, (size_t)n_merges, sizeof *merges, cmp_merge);
	cJSON *mlist = cJSON_CreateArray();
	for (int i = 0; i < n_merges; i++) {
		char buf[256];
		snprintf(buf, sizeof buf, "%s %s", pieces[merges[i].l], pieces[merges[i].r]);
		cJSON_AddItemToArray(mlist, cJSON_CreateString(buf));
	}
	const char *json =
		"{\"version\":\"1.0\",\"truncation\":null,\"padding\":null,"
		"\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":["
		"{\"type\":\"Prepend\",\"prepend\":\"\xe2\x96\x81\"},"
		"{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"\xe2\x96\x81\"}]},"
		"\"pre_tokenizer\":null,"
		"\"post_processor\":{\"type\":\"TemplateProcessing\","
		"\"single\":[{\"SpecialToken\":{\"id\":\"<s>\",\"type_id\":0}},{\"Sequence\":{\"id\":\"A\",\"type_id\":0}}],"
		"\"pair\":[{\"SpecialToken\":{\"id\":\"<s>\",\"type_id\":0}},{\"Sequence\":{\"id\":\"A\",\"type_id\":0}},"
		"{\"SpecialToken\":{\"id\":\"<s>\",\"type_id\":1}},{\"Sequence\":{\"id\":\"B\",\"type_id\":1}}],"
		"\"special_tokens\":{\"<s>\":{\"id\":\"<s>\",\"ids\":[1],\"tokens\":[\"<s>\"]}}},"
		"\"decoder\":{\"type\":\"Sequence\",\"decoders\":["
		"{\"type\":\"Replace\",\"pattern\":{\"String\":\"\xe2\x96\x81\"},\"content\":\" \"},"
		"{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"},"
		"{\"type\":\"Strip\",\"content\":\" \",\"start\":1,\"stop\":0}]},"
		"\"model\":{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":\"<unk>\","
		"\"continuing_subword_prefix\":null,\"end_of_word_suffix\":null,\"fuse_unk\":true,"
		"\"byte_fallback\":true,\"ignore_merges\":false}}";
	cJSON *root = cJSON_Parse(json);
	cJSON_AddItemToObject(root, "added_tokens", added);
	cJSON *model = cJSON_GetObjectItem(root, "model");
	cJSON_AddItemToObject(model, "vocab", vocab);
	cJSON_AddItemToObject(model, "merges", mlist);
	write_json(path_in(dir, "tokenizer.json"), root);
	for (int i = 0; i < n; i++)
		free(pieces[i]);
	free(pieces);
	free(merges);
	sl_gguf_close(g);
}

/* ---- comparisons ----------------------------------------------------- */

/* Loading path must fail with st and a message holding want (and want2). */
static void expect_fail(const char *path, sl_status st, const char *want, const char *want2)
{
	sl_model *m = NULL;
	sl_error err = {0};
	sl_status got = sl_model_load(path, NULL, &m, &err);
	CHECK(got == st && !m && strstr(err.msg, want) && (!want2 || strstr(err.msg, want2)),
	      "%s: status %d (want %d), message '%s' (want '%s'%s%s)", path, got, st, err.msg, want,
	      want2 ? ", " : "", want2 ? want2 : "");
	sl_model_free(m);
}

static int argmax(const float *x, int n)
{
	int best = 0;
	for (int i = 1; i < n; i++)
		if (x[i] > x[best])
			best = i;
	return best;
}

/* Largest |a - b| over the logits of the first n tokens. With misses, also
 * how many positions have a top-1 token in b other than a's although a's
 * leads its runner-up by more than twice that largest difference (where
 * no difference within it could change the order). */
static double logit_diff(const sl_model *a, const sl_model *b, const int32_t *tokens, int n, int *misses)
{
	int V = a->cfg.vocab_size;
	float *la = malloc((size_t)n * V * sizeof *la), *lb = malloc((size_t)n * V * sizeof *lb);
	sl_state *sa, *sb;
	sl_error err;
	double worst = INFINITY;
	if (sl_state_new(a, 0, &sa, &err) || sl_state_new(b, 0, &sb, &err)) {
		CHECK(0, "state: %s", err.msg);
	} else {
		if (sl_forward(sa, tokens, n, la, 0, &err) || sl_forward(sb, tokens, n, lb, 0, &err)) {
			CHECK(0, "forward: %s", err.msg);
		} else {
			worst = 0;
			for (size_t i = 0; i < (size_t)n * V; i++)
				if (fabs((double)la[i] - lb[i]) > worst)
					worst = fabs((double)la[i] - lb[i]);
			for (int t = 0; misses && t < n; t++) {
				const float *x = la + (size_t)t * V;
				int top = argmax(x, V);
				float second = -INFINITY;
				for (int v = 0; v < V; v++)
					if (v != top && x[v] > second)
						second = x[v];
				*misses += x[top] - second > 2 * worst && argmax(lb + (size_t)t * V, V) != top;
			}
		}
		sl_state_free(sa);
		sl_state_free(sb);
	}
	free(la);
	free(lb);
	return worst;
}

/* Every GGUF weight is in h, element for element, within the rounding of
 * its stored type (relative: F32 0, F16 2^-11, BF16 2^-8). */
static void check_weights(const sl_model *g, const sl_model *h, const st_list *l, const char *what)
{
	int bad = 0;
	for (int i = 0; i < g->n_tensors; i++) {
		const sl_tensor *a = g->tensors[i];
		const sl_tensor *b = !strcmp(a->name, "output.weight") ? h->output : sl_model_tensor(h, a->name);
		CHECK(b && b->ne[0] == a->ne[0] && b->ne[1] == a->ne[1], "%s: %s shape", what, a->name);
		if (!b || b->ne[0] != a->ne[0] || b->ne[1] != a->ne[1])
			continue;
		const char *dt = l->t[i].dtype;
		double rel = !strcmp(dt, "F32") ? 0 : !strcmp(dt, "F16") ? 0x1p-11 : 0x1p-8;
		int64_t rows = sl_tensor_nrows(a), cols = a->ne[0];
		float *x = malloc((size_t)(rows * cols) * 4), *y = malloc((size_t)(rows * cols) * 4);
		sl_tensor_rows_to_f32(a, 0, rows, x);
		sl_tensor_rows_to_f32(b, 0, rows, y);
		int hd = rotary_head_dim(g, a->name);
		for (int64_t r = 0; r < rows; r++)
			for (int64_t k = 0; k < cols; k++) {
				double want = x[(hd ? gguf_row(r, hd) : r) * cols + k], have = y[r * cols + k];
				if (fabs(have - want) > rel * fabs(want) + (rel ? 0x1p-24 : 0) && bad++ < 3)
					CHECK(0, "%s: %s row %lld col %lld: %g vs %g", what, a->name, (long long)r,
					      (long long)k, have, want);
			}
		free(x);
		free(y);
	}
	CHECK(bad == 0, "%s: %d weights differ", what, bad);
}

/* tokenizer.json must split text as the GGUF's SentencePiece vocabulary does. */
static void check_same_tokens(const sl_tokenizer *a, const sl_tokenizer *b)
{
	static const char *texts[] = {
		"Once upon a time, there was a little girl named Lily. She loved cats.",
		"  Tom said: \"Zzz... 42!\"\nThe end.",
	};
	for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
		int32_t *x = NULL, *y = NULL;
		size_t nx = 0, ny = 0;
		sl_error err;
		const char *t = texts[i];
		CHECK(sl_tok_encode(a, t, strlen(t), true, &x, &nx, &err) == SL_OK, "encode (gguf): %s", err.msg);
		CHECK(sl_tok_encode(b, t, strlen(t), true, &y, &ny, &err) == SL_OK, "encode (tokenizer.json): %s",
		      err.msg);
		CHECK(nx && nx == ny && !memcmp(x, y, nx * sizeof *x),
		      "tokenizer.json encodes '%s' as the GGUF vocabulary does (%zu vs %zu ids)", t, ny, nx);
		free(x);
		free(y);
	}
}

/* Loads path and compares it with g: weights, logits, configuration. */
static void check_llama(const sl_model *g, const char *path, const st_list *l, const int32_t *toks,
                        int n, double tol, bool tied)
{
	sl_model *h = test_load(path);
	if (!h)
		return;
	CHECK(!strcmp(h->format, "safetensors"), "%s: format %s", path, h->format);
	CHECK(h->cfg.rope_style == SL_ROPE_NEOX && h->cfg.arch == SL_ARCH_LLAMA &&
	      !strcmp(h->cfg.arch_name, "llama"), "%s: rope style %d, arch %d", path, h->cfg.rope_style,
	      h->cfg.arch);
	CHECK(h->cfg.n_kv_heads == g->cfg.n_kv_heads && h->cfg.max_seq_len == g->cfg.max_seq_len &&
	      h->cfg.hidden_dim == g->cfg.hidden_dim, "%s: config", path);
	CHECK((h->output == h->tok_embd) == tied, "%s: the head is %s", path,
	      h->output == h->tok_embd ? "tied" : "not tied");
	check_weights(g, h, l, path);
	double d = logit_diff(g, h, toks, n, NULL);
	printf("%s: max |logit difference| over %d tokens: %.3g (bound %g)\n", path, n, d, tol);
	CHECK(d <= tol, "%s: logits differ by %g", path, d);
	sl_model_free(h);
}

/* A folder holding g's tensors with the embedding stored under the name
 * embd (and, when head is not NULL, a head of zeros beside it; the
 * GGUF's own copy of the head is left out), the __metadata__ pairs meta and
 * tie_word_embeddings as tie says. */
static const char *write_tied(const sl_model *g, const char *fx, const char *name, const char *embd,
                              const char *head, const char *meta, int tie)
{
	st_list *l = calloc(1, sizeof *l);
	const char *dir = subdir(name);
	export_llama(g, "F32", l);
	for (int i = 0; i < l->n; i++)
		if (!strcmp(l->t[i].name, "lm_head.weight")) {
			free(l->t[i].data);
			l->t[i--] = l->t[--l->n];
		} else if (!strcmp(l->t[i].name, "model.embed_tokens.weight")) {
			snprintf(l->t[i].name, sizeof l->t[i].name, "%s", embd);
		}
	if (head) {
		float *zeros = calloc((size_t)g->cfg.vocab_size * g->cfg.dim, sizeof *zeros);
		st_add(l, head, "F32", 2, (int64_t[]){g->cfg.vocab_size, g->cfg.dim}, zeros);
		free(zeros);
	}
	l->meta = meta;
	st_write(path_in(dir, "model.safetensors"), l, 0, l->n);
	write_llama_config(g, dir, tie);
	write_llama_tokenizer(fx, dir);
	st_free(l);
	free(l);
	return dir;
}

/* stories260K's head is its embedding (its GGUF stores a copy as
 * output.weight). A tied checkpoint stores that one matrix as the
 * embedding, as the head (the way TinyStories-656K was published) or as
 * both, with or without the safetensors alias naming the other, with or
 * without tie_word_embeddings: each must compute the GGUF model's logits. */
static void test_tied(const sl_model *g, const char *fx, const int32_t *ids, int n)
{
	static const struct {
		const char *name, *embd, *head, *meta;
		int tie;
	} cases[] = {
		{"tied-embd", "model.embed_tokens.weight", NULL, NULL, 1},
		{"tied-head", "lm_head.weight", NULL, NULL, 1},
		{"tied-head-alias", "lm_head.weight", NULL, "\"model.embed_tokens.weight\":\"lm_head.weight\"", 1},
		{"alias-head", "lm_head.weight", NULL, "\"model.embed_tokens.weight\":\"lm_head.weight\"", -1},
		{"alias-embd", "model.embed_tokens.weight", NULL, "\"lm_head.weight\":\"model.embed_tokens.weight\"", 0},
		/* Both stored: the model uses the embedding, as transformers ties them. */
		{"tied-both", "model.embed_tokens.weight", "lm_head.weight", NULL, 1},
	};
	st_list *l = calloc(1, sizeof *l);
	export_llama(g, "F32", l); /* what check_weights compares with */
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		check_llama(g, write_tied(g, fx, cases[i].name, cases[i].embd, cases[i].head, cases[i].meta,
		                          cases[i].tie), l, ids, n, 1e-4, true);
	st_free(l);
	free(l);
	/* Untied, the head alone is not enough: the message says what to do. */
	expect_fail(write_tied(g, fx, "untied-head", "lm_head.weight", NULL, NULL, -1), SL_ERR_FORMAT,
	            "model.embed_tokens.weight", "tie_word_embeddings");
}

static void test_llama(void)
{
	const char *fx = test_fixture("models/stories260K.gguf");
	if (!fx)
		return;
	sl_model *g = test_load(fx);
	if (!g)
		return;
	/* BOS and the start of the reference greedy story. */
	static const int32_t ids[] = {1, 403, 407, 261, 378, 432, 383, 286, 268, 298, 304, 261};
	const int n = (int)(sizeof ids / sizeof ids[0]);

	st_list *l = calloc(1, sizeof *l);
	const char *one = subdir("llama"), *two = subdir("llama-sharded"), *half = subdir("llama-half");
	export_llama(g, "F32", l);
	for (int k = 0; k < 2; k++) {
		const char *dir = k ? two : one;
		write_llama_config(g, dir, 0);
		write_llama_tokenizer(fx, dir);
	}
	st_write(path_in(one, "model.safetensors"), l, 0, l->n);
	st_write(path_in(two, "model-00001-of-00002.safetensors"), l, 0, l->n / 2);
	st_write(path_in(two, "model-00002-of-00002.safetensors"), l, l->n / 2, l->n);
	cJSON *index = cJSON_CreateObject(), *wm = cJSON_CreateObject();
	cJSON_AddItemToObject(cJSON_AddObjectToObject(index, "metadata"), "total_size", cJSON_CreateNumber(0));
	for (int i = 0; i < l->n; i++)
		cJSON_AddStringToObject(wm, l->t[i].name,
		                        i < l->n / 2 ? "model-00001-of-00002.safetensors"
		                                     : "model-00002-of-00002.safetensors");
	cJSON_AddItemToObject(index, "weight_map", wm);
	write_json(path_in(two, "model.safetensors.index.json"), index);

	check_llama(g, one, l, ids, n, 1e-4, false);
	check_llama(g, path_in(one, "model.safetensors"), l, ids, n, 1e-4, false);
	check_llama(g, two, l, ids, n, 1e-4, false);
	check_llama(g, path_in(two, "model.safetensors.index.json"), l, ids, n, 1e-4, false);

	sl_model *h = test_load(one);
	if (h) {
		const sl_tensor *q = sl_model_tensor(h, "blk.0.attn_q.weight");
		CHECK(q && !q->owned, "F32 weights point into the mapped file");
		check_same_tokens(g->tok, h->tok);
		sl_model_free(h);
	}

	/* Half precision: each weight rounds by at most 2^-8 (BF16) of itself;
	 * through five blocks the logits of this model move by a few hundredths. */
	st_free(l);
	export_llama(g, "mixed", l);
	write_llama_config(g, half, 0);
	write_llama_tokenizer(fx, half);
	st_write(path_in(half, "model.safetensors"), l, 0, l->n);
	check_llama(g, half, l, ids, n, 0.1, false);
	st_free(l);
	free(l);
	test_tied(g, fx, ids, n);
	sl_model_free(g);
}

/* ---- TinyStories-656K as its trainer published it -------------------- */

/* Every weight of the safetensors model h against llama.cpp's Q8_0
 * conversion q: a Q8_0 block stores round(x / d) with d = amax / 127 (its
 * largest magnitude over 127) as F16, so a weight comes back within d/2 of
 * the rounding plus 127 d 2^-11 of d's own; norms stay F32, exact. */
static void check_q8_weights(const sl_model *q, const sl_model *h)
{
	double worst = 0;
	int bad = 0;
	for (int i = 0; i < q->n_tensors; i++) {
		const sl_tensor *a = q->tensors[i], *b = sl_model_tensor(h, a->name);
		REQUIRE(b && b->ne[0] == a->ne[0] && sl_tensor_nrows(b) == sl_tensor_nrows(a), "656K: %s shape",
		        a->name);
		int64_t rows = sl_tensor_nrows(a), cols = a->ne[0];
		float *x = malloc((size_t)(rows * cols) * 4), *y = malloc((size_t)(rows * cols) * 4);
		sl_tensor_rows_to_f32(a, 0, rows, x);
		sl_tensor_rows_to_f32(b, 0, rows, y);
		int hd = rotary_head_dim(q, a->name);
		bool q8 = a->type == SL_DT_Q8_0;
		for (int64_t r = 0; r < rows; r++) {
			const float *want = y + r * cols, *have = x + (hd ? gguf_row(r, hd) : r) * cols;
			for (int64_t k0 = 0; k0 < cols; k0 += 32) {
				double amax = 0;
				for (int64_t k = k0; k < k0 + 32 && k < cols; k++)
					amax = fmax(amax, fabs(want[k]));
				double bound = q8 ? amax / 127 * (0.5 + 127 * 0x1p-11) + 1e-7 : 0;
				for (int64_t k = k0; k < k0 + 32 && k < cols; k++) {
					double e = fabs((double)have[k] - want[k]);
					worst = fmax(worst, e);
					if (e > bound && bad++ < 3)
						CHECK(0, "656K: %s row %lld col %lld: %g vs %g (bound %g)", a->name,
						      (long long)r, (long long)k, have[k], want[k], bound);
				}
			}
		}
		free(x);
		free(y);
	}
	printf("tinystories656K: largest |Q8_0 weight - safetensors weight|: %.4f\n", worst);
	CHECK(bad == 0, "656K: %d weights lie outside Q8_0's rounding of the safetensors weights", bad);
}

/* The logits of a over the tokens of llama.cpp's greedy story (the
 * fixtures README) against the GGUF's, within tol, with top-1 agreeing
 * wherever a difference within the largest one could not change it. */
static void check_656k_logits(const sl_model *q, const sl_model *a, const char *what, double tol)
{
	static const char story[] =
		"Once upon a time, a little girl named Lily lived in a small house with her mom. Lily loved "
		"to play with her toys and read her favorite book. One day, she found a big, round book in "
		"her room. It was shiny and shiny.";
	int32_t *ids;
	size_t n;
	sl_error err;
	REQUIRE(sl_tok_encode(q->tok, story, strlen(story), true, &ids, &n, &err) == SL_OK, "%s", err.msg);
	int misses = 0;
	double d = logit_diff(q, a, ids, (int)n, &misses);
	printf("tinystories656K %s: max |logit difference| from the Q8_0 GGUF over %zu tokens: %.3g (bound %g)\n",
	       what, n, d, tol);
	CHECK(d <= tol, "656K %s: logits differ from the Q8_0 GGUF's by %g", what, d);
	CHECK(misses == 0, "656K %s: %d clear top-1 tokens differ from the GGUF's", what, misses);
	free(ids);
}

/* Token ids of texts (with BOS) as Hugging Face's tokenizers 0.23.2 gives
 * them for the checkpoint's tokenizer.json (Tokenizer.fromFile, encode).
 * Its merges make whole phrases ("little▁girl▁named▁"); the GGUF, whose
 * converter turned them into SentencePiece scores, splits some of those
 * otherwise, and gives the same ids on the rest (gguf_same). */
static void check_656k_tokens(const sl_tokenizer *gguf, const sl_tokenizer *json)
{
	static const struct {
		const char *text;
		int32_t ids[24]; /* ended by 0, <unk>, which none holds */
		bool gguf_same;
	} cases[] = {
		{"Once upon a time", {1, 80, 147, 201, 282, 57}, true},
		{"Lily and Ben played with a big red ball.", {1, 80, 1918, 351, 1834, 1714, 10}, true},
		{"  Tom said: \"Zzz... 42!\"\nThe end.",
		 {1, 80, 80, 80, 388, 174, 1608, 5, 51, 1155, 10, 10, 84, 15, 13, 1983, 183, 10}, true},
		{"Once upon a time, there was a little girl named Lily. She loved cats.",
		 {1, 80, 147, 201, 282, 215, 286, 598, 1662, 1145, 476, 71, 10}, false},
		{"The sun was hot. Max wanted to swim in the lake, but Mom said no.",
		 {1, 80, 247, 938, 115, 393, 72, 1012, 265, 570, 182, 238, 291, 63, 1305, 927, 386, 142, 10}, false},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		size_t n = 0;
		while (n < 24 && cases[i].ids[n])
			n++;
		for (int k = 0; k < (cases[i].gguf_same ? 2 : 1); k++) {
			int32_t *ids = NULL;
			size_t got = 0;
			sl_error err;
			const char *t = cases[i].text;
			CHECK(sl_tok_encode(k ? gguf : json, t, strlen(t), true, &ids, &got, &err) == SL_OK, "encode: %s",
			      err.msg);
			CHECK(got == n && !memcmp(ids, cases[i].ids, n * sizeof *ids),
			      "656K %s encodes '%s' as tokenizers does (%zu vs %zu ids)",
			      k ? "GGUF vocabulary" : "tokenizer.json", t, got, n);
			free(ids);
		}
	}
}

static void test_tinystories656k(void)
{
	const char *dir = test_fixture("models/tinystories656K"),
		   *qpath = test_fixture("models/TinyStories-656K-Q8_0.gguf");
	if (!dir || !qpath)
		return;
	sl_model *h = test_load(dir), *q = test_load(qpath);
	if (h && q) {
		CHECK(h->cfg.dim == 128 && h->cfg.n_layers == 2 && h->cfg.n_kv_heads == 4 &&
		      h->cfg.vocab_size == 2048 && h->output == h->tok_embd,
		      "656K: dim %d, %d layers, %d kv heads, vocabulary %d, tied head", h->cfg.dim,
		      h->cfg.n_layers, h->cfg.n_kv_heads, h->cfg.vocab_size);
		check_q8_weights(q, h);
		check_656k_tokens(q->tok, h->tok);
		/* Q8_0's rounding (bounded weight by weight above) moves the
		 * logits, which span about [-15, 18] here, by 0.24 at most (0.04
		 * rms); the bound is twice that, and a misread checkpoint moves
		 * them by far more (16 with the rotary halves taken as
		 * interleaved pairs). */
		check_656k_logits(q, h, "F32", 0.5);
		/* Quantized to Q8_0 the way llama.cpp does it (round(x / d), d =
		 * amax / 127 in F16), the loaded weights give llama.cpp's blocks
		 * back, and so the GGUF's logits to float rounding. */
		const char *json = "{\"slimlab_recipe\": 1, \"name\": \"q8_0\", \"default\": {\"format\": \"q8_0\"}}";
		sl_recipe *r = NULL;
		sl_model *hq = NULL;
		sl_apply_report rep;
		sl_apply_opts o = {0};
		sl_error err;
		if (TEST_EVAL(sl_recipe_parse(json, strlen(json), &r, &err) == SL_OK &&
		              sl_recipe_apply(h, r, &o, &hq, &rep, &err) == SL_OK, "656K as Q8_0: %s", err.msg)) {
			check_656k_logits(q, hq, "as Q8_0", 1e-4);
			sl_apply_report_free(&rep);
		}
		sl_model_free(hq);
		sl_recipe_free(r);
	}
	sl_model_free(h);
	sl_model_free(q);
}

/* ---- a tiny GPT-2 and its reference forward -------------------------- */

enum { G_DIM = 16, G_HEADS = 2, G_LAYERS = 2, G_POS = 16, G_VOCAB = 260, G_HID = 4 * G_DIM };

typedef struct {
	float wte[G_VOCAB * G_DIM], wpe[G_POS * G_DIM], lnf_w[G_DIM], lnf_b[G_DIM];
	struct {
		float ln1_w[G_DIM], ln1_b[G_DIM], ln2_w[G_DIM], ln2_b[G_DIM];
		float attn_w[G_DIM * 3 * G_DIM], attn_b[3 * G_DIM]; /* Conv1D: [in, out] */
		float proj_w[G_DIM * G_DIM], proj_b[G_DIM];
		float fc_w[G_DIM * G_HID], fc_b[G_HID];
		float fcp_w[G_HID * G_DIM], fcp_b[G_DIM];
	} h[G_LAYERS];
} gpt2_weights;

static uint32_t rng_state = 12345;

static float rnd(float scale)
{
	rng_state = rng_state * 1664525u + 1013904223u;
	return scale * ((float)(rng_state >> 8) / (float)(1u << 24) * 2.0f - 1.0f);
}

static void fill(float *x, int n, float scale, float offset)
{
	for (int i = 0; i < n; i++)
		x[i] = offset + rnd(scale);
}

static void gpt2_init(gpt2_weights *w)
{
	fill(w->wte, G_VOCAB * G_DIM, 0.5f, 0);
	fill(w->wpe, G_POS * G_DIM, 0.2f, 0);
	fill(w->lnf_w, G_DIM, 0.2f, 1);
	fill(w->lnf_b, G_DIM, 0.1f, 0);
	for (int l = 0; l < G_LAYERS; l++) {
		fill(w->h[l].ln1_w, G_DIM, 0.2f, 1);
		fill(w->h[l].ln1_b, G_DIM, 0.1f, 0);
		fill(w->h[l].ln2_w, G_DIM, 0.2f, 1);
		fill(w->h[l].ln2_b, G_DIM, 0.1f, 0);
		fill(w->h[l].attn_w, G_DIM * 3 * G_DIM, 0.3f, 0);
		fill(w->h[l].attn_b, 3 * G_DIM, 0.1f, 0);
		fill(w->h[l].proj_w, G_DIM * G_DIM, 0.3f, 0);
		fill(w->h[l].proj_b, G_DIM, 0.1f, 0);
		fill(w->h[l].fc_w, G_DIM * G_HID, 0.3f, 0);
		fill(w->h[l].fc_b, G_HID, 0.1f, 0);
		fill(w->h[l].fcp_w, G_HID * G_DIM, 0.2f, 0);
		fill(w->h[l].fcp_b, G_DIM, 0.1f, 0);
		/* Stored as F16 below; the reference uses the values F16 holds. */
		for (int i = 0; i < G_DIM * G_HID; i++)
			w->h[l].fc_w[i] = sl_f16_to_f32(sl_f32_to_f16(w->h[l].fc_w[i]));
	}
}

static void ref_layernorm(double *y, const double *x, const float *w, const float *b)
{
	double mean = 0, var = 0;
	for (int i = 0; i < G_DIM; i++)
		mean += x[i] / G_DIM;
	for (int i = 0; i < G_DIM; i++)
		var += (x[i] - mean) * (x[i] - mean) / G_DIM;
	for (int i = 0; i < G_DIM; i++)
		y[i] = (x[i] - mean) / sqrt(var + 1e-5) * w[i] + b[i];
}

/* y = x W + b with W stored [n_in, n_out], as Conv1D keeps it. */
static void ref_conv1d(double *y, const double *x, const float *W, const float *b, int n_in, int n_out)
{
	for (int o = 0; o < n_out; o++) {
		double s = b[o];
		for (int i = 0; i < n_in; i++)
			s += x[i] * W[(size_t)i * n_out + o];
		y[o] = s;
	}
}

/* GPT-2 in double precision, straight from the HF layout: logits of every
 * position of tokens[0..n). */
static void gpt2_reference(const gpt2_weights *w, const int32_t *tokens, int n, double *logits)
{
	static double x[G_POS][G_DIM], qkv[G_POS][3 * G_DIM];
	double h[G_DIM], att[G_DIM], tmp[G_HID], u[G_HID];
	const int hd = G_DIM / G_HEADS;
	for (int t = 0; t < n; t++)
		for (int i = 0; i < G_DIM; i++)
			x[t][i] = (double)w->wte[tokens[t] * G_DIM + i] + w->wpe[t * G_DIM + i];
	for (int l = 0; l < G_LAYERS; l++) {
		for (int t = 0; t < n; t++) {
			ref_layernorm(h, x[t], w->h[l].ln1_w, w->h[l].ln1_b);
			ref_conv1d(qkv[t], h, w->h[l].attn_w, w->h[l].attn_b, G_DIM, 3 * G_DIM);
		}
		for (int t = 0; t < n; t++) {
			for (int hh = 0; hh < G_HEADS; hh++) {
				double sc[G_POS], mx = -INFINITY, sum = 0;
				for (int s = 0; s <= t; s++) {
					sc[s] = 0;
					for (int i = 0; i < hd; i++)
						sc[s] += qkv[t][hh * hd + i] * qkv[s][G_DIM + hh * hd + i];
					sc[s] /= sqrt(hd);
					mx = fmax(mx, sc[s]);
				}
				for (int s = 0; s <= t; s++)
					sum += sc[s] = exp(sc[s] - mx);
				for (int i = 0; i < hd; i++) {
					att[hh * hd + i] = 0;
					for (int s = 0; s <= t; s++)
						att[hh * hd + i] += sc[s] / sum * qkv[s][2 * G_DIM + hh * hd + i];
				}
			}
			ref_conv1d(tmp, att, w->h[l].proj_w, w->h[l].proj_b, G_DIM, G_DIM);
			for (int i = 0; i < G_DIM; i++)
				x[t][i] += tmp[i];
			ref_layernorm(h, x[t], w->h[l].ln2_w, w->h[l].ln2_b);
			ref_conv1d(u, h, w->h[l].fc_w, w->h[l].fc_b, G_DIM, G_HID);
			for (int i = 0; i < G_HID; i++)
				u[i] = 0.5 * u[i] * (1 + tanh(sqrt(2 / M_PI) * (u[i] + 0.044715 * u[i] * u[i] * u[i])));
			ref_conv1d(tmp, u, w->h[l].fcp_w, w->h[l].fcp_b, G_HID, G_DIM);
			for (int i = 0; i < G_DIM; i++)
				x[t][i] += tmp[i];
		}
	}
	for (int t = 0; t < n; t++) {
		ref_layernorm(h, x[t], w->lnf_w, w->lnf_b);
		for (int v = 0; v < G_VOCAB; v++) {
			double s = 0;
			for (int i = 0; i < G_DIM; i++)
				s += h[i] * w->wte[v * G_DIM + i];
			logits[t * G_VOCAB + v] = s;
		}
	}
}

/* The tensors of w as GPT2LMHeadModel.save_pretrained names them; omit
 * (if not NULL) is left out. */
static void export_gpt2(const gpt2_weights *w, st_list *l, const char *omit)
{
	static float mask[G_POS * G_POS], masked_bias = -1e4f;
	char name[96];
#define ADD(nm, dt, nd, data, ...)                                                      \
	do {                                                                            \
		const int64_t shape_[] = {__VA_ARGS__};                                 \
		if (!omit || strcmp(nm, omit))                                          \
			st_add(l, nm, dt, nd, shape_, data);                            \
	} while (0)
	/* Buffers some checkpoints carry, which the loader must pass by; this
	 * 2-byte one also leaves the F32 tensors after it misaligned. */
	ADD("transformer.h.0.attn.masked_bias", "F16", 1, &masked_bias, 1);
	ADD("transformer.wte.weight", "F32", 2, w->wte, G_VOCAB, G_DIM);
	ADD("transformer.wpe.weight", "F32", 2, w->wpe, G_POS, G_DIM);
	for (int i = 0; i < G_LAYERS; i++) {
		snprintf(name, sizeof name, "transformer.h.%d.attn.bias", i);
		ADD(name, "F32", 4, mask, 1, 1, G_POS, G_POS);
#define LAYER(part, dt, nd, data, ...)                                                  \
	snprintf(name, sizeof name, "transformer.h.%d." part, i);                      \
	ADD(name, dt, nd, w->h[i].data, __VA_ARGS__)
		LAYER("ln_1.weight", "F32", 1, ln1_w, G_DIM);
		LAYER("ln_1.bias", "F32", 1, ln1_b, G_DIM);
		LAYER("attn.c_attn.weight", "F32", 2, attn_w, G_DIM, 3 * G_DIM);
		LAYER("attn.c_attn.bias", "F32", 1, attn_b, 3 * G_DIM);
		LAYER("attn.c_proj.weight", "F32", 2, proj_w, G_DIM, G_DIM);
		LAYER("attn.c_proj.bias", "F32", 1, proj_b, G_DIM);
		LAYER("ln_2.weight", "F32", 1, ln2_w, G_DIM);
		LAYER("ln_2.bias", "F32", 1, ln2_b, G_DIM);
		LAYER("mlp.c_fc.weight", "F16", 2, fc_w, G_DIM, G_HID);
		LAYER("mlp.c_fc.bias", "F32", 1, fc_b, G_HID);
		LAYER("mlp.c_proj.weight", "F32", 2, fcp_w, G_HID, G_DIM);
		LAYER("mlp.c_proj.bias", "F32", 1, fcp_b, G_DIM);
#undef LAYER
	}
	ADD("transformer.ln_f.weight", "F32", 1, w->lnf_w, G_DIM);
	ADD("transformer.ln_f.bias", "F32", 1, w->lnf_b, G_DIM);
#undef ADD
}

static cJSON *gpt2_config(const char *arch)
{
	cJSON *j = cJSON_CreateObject();
	cJSON_AddItemToObject(j, "architectures", cJSON_CreateStringArray(&arch, 1));
	cJSON_AddNumberToObject(j, "n_embd", G_DIM);
	cJSON_AddNumberToObject(j, "n_layer", G_LAYERS);
	cJSON_AddNumberToObject(j, "n_head", G_HEADS);
	cJSON_AddNumberToObject(j, "n_positions", G_POS);
	cJSON_AddNumberToObject(j, "n_ctx", G_POS);
	cJSON_AddNullToObject(j, "n_inner");
	cJSON_AddNumberToObject(j, "vocab_size", G_VOCAB);
	cJSON_AddNumberToObject(j, "layer_norm_epsilon", 1e-5);
	cJSON_AddStringToObject(j, "activation_function", "gelu_new");
	return j;
}

/* A byte-level BPE vocabulary: the 256 byte symbols in GPT-2's order, three
 * merges making "Ġt", "he" and "Ġthe", and <|endoftext|>. */
static void write_gpt2_tokenizer(const char *dir)
{
	cJSON *vocab = cJSON_CreateObject();
	int id = 0;
	for (int pass = 0; pass < 2; pass++)
		for (int b = 0, extra = 0; b < 256; b++) {
			bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
			int cp = printable ? b : 256 + extra++;
			if (printable != (pass == 0))
				continue;
			char s[3] = {(char)(cp < 0x80 ? cp : 0xC0 | cp >> 6), (char)(0x80 | (cp & 0x3F)), 0};
			if (cp < 0x80)
				s[1] = 0;
			cJSON_AddNumberToObject(vocab, s, id++);
		}
	cJSON_AddNumberToObject(vocab, "\xc4\xa0t", 256);
	cJSON_AddNumberToObject(vocab, "he", 257);
	cJSON_AddNumberToObject(vocab, "\xc4\xa0the", 258);
	cJSON_AddNumberToObject(vocab, "<|endoftext|>", 259);
	const char *json =
		"{\"version\":\"1.0\",\"truncation\":null,\"padding\":null,"
		"\"added_tokens\":[{\"id\":259,\"content\":\"<|endoftext|>\",\"single_word\":false,"
		"\"lstrip\":false,\"rstrip\":false,\"normalized\":true,\"special\":true}],"
		"\"normalizer\":null,"
		"\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"trim_offsets\":true,\"use_regex\":true},"
		"\"post_processor\":{\"type\":\"ByteLevel\",\"add_prefix_space\":true,\"trim_offsets\":false,\"use_regex\":true},"
		"\"decoder\":{\"type\":\"ByteLevel\",\"add_prefix_space\":true,\"trim_offsets\":true,\"use_regex\":true},"
		"\"model\":{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":null,\"continuing_subword_prefix\":\"\","
		"\"end_of_word_suffix\":\"\",\"fuse_unk\":false,\"byte_fallback\":false,\"ignore_merges\":false,"
		"\"merges\":[\"\xc4\xa0 t\",\"h e\",\"\xc4\xa0t he\"]}}";
	cJSON *root = cJSON_Parse(json);
	cJSON_AddItemToObject(cJSON_GetObjectItem(root, "model"), "vocab", vocab);
	write_json(path_in(dir, "tokenizer.json"), root);
}

/* A complete GPT-2 folder (less omit, when not NULL). */
static void write_gpt2(const gpt2_weights *w, const char *dir, const char *omit)
{
	st_list *l = calloc(1, sizeof *l);
	export_gpt2(w, l, omit);
	st_write(path_in(dir, "model.safetensors"), l, 0, l->n);
	st_free(l);
	free(l);
	write_json(path_in(dir, "config.json"), gpt2_config("GPT2LMHeadModel"));
	write_gpt2_tokenizer(dir);
}

static void test_gpt2(void)
{
	gpt2_weights *w = malloc(sizeof *w);
	gpt2_init(w);
	const char *dir = subdir("gpt2");
	write_gpt2(w, dir, NULL);
	sl_model *m = test_load(dir);
	if (!m) {
		free(w);
		return;
	}
	CHECK(m->cfg.arch == SL_ARCH_GPT2 && m->cfg.dim == G_DIM && m->cfg.max_seq_len == G_POS &&
	      m->cfg.hidden_dim == G_HID && m->output == m->tok_embd, "gpt2 config and tied head");
	const sl_tensor *qkv = sl_model_tensor(m, "blk.1.attn_qkv.weight");
	CHECK(qkv && qkv->ne[0] == G_DIM && qkv->ne[1] == 3 * G_DIM && qkv->owned,
	      "Conv1D weight transposed into an owned [out, in] tensor");
	CHECK(m->tok_embd->owned, "misaligned F32 data is copied");
	const sl_tensor *fc = sl_model_tensor(m, "blk.0.ffn_up.weight");
	CHECK(fc && fc->type == SL_DT_F16 && fc->ne[0] == G_DIM, "F16 Conv1D weight keeps its type");

	const int32_t tokens[] = {72, 257, 258, 3, 0, 199, 256, 259, 17, 88};
	const int n = 10;
	float *logits = malloc(sizeof(float) * n * G_VOCAB);
	double *ref = malloc(sizeof(double) * n * G_VOCAB);
	sl_state *s;
	sl_error err;
	if (sl_state_new(m, 0, &s, &err) == SL_OK) {
		/* In two calls, so the second runs against the KV cache. */
		CHECK(sl_forward(s, tokens, 6, logits, 0, &err) == SL_OK, "forward: %s", err.msg);
		CHECK(sl_forward(s, tokens + 6, n - 6, logits + 6 * G_VOCAB, 0, &err) == SL_OK, "forward: %s",
		      err.msg);
		gpt2_reference(w, tokens, n, ref);
		double worst = 0;
		for (int i = 0; i < n * G_VOCAB; i++)
			worst = fmax(worst, fabs(logits[i] - ref[i]));
		printf("gpt2: max |logit - reference| over %d tokens: %.3g (bound 1e-4)\n", n, worst);
		CHECK(worst <= 1e-4, "gpt2 logits differ from the reference by %g", worst);
		sl_state_free(s);
	} else {
		CHECK(0, "state: %s", err.msg);
	}
	int32_t *ids;
	size_t n_ids;
	if (sl_tok_encode(m->tok, "he the", 6, false, &ids, &n_ids, &err) == SL_OK) {
		CHECK(n_ids == 2 && ids[0] == 257 && ids[1] == 258, "byte-level tokenizer.json: %zu ids", n_ids);
		free(ids);
	} else {
		CHECK(0, "encode: %s", err.msg);
	}
	free(logits);
	free(ref);
	sl_model_free(m);
	free(w);
}

/* ---- hostile input --------------------------------------------------- */

static void test_hostile(void)
{
	const char *dir = subdir("hostile");
	const char *file = path_in(dir, "model.safetensors");
	write_json(path_in(dir, "config.json"), gpt2_config("GPT2LMHeadModel"));
	float data[64] = {0};
	static const struct {
		const char *header;
		uint64_t hlen;
		size_t n_data;
		sl_status st;
		const char *want, *want2;
	} cases[] = {
		{"{}", 1000, 16, SL_ERR_FORMAT, "header length", NULL},
		{"{\"wte.weight\":{\"dtype\":\"F32\",", 0, 16, SL_ERR_FORMAT, "malformed", NULL},
		{"[1,2]", 0, 16, SL_ERR_FORMAT, "malformed", NULL},
		{"{\"wte.weight\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}}", 0, 24,
		 SL_ERR_FORMAT, "wte.weight", "hold 20"},
		{"{\"wte.weight\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}}", 0, 16,
		 SL_ERR_FORMAT, "wte.weight", "data_offsets"},
		{"{\"wte.weight\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[24,0]}}", 0, 64,
		 SL_ERR_FORMAT, "wte.weight", "data_offsets"},
		{"{\"wte.weight\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[-8,16]}}", 0, 64,
		 SL_ERR_FORMAT, "wte.weight", "data_offsets"},
		{"{\"wte.weight\":{\"dtype\":\"F64\",\"shape\":[2,3],\"data_offsets\":[0,48]}}", 0, 64,
		 SL_ERR_UNSUPPORTED, "wte.weight", "F64"},
		{"{\"wte.weight\":{\"dtype\":\"Q9\",\"shape\":[2],\"data_offsets\":[0,8]}}", 0, 64,
		 SL_ERR_UNSUPPORTED, "wte.weight", "Q9"},
		{"{\"wte.weight\":{\"dtype\":\"F32\",\"shape\":[2.5,3],\"data_offsets\":[0,24]}}", 0, 64,
		 SL_ERR_FORMAT, "wte.weight", "shape"},
		{"{\"wte.weight\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[0,0]}}", 0, 64,
		 SL_ERR_FORMAT, "wte.weight", "shape"},
		{"{\"wte.weight\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,2],\"data_offsets\":[0,8]}}", 0, 64,
		 SL_ERR_FORMAT, "wte.weight", "dimensions"},
		{"{\"wte.weight\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}",
		 0, 64, SL_ERR_FORMAT, "wte.weight", "shape"},
		{"{\"wte.weight\":{\"dtype\":\"F32\"}}", 0, 64, SL_ERR_FORMAT, "wte.weight", "data_offsets"},
		{"{\"wte.weight\":7}", 0, 64, SL_ERR_FORMAT, "wte.weight", "dtype"},
		{"{\"h.2.ln_1.weight\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 0, 64,
		 SL_ERR_FORMAT, "h.2.ln_1.weight", "2-block"},
		{"{\"h.0.ln_9.weight\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 0, 64,
		 SL_ERR_FORMAT, "h.0.ln_9.weight", "gpt2"},
		{"{\"h.x.ln_1.weight\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 0, 64,
		 SL_ERR_FORMAT, "h.x.ln_1.weight", NULL},
		{"{\"wte.weight\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
		 "\"transformer.wte.weight\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
		 0, 64, SL_ERR_FORMAT, "token_embd.weight", "twice"},
		{"{\"wte.weight\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 0, 64,
		 SL_ERR_FORMAT, "token_embd.weight", "shape"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		write_raw(file, cases[i].header, cases[i].hlen, data, cases[i].n_data);
		expect_fail(dir, cases[i].st, cases[i].want, cases[i].want2);
	}
	write_bytes(file, "\x05\x00\x00", 3);
	expect_fail(dir, SL_ERR_FORMAT, "truncated", NULL);
	write_bytes(file, "", 0);
	expect_fail(dir, SL_ERR_FORMAT, "truncated", NULL);

	/* Whole folders: a missing tensor, config.json or architecture, a
	 * truncated copy, and an index that points outside the folder. */
	gpt2_weights *w = malloc(sizeof *w);
	gpt2_init(w);
	const char *miss = subdir("missing-tensor");
	write_gpt2(w, miss, "transformer.ln_f.weight");
	expect_fail(miss, SL_ERR_FORMAT, "output_norm.weight", "missing");

	const char *good = subdir("good"), *good_file = path_in(good, "model.safetensors");
	write_gpt2(w, good, NULL);
	char *bytes;
	size_t len;
	sl_error err;
	REQUIRE(sl_read_file(good_file, 1 << 20, &bytes, &len, &err) == SL_OK, "%s", err.msg);
	const char *cut = subdir("truncated");
	write_json(path_in(cut, "config.json"), gpt2_config("GPT2LMHeadModel"));
	write_gpt2_tokenizer(cut);
	write_bytes(path_in(cut, "model.safetensors"), bytes, len - 100);
	expect_fail(cut, SL_ERR_FORMAT, "data_offsets", NULL);
	write_bytes(path_in(cut, "model.safetensors"), bytes, 100);
	expect_fail(cut, SL_ERR_FORMAT, "truncated", NULL);

	const char *noconf = subdir("no-config");
	write_bytes(path_in(noconf, "model.safetensors"), bytes, len);
	expect_fail(noconf, SL_ERR_IO, "config.json", NULL);
	expect_fail(path_in(noconf, "model.safetensors"), SL_ERR_IO, "config.json", NULL);
	const char *empty = subdir("empty");
	expect_fail(empty, SL_ERR_IO, "model.safetensors", NULL);

	const char *arch = subdir("unknown-arch");
	write_bytes(path_in(arch, "model.safetensors"), bytes, len);
	write_json(path_in(arch, "config.json"), gpt2_config("FalconForCausalLM"));
	expect_fail(arch, SL_ERR_UNSUPPORTED, "FalconForCausalLM", NULL);
	write_bytes(path_in(arch, "config.json"), "{\"architectures\": [", 19);
	expect_fail(arch, SL_ERR_FORMAT, "config.json", "malformed");
	cJSON *bad = gpt2_config("GPT2LMHeadModel");
	cJSON_ReplaceItemInObject(bad, "n_layer", cJSON_CreateString("two"));
	write_json(path_in(arch, "config.json"), bad);
	expect_fail(arch, SL_ERR_FORMAT, "n_layer", NULL);
	bad = gpt2_config("GPT2LMHeadModel");
	cJSON_ReplaceItemInObject(bad, "activation_function", cJSON_CreateString("relu"));
	write_json(path_in(arch, "config.json"), bad);
	expect_fail(arch, SL_ERR_UNSUPPORTED, "relu", NULL);

	const char *idx = subdir("bad-index");
	write_json(path_in(idx, "config.json"), gpt2_config("GPT2LMHeadModel"));
	const char *index_path = path_in(idx, "model.safetensors.index.json");
	write_bytes(index_path, "{\"weight_map\":{\"wte.weight\":\"../good/model.safetensors\"}}", 57);
	expect_fail(idx, SL_ERR_FORMAT, "../good/model.safetensors", NULL);
	write_bytes(index_path, "{\"weight_map\":{\"wte.weight\":\"absent.safetensors\"}}", 51);
	expect_fail(index_path, SL_ERR_IO, "absent.safetensors", NULL);
	write_bytes(index_path, "{\"weight_map\":[]}", 17);
	expect_fail(idx, SL_ERR_FORMAT, "weight_map", NULL);
	write_bytes(index_path, "{\"weight_", 9);
	expect_fail(idx, SL_ERR_FORMAT, "weight_map", NULL);

	/* Damaged copies of a good file: whatever bytes change, loading either
	 * works or fails cleanly (the sanitizer build catches the rest). */
	const char *fz = subdir("fuzz");
	write_json(path_in(fz, "config.json"), gpt2_config("GPT2LMHeadModel"));
	write_gpt2_tokenizer(fz);
	uint64_t hlen;
	memcpy(&hlen, bytes, 8);
	char *copy = malloc(len);
	int failed = 0;
	for (int round = 0; round < 300; round++) {
		memcpy(copy, bytes, len);
		for (int k = 0; k <= round % 4; k++) {
			rnd(1);
			size_t at = (rng_state >> 7) % (8 + hlen);
			/* Odd rounds change a digit, keeping the JSON valid but its
			 * shapes and offsets wrong. */
			while (round % 2 && at < 8 + hlen && (copy[at] < '0' || copy[at] > '9'))
				at++;
			if (at < 8 + hlen)
				copy[at] = round % 2 ? (char)('0' + (rng_state >> 3) % 10) : (char)(rng_state >> 3);
		}
		write_bytes(path_in(fz, "model.safetensors"), copy, round % 5 ? len : (rng_state >> 5) % len);
		sl_model *m = NULL;
		if (sl_model_load(fz, NULL, &m, &err) != SL_OK) {
			failed++;
			CHECK(!m && err.msg[0], "damaged copy %d fails with a message", round);
		}
		sl_model_free(m);
	}
	printf("damaged copies: %d of 300 refused\n", failed);
	free(copy);
	free(bytes);
	free(w);
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

int main(void)
{
	test_llama();
	test_tinystories656k();
	test_gpt2();
	test_hostile();
	/* The folders written here hold megabytes; they stay only to debug a failure. */
	if (!test_failures)
		nftw(test_tmpdir(), remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	return test_finish();
}
