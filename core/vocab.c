/* Vocabularies in GGUF: the tokenizer.ggml.* keys, written in one place. */
#include "vocab.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer.h"

void sl_vocab_free(sl_vocab *v)
{
	if (v->pieces)
		for (int32_t i = 0; i < v->n; i++)
			free(v->pieces[i]);
	if (v->merges)
		for (int32_t i = 0; i < v->n_merges; i++)
			free(v->merges[i]);
	free(v->pieces);
	free(v->scores);
	free(v->types);
	free(v->merges);
	memset(v, 0, sizeof *v);
}

void sl_vocab_put(sl_gguf_writer *w, const sl_vocab *v)
{
	sl_gguf_set_str(w, "tokenizer.ggml.model", v->model);
	if (v->pre[0])
		sl_gguf_set_str(w, "tokenizer.ggml.pre", v->pre);
	sl_gguf_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)v->pieces, NULL, (uint64_t)v->n);
	if (v->scores)
		sl_gguf_set_arr(w, "tokenizer.ggml.scores", SL_GGUF_F32, v->scores, (uint64_t)v->n);
	sl_gguf_set_arr(w, "tokenizer.ggml.token_type", SL_GGUF_I32, v->types, (uint64_t)v->n);
	if (v->merges)
		sl_gguf_set_arr_str(w, "tokenizer.ggml.merges", (const char *const *)v->merges, NULL,
		                    (uint64_t)v->n_merges);
	if (v->bos >= 0)
		sl_gguf_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)v->bos);
	if (v->eos >= 0)
		sl_gguf_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)v->eos);
	if (v->unk >= 0)
		sl_gguf_set_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)v->unk);
	sl_gguf_set_bool(w, "tokenizer.ggml.add_bos_token", v->add_bos);
	sl_gguf_set_bool(w, "tokenizer.ggml.add_eos_token", false);
}

sl_status sl_vocab_write(const sl_vocab *v, const char *path, sl_error *err)
{
	sl_gguf_writer *w = sl_gguf_writer_new();
	if (!w)
		return sl_errorf(err, SL_ERR_NOMEM, "%s: out of memory", path);
	sl_gguf_set_str(w, "general.name", "slimlab vocabulary");
	sl_vocab_put(w, v);
	sl_status st = sl_gguf_write(w, path, err);
	sl_gguf_writer_free(w);
	return st;
}

sl_status sl_vocab_to_tokenizer(const sl_vocab *v, struct sl_tokenizer **out, sl_error *err)
{
	*out = NULL;
	sl_gguf_writer *w = sl_gguf_writer_new();
	if (!w)
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory");
	sl_vocab_put(w, v);
	void *buf;
	size_t size;
	sl_status st = sl_gguf_write_mem(w, &buf, &size, err);
	sl_gguf_writer_free(w);
	if (st)
		return st;
	sl_gguf *g;
	if (!(st = sl_gguf_parse(buf, size, "(vocabulary in memory)", &g, err))) {
		st = sl_tok_load_gguf(g, out, err);
		sl_gguf_close(g);
	}
	free(buf);
	return st;
}

sl_status sl_vocab_from_tokenizer(const struct sl_tokenizer *t, sl_vocab *v, sl_error *err)
{
	memset(v, 0, sizeof *v);
	bool spm = sl_tok_kind_of(t) == SL_TOK_SPM;
	snprintf(v->model, sizeof v->model, "%s", spm ? "llama" : "gpt2");
	if (!spm)
		snprintf(v->pre, sizeof v->pre, "%s", sl_tok_pre_name(t));
	v->n = sl_tok_n_vocab(t);
	v->bos = sl_tok_bos(t);
	v->eos = sl_tok_eos(t);
	v->unk = sl_tok_unk(t);
	v->add_bos = sl_tok_add_bos(t);
	size_t nm = spm ? 0 : sl_tok_n_merges(t);
	v->pieces = calloc((size_t)v->n, sizeof *v->pieces);
	v->types = calloc((size_t)v->n, sizeof *v->types);
	v->scores = spm ? calloc((size_t)v->n, sizeof *v->scores) : NULL;
	v->merges = nm ? calloc(nm, sizeof *v->merges) : NULL;
	if (!v->pieces || !v->types || (spm && !v->scores) || (nm && !v->merges))
		goto oom;
	for (int32_t i = 0; i < v->n; i++) {
		if (!(v->pieces[i] = sl_strdup(sl_tok_piece(t, i))))
			goto oom;
		v->types[i] = sl_tok_type(t, i);
		if (spm)
			v->scores[i] = sl_tok_score(t, i);
	}
	for (size_t i = 0; i < nm; i++, v->n_merges++) {
		int32_t a, b;
		sl_tok_merge(t, i, &a, &b);
		const char *pa = sl_tok_piece(t, a), *pb = sl_tok_piece(t, b);
		size_t la = strlen(pa), lb = strlen(pb);
		if (!(v->merges[i] = malloc(la + lb + 2)))
			goto oom;
		memcpy(v->merges[i], pa, la);
		v->merges[i][la] = ' ';
		memcpy(v->merges[i] + la + 1, pb, lb + 1);
	}
	return SL_OK;
oom:
	sl_vocab_free(v);
	return sl_errorf(err, SL_ERR_NOMEM, "out of memory copying a vocabulary of %d tokens", sl_tok_n_vocab(t));
}
