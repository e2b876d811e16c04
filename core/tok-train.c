/* The tokenizer trainer: byte-pair merges over the distinct words of a
 * text, counted once per distinct word and weighted by how often it
 * occurs, with pair counts updated in place as each merge rewrites the
 * words that hold it. */
#include "tok-train.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer.h"

#define SPACE_MARK "\xe2\x96\x81" /* U+2581, SentencePiece's space */
#define SPACE_MARK_LEN 3
/* Longest piece, in bytes; SentencePiece's default is 16 characters. */
#define MAX_PIECE 16
#define N_SPECIAL 3 /* <unk>, <s>, </s> */
#define FIRST_FREE (N_SPECIAL + 256)

/* ---- hash tables ------------------------------------------------------- */

static uint64_t hash_bytes(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
	return h;
}

/* Strings (pointing into memory the caller keeps) to an index. */
typedef struct {
	const char **key;
	uint32_t *len;
	int32_t *val;
	size_t mask, used;
} str_map;

static void smap_free(str_map *m)
{
	free(m->key);
	free(m->len);
	free(m->val);
	memset(m, 0, sizeof *m);
}

static bool smap_init(str_map *m, size_t cap)
{
	m->mask = cap - 1;
	m->used = 0;
	m->key = calloc(cap, sizeof *m->key);
	m->len = calloc(cap, sizeof *m->len);
	m->val = calloc(cap, sizeof *m->val);
	if (m->key && m->len && m->val)
		return true;
	smap_free(m);
	return false;
}

static size_t smap_slot(const str_map *m, const char *s, size_t n)
{
	size_t i = (size_t)hash_bytes(s, n) & m->mask;
	while (m->key[i] && (m->len[i] != n || memcmp(m->key[i], s, n)))
		i = (i + 1) & m->mask;
	return i;
}

static int32_t smap_get(const str_map *m, const char *s, size_t n)
{
	size_t i = smap_slot(m, s, n);
	return m->key[i] ? m->val[i] : -1;
}

static bool smap_put(str_map *m, const char *s, size_t n, int32_t v)
{
	if (2 * (m->used + 1) > m->mask + 1) {
		str_map g;
		if (!smap_init(&g, 2 * (m->mask + 1)))
			return false;
		for (size_t i = 0; i <= m->mask; i++)
			if (m->key[i]) {
				size_t j = smap_slot(&g, m->key[i], m->len[i]);
				g.key[j] = m->key[i];
				g.len[j] = m->len[i];
				g.val[j] = m->val[i];
			}
		g.used = m->used;
		smap_free(m);
		*m = g;
	}
	size_t i = smap_slot(m, s, n);
	if (!m->key[i])
		m->used++;
	m->key[i] = s;
	m->len[i] = (uint32_t)n;
	m->val[i] = v;
	return true;
}

/* Pairs of symbols (left << 32 | right) to how often they are adjacent. */
typedef struct {
	uint64_t *key; /* 0 = empty (no pair is 0:0, symbol 0 is <unk>) */
	int64_t *count;
	size_t mask, used;
} pair_map;

static bool pmap_init(pair_map *m, size_t cap)
{
	m->mask = cap - 1;
	m->used = 0;
	m->key = calloc(cap, sizeof *m->key);
	m->count = calloc(cap, sizeof *m->count);
	if (m->key && m->count)
		return true;
	free(m->key);
	free(m->count);
	m->key = NULL;
	m->count = NULL;
	return false;
}

static size_t pmap_slot(const pair_map *m, uint64_t k)
{
	size_t i = (size_t)((k * 0x9e3779b97f4a7c15ull) >> 20) & m->mask;
	while (m->key[i] && m->key[i] != k)
		i = (i + 1) & m->mask;
	return i;
}

static bool pmap_add(pair_map *m, int32_t a, int32_t b, int64_t d)
{
	uint64_t k = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
	if (2 * (m->used + 1) > m->mask + 1) {
		pair_map g;
		if (!pmap_init(&g, 2 * (m->mask + 1)))
			return false;
		for (size_t i = 0; i <= m->mask; i++)
			if (m->key[i] && m->count[i] > 0) {
				size_t j = pmap_slot(&g, m->key[i]);
				g.key[j] = m->key[i];
				g.count[j] = m->count[i];
				g.used++;
			}
		free(m->key);
		free(m->count);
		*m = g;
	}
	size_t i = pmap_slot(m, k);
	if (!m->key[i]) {
		m->key[i] = k;
		m->used++;
	}
	m->count[i] += d;
	return true;
}

