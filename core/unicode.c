/* UTF-8 decoding and encoding for the tokenizers. */
#include "unicode.h"

#include <stdbool.h>

static bool is_cont(unsigned char c)
{
	return (c & 0xC0) == 0x80;
}

size_t sl_utf8_decode(const char *s, size_t n, uint32_t *cp)
{
	const unsigned char *u = (const unsigned char *)s;
	unsigned char b = u[0];
	if (b < 0x80) {
		*cp = b;
		return 1;
	}
	/* The second byte's range rules out overlong forms, surrogates and
	 * code points above U+10FFFF (RFC 3629's table). */
	size_t len;
	unsigned char lo = 0x80, hi = 0xBF;
	if (b >= 0xC2 && b <= 0xDF) {
		len = 2;
	} else if (b >= 0xE0 && b <= 0xEF) {
		len = 3;
		if (b == 0xE0)
			lo = 0xA0;
		else if (b == 0xED)
			hi = 0x9F;
	} else if (b >= 0xF0 && b <= 0xF4) {
		len = 4;
		if (b == 0xF0)
			lo = 0x90;
		else if (b == 0xF4)
			hi = 0x8F;
	} else {
		*cp = SL_UNICODE_REPLACEMENT;
		return 1;
	}
	if (n < len || u[1] < lo || u[1] > hi) {
		*cp = SL_UNICODE_REPLACEMENT;
		return 1;
	}
	uint32_t v = b & (0x7F >> len);
	for (size_t i = 1; i < len; i++) {
		if (!is_cont(u[i])) {
			*cp = SL_UNICODE_REPLACEMENT;
			return 1;
		}
		v = v << 6 | (u[i] & 0x3F);
	}
	*cp = v;
	return len;
}

size_t sl_utf8_encode(uint32_t cp, char out[4])
{
	if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		cp = SL_UNICODE_REPLACEMENT;
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xC0 | cp >> 6);
		out[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xE0 | cp >> 12);
		out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
		out[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	out[0] = (char)(0xF0 | cp >> 18);
	out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
	out[2] = (char)(0x80 | (cp >> 6 & 0x3F));
	out[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}
