/* Tokenizer loaders: llama2.c tokenizer.bin, GGUF tokenizer.ggml.* metadata
 * and Hugging Face tokenizer.json (BPE models), each checked as it is read
 * so that a truncated or hostile file is refused with what and where. */
#include "tok-internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "gguf.h"

#define MAX_JSON_BYTES ((size_t)1 << 30)
#define MAX_PATTERNS 16

static int32_t rd_i32(const uint8_t *p)
{
	int32_t v;
	memcpy(&v, p, 4);
	return v;
}

/* --- llama2.c tokenizer.bin -------------------------------------------- */

/* Checks every record of a tokenizer.bin and counts them: want of them
 * (0: as many as the file holds). */
static sl_status llama2c_scan(const char *path, const uint8_t *p, size_t size, int want, int32_t *n,
                              sl_error *err)
{
	size_t o = 4;
	int32_t k = 0;
	while (want ? k < want : o < size) {
		if (size - o < 8)
			return sl_errorf(err, SL_ERR_FORMAT,
			                 "%s: truncated at offset %zu: token %d needs a score and a length%s", path, o,
			                 (int)k, want ? " (the model's vocabulary is larger than this file's)" : "");
		float score;
		memcpy(&score, p + o, 4);
		int32_t len = rd_i32(p + o + 4);
		if (isnan(score))
			return sl_errorf(err, SL_ERR_FORMAT, "%s: offset %zu: token %d has a NaN score", path, o, (int)k);
		if (len < 0 || (size_t)len > size - o - 8)
			return sl_errorf(err, SL_ERR_FORMAT,
			                 "%s: offset %zu: token %d claims %d bytes but %zu remain in the file", path,
			                 o + 4, (int)k, (int)len, size - o - 8);
		o += 8 + (size_t)len;
		if (++k > SL_TOK_MAX_VOCAB)
			return sl_errorf(err, SL_ERR_FORMAT, "%s: more than %d tokens", path, SL_TOK_MAX_VOCAB);
	}
	if (k == 0)
		return sl_errorf(err, SL_ERR_FORMAT, "%s: no tokens after the header", path);
	*n = k;
	return SL_OK;
}

static sl_status llama2c_build(const char *path, const uint8_t *p, size_t size, int vocab_size,
                               sl_tokenizer **out, sl_error *err)
{
	if (size < 4)
		return sl_errorf(err, SL_ERR_FORMAT, "%s: %zu bytes is too short for a llama2.c tokenizer", path, size);
	int32_t max_len = rd_i32(p);
	if (max_len <= 0 || max_len > (1 << 20))
		return sl_errorf(err, SL_ERR_FORMAT,
		                 "%s: offset 0: max_token_length %d is implausible; is this a llama2.c tokenizer.bin?",
		                 path, (int)max_len);
	int32_t n = 0;
	sl_status st = llama2c_scan(path, p, size, vocab_size, &n, err);
	if (st != SL_OK)
		return st;
	sl_tokenizer *t;
	if ((st = sl_tok_new(SL_TOK_SPM, n, &t, err)) != SL_OK)
		return st;
	size_t o = 4;
	for (int32_t id = 0; id < n && st == SL_OK; id++) {
		memcpy(&t->score[id], p + o, 4);
		size_t len = (size_t)rd_i32(p + o + 4);
		const char *s = (const char *)p + o + 8;
		o += 8 + len;
		/* llama2.c writes BOS and EOS as "\n<s>\n" and "\n</s>\n". */
		if ((id == 1 || id == 2) && len > 2 && s[0] == '\n' && s[len - 1] == '\n') {
			s++;
			len -= 2;
		}
		if (id == 0)
			t->type[id] = SL_TOKEN_UNKNOWN;
		else if (id == 1 || id == 2)
			t->type[id] = SL_TOKEN_CONTROL;
		else if (sl_tok_byte_piece(s, len) >= 0)
			t->type[id] = SL_TOKEN_BYTE;
		st = sl_tok_set_piece(t, id, s, len, t->type[id] == SL_TOKEN_NORMAL, err);
	}
	if (st != SL_OK)
		sl_error_prefix(err, "%s: ", path);
	t->unk = 0;
	t->bos = n > 1 ? 1 : -1;
	t->eos = n > 2 ? 2 : -1;
	t->add_bos = true;
	if (st == SL_OK)
		st = sl_tok_index(t, err);
	if (st == SL_OK)
		st = sl_tok_finish(t, err);
	if (st != SL_OK) {
		sl_tok_free(t);
		return st;
	}
	*out = t;
	return SL_OK;
}

