/* A vocabulary as GGUF stores it under tokenizer.ggml.*: what the
 * tokenizer trainer produces, what model export writes, and the one place
 * that writes those keys. */
#ifndef SL_VOCAB_H
#define SL_VOCAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "gguf.h"

struct sl_tokenizer;

typedef struct {
	char model[16];    /* tokenizer.ggml.model: "llama" (SentencePiece) or "gpt2" */
	char pre[48];      /* tokenizer.ggml.pre; empty when none */
	int32_t n;
	char **pieces;     /* n pieces as stored ("▁the", "<0x0A>"), NUL-terminated */
	float *scores;     /* n scores (SentencePiece), or NULL */
	int32_t *types;    /* n SL_TOKEN_* */
	char **merges;     /* n_merges "left right" strings (gpt2), or NULL */
	int32_t n_merges;
	int32_t bos, eos, unk; /* -1 when absent */
	bool add_bos;
} sl_vocab;

void sl_vocab_free(sl_vocab *v);
/* Sets the tokenizer.ggml.* keys of v on w. */
void sl_vocab_put(sl_gguf_writer *w, const sl_vocab *v);
/* A GGUF holding only the vocabulary, written atomically; slimlab opens
 * it as it opens ggml-vocab-*.gguf (llama.cpp wants a model around it). */
sl_status sl_vocab_write(const sl_vocab *v, const char *path, sl_error *err);
/* A tokenizer for v, built the way a GGUF file's vocabulary is loaded. */
sl_status sl_vocab_to_tokenizer(const sl_vocab *v, struct sl_tokenizer **out, sl_error *err);
/* The vocabulary of a loaded tokenizer. */
sl_status sl_vocab_from_tokenizer(const struct sl_tokenizer *t, sl_vocab *v, sl_error *err);

#endif
