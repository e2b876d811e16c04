/* Training a tokenizer: SentencePiece-style BPE with byte fallback, the
 * kind Llama uses. Spaces become "▁" which starts each word, pieces never
 * reach across a word or a line break, and every byte the pieces miss is
 * spelled with <0xNN> tokens, so any text round-trips. */
#ifndef SL_TOK_TRAIN_H
#define SL_TOK_TRAIN_H

#include "progress.h"
#include "vocab.h"

typedef struct {
	int vocab_size;               /* total: <unk>, <s>, </s>, 256 bytes, characters, merges */
	const sl_progress *progress;
} sl_tok_train_opts;

/* Learns up to vocab_size pieces from len bytes of text. Merges stop early
 * when no pair occurs twice; the vocabulary is then smaller. */
sl_status sl_tok_train(const char *text, size_t len, const sl_tok_train_opts *o, sl_vocab *out, sl_error *err);

#endif