sl_status sl_tok_load_llama2c(const char *path, int vocab_size, sl_tokenizer **out, sl_error *err)
{
	*out = NULL;
	if (vocab_size < 0 || vocab_size > SL_TOK_MAX_VOCAB)
		return sl_errorf(err, SL_ERR_ARG, "%s: asked for %d tokens", path, vocab_size);
	sl_mapping map;
	sl_status st = sl_map_file(path, &map, err);
	if (st != SL_OK)
		return st;
	st = llama2c_build(path, map.addr, map.size, vocab_size, out, err);
	sl_unmap(&map);
	return st;
}

/* --- GGUF ------------------------------------------------------------- */

static bool is_numeric(uint32_t type)
{
	return type != SL_GGUF_STR && type != SL_GGUF_ARR && type < SL_GGUF_NTYPES;
}

/* A per-token array: absent (NULL) or numeric with one entry per token. */
static sl_status gguf_token_array(const sl_gguf *g, const char *key, uint64_t n, const sl_gguf_kv **kv,
                                  sl_error *err)
{
	*kv = sl_gguf_find(g, key);
	if (!*kv)
		return SL_OK;
	if ((*kv)->type != SL_GGUF_ARR || !is_numeric((*kv)->arr_type) || (*kv)->n != n)
		return sl_errorf(err, SL_ERR_FORMAT, "%s: %s should be %llu numbers", g->path, key,
		                 (unsigned long long)n);
	return SL_OK;
}

/* A special token id: absent or "none" (-1, 0xFFFFFFFF) leave *id as is. */
static sl_status gguf_token_id(const sl_gguf *g, const char *key, int32_t n, int32_t *id, sl_error *err)
{
	if (!sl_gguf_find(g, key))
		return SL_OK;
	int64_t v;
	if (!sl_gguf_get_i64(g, key, &v))
		return sl_errorf(err, SL_ERR_FORMAT, "%s: %s is not an integer", g->path, key);
	if (v < 0 || v == 0xFFFFFFFF)
		*id = -1;
	else if (v < n)
		*id = (int32_t)v;
	else
		return sl_errorf(err, SL_ERR_FORMAT, "%s: %s is %lld, beyond the %d tokens of the vocabulary",
		                 g->path, key, (long long)v, (int)n);
	return SL_OK;
}

static sl_status gguf_merges(const sl_gguf *g, sl_tokenizer *t, sl_error *err)
{
	const sl_gguf_kv *kv = sl_gguf_find(g, "tokenizer.ggml.merges");
	if (!kv || kv->type != SL_GGUF_ARR || kv->arr_type != SL_GGUF_STR)
		return sl_errorf(err, SL_ERR_FORMAT, "%s: a gpt2 vocabulary needs tokenizer.ggml.merges (strings)",
		                 g->path);
	for (uint64_t i = 0; i < kv->n; i++) {
		size_t len;
		const char *s = sl_gguf_arr_str(kv, i, &len);
		const char *sp = len > 1 ? memchr(s + 1, ' ', len - 1) : NULL;
		if (!sp)
			return sl_errorf(err, SL_ERR_FORMAT, "%s: merge %llu (\"%.*s\") is not two pieces and a space",
			                 g->path, (unsigned long long)i, (int)(len < 60 ? len : 60), s);
		size_t a = (size_t)(sp - s);
		if (sl_tok_add_merge(t, s, a, sp + 1, len - a - 1, err) != SL_OK)
			return sl_error_prefix(err, "%s: ", g->path);
	}
	return SL_OK;
}

