/* The pre-tokenizer's splits on PCRE2. Text that is not valid UTF-8 is
 * matched on a copy where each stray byte reads U+FFFD, and the cuts are
 * mapped back, so the pieces hold the bytes as they came. The splits are
 * those of the backtracking engines the tokenizers were made with (and
 * llama.cpp's): leftmost match first, alternatives in order. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "tok-split.h"

#include <pcre2.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "unicode.h"

/* What one match may cost before the split gives up with an error: far
 * above what real pre-tokenizer patterns need on any text, low enough that
 * a hostile tokenizer.json cannot stall a load or a tokenization. The heap
 * limit is in KiB (the interpreter's backtracking frames). */
#define MATCH_LIMIT 10000000u
#define HEAP_LIMIT_KIB 65536u

struct sl_split_pattern {
	pcre2_code *code;
	pcre2_match_context *limits;
};

void sl_split_free(sl_split_pattern *p)
{
	if (!p)
		return;
	pcre2_code_free(p->code);
	pcre2_match_context_free(p->limits);
	free(p);
}

sl_status sl_split_compile(const char *pattern, size_t len, sl_split_pattern **out, sl_error *err)
{
	*out = NULL;
	sl_split_pattern *p = calloc(1, sizeof *p);
	if (!p)
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory compiling a pattern");
	int code;
	PCRE2_SIZE at;
	/* \C could match half a character and cut text inside one. */
	p->code = pcre2_compile((PCRE2_SPTR)pattern, len,
	                        PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY | PCRE2_NEVER_BACKSLASH_C, &code, &at,
	                        NULL);
	if (!p->code) {
		PCRE2_UCHAR msg[256];
		pcre2_get_error_message(code, msg, sizeof msg);
		sl_split_free(p);
		return sl_errorf(err, code == PCRE2_ERROR_HEAP_FAILED ? SL_ERR_NOMEM : SL_ERR_FORMAT,
		                 "pattern offset %zu: %s", (size_t)at, (const char *)msg);
	}
	p->limits = pcre2_match_context_create(NULL);
	if (!p->limits) {
		sl_split_free(p);
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory compiling a pattern");
	}
	pcre2_set_match_limit(p->limits, MATCH_LIMIT);
	pcre2_set_heap_limit(p->limits, HEAP_LIMIT_KIB);
	/* Without the JIT (unsupported platform, no executable memory, or
	 * SL_NO_JIT) the interpreter gives the same matches, more slowly. */
	if (!getenv("SL_NO_JIT"))
		pcre2_jit_compile(p->code, PCRE2_JIT_COMPLETE);
	*out = p;
	return SL_OK;
}

/* Appends a piece end to a list of them. */
static bool push_end(sl_buf *ends, size_t end)
{
	return sl_buf_put(ends, &end, sizeof end);
}

/* The length of the UTF-8 sequence valid text has at a lead byte. */
static size_t seq_len(unsigned char b)
{
	return b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
}

/* Searches s[0, n) from start; the JIT's stack is small, so what exhausts
 * it runs again in the interpreter, whose frames are on the heap. */
static int search(const sl_split_pattern *p, const char *s, size_t n, size_t start, pcre2_match_data *md)
{
	int rc = pcre2_match(p->code, (PCRE2_SPTR)s, n, start, PCRE2_NO_UTF_CHECK, md, p->limits);
	if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
		rc = pcre2_match(p->code, (PCRE2_SPTR)s, n, start, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, md, p->limits);
	return rc;
}

/* Splits the piece s[begin, end) with p, appending its new ends to out;
 * on a failed search, returns PCRE2's code and *at the offset it began. */
static int split_piece(const sl_split_pattern *p, pcre2_match_data *md, const char *s, size_t begin, size_t end,
                       sl_buf *out, size_t *at)
{
	const char *piece = s + begin;
	size_t n = end - begin, pos = 0, gap = 0;
	while (pos < n) {
		int rc = search(p, piece, n, pos, md);
		if (rc == PCRE2_ERROR_NOMATCH)
			break;
		if (rc < 0) {
			*at = begin + pos;
			return rc;
		}
		const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
		size_t ms = ov[0], me = ov[1];
		if (me > ms) {
			if ((gap < ms && !push_end(out, begin + ms)) || !push_end(out, begin + me))
				return PCRE2_ERROR_NOMEMORY;
			pos = gap = me;
		} else if (ms < n) {
			/* An empty match: the search goes on a character later. */
			pos = ms + seq_len((unsigned char)piece[ms]);
		} else {
			break;
		}
	}
	if (gap < n && !push_end(out, end))
		return PCRE2_ERROR_NOMEMORY;
	return 0;
}

