/* The tokenizer proper: the tables the loaders build (pieces, piece -> id,
 * merges), encoding and decoding. Encoding takes user-defined tokens out of
 * the text first, then merges each remaining stretch: SentencePiece-style
 * over code points with "▁" for spaces, or byte-level over the words the
 * pre-tokenizer splits off. Both merge with one priority queue, by the
 * merged piece's score or by the pair's rank. */
#include "tok-internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unicode.h"

#define SPACE_MARK "\xe2\x96\x81" /* U+2581, SentencePiece's space */
#define SPACE_MARK_LEN 3
/* Texts are addressed with int32_t offsets while merging. */
#define MAX_TEXT ((size_t)1 << 29)

/* --- building ---------------------------------------------------------- */

/* Eight bytes at a time: pieces are short, and loading a 150k vocabulary
 * with its merges hashes a few hundred thousand of them. */
static uint64_t hash_bytes(const char *s, size_t n)
{
	uint64_t h = 0x9e3779b97f4a7c15ull ^ n;
	for (; n >= 8; s += 8, n -= 8) {
		uint64_t w;
		memcpy(&w, s, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdull;
		h ^= h >> 32;
	}
	uint64_t w = 0;
	memcpy(&w, s, n);
	h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
	return h ^ h >> 29;
}

static uint64_t hash_u64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	return x;
}

/* A power of two at least twice n, so probes stay short. */
static size_t table_size(size_t n)
{
	size_t s = 16;
	while (s < 2 * n)
		s <<= 1;
	return s;
}

sl_status sl_tok_new(sl_tok_kind kind, int32_t n_vocab, sl_tokenizer **out, sl_error *err)
{
	*out = NULL;
	if (n_vocab < 1 || n_vocab > SL_TOK_MAX_VOCAB)
		return sl_errorf(err, SL_ERR_FORMAT, "a vocabulary of %d tokens is out of range (1 to %d)",
		                 (int)n_vocab, SL_TOK_MAX_VOCAB);
	sl_tokenizer *t = calloc(1, sizeof *t);
	if (!t)
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory for a tokenizer");
	size_t n = (size_t)n_vocab;
	t->kind = kind;
	t->by_rank = kind == SL_TOK_BPE;
	t->n_vocab = n_vocab;
	t->text_cap = 8 * n + 1;
	t->text = malloc(t->text_cap);
	t->off = calloc(n, sizeof *t->off);
	t->len = calloc(n, sizeof *t->len);
	t->score = calloc(n, sizeof *t->score);
	t->type = malloc(n);
	t->flags = calloc(n, 1);
	if (!t->text || !t->off || !t->len || !t->score || !t->type || !t->flags) {
		sl_tok_free(t);
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory for %d tokens", (int)n_vocab);
	}
	memset(t->type, SL_TOKEN_NORMAL, n);
	/* Offset 0 holds "", what every piece is until it is set. */
	t->text[0] = 0;
	t->text_len = 1;
	t->bos = t->eos = t->unk = -1;
	t->prefix = kind == SL_TOK_SPM ? SL_PREFIX_ALWAYS : SL_PREFIX_NEVER;
	snprintf(t->pre_name, sizeof t->pre_name, "default");
	*out = t;
	return SL_OK;
}

sl_status sl_tok_set_piece(sl_tokenizer *t, int32_t id, const char *s, size_t len, bool mark_spaces,
                           sl_error *err)
{
	size_t spaces = 0;
	if (mark_spaces)
		for (size_t i = 0; i < len; i++)
			spaces += s[i] == ' ';
	size_t need = len + spaces * (SPACE_MARK_LEN - 1) + 1;
	if (len > UINT32_MAX / 4 || t->text_len + need > UINT32_MAX)
		return sl_errorf(err, SL_ERR_FORMAT, "token %d: pieces add up to more than 4 GiB", (int)id);
	if (t->text_len + need > t->text_cap) {
		size_t cap = t->text_cap * 2;
		while (cap < t->text_len + need)
			cap *= 2;
		char *p = realloc(t->text, cap);
		if (!p)
			return sl_errorf(err, SL_ERR_NOMEM, "out of memory for the vocabulary's pieces");
		t->text = p;
		t->text_cap = cap;
	}
	char *d = t->text + t->text_len;
	t->off[id] = (uint32_t)t->text_len;
	for (size_t i = 0; i < len; i++) {
		if (mark_spaces && s[i] == ' ') {
			memcpy(d, SPACE_MARK, SPACE_MARK_LEN);
			d += SPACE_MARK_LEN;
		} else {
			*d++ = s[i];
		}
	}
	*d++ = 0;
	t->len[id] = (uint32_t)(d - (t->text + t->text_len) - 1);
	t->text_len = (size_t)(d - t->text);
	return SL_OK;
}

