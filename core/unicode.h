/* Unicode for the tokenizers: UTF-8 decoding and encoding, general
 * categories (from the table tools/gen-unicode-data.py generates) and
 * White_Space, which is what the pre-tokenizer patterns' \p{..} and \s test. */
#ifndef SL_UNICODE_H
#define SL_UNICODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* General categories; tools/gen-unicode-data.py numbers them in this order. */
enum sl_gc {
	SL_GC_CN, SL_GC_LU, SL_GC_LL, SL_GC_LT, SL_GC_LM, SL_GC_LO,
	SL_GC_MN, SL_GC_MC, SL_GC_ME, SL_GC_ND, SL_GC_NL, SL_GC_NO,
	SL_GC_PC, SL_GC_PD, SL_GC_PS, SL_GC_PE, SL_GC_PI, SL_GC_PF, SL_GC_PO,
	SL_GC_SM, SL_GC_SC, SL_GC_SK, SL_GC_SO,
	SL_GC_ZS, SL_GC_ZL, SL_GC_ZP, SL_GC_CC, SL_GC_CF, SL_GC_CS, SL_GC_CO,
	SL_GC_COUNT
};

/* Masks of categories (1u << SL_GC_x) for the one-letter classes. */
#define SL_GC_BIT(gc) (1u << (gc))
#define SL_GCM_L (SL_GC_BIT(SL_GC_LU) | SL_GC_BIT(SL_GC_LL) | SL_GC_BIT(SL_GC_LT) | \
                  SL_GC_BIT(SL_GC_LM) | SL_GC_BIT(SL_GC_LO))
#define SL_GCM_M (SL_GC_BIT(SL_GC_MN) | SL_GC_BIT(SL_GC_MC) | SL_GC_BIT(SL_GC_ME))
#define SL_GCM_N (SL_GC_BIT(SL_GC_ND) | SL_GC_BIT(SL_GC_NL) | SL_GC_BIT(SL_GC_NO))
#define SL_GCM_P (SL_GC_BIT(SL_GC_PC) | SL_GC_BIT(SL_GC_PD) | SL_GC_BIT(SL_GC_PS) | \
                  SL_GC_BIT(SL_GC_PE) | SL_GC_BIT(SL_GC_PI) | SL_GC_BIT(SL_GC_PF) | \
                  SL_GC_BIT(SL_GC_PO))
#define SL_GCM_S (SL_GC_BIT(SL_GC_SM) | SL_GC_BIT(SL_GC_SC) | SL_GC_BIT(SL_GC_SK) | \
                  SL_GC_BIT(SL_GC_SO))
#define SL_GCM_Z (SL_GC_BIT(SL_GC_ZS) | SL_GC_BIT(SL_GC_ZL) | SL_GC_BIT(SL_GC_ZP))
#define SL_GCM_C (SL_GC_BIT(SL_GC_CN) | SL_GC_BIT(SL_GC_CC) | SL_GC_BIT(SL_GC_CF) | \
                  SL_GC_BIT(SL_GC_CS) | SL_GC_BIT(SL_GC_CO))

#define SL_UNICODE_REPLACEMENT 0xFFFDu

/* Decodes one code point from s (n > 0 bytes available). A malformed,
 * overlong, surrogate or truncated sequence reads as one byte that decodes
 * to U+FFFD, so every byte of any input belongs to exactly one code point.
 * Returns the number of bytes used. */
size_t sl_utf8_decode(const char *s, size_t n, uint32_t *cp);
/* Writes cp as UTF-8 (1 to 4 bytes) and returns the length. */
size_t sl_utf8_encode(uint32_t cp, char out[4]);

enum sl_gc sl_unicode_gc(uint32_t cp);
/* The Unicode White_Space property (what \s matches). */
bool sl_unicode_is_space(uint32_t cp);
/* Parses a category name as written in \p{..} ("L", "Lu", "N", ...) into a
 * mask of SL_GC_BIT()s; 0 when unknown. */
uint32_t sl_unicode_gc_mask(const char *name, size_t len);

/* The generated table (core/unicode-data.c). */
extern const uint32_t sl_unicode_gc_ranges[];
extern const size_t sl_unicode_gc_nranges;

#endif
