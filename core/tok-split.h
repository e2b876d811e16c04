/* The pre-tokenizer's splits: each pattern (a GGUF pre-tokenizer type's or a
 * tokenizer.json Split's) is compiled once per tokenizer by PCRE2, as UTF-8
 * with Unicode properties (\p{L}, and \s, \w, \d by Unicode), JIT-compiled
 * where the platform allows. $ matches only at the end of the text, as in
 * the tokenizers' own engines. */
#ifndef SL_TOK_SPLIT_H
#define SL_TOK_SPLIT_H

#include <stddef.h>

#include "error.h"

typedef struct sl_split_pattern sl_split_pattern;

/* Compiles a UTF-8 pattern of len bytes; a malformed one is refused with
 * SL_ERR_FORMAT and PCRE2's reason, at "pattern offset N". The JIT is not
 * used when SL_NO_JIT is set in the environment (for comparisons). */
sl_status sl_split_compile(const char *pattern, size_t len, sl_split_pattern **out, sl_error *err);
void sl_split_free(sl_split_pattern *p);

/* Splits text[0, n) with each pattern in turn: each searches every piece
 * the previous ones left on its own (^, $ and lookaround see only the
 * piece), and each match and each run of text between matches becomes a
 * piece; empty matches cut nothing. *ends gets the end of each piece
 * (malloc'ed, ascending, the last is n; none for empty text). Bytes that
 * are not UTF-8 are matched as U+FFFD, one each, and stay in the pieces as
 * they were. A match that costs more than PCRE2's limits fails with
 * SL_ERR_UNSUPPORTED rather than running on. */
sl_status sl_split_text(sl_split_pattern *const *patterns, size_t n_patterns, const char *text, size_t n,
                        size_t **ends, size_t *n_ends, sl_error *err);

#endif