static sl_status gguf_fill(const sl_gguf *g, sl_tokenizer *t, const sl_gguf_kv *tokens, sl_error *err)
{
	const sl_gguf_kv *scores, *types;
	sl_status st;
	uint64_t n = tokens->n;
	if ((st = gguf_token_array(g, "tokenizer.ggml.scores", n, &scores, err)) != SL_OK ||
	    (st = gguf_token_array(g, "tokenizer.ggml.token_type", n, &types, err)) != SL_OK)
		return st;
	for (uint64_t i = 0; i < n; i++) {
		size_t len;
		const char *s = sl_gguf_arr_str(tokens, i, &len);
		if ((st = sl_tok_set_piece(t, (int32_t)i, s, len, false, err)) != SL_OK)
			return sl_error_prefix(err, "%s: ", g->path);
		if (scores)
			t->score[i] = (float)sl_gguf_arr_num(scores, i);
		double ty = types ? sl_gguf_arr_num(types, i) : SL_TOKEN_NORMAL;
		t->type[i] = ty >= SL_TOKEN_NORMAL && ty <= SL_TOKEN_BYTE ? (uint8_t)ty : SL_TOKEN_NORMAL;
		if (isnan(t->score[i]))
			return sl_errorf(err, SL_ERR_FORMAT, "%s: token %llu has a NaN score", g->path,
			                 (unsigned long long)i);
	}
	if ((st = sl_tok_index(t, err)) != SL_OK)
		return st;
	if (t->kind == SL_TOK_BPE && (st = gguf_merges(g, t, err)) != SL_OK)
		return st;

	int32_t nv = t->n_vocab;
	if (t->kind == SL_TOK_SPM) {
		/* llama.cpp's defaults for SentencePiece vocabularies */
		t->unk = 0;
		t->bos = nv > 1 ? 1 : -1;
		t->eos = nv > 2 ? 2 : -1;
		t->add_bos = true;
	}
	if ((st = gguf_token_id(g, "tokenizer.ggml.bos_token_id", nv, &t->bos, err)) != SL_OK ||
	    (st = gguf_token_id(g, "tokenizer.ggml.eos_token_id", nv, &t->eos, err)) != SL_OK ||
	    (st = gguf_token_id(g, "tokenizer.ggml.unknown_token_id", nv, &t->unk, err)) != SL_OK)
		return st;
	bool b;
	if (sl_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &b))
		t->add_bos = b;
	if (t->kind == SL_TOK_SPM && sl_gguf_get_bool(g, "tokenizer.ggml.add_space_prefix", &b))
		t->prefix = b ? SL_PREFIX_ALWAYS : SL_PREFIX_NEVER;
	if (t->kind == SL_TOK_BPE) {
		char pre[64];
		bool has = sl_gguf_get_str(g, "tokenizer.ggml.pre", pre, sizeof pre);
		if ((st = sl_tok_use_pre(t, has ? pre : NULL, err)) != SL_OK)
			return st;
		/* ChatGLM's vocabulary names a BOS its prompts never start with. */
		if (strcmp(t->pre_name, "chatglm-bpe") == 0)
			t->bos = -1;
	}
	return sl_tok_finish(t, err);
}