/* U+180E, which PCRE2's \s still takes for a space though Unicode stopped
 * counting it as one in 6.3 (the tokenizers' engines do not), is matched
 * as U+200B: like it a format character (Cf), not a space, 3 bytes long. */
static bool is_u180e(const char *s, size_t k)
{
	return k == 3 && memcmp(s, "\xE1\xA0\x8E", 3) == 0;
}

/* How many bytes of s[0, n) are not part of a UTF-8 sequence, and whether
 * it holds a U+180E. */
static size_t count_invalid(const char *s, size_t n, bool *u180e)
{
	size_t bad = 0;
	*u180e = false;
	for (size_t i = 0; i < n;) {
		if ((unsigned char)s[i] < 0x80) {
			i++;
			continue;
		}
		uint32_t c;
		size_t k = sl_utf8_decode(s + i, n - i, &c);
		bad += k == 1;
		*u180e = *u180e || is_u180e(s + i, k);
		i += k;
	}
	return bad;
}

/* The copy of s[0, n) that is matched: each stray byte as U+FFFD (3
 * bytes), U+180E as U+200B; and where each of its bytes came from (m + 1
 * entries). */
static bool sanitize(const char *s, size_t n, size_t bad, char **copy, size_t **from, size_t *m)
{
	*m = n + 2 * bad;
	*copy = malloc(*m);
	*from = malloc((*m + 1) * sizeof **from);
	if (!*copy || !*from)
		return false;
	size_t j = 0;
	for (size_t i = 0; i < n;) {
		uint32_t c;
		size_t k = sl_utf8_decode(s + i, n - i, &c);
		const char *src = k == 1 && c == SL_UNICODE_REPLACEMENT ? "\xEF\xBF\xBD"
		                : is_u180e(s + i, k) ? "\xE2\x80\x8B" : s + i;
		size_t len = src == s + i ? k : 3;
		memcpy(*copy + j, src, len);
		for (size_t q = 0; q < len; q++)
			(*from)[j + q] = i;
		j += len;
		i += k;
	}
	(*from)[j] = n;
	return true;
}

sl_status sl_split_text(sl_split_pattern *const *patterns, size_t n_patterns, const char *text, size_t n,
                        size_t **ends, size_t *n_ends, sl_error *err)
{
	*ends = NULL;
	*n_ends = 0;
	if (!n)
		return SL_OK;
	char *copy = NULL;
	bool u180e;
	size_t *from = NULL, m = n, bad = count_invalid(text, n, &u180e);
	const char *s = text;
	sl_buf cur = {0}, next = {0};
	pcre2_match_data *md = n_patterns ? pcre2_match_data_create(1, NULL) : NULL;
	sl_status st = SL_OK;
	if ((n_patterns && !md) || ((bad || u180e) && !sanitize(text, n, bad, &copy, &from, &m)) || !push_end(&cur, m)) {
		st = sl_errorf(err, SL_ERR_NOMEM, "out of memory splitting %zu bytes", n);
		goto out;
	}
	if (copy)
		s = copy;
	for (size_t r = 0; r < n_patterns; r++) {
		next.len = 0;
		const size_t *cuts = (const size_t *)cur.data;
		size_t begin = 0, at = 0;
		for (size_t c = 0; c < cur.len / sizeof *cuts; c++) {
			int rc = split_piece(patterns[r], md, s, begin, cuts[c], &next, &at);
			if (rc == PCRE2_ERROR_NOMEMORY) {
				st = sl_errorf(err, SL_ERR_NOMEM, "out of memory splitting %zu bytes", n);
				goto out;
			}
			if (rc < 0) {
				PCRE2_UCHAR msg[256];
				pcre2_get_error_message(rc, msg, sizeof msg);
				st = sl_errorf(err, SL_ERR_UNSUPPORTED,
				               "pre-tokenizer pattern %zu failed on this text at byte %zu: %s", r,
				               from ? from[at] : at, (const char *)msg);
				goto out;
			}
			begin = cuts[c];
		}
		sl_buf t = cur;
		cur = next;
		next = t;
	}
	*ends = (size_t *)cur.data;
	*n_ends = cur.len / sizeof **ends;
	if (from)
		for (size_t c = 0; c < *n_ends; c++)
			(*ends)[c] = from[(*ends)[c]];
	cur.data = NULL;
out:
	sl_buf_free(&cur);
	sl_buf_free(&next);
	free(copy);
	free(from);
	pcre2_match_data_free(md);
	return st;
}
