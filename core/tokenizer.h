/* Tokenizers: SentencePiece-style BPE with scores and byte fallback (llama2.c
 * tokenizer.bin, GGUF "llama" vocabularies) and byte-level BPE with merges
 * (GGUF "gpt2" vocabularies, Hugging Face tokenizer.json), with the
 * pre-tokenizer splits each GGUF names in tokenizer.ggml.pre. */
#ifndef SL_TOKENIZER_H
#define SL_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

struct sl_gguf;

/* How text meets the vocabulary. SPM: spaces are "▁" and characters the
 * vocabulary lacks become <0xNN> byte tokens (llama2.c, GGUF "llama",
 * tokenizer.json with Metaspace); BPE: text is GPT-2's printable stand-in
 * for its bytes (GGUF "gpt2", tokenizer.json with ByteLevel). */
typedef enum { SL_TOK_SPM = 0, SL_TOK_BPE = 1 } sl_tok_kind;

/* Token attributes, as GGUF's tokenizer.ggml.token_type numbers them. */
enum {
	SL_TOKEN_NORMAL = 1,
	SL_TOKEN_UNKNOWN = 2,
	SL_TOKEN_CONTROL = 3,
	SL_TOKEN_USER_DEFINED = 4,
	SL_TOKEN_UNUSED = 5,
	SL_TOKEN_BYTE = 6,
};

typedef struct sl_tokenizer sl_tokenizer;

/* llama2.c tokenizer.bin; vocab_size must match the model's (0 = any). */
sl_status sl_tok_load_llama2c(const char *path, int vocab_size, sl_tokenizer **out, sl_error *err);
/* From a parsed GGUF's tokenizer.ggml.* metadata. */
sl_status sl_tok_load_gguf(const struct sl_gguf *g, sl_tokenizer **out, sl_error *err);
/* Hugging Face tokenizer.json (BPE models: byte-level or SentencePiece-like). */
sl_status sl_tok_load_hf(const char *path, sl_tokenizer **out, sl_error *err);
/* Opens a vocabulary on its own: a GGUF (with or without tensors), a
 * tokenizer.json or a llama2.c tokenizer.bin, by content. */
sl_status sl_tok_load_file(const char *path, sl_tokenizer **out, sl_error *err);
/* Tokenizers are immutable once loaded and shared by reference count:
 * sl_tok_ref adds an owner, sl_tok_free drops one (freeing with the last). */
sl_tokenizer *sl_tok_ref(sl_tokenizer *t);
void sl_tok_free(sl_tokenizer *t);

sl_tok_kind sl_tok_kind_of(const sl_tokenizer *t);
int sl_tok_n_vocab(const sl_tokenizer *t);
int sl_tok_bos(const sl_tokenizer *t);  /* -1 when the vocabulary has none */
int sl_tok_eos(const sl_tokenizer *t);
/* Whether sequences start with BOS for this vocabulary (GGUF
 * tokenizer.ggml.add_bos_token; SentencePiece vocabularies default to yes,
 * byte-level BPE ones to no). */
bool sl_tok_add_bos(const sl_tokenizer *t);
const char *sl_tok_pre_name(const sl_tokenizer *t); /* "default", "llama-bpe", ... */

/* Encodes len bytes of text. Special tokens in the text are not parsed.
 * *ids is malloc'ed (free it); add_bos prepends BOS when the vocab has one. */
sl_status sl_tok_encode(const sl_tokenizer *t, const char *text, size_t len, bool add_bos,
                        int32_t **ids, size_t *n_ids, sl_error *err);

/* The bytes token id stands for when it follows token prev (-1 at the start;
 * SentencePiece drops the leading space after BOS); *len receives their
 * length (they are not NUL-terminated). Control tokens decode to nothing.
 * Returns NULL for ids out of range. */
const char *sl_tok_decode(const sl_tokenizer *t, int32_t prev, int32_t id, size_t *len);
/* The vocabulary entry as stored ("▁the", "Ġthe", "<0x0A>"). */
const char *sl_tok_piece(const sl_tokenizer *t, int32_t id);

/* The id of a vocabulary entry given as stored, or -1. */
int32_t sl_tok_find(const sl_tokenizer *t, const char *piece, size_t len);
int sl_tok_unk(const sl_tokenizer *t);  /* -1 when the vocabulary has none */
/* SL_TOKEN_* of token id (0 out of range) and its SentencePiece score. */
int sl_tok_type(const sl_tokenizer *t, int32_t id);
float sl_tok_score(const sl_tokenizer *t, int32_t id);
/* The merges, by rank (none for score-merged vocabularies): merge i joins
 * the pieces of *left and *right; false when i is out of range. */
size_t sl_tok_n_merges(const sl_tokenizer *t);
bool sl_tok_merge(const sl_tokenizer *t, size_t i, int32_t *left, int32_t *right);

#endif