sl_status sl_tok_load_gguf(const sl_gguf *g, sl_tokenizer **out, sl_error *err)
{
	*out = NULL;
	char model[32];
	if (!sl_gguf_get_str(g, "tokenizer.ggml.model", model, sizeof model))
		return sl_errorf(err, SL_ERR_FORMAT, "%s: no vocabulary (tokenizer.ggml.model is missing)", g->path);
	sl_tok_kind kind;
	if (strcmp(model, "llama") == 0)
		kind = SL_TOK_SPM;
	else if (strcmp(model, "gpt2") == 0)
		kind = SL_TOK_BPE;
	else
		return sl_errorf(err, SL_ERR_UNSUPPORTED,
		                 "%s: tokenizer.ggml.model \"%s\" is not supported (slimlab reads \"llama\" and \"gpt2\")",
		                 g->path, model);
	const sl_gguf_kv *tokens = sl_gguf_find(g, "tokenizer.ggml.tokens");
	if (!tokens || tokens->type != SL_GGUF_ARR || tokens->arr_type != SL_GGUF_STR)
		return sl_errorf(err, SL_ERR_FORMAT, "%s: tokenizer.ggml.tokens is missing or not strings", g->path);
	if (tokens->n < 1 || tokens->n > SL_TOK_MAX_VOCAB)
		return sl_errorf(err, SL_ERR_FORMAT, "%s: tokenizer.ggml.tokens holds %llu tokens (1 to %d expected)",
		                 g->path, (unsigned long long)tokens->n, SL_TOK_MAX_VOCAB);
	sl_tokenizer *t;
	sl_status st = sl_tok_new(kind, (int32_t)tokens->n, &t, err);
	if (st != SL_OK)
		return st;
	if ((st = gguf_fill(g, t, tokens, err)) != SL_OK) {
		sl_tok_free(t);
		return st;
	}
	*out = t;
	return SL_OK;
}

/* --- Hugging Face tokenizer.json --------------------------------------- */

/* How a tokenizer.json turns text into what BPE merges. */
typedef struct {
	bool byte_level;       /* a ByteLevel pre-tokenizer */
	bool metaspace;        /* spaces become "▁" (Metaspace or Replace) */
	int prefix;
	bool split_words, byte_prefix;
	char *patterns[MAX_PATTERNS];
	size_t n_patterns;
	const char *path;
	sl_error *err;
} hf_text;

static const char *json_str(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static bool json_flag(const cJSON *o, const char *key, bool dflt)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsBool(v) ? cJSON_IsTrue(v) : dflt;
}

static bool is_str(const char *s, const char *want)
{
	return s && strcmp(s, want) == 0;
}

static sl_status hf_add_pattern(hf_text *h, const char *pattern, bool literal)
{
	if (h->n_patterns == MAX_PATTERNS)
		return sl_errorf(h->err, SL_ERR_UNSUPPORTED, "%s: more than %d pre-tokenizer splits", h->path,
		                 MAX_PATTERNS);
	size_t n = strlen(pattern);
	char *p = malloc(2 * n + 1), *d = p;
	if (!p)
		return sl_errorf(h->err, SL_ERR_NOMEM, "out of memory reading %s", h->path);
	for (size_t i = 0; i < n; i++) {
		if (literal && strchr("\\^$.|?*+()[]{}", pattern[i]))
			*d++ = '\\';
		*d++ = pattern[i];
	}
	*d = 0;
	h->patterns[h->n_patterns++] = p;
	return SL_OK;
}

static sl_status hf_unsupported(hf_text *h, const char *part, const cJSON *o)
{
	const char *type = json_str(o, "type");
	return sl_errorf(h->err, SL_ERR_UNSUPPORTED, "%s: %s \"%s\" is not supported", h->path, part,
	                 type ? type : "(no type)");
}

static sl_status hf_normalizer(hf_text *h, const cJSON *o)
{
	if (!o || cJSON_IsNull(o))
		return SL_OK;
	const char *type = json_str(o, "type");
	if (is_str(type, "Sequence")) {
		const cJSON *k;
		cJSON_ArrayForEach(k, cJSON_GetObjectItemCaseSensitive(o, "normalizers")) {
			sl_status st = hf_normalizer(h, k);
			if (st != SL_OK)
				return st;
		}
		return SL_OK;
	}
	if (is_str(type, "Prepend") && is_str(json_str(o, "prepend"), "\xe2\x96\x81")) {
		h->prefix = SL_PREFIX_ALWAYS;
		return SL_OK;
	}
	if (is_str(type, "Replace") && is_str(json_str(cJSON_GetObjectItemCaseSensitive(o, "pattern"), "String"), " ") &&
	    is_str(json_str(o, "content"), "\xe2\x96\x81")) {
		h->metaspace = true;
		return SL_OK;
	}
	/* NFC changes only text that is not already composed, which is how
	 * text arrives in practice; llama.cpp skips it too. */
	if (is_str(type, "NFC"))
		return SL_OK;
	return hf_unsupported(h, "normalizer", o);
}