/* ---- training ---------------------------------------------------------- */

typedef struct {
	char **sym;           /* symbol id -> piece; ids below FIRST_FREE are special */
	uint32_t *sym_len;
	int32_t n_sym, cap_sym;
	str_map pieces;       /* piece -> symbol id */
	int32_t *words;       /* every distinct word's symbols, back to back */
	size_t *w_off;
	uint32_t *w_len;
	int64_t *w_count;
	size_t n_words;
	pair_map pairs;
	uint64_t *banned;     /* pairs whose join would spell a special token */
	size_t n_banned;
} trainer;

static int32_t add_symbol(trainer *t, const char *s, size_t n)
{
	if (t->n_sym == t->cap_sym) {
		int32_t cap = t->cap_sym ? 2 * t->cap_sym : 1024;
		char **sym = realloc(t->sym, (size_t)cap * sizeof *sym);
		if (sym)
			t->sym = sym;
		uint32_t *len = realloc(t->sym_len, (size_t)cap * sizeof *len);
		if (len)
			t->sym_len = len;
		if (!sym || !len)
			return -1;
		t->cap_sym = cap;
	}
	char *p = malloc(n + 1);
	if (!p)
		return -1;
	memcpy(p, s, n);
	p[n] = 0;
	t->sym[t->n_sym] = p;
	t->sym_len[t->n_sym] = (uint32_t)n;
	if (!smap_put(&t->pieces, p, n, t->n_sym)) {
		free(p);
		return -1;
	}
	return t->n_sym++;
}

/* Bytes of the UTF-8 character at s (1 for a byte that starts none). */
static size_t utf8_len(const char *s, size_t n)
{
	unsigned char c = (unsigned char)s[0];
	size_t k = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
	if (k > n)
		return 1;
	for (size_t i = 1; i < k; i++)
		if (((unsigned char)s[i] >> 6) != 2)
			return 1;
	return k;
}

/* The text with spaces as "▁" and one "▁" first, as the encoder sees it. */
static char *normalize(const char *text, size_t len, size_t *out_len)
{
	size_t n = SPACE_MARK_LEN;
	for (size_t i = 0; i < len; i++)
		n += text[i] == ' ' ? SPACE_MARK_LEN : 1;
	char *w = malloc(n ? n : 1);
	if (!w)
		return NULL;
	memcpy(w, SPACE_MARK, SPACE_MARK_LEN);
	size_t k = SPACE_MARK_LEN;
	for (size_t i = 0; i < len; i++) {
		if (text[i] == ' ') {
			memcpy(w + k, SPACE_MARK, SPACE_MARK_LEN);
			k += SPACE_MARK_LEN;
		} else {
			w[k++] = text[i];
		}
	}
	*out_len = n;
	return w;
}

/* End of the word starting at i: words start at "▁", and runs of line
 * breaks are words of their own. */
static size_t word_end(const char *w, size_t n, size_t i)
{
	if (w[i] == '\n') {
		while (i < n && w[i] == '\n')
			i++;
		return i;
	}
	i += (n - i >= SPACE_MARK_LEN && !memcmp(w + i, SPACE_MARK, SPACE_MARK_LEN)) ? SPACE_MARK_LEN : 1;
	while (i < n && w[i] != '\n' && !(n - i >= SPACE_MARK_LEN && !memcmp(w + i, SPACE_MARK, SPACE_MARK_LEN)))
		i++;
	return i;
}

typedef struct {
	int64_t count;
	const char *s;
	uint32_t len;
} char_count;

static int by_count_desc(const void *a, const void *b)
{
	const char_count *x = a, *y = b;
	if (x->count != y->count)
		return x->count < y->count ? 1 : -1;
	int c = memcmp(x->s, y->s, x->len < y->len ? x->len : y->len);
	return c ? c : (int)x->len - (int)y->len;
}

