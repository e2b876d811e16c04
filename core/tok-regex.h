/* A small backtracking regular expression matcher over code points, for the
 * pre-tokenizer patterns of GGUF and tokenizer.json vocabularies. It knows
 * exactly what those patterns use: alternation, groups ((..), (?:..),
 * (?i:..), lookahead (?=..) and (?!..)), classes with ranges and negation,
 * \s \S \p{..} \P{..} \r \n \t \f \v, escaped punctuation, ? * + {m} {m,}
 * {m,n}, ^ and $. Semantics are leftmost-first, as in ECMAScript and Rust's
 * fancy-regex, which is what the tokenizers were trained with. */
#ifndef SL_TOK_REGEX_H
#define SL_TOK_REGEX_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef struct sl_regex sl_regex;

/* Compiles a UTF-8 pattern; constructs outside the list above are refused
 * with SL_ERR_UNSUPPORTED naming the offset. */
sl_status sl_regex_compile(const char *pattern, size_t len, sl_regex **out, sl_error *err);
void sl_regex_free(sl_regex *re);

/* Splits text again around the pattern's matches. cp[0..n) is the text and
 * cuts[0..ncuts) the end of each current piece (ascending, the last is n);
 * every piece is searched on its own (^, $ and lookahead see only the
 * piece), and each match and each run of text between matches becomes a
 * piece of the result, a malloc'ed array of ends in *out. */
sl_status sl_regex_split(const sl_regex *re, const uint32_t *cp, size_t n, const size_t *cuts,
                         size_t ncuts, size_t **out, size_t *nout, sl_error *err);

#endif