static sl_status hf_pre_tokenizer(hf_text *h, const cJSON *o)
{
	if (!o || cJSON_IsNull(o))
		return SL_OK;
	const char *type = json_str(o, "type");
	if (is_str(type, "Sequence")) {
		const cJSON *k;
		cJSON_ArrayForEach(k, cJSON_GetObjectItemCaseSensitive(o, "pretokenizers")) {
			sl_status st = hf_pre_tokenizer(h, k);
			if (st != SL_OK)
				return st;
		}
		return SL_OK;
	}
	if (is_str(type, "ByteLevel")) {
		h->byte_level = true;
		h->byte_prefix = json_flag(o, "add_prefix_space", true);
		return json_flag(o, "use_regex", true) ? hf_add_pattern(h, sl_tok_gpt2_pattern, false) : SL_OK;
	}
	if (is_str(type, "Split")) {
		const cJSON *pat = cJSON_GetObjectItemCaseSensitive(o, "pattern");
		const char *re = json_str(pat, "Regex"), *lit = json_str(pat, "String");
		if ((!re && !lit) || !is_str(json_str(o, "behavior"), "Isolated") || json_flag(o, "invert", false))
			return sl_errorf(h->err, SL_ERR_UNSUPPORTED,
			                 "%s: only Split pre-tokenizers with a pattern, \"Isolated\" and no invert are supported",
			                 h->path);
		return hf_add_pattern(h, re ? re : lit, !re);
	}
	if (is_str(type, "Digits"))
		return hf_add_pattern(h, json_flag(o, "individual_digits", false) ? "\\p{N}" : "\\p{N}+", false);
	if (is_str(type, "Metaspace")) {
		if (!is_str(json_str(o, "replacement"), "\xe2\x96\x81"))
			return sl_errorf(h->err, SL_ERR_UNSUPPORTED, "%s: Metaspace replacement other than \"\xe2\x96\x81\"",
			                 h->path);
		h->metaspace = true;
		const char *scheme = json_str(o, "prepend_scheme");
		if (scheme)
			h->prefix = is_str(scheme, "always") ? SL_PREFIX_ALWAYS
			          : is_str(scheme, "first") ? SL_PREFIX_FIRST : SL_PREFIX_NEVER;
		else
			h->prefix = json_flag(o, "add_prefix_space", true) ? SL_PREFIX_ALWAYS : SL_PREFIX_NEVER;
		h->split_words = json_flag(o, "split", true);
		return SL_OK;
	}
	return hf_unsupported(h, "pre_tokenizer", o);
}

/* A token named in tokenizer.json or tokenizer_config.json: a string or
 * an object with "content". */
static int32_t hf_named(const sl_tokenizer *t, const cJSON *v)
{
	if (cJSON_IsObject(v))
		v = cJSON_GetObjectItemCaseSensitive(v, "content");
	return cJSON_IsString(v) ? sl_tok_find(t, v->valuestring, strlen(v->valuestring)) : -1;
}

static int32_t hf_first_found(const sl_tokenizer *t, const char *const *names)
{
	for (; *names; names++) {
		int32_t id = sl_tok_find(t, *names, strlen(*names));
		if (id >= 0)
			return id;
	}
	return -1;
}

/* BOS and EOS: tokenizer_config.json beside the file says; otherwise the
 * post-processor's leading special token, and the usual names. */