/* Distinct words with counts, and their characters as the first symbols. */
static sl_status gather(trainer *t, const char *w, size_t n, int vocab_size, sl_error *err)
{
	str_map words;
	if (!smap_init(&words, 1 << 16))
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory counting words");
	sl_status st = SL_OK;
	int64_t *wc = NULL;
	size_t n_distinct = 0, cap = 0, total_syms = 0;
	const char **ws = NULL;
	uint32_t *wl = NULL;
	for (size_t i = 0; i < n;) {
		size_t e = word_end(w, n, i);
		int32_t id = smap_get(&words, w + i, e - i);
		if (id < 0) {
			if (n_distinct == cap) {
				cap = cap ? 2 * cap : 4096;
				int64_t *c2 = realloc(wc, cap * sizeof *c2);
				if (c2)
					wc = c2;
				const char **w2 = realloc(ws, cap * sizeof *w2);
				if (w2)
					ws = w2;
				uint32_t *l2 = realloc(wl, cap * sizeof *l2);
				if (l2)
					wl = l2;
				if (!c2 || !w2 || !l2)
					goto oom;
			}
			id = (int32_t)n_distinct++;
			wc[id] = 0;
			ws[id] = w + i;
			wl[id] = (uint32_t)(e - i);
			total_syms += e - i;
			if (!smap_put(&words, w + i, e - i, id))
				goto oom;
		}
		wc[id]++;
		i = e;
	}
	/* characters by how often they occur; those that do not fit the
	 * vocabulary, or occur once, are left to byte fallback */
	str_map chars;
	if (!smap_init(&chars, 1 << 10))
		goto oom;
	char_count *cc = NULL;
	size_t n_cc = 0, cap_cc = 0;
	for (size_t d = 0; d < n_distinct; d++)
		for (size_t i = 0; i < wl[d];) {
			size_t k = utf8_len(ws[d] + i, wl[d] - i);
			int32_t id = smap_get(&chars, ws[d] + i, k);
			if (id < 0) {
				if (n_cc == cap_cc) {
					cap_cc = cap_cc ? 2 * cap_cc : 256;
					char_count *c2 = realloc(cc, cap_cc * sizeof *c2);
					if (!c2)
						goto oom_chars;
					cc = c2;
				}
				id = (int32_t)n_cc;
				cc[n_cc++] = (char_count){0, ws[d] + i, (uint32_t)k};
				if (!smap_put(&chars, ws[d] + i, k, id))
					goto oom_chars;
			}
			cc[id].count += wc[d];
			i += k;
		}
	qsort(cc, n_cc, sizeof *cc, by_count_desc);
	for (size_t i = 0; i < n_cc && t->n_sym < vocab_size; i++) {
		bool valid = cc[i].len > 1 || (unsigned char)cc[i].s[0] < 0x80;
		if (cc[i].count < 2 || !valid || smap_get(&t->pieces, cc[i].s, cc[i].len) >= 0)
			continue;
		if (add_symbol(t, cc[i].s, cc[i].len) < 0)
			goto oom_chars;
	}
	/* each distinct word as symbols; a character without one is <unk> (0),
	 * which never merges */
	t->words = malloc((total_syms ? total_syms : 1) * sizeof *t->words);
	t->w_off = malloc((n_distinct ? n_distinct : 1) * sizeof *t->w_off);
	t->w_len = malloc((n_distinct ? n_distinct : 1) * sizeof *t->w_len);
	if (!t->words || !t->w_off || !t->w_len)
		goto oom_chars;
	size_t at = 0;
	for (size_t d = 0; d < n_distinct; d++) {
		t->w_off[d] = at;
		uint32_t k0 = 0;
		for (size_t i = 0; i < wl[d];) {
			size_t k = utf8_len(ws[d] + i, wl[d] - i);
			int32_t id = smap_get(&t->pieces, ws[d] + i, k);
			t->words[at + k0++] = id >= FIRST_FREE ? id : 0;
			i += k;
		}
		t->w_len[d] = k0;
		at += k0;
	}
	t->n_words = n_distinct;
	t->w_count = wc;
	wc = NULL;
	goto done_chars;
oom_chars:
	st = sl_errorf(err, SL_ERR_NOMEM, "out of memory counting characters");
done_chars:
	free(cc);
	smap_free(&chars);
	goto done;
oom:
	st = sl_errorf(err, SL_ERR_NOMEM, "out of memory counting words");
done:
	free(wc);
	free(ws);
	free(wl);
	smap_free(&words);
	return st;
}