sl_status sl_tok_index(sl_tokenizer *t, sl_error *err)
{
	size_t size = table_size((size_t)t->n_vocab);
	t->slots = calloc(size, sizeof *t->slots);
	if (!t->slots)
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory indexing %d tokens", (int)t->n_vocab);
	t->slot_mask = size - 1;
	for (int32_t id = 0; id < t->n_vocab; id++) {
		const char *s = t->text + t->off[id];
		size_t n = t->len[id];
		if (n == 0)
			continue;
		/* A piece stored twice maps to its last id, as llama.cpp has it. */
		uint64_t h = hash_bytes(s, n), tag = h & 0xffffffff00000000ull;
		size_t i = h & t->slot_mask;
		for (; t->slots[i]; i = (i + 1) & t->slot_mask) {
			int32_t o = (int32_t)(t->slots[i] & 0xffffffff) - 1;
			if ((t->slots[i] & ~0xffffffffull) == tag && t->len[o] == n &&
			    memcmp(t->text + t->off[o], s, n) == 0)
				break;
		}
		t->slots[i] = tag | (uint32_t)(id + 1);
	}
	return SL_OK;
}

int32_t sl_tok_find(const sl_tokenizer *t, const char *s, size_t n)
{
	if (!t->slots || n == 0)
		return -1;
	/* The stored hash bits settle most mismatches without touching the
	 * piece itself. */
	uint64_t h = hash_bytes(s, n), tag = h & 0xffffffff00000000ull;
	for (size_t i = h & t->slot_mask;; i = (i + 1) & t->slot_mask) {
		uint64_t v = t->slots[i];
		if (!v)
			return -1;
		int32_t id = (int32_t)(v & 0xffffffff) - 1;
		if ((v & ~0xffffffffull) == tag && t->len[id] == n && memcmp(t->text + t->off[id], s, n) == 0)
			return id;
	}
}

sl_status sl_tok_add_merge(sl_tokenizer *t, const char *a, size_t alen, const char *b, size_t blen,
                           sl_error *err)
{
	char small[256];
	char *ab = alen + blen <= sizeof small ? small : malloc(alen + blen);
	if (!ab)
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory reading merges");
	memcpy(ab, a, alen);
	memcpy(ab + alen, b, blen);
	int32_t ia = sl_tok_find(t, a, alen), ib = sl_tok_find(t, b, blen);
	int32_t iab = sl_tok_find(t, ab, alen + blen);
	if (ab != small)
		free(ab);
	if (ia < 0 || ib < 0 || iab < 0)
		return sl_errorf(err, SL_ERR_FORMAT, "merge %zu (\"%.*s\" + \"%.*s\") makes or uses a piece "
		                 "that is not in the vocabulary", t->n_merges, (int)(alen < 60 ? alen : 60), a,
		                 (int)(blen < 60 ? blen : 60), b);
	if (t->n_merges == t->merges_cap) {
		size_t cap = t->merges_cap ? t->merges_cap * 2 : 1024;
		int32_t(*m)[3] = realloc(t->merges, cap * sizeof *m);
		if (!m)
			return sl_errorf(err, SL_ERR_NOMEM, "out of memory reading merges");
		t->merges = m;
		t->merges_cap = cap;
	}
	t->merges[t->n_merges][0] = ia;
	t->merges[t->n_merges][1] = ib;
	t->merges[t->n_merges][2] = iab;
	t->n_merges++;
	return SL_OK;
}

sl_status sl_tok_add_pattern(sl_tokenizer *t, const char *pattern, size_t len, sl_error *err)
{
	sl_split_pattern **p = realloc(t->pre, (t->n_pre + 1) * sizeof *p);
	if (!p)
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory for pre-tokenizer patterns");
	t->pre = p;
	sl_status st = sl_split_compile(pattern, len, &t->pre[t->n_pre], err);
	if (st != SL_OK)
		return sl_error_prefix(err, "pre-tokenizer pattern %zu: ", t->n_pre);
	t->n_pre++;
	return SL_OK;
}

sl_status sl_tok_use_pre(sl_tokenizer *t, const char *name, sl_error *err)
{
	const sl_tok_pre_type *pt = name ? sl_tok_pre_lookup(name) : NULL;
	if (!pt) {
		name = "default";
		pt = sl_tok_pre_lookup(name);
	}
	snprintf(t->pre_name, sizeof t->pre_name, "%s", name);
	t->ignore_merges = pt->ignore_merges;
	for (const char *const *p = pt->patterns; *p; p++) {
		sl_status st = sl_tok_add_pattern(t, *p, strlen(*p), err);
		if (st != SL_OK)
			return st;
	}
	return SL_OK;
}