static void hf_specials(sl_tokenizer *t, const cJSON *root, const char *path)
{
	const cJSON *pp = cJSON_GetObjectItemCaseSensitive(root, "post_processor");
	const cJSON *procs = cJSON_GetObjectItemCaseSensitive(pp, "processors");
	const cJSON *k, *list = cJSON_IsArray(procs) ? procs : NULL;
	cJSON_ArrayForEach(k, list) {
		if (is_str(json_str(k, "type"), "TemplateProcessing"))
			pp = k;
	}
	if (is_str(json_str(pp, "type"), "TemplateProcessing")) {
		const cJSON *first = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(pp, "single"), 0);
		const cJSON *st = cJSON_GetObjectItemCaseSensitive(first, "SpecialToken");
		int32_t id = hf_named(t, cJSON_GetObjectItemCaseSensitive(st, "id"));
		if (id >= 0) {
			t->bos = id;
			t->add_bos = true;
		}
	}
	static const char *const bos_names[] = {"<s>", "<|begin_of_text|>", NULL};
	static const char *const eos_names[] = {"</s>", "<|end_of_text|>", "<|endoftext|>", "<|im_end|>", NULL};
	if (t->bos < 0)
		t->bos = hf_first_found(t, bos_names);
	t->eos = hf_first_found(t, eos_names);

	char dir[4096], cfg_path[4200];
	sl_path_dir(path, dir, sizeof dir);
	char *data;
	size_t len;
	if (!sl_path_join(cfg_path, sizeof cfg_path, dir, "tokenizer_config.json") || !sl_file_exists(cfg_path) ||
	    sl_read_file(cfg_path, MAX_JSON_BYTES, &data, &len, NULL) != SL_OK)
		return;
	cJSON *cfg = cJSON_ParseWithLength(data, len);
	free(data);
	int32_t id;
	if ((id = hf_named(t, cJSON_GetObjectItemCaseSensitive(cfg, "bos_token"))) >= 0)
		t->bos = id;
	if ((id = hf_named(t, cJSON_GetObjectItemCaseSensitive(cfg, "eos_token"))) >= 0)
		t->eos = id;
	t->add_bos = json_flag(cfg, "add_bos_token", t->add_bos);
	cJSON_Delete(cfg);
}

/* The largest id the vocabulary and the added tokens use. */
static sl_status hf_max_id(const char *path, const cJSON *vocab, const cJSON *added, int32_t *max_id,
                           sl_error *err)
{
	*max_id = -1;
	const cJSON *k;
	cJSON_ArrayForEach(k, vocab) {
		if (!cJSON_IsNumber(k) || k->valuedouble < 0 || k->valuedouble >= SL_TOK_MAX_VOCAB ||
		    k->valuedouble != (double)k->valueint)
			return sl_errorf(err, SL_ERR_FORMAT, "%s: model.vocab: \"%.60s\" has an id that is not a token id",
			                 path, k->string ? k->string : "");
		if (k->valueint > *max_id)
			*max_id = k->valueint;
	}
	cJSON_ArrayForEach(k, added) {
		const cJSON *id = cJSON_GetObjectItemCaseSensitive(k, "id");
		if (!cJSON_IsNumber(id) || id->valuedouble < 0 || id->valuedouble >= SL_TOK_MAX_VOCAB ||
		    id->valuedouble != (double)id->valueint || !json_str(k, "content"))
			return sl_errorf(err, SL_ERR_FORMAT, "%s: added_tokens: an entry lacks a valid id or content", path);
		if (id->valueint > *max_id)
			*max_id = id->valueint;
	}
	if (*max_id < 0)
		return sl_errorf(err, SL_ERR_FORMAT, "%s: model.vocab is empty", path);
	return SL_OK;
}

static sl_status hf_merges(sl_tokenizer *t, const char *path, const cJSON *merges, sl_error *err)
{
	const cJSON *m;
	size_t i = 0;
	cJSON_ArrayForEach(m, merges) {
		const char *a = NULL, *b = NULL;
		size_t alen = 0, blen = 0;
		if (cJSON_IsString(m)) {
			const char *s = m->valuestring, *sp = s[0] ? strchr(s + 1, ' ') : NULL;
			if (sp) {
				a = s;
				alen = (size_t)(sp - s);
				b = sp + 1;
				blen = strlen(b);
			}
		} else if (cJSON_GetArraySize(m) == 2 && cJSON_IsString(m->child) && cJSON_IsString(m->child->next)) {
			a = m->child->valuestring;
			b = m->child->next->valuestring;
			alen = strlen(a);
			blen = strlen(b);
		}
		if (!a)
			return sl_errorf(err, SL_ERR_FORMAT, "%s: model.merges[%zu] is not \"a b\" or [\"a\", \"b\"]", path, i);
		if (sl_tok_add_merge(t, a, alen, b, blen, err) != SL_OK)
			return sl_error_prefix(err, "%s: ", path);
		i++;
	}
	return SL_OK;
}