static bool is_banned(const trainer *t, uint64_t k)
{
	for (size_t i = 0; i < t->n_banned; i++)
		if (t->banned[i] == k)
			return true;
	return false;
}

/* The most frequent pair that may merge, or 0 when none occurs twice. */
static uint64_t best_pair(trainer *t)
{
	for (;;) {
		uint64_t best = 0;
		int64_t bc = 2;
		for (size_t i = 0; i <= t->pairs.mask; i++) {
			uint64_t k = t->pairs.key[i];
			int64_t c = t->pairs.count[i];
			if (!k || c < bc || (c == bc && best && k > best))
				continue;
			int32_t a = (int32_t)(k >> 32), b = (int32_t)(uint32_t)k;
			if (t->sym_len[a] + t->sym_len[b] > MAX_PIECE || is_banned(t, k))
				continue;
			best = k;
			bc = c;
		}
		if (!best)
			return 0;
		/* a join that spells a special or byte token would clash with it */
		int32_t a = (int32_t)(best >> 32), b = (int32_t)(uint32_t)best;
		char buf[2 * MAX_PIECE + 1];
		memcpy(buf, t->sym[a], t->sym_len[a]);
		memcpy(buf + t->sym_len[a], t->sym[b], t->sym_len[b]);
		int32_t id = smap_get(&t->pieces, buf, t->sym_len[a] + t->sym_len[b]);
		if (id < 0 || id >= FIRST_FREE)
			return best;
		uint64_t *nb = realloc(t->banned, (t->n_banned + 1) * sizeof *nb);
		if (!nb)
			return 0;
		t->banned = nb;
		t->banned[t->n_banned++] = best;
	}
}

/* Replaces every a b in every word by ab, keeping pair counts exact. */
static bool apply_merge(trainer *t, int32_t a, int32_t b, int32_t ab)
{
	bool ok = true;
	for (size_t d = 0; d < t->n_words; d++) {
		int32_t *s = t->words + t->w_off[d];
		uint32_t n = t->w_len[d], j = 0;
		int64_t c = t->w_count[d];
		bool hit = false;
		for (uint32_t i = 0; i + 1 < n; i++)
			if (s[i] == a && s[i + 1] == b) {
				hit = true;
				break;
			}
		if (!hit)
			continue;
		for (uint32_t i = 0; i < n;) {
			if (i + 1 < n && s[i] == a && s[i + 1] == b) {
				/* the symbol before comes from the output, so a run of
				 * merges (a b a b) counts its new pairs once */
				if (j > 0) {
					ok &= pmap_add(&t->pairs, s[j - 1], a, -c);
					ok &= pmap_add(&t->pairs, s[j - 1], ab, c);
				}
				if (i + 2 < n) {
					ok &= pmap_add(&t->pairs, b, s[i + 2], -c);
					ok &= pmap_add(&t->pairs, ab, s[i + 2], c);
				}
				ok &= pmap_add(&t->pairs, a, b, -c);
				s[j++] = ab;
				i += 2;
			} else {
				s[j++] = s[i++];
			}
		}
		t->w_len[d] = j;
	}
	return ok;
}

static void trainer_free(trainer *t)
{
	for (int32_t i = 0; i < t->n_sym; i++)
		free(t->sym[i]);
	free(t->sym);
	free(t->sym_len);
	smap_free(&t->pieces);
	free(t->words);
	free(t->w_off);
	free(t->w_len);
	free(t->w_count);
	free(t->pairs.key);
	free(t->pairs.count);
	free(t->banned);
}

