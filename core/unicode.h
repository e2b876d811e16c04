/* UTF-8 for the tokenizers: decoding that gives every byte of any input a
 * place, and encoding. */
#ifndef SL_UNICODE_H
#define SL_UNICODE_H

#include <stddef.h>
#include <stdint.h>

#define SL_UNICODE_REPLACEMENT 0xFFFDu

/* Decodes one code point from s (n > 0 bytes available). A malformed,
 * overlong, surrogate or truncated sequence reads as one byte that decodes
 * to U+FFFD, so every byte of any input belongs to exactly one code point.
 * Returns the number of bytes used. */
size_t sl_utf8_decode(const char *s, size_t n, uint32_t *cp);
/* Writes cp as UTF-8 (1 to 4 bytes) and returns the length. */
size_t sl_utf8_encode(uint32_t cp, char out[4]);

#endif
