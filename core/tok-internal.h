/* What the tokenizer's files share and nothing else sees: the tokenizer
 * itself, the builder the loaders (tok-load.c) fill it through, and the
 * table of GGUF pre-tokenizer types (tok-pre.c). */
#ifndef SL_TOK_INTERNAL_H
#define SL_TOK_INTERNAL_H

#include <stdatomic.h>

#include "tok-split.h"
#include "tokenizer.h"

/* Tokens with more than this many entries are refused as hostile. */
#define SL_TOK_MAX_VOCAB 10000000

/* When SentencePiece-style text gets its "▁" prefix. */
enum { SL_PREFIX_NEVER, SL_PREFIX_FIRST, SL_PREFIX_ALWAYS };

/* Where SentencePiece-style text is cut into words merged on their own:
 * nowhere, before every "▁" (tokenizer.json's Metaspace split), or where
 * no piece can reach across: before a "▁" that follows another character,
 * when no piece has a "▁" after its other characters. */
enum { SL_SPLIT_NONE, SL_SPLIT_EVERY_MARK, SL_SPLIT_WORDS };

/* Per-token flags beside the GGUF token type. */
enum { SL_TOKF_LSTRIP = 1, SL_TOKF_RSTRIP = 2 };

struct sl_tokenizer {
	atomic_int refs;       /* owners less one */
	/* SPM: spaces are "▁" and unknown characters fall back to <0xNN>;
	 * BPE: text is mapped byte by byte to GPT-2's printable characters. */
	sl_tok_kind kind;
	/* Pairs merge by rank from a merges list (gpt2 vocabularies and every
	 * tokenizer.json) rather than by the score of the merged piece. */
	bool by_rank;
	int32_t n_vocab;

	char *text;            /* every piece, NUL-terminated, back to back */
	size_t text_len, text_cap;
	uint32_t *off, *len;   /* piece i is text + off[i], len[i] bytes */
	float *score;
	uint8_t *type;         /* SL_TOKEN_* */
	uint8_t *flags;        /* SL_TOKF_* */
	char *dec;             /* what each token decodes to, back to back */
	uint32_t *dec_off;     /* token i decodes to dec[dec_off[i] .. dec_off[i + 1]) */

	uint64_t *slots;       /* piece -> id: hash << 32 | (id + 1), 0 empty */
	size_t slot_mask;

	int32_t (*merges)[3];  /* left, right and merged id of each merge, by rank */
	size_t n_merges, merges_cap;
	uint32_t *pairs;       /* (left, right) -> rank + 1, 0 empty */
	size_t pair_mask;

	int32_t byte_id[256];  /* the token standing for a lone byte, or -1 */
	int32_t bos, eos, unk;
	bool add_bos;          /* the vocabulary asks for BOS by default */
	int prefix;            /* SL_PREFIX_*: SPM's leading "▁" */
	int split;             /* SPM: SL_SPLIT_* */
	bool byte_prefix;      /* BPE: a space goes before text not starting with one */
	bool ignore_merges;    /* BPE: a word that is a whole token is taken as is */
	char pre_name[48];
	sl_split_pattern **pre; /* BPE: the pre-tokenizer splits, in order */
	size_t n_pre;
	int32_t *user;         /* user-defined tokens, longest first, matched in text */
	size_t n_user;
};

/* --- building (tokenizer.c), in this order --------------------------- */

sl_status sl_tok_new(sl_tok_kind kind, int32_t n_vocab, sl_tokenizer **out, sl_error *err);
/* Sets token id's piece, with its spaces as "▁" when mark_spaces (llama2.c
 * stores SentencePiece pieces with plain spaces). */
sl_status sl_tok_set_piece(sl_tokenizer *t, int32_t id, const char *s, size_t len, bool mark_spaces,
                           sl_error *err);
/* Builds the piece -> id table once every piece is set. */
sl_status sl_tok_index(sl_tokenizer *t, sl_error *err);
/* Appends the merge of two pieces (the next rank); what names a piece the
 * vocabulary lacks is an error that says which. */
sl_status sl_tok_add_merge(sl_tokenizer *t, const char *a, size_t alen, const char *b, size_t blen,
                           sl_error *err);
sl_status sl_tok_add_pattern(sl_tokenizer *t, const char *pattern, size_t len, sl_error *err);
/* Takes the pre-tokenizer a GGUF names (default when unknown or NULL). */
sl_status sl_tok_use_pre(sl_tokenizer *t, const char *name, sl_error *err);
/* Checks the special ids and derives the byte and decode tables. */
sl_status sl_tok_finish(sl_tokenizer *t, sl_error *err);

/* The byte a "<0xNN>" piece stands for, or -1 for any other piece. */
int sl_tok_byte_piece(const char *s, size_t len);

/* --- GGUF pre-tokenizer types (tok-pre.c) ----------------------------- */

typedef struct {
	const char *names;              /* the tokenizer.ggml.pre values, space-separated */
	bool ignore_merges;
	const char *const *patterns;    /* NULL-terminated */
} sl_tok_pre_type;

/* The type a tokenizer.ggml.pre value names, or NULL. */
const sl_tok_pre_type *sl_tok_pre_lookup(const char *name);
/* The splits of the GPT-2 byte-level pre-tokenizer (tokenizer.json's
 * ByteLevel with use_regex). */
extern const char sl_tok_gpt2_pattern[];

#endif