int sl_tok_byte_piece(const char *s, size_t len)
{
	if (len != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>' || !isxdigit((unsigned char)s[3]) ||
	    !isxdigit((unsigned char)s[4]))
		return -1;
	return (int)strtol((char[]){s[3], s[4], 0}, NULL, 16);
}

/* GPT-2 shows every byte as a printable character: printable Latin-1
 * stands for itself, the other 68 bytes for U+0100 onwards, in order. */
static uint32_t gpt2_char(unsigned b)
{
	if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE)
		return b;
	if (b <= 0x20)
		return 0x100 + b;
	if (b <= 0xA0)
		return 0x100 + 0x21 + (b - 0x7F);
	return 0x100 + 0x43; /* 0xAD */
}

static int gpt2_byte(uint32_t c)
{
	if (c < 0x100)
		return gpt2_char(c) == c ? (int)c : -1;
	if (c <= 0x120)
		return (int)(c - 0x100);
	if (c < 0x143)
		return (int)(c - 0x121 + 0x7F);
	return c == 0x143 ? 0xAD : -1;
}

/* Writes what token id decodes to at d and returns its length, which is
 * never more than the piece's: "▁" (3 bytes) becomes one space, a GPT-2
 * character (1 or 2 bytes) one byte, "<0xNN>" one byte. */
static size_t decode_piece(const sl_tokenizer *t, int32_t id, char *d)
{
	const char *s = t->text + t->off[id];
	size_t n = t->len[id], k = 0;
	switch (t->type[id]) {
	case SL_TOKEN_CONTROL:
	case SL_TOKEN_UNKNOWN:
	case SL_TOKEN_UNUSED:
		return 0;
	case SL_TOKEN_USER_DEFINED:
		memcpy(d, s, n);
		return n;
	case SL_TOKEN_BYTE: {
		int byte = sl_tok_byte_piece(s, n);
		if (byte < 0) {
			memcpy(d, s, n);
			return n;
		}
		d[0] = (char)byte;
		return 1;
	}
	}
	if (t->kind == SL_TOK_SPM) {
		for (size_t i = 0; i < n; i++) {
			if (i + SPACE_MARK_LEN <= n && memcmp(s + i, SPACE_MARK, SPACE_MARK_LEN) == 0) {
				d[k++] = ' ';
				i += SPACE_MARK_LEN - 1;
			} else {
				d[k++] = s[i];
			}
		}
		return k;
	}
	for (size_t i = 0; i < n;) {
		uint32_t c;
		size_t l = sl_utf8_decode(s + i, n - i, &c);
		int byte = gpt2_byte(c);
		if (byte >= 0) {
			d[k++] = (char)byte;
		} else {
			memcpy(d + k, s + i, l);
			k += l;
		}
		i += l;
	}
	return k;
}

/* User-defined tokens are matched longest first, then by id. */
static int user_order(size_t la, int32_t a, size_t lb, int32_t b)
{
	if (la != lb)
		return la > lb ? -1 : 1;
	return a < b ? -1 : a > b;
}

typedef struct {
	size_t pos, len;
	int32_t id;          /* a user-defined token, or -1 for plain text */
} span;