sl_status sl_tok_train(const char *text, size_t len, const sl_tok_train_opts *o, sl_vocab *out, sl_error *err)
{
	memset(out, 0, sizeof *out);
	if (o->vocab_size < FIRST_FREE + 1 || o->vocab_size > (1 << 20))
		return sl_errorf(err, SL_ERR_ARG, "a vocabulary of %d tokens: %d to %d are possible", o->vocab_size,
		                 FIRST_FREE + 1, 1 << 20);
	trainer t = {0};
	size_t n;
	char *w = normalize(text, len, &n);
	sl_status st = SL_OK;
	int n_merged = 0;
	if (!w || !smap_init(&t.pieces, 1 << 12) || !pmap_init(&t.pairs, 1 << 16))
		goto oom;
	static const char *special[N_SPECIAL] = {"<unk>", "<s>", "</s>"};
	for (int i = 0; i < N_SPECIAL; i++)
		if (add_symbol(&t, special[i], strlen(special[i])) < 0)
			goto oom;
	for (int i = 0; i < 256; i++) {
		char b[8];
		snprintf(b, sizeof b, "<0x%02X>", i);
		if (add_symbol(&t, b, 6) < 0)
			goto oom;
	}
	if ((st = gather(&t, w, n, o->vocab_size, err)))
		goto done;
	for (size_t d = 0; d < t.n_words; d++) {
		const int32_t *s = t.words + t.w_off[d];
		for (uint32_t i = 0; i + 1 < t.w_len[d]; i++)
			if (s[i] && s[i + 1] && !pmap_add(&t.pairs, s[i], s[i + 1], t.w_count[d]))
				goto oom;
	}
	int first_merge = t.n_sym;
	while (t.n_sym < o->vocab_size) {
		if (sl_cancelled(o->progress)) {
			st = sl_errorf(err, SL_ERR_CANCELLED, "tokenizer training cancelled");
			goto done;
		}
		uint64_t k = best_pair(&t);
		if (!k)
			break;
		int32_t a = (int32_t)(k >> 32), b = (int32_t)(uint32_t)k;
		char buf[2 * MAX_PIECE + 1];
		memcpy(buf, t.sym[a], t.sym_len[a]);
		memcpy(buf + t.sym_len[a], t.sym[b], t.sym_len[b]);
		size_t bl = t.sym_len[a] + t.sym_len[b];
		int32_t ab = smap_get(&t.pieces, buf, bl);
		if (ab < 0) {
			if ((ab = add_symbol(&t, buf, bl)) < 0)
				goto oom;
			n_merged++;
		}
		if (!apply_merge(&t, a, b, ab))
			goto oom;
		if (n_merged % 64 == 0) {
			char stage[64];
			snprintf(stage, sizeof stage, "tokenizer: %d of %d pieces", t.n_sym, o->vocab_size);
			sl_report(o->progress, (double)t.n_sym / o->vocab_size, stage);
		}
	}
	/* the vocabulary: specials and bytes, then merged pieces by merge
	 * order (higher scores merge first), then characters */
	out->n = t.n_sym;
	out->pieces = calloc((size_t)t.n_sym, sizeof *out->pieces);
	out->scores = calloc((size_t)t.n_sym, sizeof *out->scores);
	out->types = calloc((size_t)t.n_sym, sizeof *out->types);
	if (!out->pieces || !out->scores || !out->types)
		goto oom;
	snprintf(out->model, sizeof out->model, "llama");
	out->unk = 0;
	out->bos = 1;
	out->eos = 2;
	out->add_bos = true;
	int32_t at = 0;
	for (int32_t i = 0; i < FIRST_FREE; i++, at++) {
		out->pieces[at] = t.sym[i];
		out->types[at] = i == 0 ? SL_TOKEN_UNKNOWN : i < N_SPECIAL ? SL_TOKEN_CONTROL : SL_TOKEN_BYTE;
	}
	for (int32_t i = first_merge; i < t.n_sym; i++, at++) {
		out->pieces[at] = t.sym[i];
		out->scores[at] = -(float)(i - first_merge);
		out->types[at] = SL_TOKEN_NORMAL;
	}
	for (int32_t i = FIRST_FREE; i < first_merge; i++, at++) {
		out->pieces[at] = t.sym[i];
		out->scores[at] = -(float)(n_merged + i - FIRST_FREE);
		out->types[at] = SL_TOKEN_NORMAL;
	}
	t.n_sym = 0; /* the pieces now belong to out */
	sl_report(o->progress, 1.0, "tokenizer: done");
	goto done;
oom:
	st = sl_errorf(err, SL_ERR_NOMEM, "out of memory training a tokenizer on %zu bytes", len);
done:
	if (st)
		sl_vocab_free(out);
	trainer_free(&t);
	free(w);
	return st;
}