static sl_status hf_build(const char *path, const cJSON *root, hf_text *h, sl_tokenizer **out, sl_error *err)
{
	const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
	const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
	const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
	const cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
	const char *type = json_str(model, "type");
	if (type && strcmp(type, "BPE") != 0)
		return sl_errorf(err, SL_ERR_UNSUPPORTED, "%s: model.type \"%s\" is not supported (slimlab reads BPE)",
		                 path, type);
	if (!cJSON_IsObject(vocab) || !cJSON_IsArray(merges))
		return sl_errorf(err, SL_ERR_FORMAT, "%s: model.vocab (an object) or model.merges (an array) is missing",
		                 path);
	const char *prefix = json_str(model, "continuing_subword_prefix"), *suffix = json_str(model, "end_of_word_suffix");
	if ((prefix && *prefix) || (suffix && *suffix))
		return sl_errorf(err, SL_ERR_UNSUPPORTED, "%s: BPE with word prefixes or suffixes is not supported", path);
	if (added && !cJSON_IsArray(added))
		return sl_errorf(err, SL_ERR_FORMAT, "%s: added_tokens is not an array", path);
	sl_status st;
	if ((st = hf_normalizer(h, cJSON_GetObjectItemCaseSensitive(root, "normalizer"))) != SL_OK ||
	    (st = hf_pre_tokenizer(h, cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"))) != SL_OK)
		return st;
	if (h->byte_level == h->metaspace)
		return sl_errorf(err, SL_ERR_UNSUPPORTED,
		                 "%s: the text handling should be either byte-level (ByteLevel) or SentencePiece-like "
		                 "(Metaspace, or a Replace of \" \" by \"\xe2\x96\x81\")",
		                 path);
	if (h->metaspace && h->n_patterns)
		return sl_errorf(err, SL_ERR_UNSUPPORTED, "%s: Split pre-tokenizers beside Metaspace are not supported",
		                 path);
	int32_t max_id;
	if ((st = hf_max_id(path, vocab, added, &max_id, err)) != SL_OK)
		return st;
	sl_tokenizer *t;
	if ((st = sl_tok_new(h->metaspace ? SL_TOK_SPM : SL_TOK_BPE, max_id + 1, &t, err)) != SL_OK)
		return st;
	t->by_rank = true;
	t->prefix = h->metaspace ? h->prefix : SL_PREFIX_NEVER;
	t->split = h->split_words ? SL_SPLIT_EVERY_MARK : SL_SPLIT_NONE;
	t->byte_prefix = h->byte_prefix;
	t->ignore_merges = json_flag(model, "ignore_merges", false);
	snprintf(t->pre_name, sizeof t->pre_name, "tokenizer.json");
	/* Ids no entry names stay empty and unused. */
	memset(t->type, SL_TOKEN_UNUSED, (size_t)t->n_vocab);
	const cJSON *k;
	cJSON_ArrayForEach(k, vocab) {
		if (t->len[k->valueint]) {
			st = sl_errorf(err, SL_ERR_FORMAT, "%s: model.vocab gives id %d twice", path, k->valueint);
			break;
		}
		/* Byte fallback pieces, which the ByteFallback decoder turns
		 * into their bytes. */
		bool byte = h->metaspace && sl_tok_byte_piece(k->string, strlen(k->string)) >= 0;
		t->type[k->valueint] = byte ? SL_TOKEN_BYTE : SL_TOKEN_NORMAL;
		if ((st = sl_tok_set_piece(t, k->valueint, k->string, strlen(k->string), false, err)) != SL_OK) {
			sl_error_prefix(err, "%s: ", path);
			break;
		}
	}
	const cJSON *extra = st == SL_OK ? added : NULL;
	cJSON_ArrayForEach(k, extra) {
		int32_t id = cJSON_GetObjectItemCaseSensitive(k, "id")->valueint;
		const char *s = json_str(k, "content");
		t->type[id] = json_flag(k, "special", false) ? SL_TOKEN_CONTROL : SL_TOKEN_USER_DEFINED;
		t->flags[id] = (json_flag(k, "lstrip", false) ? SL_TOKF_LSTRIP : 0) |
		               (json_flag(k, "rstrip", false) ? SL_TOKF_RSTRIP : 0);
		if ((st = sl_tok_set_piece(t, id, s, strlen(s), false, err)) != SL_OK) {
			sl_error_prefix(err, "%s: ", path);
			break;
		}
	}
	if (st == SL_OK)
		st = sl_tok_index(t, err);
	if (st == SL_OK)
		st = hf_merges(t, path, merges, err);
	for (size_t i = 0; st == SL_OK && i < h->n_patterns; i++)
		if ((st = sl_tok_add_pattern(t, h->patterns[i], strlen(h->patterns[i]), err)) != SL_OK)
			sl_error_prefix(err, "%s: ", path);
	if (st == SL_OK) {
		t->unk = hf_named(t, cJSON_GetObjectItemCaseSensitive(model, "unk_token"));
		hf_specials(t, root, path);
		st = sl_tok_finish(t, err);
	}
	if (st != SL_OK) {
		sl_tok_free(t);
		return st;
	}
	*out = t;
	return SL_OK;
}

sl_status sl_tok_load_hf(const char *path, sl_tokenizer **out, sl_error *err)
{
	*out = NULL;
	char *data;
	size_t len;
	sl_status st = sl_read_file(path, MAX_JSON_BYTES, &data, &len, err);
	if (st != SL_OK)
		return st;
	cJSON *root = cJSON_ParseWithLength(data, len);
	if (!root) {
		const char *at = cJSON_GetErrorPtr();
		size_t off = at && at >= data && at <= data + len ? (size_t)(at - data) : 0;
		free(data);
		return sl_errorf(err, SL_ERR_FORMAT, "%s: not valid JSON (near offset %zu)", path, off);
	}
	free(data);
	hf_text h = {.path = path, .err = err, .prefix = SL_PREFIX_NEVER};
	st = cJSON_IsObject(root) ? hf_build(path, root, &h, out, err)
	                          : sl_errorf(err, SL_ERR_FORMAT, "%s: not a tokenizer.json object", path);
	for (size_t i = 0; i < h.n_patterns; i++)
		free(h.patterns[i]);
	cJSON_Delete(root);
	return st;
}

/* --- by content --------------------------------------------------------- */

sl_status sl_tok_load_file(const char *path, sl_tokenizer **out, sl_error *err)
{
	*out = NULL;
	FILE *f = fopen(path, "rb");
	if (!f)
		return sl_errorf(err, SL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
	unsigned char head[64];
	size_t n = fread(head, 1, sizeof head, f);
	fclose(f);
	if (n >= 4 && memcmp(head, "GGUF", 4) == 0) {
		sl_gguf *g;
		sl_status st = sl_gguf_open(path, &g, err);
		if (st != SL_OK)
			return st;
		st = sl_tok_load_gguf(g, out, err);
		sl_gguf_close(g);
		return st;
	}
	size_t i = n >= 3 && memcmp(head, "\xef\xbb\xbf", 3) == 0 ? 3 : 0;
	while (i < n && (head[i] == ' ' || head[i] == '\t' || head[i] == '\r' || head[i] == '\n'))
		i++;
	if (i < n && head[i] == '{')
		return sl_tok_load_hf(path, out, err);
	return sl_tok_load_llama2c(path, 0, out, err);
}