static int by_token_then_pos(const void *a, const void *b)
{
	const span *x = a, *y = b;
	int c = user_order(x->len, x->id, y->len, y->id);
	if (c)
		return c;
	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

static int by_pos(const void *a, const void *b)
{
	const span *x = a, *y = b;
	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

static size_t pair_hash(int32_t left, int32_t right)
{
	return (size_t)hash_u64((uint64_t)(uint32_t)left << 32 | (uint32_t)right);
}

/* The rank of the merge of left and right, or -1. */
static int32_t pair_rank(const sl_tokenizer *t, int32_t left, int32_t right)
{
	if (!t->pairs)
		return -1;
	for (size_t i = pair_hash(left, right) & t->pair_mask; t->pairs[i]; i = (i + 1) & t->pair_mask) {
		const int32_t *m = t->merges[t->pairs[i] - 1];
		if (m[0] == left && m[1] == right)
			return (int32_t)t->pairs[i] - 1;
	}
	return -1;
}

static sl_status build_pairs(sl_tokenizer *t, sl_error *err)
{
	size_t size = table_size(t->n_merges);
	t->pairs = calloc(size, sizeof *t->pairs);
	if (!t->pairs)
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory indexing %zu merges", t->n_merges);
	t->pair_mask = size - 1;
	for (size_t r = 0; r < t->n_merges; r++) {
		int32_t a = t->merges[r][0], b = t->merges[r][1];
		size_t i = pair_hash(a, b) & t->pair_mask;
		/* a repeated merge keeps its first rank */
		while (t->pairs[i] && (t->merges[t->pairs[i] - 1][0] != a || t->merges[t->pairs[i] - 1][1] != b))
			i = (i + 1) & t->pair_mask;
		if (!t->pairs[i])
			t->pairs[i] = (uint32_t)r + 1;
	}
	return SL_OK;
}

/* Token types that text can turn into by merging. */
static bool mergeable(const sl_tokenizer *t, int32_t id)
{
	uint8_t ty = t->type[id];
	return ty != SL_TOKEN_CONTROL && ty != SL_TOKEN_UNKNOWN && ty != SL_TOKEN_BYTE && ty != SL_TOKEN_UNUSED;
}

/* Whether every piece text can merge into has its "▁"s only at its start,
 * so that no merge reaches across a "▁" that follows another character:
 * then each word merges alone, with the same result, and long texts cost
 * no more than their words. */
static bool marks_lead(const sl_tokenizer *t)
{
	for (int32_t id = 0; id < t->n_vocab; id++) {
		if (!mergeable(t, id))
			continue;
		const char *s = t->text + t->off[id];
		size_t n = t->len[id], i = 0;
		while (i + SPACE_MARK_LEN <= n && memcmp(s + i, SPACE_MARK, SPACE_MARK_LEN) == 0)
			i += SPACE_MARK_LEN;
		for (; i + SPACE_MARK_LEN <= n; i++)
			if (memcmp(s + i, SPACE_MARK, SPACE_MARK_LEN) == 0)
				return false;
	}
	return true;
}

sl_status sl_tok_finish(sl_tokenizer *t, sl_error *err)
{
	for (unsigned b = 0; b < 256; b++) {
		char piece[8];
		size_t n;
		if (t->kind == SL_TOK_SPM) {
			n = (size_t)snprintf(piece, sizeof piece, "<0x%02X>", b);
			t->byte_id[b] = sl_tok_find(t, piece, n);
			if (t->byte_id[b] < 0 && b < 0x80)
				t->byte_id[b] = sl_tok_find(t, (char[]){(char)b}, 1);
		} else {
			n = sl_utf8_encode(gpt2_char(b), piece);
			t->byte_id[b] = sl_tok_find(t, piece, n);
		}
	}
	if (t->kind == SL_TOK_SPM && t->split == SL_SPLIT_NONE && marks_lead(t))
		t->split = SL_SPLIT_WORDS;
	if (t->n_merges) {
		sl_status st = build_pairs(t, err);
		if (st != SL_OK)
			return st;
	}

	size_t n_user = 0;
	for (int32_t id = 0; id < t->n_vocab; id++)
		n_user += t->type[id] == SL_TOKEN_USER_DEFINED && t->len[id] > 0;
	if (n_user) {
		t->user = malloc(n_user * sizeof *t->user);
		if (!t->user)
			return sl_errorf(err, SL_ERR_NOMEM, "out of memory for user-defined tokens");
		span *order = malloc(n_user * sizeof *order);
		if (!order)
			return sl_errorf(err, SL_ERR_NOMEM, "out of memory for user-defined tokens");
		for (int32_t id = 0; id < t->n_vocab; id++)
			if (t->type[id] == SL_TOKEN_USER_DEFINED && t->len[id] > 0)
				order[t->n_user++] = (span){0, t->len[id], id};
		qsort(order, t->n_user, sizeof *order, by_token_then_pos);
		for (size_t i = 0; i < t->n_user; i++)
			t->user[i] = order[i].id;
		free(order);
	}

	t->dec = malloc(t->text_len);
	t->dec_off = malloc(((size_t)t->n_vocab + 1) * sizeof *t->dec_off);
	if (!t->dec || !t->dec_off)
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory for the decoding table");
	uint32_t at = 0;
	for (int32_t id = 0; id < t->n_vocab; id++) {
		t->dec_off[id] = at;
		at += (uint32_t)decode_piece(t, id, t->dec + at);
	}
	t->dec_off[t->n_vocab] = at;
	return SL_OK;
}

sl_tokenizer *sl_tok_ref(sl_tokenizer *t)
{
	if (t)
		atomic_fetch_add(&t->refs, 1);
	return t;
}

void sl_tok_free(sl_tokenizer *t)
{
	if (!t || atomic_fetch_sub(&t->refs, 1) > 0)
		return;
	for (size_t i = 0; i < t->n_pre; i++)
		sl_split_free(t->pre[i]);
	free(t->pre);
	free(t->text);
	free(t->off);
	free(t->len);
	free(t->score);
	free(t->type);
	free(t->flags);
	free(t->dec);
	free(t->dec_off);
	free(t->slots);
	free(t->merges);
	free(t->pairs);
	free(t->user);
	free(t);
}

/* --- accessors --------------------------------------------------------- */

sl_tok_kind sl_tok_kind_of(const sl_tokenizer *t)
{
	return t->kind;
}

int sl_tok_n_vocab(const sl_tokenizer *t)
{
	return t->n_vocab;
}

int sl_tok_bos(const sl_tokenizer *t)
{
	return t->bos;
}

int sl_tok_eos(const sl_tokenizer *t)
{
	return t->eos;
}

int sl_tok_unk(const sl_tokenizer *t)
{
	return t->unk;
}

bool sl_tok_add_bos(const sl_tokenizer *t)
{
	return t->add_bos && t->bos >= 0;
}

const char *sl_tok_pre_name(const sl_tokenizer *t)
{
	return t->pre_name;
}

size_t sl_tok_n_merges(const sl_tokenizer *t)
{
	return t->n_merges;
}

static bool in_range(const sl_tokenizer *t, int32_t id)
{
	return id >= 0 && id < t->n_vocab;
}

const char *sl_tok_piece(const sl_tokenizer *t, int32_t id)
{
	return in_range(t, id) ? t->text + t->off[id] : NULL;
}

int sl_tok_type(const sl_tokenizer *t, int32_t id)
{
	return in_range(t, id) ? t->type[id] : 0;
}

float sl_tok_score(const sl_tokenizer *t, int32_t id)
{
	return in_range(t, id) ? t->score[id] : 0.0f;
}

bool sl_tok_merge(const sl_tokenizer *t, size_t i, int32_t *left, int32_t *right)
{
	if (i >= t->n_merges)
		return false;
	*left = t->merges[i][0];
	*right = t->merges[i][1];
	return true;
}

const char *sl_tok_decode(const sl_tokenizer *t, int32_t prev, int32_t id, size_t *len)
{
	*len = 0;
	if (!in_range(t, id))
		return NULL;
	const char *s = t->dec + t->dec_off[id];
	size_t n = t->dec_off[id + 1] - t->dec_off[id];
	/* The space the encoder put before a text (or, for "always", after
	 * each user-defined token) is not part of the text. */
	bool starts = prev < 0 || (in_range(t, prev) && (t->type[prev] == SL_TOKEN_CONTROL ||
	              (t->type[prev] == SL_TOKEN_USER_DEFINED && t->prefix == SL_PREFIX_ALWAYS)));
	if (t->kind == SL_TOK_SPM && t->prefix != SL_PREFIX_NEVER && starts && n && s[0] == ' ') {
		s++;
		n--;
	}
	*len = n;
	return s;
}

/* --- encoding ---------------------------------------------------------- */

typedef struct {
	int32_t start, len;  /* bytes of the text being merged */
	int32_t id;          /* the token it is, or -1 */
	int32_t prev, next;
} sym;

typedef struct {
	double prio;         /* higher merges first; ties go to the leftmost */
	int32_t left, right, id, size;
} cand;

typedef struct {
	const sl_tokenizer *t;
	const char *buf;     /* the text sym offsets point into */
	sym *syms;
	size_t n_syms, syms_cap;
	cand *heap;
	size_t n_heap, heap_cap;
	int32_t *out;
	size_t n_out, out_cap;
	char *work;          /* normalized or byte-mapped text */
	size_t work_cap;
} encoder;

static bool grow(void **p, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return true;
	size_t c = *cap ? *cap : 64;
	while (c < need)
		c *= 2;
	void *q = realloc(*p, c * elem);
	if (!q)
		return false;
	*p = q;
	*cap = c;
	return true;
}

static bool emit(encoder *e, int32_t id)
{
	if (!grow((void **)&e->out, &e->out_cap, e->n_out + 1, sizeof *e->out))
		return false;
	e->out[e->n_out++] = id;
	return true;
}

static bool better(const cand *a, const cand *b)
{
	return a->prio > b->prio || (a->prio == b->prio && a->left < b->left);
}

static bool heap_push(encoder *e, cand c)
{
	if (!grow((void **)&e->heap, &e->heap_cap, e->n_heap + 1, sizeof *e->heap))
		return false;
	size_t i = e->n_heap++;
	while (i > 0 && better(&c, &e->heap[(i - 1) / 2])) {
		e->heap[i] = e->heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	e->heap[i] = c;
	return true;
}

static cand heap_pop(encoder *e)
{
	cand top = e->heap[0], last = e->heap[--e->n_heap];
	size_t i = 0, n = e->n_heap;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= n)
			break;
		if (c + 1 < n && better(&e->heap[c + 1], &e->heap[c]))
			c++;
		if (!better(&e->heap[c], &last))
			break;
		e->heap[i] = e->heap[c];
		i = c;
	}
	if (n)
		e->heap[i] = last;
	return top;
}

static int32_t find_mergeable(const sl_tokenizer *t, const char *s, size_t n)
{
	int32_t id = sl_tok_find(t, s, n);
	return id >= 0 && mergeable(t, id) ? id : -1;
}

/* Queues the merge of symbols l and r when the vocabulary has one. */
static bool try_pair(encoder *e, int32_t l, int32_t r)
{
	if (l < 0 || r < 0)
		return true;
	const sl_tokenizer *t = e->t;
	const sym *a = &e->syms[l], *b = &e->syms[r];
	cand c = {.left = l, .right = r, .size = a->len + b->len};
	if (t->by_rank) {
		int32_t rank = a->id < 0 || b->id < 0 ? -1 : pair_rank(t, a->id, b->id);
		if (rank < 0)
			return true;
		c.id = t->merges[rank][2];
		c.prio = -(double)rank;
	} else {
		c.id = find_mergeable(t, e->buf + a->start, (size_t)c.size);
		if (c.id < 0)
			return true;
		c.prio = t->score[c.id];
	}
	return heap_push(e, c);
}

/* A stretch no token covers: its bytes as byte tokens, else <unk> once. */
static bool emit_unknown(encoder *e, const char *s, size_t n)
{
	const sl_tokenizer *t = e->t;
	bool bytes = true;
	for (size_t i = 0; i < n; i++)
		bytes = bytes && t->byte_id[(unsigned char)s[i]] >= 0;
	if (!bytes)
		return t->unk < 0 || emit(e, t->unk);
	for (size_t i = 0; i < n; i++)
		if (!emit(e, t->byte_id[(unsigned char)s[i]]))
			return false;
	return true;
}

/* Merges buf[start, end) starting from single bytes (by_byte) or code
 * points, and emits the tokens. */
static bool merge_word(encoder *e, const char *buf, size_t start, size_t end, bool by_byte)
{
	const sl_tokenizer *t = e->t;
	e->buf = buf;
	e->n_syms = 0;
	e->n_heap = 0;
	for (size_t i = start; i < end;) {
		uint32_t c;
		size_t k = by_byte ? 1 : sl_utf8_decode(buf + i, end - i, &c);
		if (!grow((void **)&e->syms, &e->syms_cap, e->n_syms + 1, sizeof *e->syms))
			return false;
		int32_t at = (int32_t)e->n_syms++;
		e->syms[at] = (sym){
			.start = (int32_t)i, .len = (int32_t)k, .prev = at - 1, .next = i + k < end ? at + 1 : -1,
			.id = by_byte ? t->byte_id[(unsigned char)buf[i]] : find_mergeable(t, buf + i, k),
		};
		i += k;
	}
	for (size_t i = 1; i < e->n_syms; i++)
		if (!try_pair(e, (int32_t)i - 1, (int32_t)i))
			return false;
	while (e->n_heap) {
		cand c = heap_pop(e);
		sym *a = &e->syms[c.left], *b = &e->syms[c.right];
		/* Symbols only grow by taking in their right neighbour, so a
		 * changed length is how a stale candidate shows. */
		if (a->len == 0 || b->len == 0 || a->len + b->len != c.size)
			continue;
		a->len += b->len;
		a->id = c.id;
		b->len = 0;
		a->next = b->next;
		if (b->next >= 0)
			e->syms[b->next].prev = c.left;
		if (!try_pair(e, a->prev, c.left) || !try_pair(e, c.left, a->next))
			return false;
	}
	for (int32_t i = e->n_syms ? 0 : -1; i >= 0; i = e->syms[i].next) {
		const sym *s = &e->syms[i];
		if (!(s->id >= 0 ? emit(e, s->id) : emit_unknown(e, buf + s->start, (size_t)s->len)))
			return false;
	}
	return true;
}

/* SentencePiece style: spaces become "▁", a "▁" may go first, and the
 * whole stretch (or each "▁"-led word) merges by score or rank. */
static bool encode_spm(encoder *e, const char *s, size_t n, bool prefix)
{
	if (!grow((void **)&e->work, &e->work_cap, SPACE_MARK_LEN * (n + 1), 1))
		return false;
	char *w = e->work;
	size_t len = 0;
	if (prefix) {
		memcpy(w, SPACE_MARK, SPACE_MARK_LEN);
		len = SPACE_MARK_LEN;
	}
	for (size_t i = 0; i < n; i++) {
		if (s[i] == ' ') {
			memcpy(w + len, SPACE_MARK, SPACE_MARK_LEN);
			len += SPACE_MARK_LEN;
		} else {
			w[len++] = s[i];
		}
	}
	if (e->t->split == SL_SPLIT_NONE)
		return merge_word(e, w, 0, len, false);
	size_t start = 0;
	for (size_t i = 1; i <= len; i++) {
		bool cut = i == len;
		if (!cut && i + SPACE_MARK_LEN <= len && memcmp(w + i, SPACE_MARK, SPACE_MARK_LEN) == 0)
			cut = e->t->split == SL_SPLIT_EVERY_MARK || i < SPACE_MARK_LEN ||
			      memcmp(w + i - SPACE_MARK_LEN, SPACE_MARK, SPACE_MARK_LEN) != 0;
		if (cut) {
			if (!merge_word(e, w, start, i, false))
				return false;
			start = i;
		}
	}
	return true;
}

/* A pre-tokenized word taken whole when it is a token (ignore_merges). */
static int32_t whole_word(encoder *e, const char *s, size_t n)
{
	if (!grow((void **)&e->work, &e->work_cap, 2 * n, 1))
		return -1;
	size_t len = 0;
	for (size_t i = 0; i < n; i++)
		len += sl_utf8_encode(gpt2_char((unsigned char)s[i]), e->work + len);
	return find_mergeable(e->t, e->work, len);
}

/* Byte-level: split into words by the pre-tokenizer, merge each by rank. */
static sl_status encode_bpe(encoder *e, const char *text, size_t n, sl_error *err)
{
	const sl_tokenizer *t = e->t;
	char *owned = NULL;
	if (t->byte_prefix && n && text[0] != ' ') {
		owned = malloc(n + 1);
		if (!owned)
			return sl_errorf(err, SL_ERR_NOMEM, "out of memory encoding %zu bytes", n);
		owned[0] = ' ';
		memcpy(owned + 1, text, n);
		text = owned;
		n++;
	}
	size_t *ends, n_ends;
	sl_status st = sl_split_text(t->pre, t->n_pre, text, n, &ends, &n_ends, err);
	for (size_t c = 0, from = 0; st == SL_OK && c < n_ends; from = ends[c++]) {
		int32_t whole = t->ignore_merges ? whole_word(e, text + from, ends[c] - from) : -1;
		if (!(whole >= 0 ? emit(e, whole) : merge_word(e, text, from, ends[c], true)))
			st = sl_errorf(err, SL_ERR_NOMEM, "out of memory encoding %zu bytes", n);
	}
	free(ends);
	free(owned);
	return st;
}

static bool add_span(span **v, size_t *n, size_t *cap, span s)
{
	if (!grow((void **)v, cap, *n + 1, sizeof **v))
		return false;
	(*v)[(*n)++] = s;
	return true;
}

/* Cuts the user-defined tokens out of text, as llama.cpp does: longest
 * first, tokens of one length by id, each leftmost first where no token
 * was taken before, with the spaces an lstrip or rstrip token swallows
 * dropped. The result alternates plain text and tokens. */
static sl_status partition(const sl_tokenizer *t, const char *text, size_t n, span **out, size_t *n_out,
                           sl_error *err)
{
	span *occ = NULL, *kept = NULL, *res = NULL;
	size_t n_occ = 0, occ_cap = 0, n_kept = 0, kept_cap = 0, n_res = 0, res_cap = 0;
	uint8_t *taken = NULL;   /* 1: in a token, 2: a swallowed space */
	uint8_t first[32] = {0};
	for (size_t i = 0; i < t->n_user; i++) {
		unsigned char c = (unsigned char)t->text[t->off[t->user[i]]];
		first[c / 8] |= (uint8_t)(1u << (c % 8));
	}
	for (size_t u = 0; u < t->n_user;) {
		size_t l = t->len[t->user[u]];
		while (u < t->n_user && t->len[t->user[u]] == l)
			u++;
		n_occ = 0;
		for (size_t p = 0; p + l <= n; p++) {
			unsigned char c = (unsigned char)text[p];
			if ((taken && taken[p]) || !(first[c / 8] & (1u << (c % 8))))
				continue;
			int32_t id = sl_tok_find(t, text + p, l);
			if (id >= 0 && t->type[id] == SL_TOKEN_USER_DEFINED && !add_span(&occ, &n_occ, &occ_cap, (span){p, l, id}))
				goto nomem;
		}
		if (!n_occ)
			continue;
		if (!taken && !(taken = calloc(n, 1)))
			goto nomem;
		qsort(occ, n_occ, sizeof *occ, by_token_then_pos);
		for (size_t i = 0; i < n_occ; i++) {
			span s = occ[i];
			bool free_run = true;
			for (size_t k = 0; k < s.len && free_run; k++)
				free_run = !taken[s.pos + k];
			if (!free_run)
				continue;
			memset(taken + s.pos, 1, s.len);
			for (size_t q = s.pos; (t->flags[s.id] & SL_TOKF_LSTRIP) && q > 0 && !taken[q - 1] &&
			                       isspace((unsigned char)text[q - 1]); q--)
				taken[q - 1] = 2;
			for (size_t q = s.pos + s.len; (t->flags[s.id] & SL_TOKF_RSTRIP) && q < n && !taken[q] &&
			                               isspace((unsigned char)text[q]); q++)
				taken[q] = 2;
			if (!add_span(&kept, &n_kept, &kept_cap, s))
				goto nomem;
		}
	}
	if (n_kept)
		qsort(kept, n_kept, sizeof *kept, by_pos);
	size_t p = 0;
	for (size_t i = 0; i <= n_kept; i++) {
		size_t stop = i < n_kept ? kept[i].pos : n;
		while (p < stop) {
			size_t q = p;
			while (q < stop && !(taken && taken[q]))
				q++;
			if (q > p && !add_span(&res, &n_res, &res_cap, (span){p, q - p, -1}))
				goto nomem;
			for (p = q; p < stop && taken && taken[p]; p++)
				;
		}
		if (i < n_kept) {
			if (!add_span(&res, &n_res, &res_cap, kept[i]))
				goto nomem;
			p = kept[i].pos + kept[i].len;
		}
	}
	free(occ);
	free(kept);
	free(taken);
	*out = res;
	*n_out = n_res;
	return SL_OK;
nomem:
	free(occ);
	free(kept);
	free(res);
	free(taken);
	return sl_errorf(err, SL_ERR_NOMEM, "out of memory encoding %zu bytes", n);
}

sl_status sl_tok_encode(const sl_tokenizer *t, const char *text, size_t len, bool add_bos,
                        int32_t **ids, size_t *n_ids, sl_error *err)
{
	*ids = NULL;
	*n_ids = 0;
	if (!text && len)
		return sl_errorf(err, SL_ERR_ARG, "no text to encode");
	if (len > MAX_TEXT)
		return sl_errorf(err, SL_ERR_ARG, "a text of %zu bytes is too long to encode at once (at most %zu)",
		                 len, MAX_TEXT);
	encoder e = {.t = t};
	span *spans = NULL;
	size_t n_spans = 0;
	sl_status st = partition(t, text, len, &spans, &n_spans, err);
	/* Room for one id even when there are none, so *ids is never NULL. */
	bool ok = st == SL_OK && grow((void **)&e.out, &e.out_cap, 1, sizeof *e.out);
	if (ok && add_bos && t->bos >= 0)
		ok = emit(&e, t->bos);
	bool after_token = true;
	for (size_t i = 0; ok && st == SL_OK && i < n_spans; i++) {
		const span *s = &spans[i];
		if (s->id >= 0) {
			ok = emit(&e, s->id);
			after_token = true;
			continue;
		}
		if (t->kind == SL_TOK_SPM) {
			bool prefix = t->prefix == SL_PREFIX_ALWAYS ? after_token
			            : t->prefix == SL_PREFIX_FIRST && s->pos == 0;
			ok = encode_spm(&e, text + s->pos, s->len, prefix);
		} else {
			st = encode_bpe(&e, text + s->pos, s->len, err);
		}
		after_token = false;
	}
	free(spans);
	free(e.syms);
	free(e.heap);
	free(e.work);
	if (st == SL_OK && !ok)
		st = sl_errorf(err, SL_ERR_NOMEM, "out of memory encoding %zu bytes", len);
	if (st != SL_OK) {
		free(e.out);
		return st;
	}
	*ids = e.out;
	*n_ids = e.n_out;
	return SL_OK;
}
