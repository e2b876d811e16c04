/* The pre-tokenizer regex matcher: a pattern is parsed into a tree, the tree
 * is compiled into a program for a backtracking machine (character tests,
 * ordered splits, jumps, lookahead), and the machine keeps its choice points
 * on a heap stack so long runs of text cannot exhaust the C stack. */
#include "tok-regex.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "unicode.h"

/* Limits that keep a hostile tokenizer.json from costing unbounded memory
 * or time; real patterns are far below them. */
#define MAX_PROG 100000
#define MAX_REPEAT 1000
#define MAX_DEPTH 200

typedef struct {
	uint32_t lo, hi;
} cp_range;

/* A set of code points: explicit ranges, general categories, White_Space
 * or its complement, all optionally negated. */
typedef struct {
	cp_range *r;
	size_t nr;
	uint32_t gc_mask;
	bool space, nonspace, neg, icase;
} cp_class;

enum { OP_CHAR, OP_CLASS, OP_SPLIT, OP_JMP, OP_LOOK, OP_NLOOK, OP_BOL, OP_EOL, OP_MATCH };

typedef struct {
	uint8_t op;
	bool icase;
	uint32_t c;     /* OP_CHAR: the code point; OP_CLASS: the class index */
	int32_t x, y;   /* OP_SPLIT: preferred, other; OP_JMP, lookahead: next */
} inst;

struct sl_regex {
	inst *prog;
	size_t n_prog;
	cp_class *cls;
	size_t n_cls;
};

/* --- parse tree ------------------------------------------------------- */

enum { N_CHAR, N_CLASS, N_CAT, N_ALT, N_REPEAT, N_LOOK, N_NLOOK, N_BOL, N_EOL };

typedef struct node {
	int type;
	bool icase;
	uint32_t c;             /* N_CHAR code point, N_CLASS index */
	int min, max;           /* N_REPEAT; max < 0 is unbounded */
	bool greedy;
	struct node **kids;     /* N_CAT, N_ALT; N_REPEAT and lookahead use kids[0] */
	size_t n_kids;
} node;

typedef struct {
	const uint32_t *p;      /* the pattern, decoded */
	const uint32_t *off;    /* byte offset of each code point */
	size_t n, i;
	int depth;
	sl_regex *re;
	sl_error *err;
	sl_status st;
} parser;

static void node_free(node *nd)
{
	if (!nd)
		return;
	for (size_t i = 0; i < nd->n_kids; i++)
		node_free(nd->kids[i]);
	free(nd->kids);
	free(nd);
}

static bool fail(parser *ps, sl_status st, const char *what)
{
	size_t at = ps->i < ps->n ? ps->off[ps->i] : ps->off[ps->n];
	if (ps->st == SL_OK)
		ps->st = sl_errorf(ps->err, st, "pattern offset %zu: %s", at, what);
	return false;
}

static node *new_node(parser *ps, int type)
{
	node *nd = calloc(1, sizeof *nd);
	if (!nd)
		fail(ps, SL_ERR_NOMEM, "out of memory");
	else
		nd->type = type;
	return nd;
}

static bool add_kid(parser *ps, node *parent, node *kid)
{
	node **k = realloc(parent->kids, (parent->n_kids + 1) * sizeof *k);
	if (!k) {
		node_free(kid);
		return fail(ps, SL_ERR_NOMEM, "out of memory");
	}
	parent->kids = k;
	parent->kids[parent->n_kids++] = kid;
	return true;
}

static bool peek_is(const parser *ps, uint32_t c)
{
	return ps->i < ps->n && ps->p[ps->i] == c;
}

static int new_class(parser *ps)
{
	cp_class *c = realloc(ps->re->cls, (ps->re->n_cls + 1) * sizeof *c);
	if (!c) {
		fail(ps, SL_ERR_NOMEM, "out of memory");
		return -1;
	}
	ps->re->cls = c;
	memset(&c[ps->re->n_cls], 0, sizeof *c);
	return (int)ps->re->n_cls++;
}

static bool class_add_range(parser *ps, cp_class *c, uint32_t lo, uint32_t hi)
{
	if (lo > hi)
		return fail(ps, SL_ERR_FORMAT, "character class range out of order");
	cp_range *r = realloc(c->r, (c->nr + 1) * sizeof *r);
	if (!r)
		return fail(ps, SL_ERR_NOMEM, "out of memory");
	c->r = r;
	c->r[c->nr++] = (cp_range){lo, hi};
	return true;
}

/* The escapes that stand for one code point; 0 for none. */
static uint32_t escaped_char(uint32_t c)
{
	switch (c) {
	case 'r': return '\r';
	case 'n': return '\n';
	case 't': return '\t';
	case 'f': return '\f';
	case 'v': return '\v';
	}
	if (c < 0x80 && !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
		return c;
	return 0;
}

/* Parses \p{..} or \P{..} after the backslash and letter; *mask gets the
 * categories. */
static bool parse_category(parser *ps, uint32_t *mask)
{
	if (!peek_is(ps, '{'))
		return fail(ps, SL_ERR_UNSUPPORTED, "\\p needs a {category}");
	size_t start = ++ps->i;
	char name[4];
	size_t len = 0;
	while (ps->i < ps->n && ps->p[ps->i] != '}') {
		if (len == sizeof name - 1 || ps->p[ps->i] >= 0x80)
			return fail(ps, SL_ERR_UNSUPPORTED, "unknown Unicode category");
		name[len++] = (char)ps->p[ps->i++];
	}
	if (!peek_is(ps, '}'))
		return fail(ps, SL_ERR_FORMAT, "unterminated \\p{");
	ps->i++;
	*mask = sl_unicode_gc_mask(name, len);
	if (!*mask) {
		ps->i = start;
		return fail(ps, SL_ERR_UNSUPPORTED, "unknown Unicode category");
	}
	return true;
}

/* One escape (after the backslash) into class c, or into *single when it
 * stands for one code point and single is not NULL. */
static bool parse_escape(parser *ps, cp_class *c, uint32_t *single, bool *is_single)
{
	if (ps->i >= ps->n)
		return fail(ps, SL_ERR_FORMAT, "pattern ends with a backslash");
	uint32_t e = ps->p[ps->i++];
	*is_single = false;
	if (e == 's') {
		c->space = true;
	} else if (e == 'S') {
		c->nonspace = true;
	} else if (e == 'p' || e == 'P') {
		uint32_t mask;
		if (!parse_category(ps, &mask))
			return false;
		c->gc_mask |= e == 'p' ? mask : ~mask & (SL_GC_BIT(SL_GC_COUNT) - 1);
	} else {
		uint32_t ch = escaped_char(e);
		if (!ch) {
			ps->i--;
			return fail(ps, SL_ERR_UNSUPPORTED, "unsupported escape");
		}
		*single = ch;
		*is_single = true;
	}
	return true;
}

static node *parse_alt(parser *ps, bool icase);

static node *parse_class(parser *ps, bool icase)
{
	int idx = new_class(ps);
	if (idx < 0)
		return NULL;
	cp_class *c = &ps->re->cls[idx];
	c->icase = icase;
	if (peek_is(ps, '^')) {
		c->neg = true;
		ps->i++;
	}
	bool empty = true;
	for (;;) {
		if (ps->i >= ps->n) {
			fail(ps, SL_ERR_FORMAT, "unterminated character class");
			return NULL;
		}
		uint32_t ch = ps->p[ps->i++];
		if (ch == ']' && !empty)
			break;
		if (ch == ']') {
			fail(ps, SL_ERR_UNSUPPORTED, "empty character class");
			return NULL;
		}
		empty = false;
		bool single = true;
		if (ch == '\\') {
			if (!parse_escape(ps, c, &ch, &single))
				return NULL;
			if (!single)
				continue;
		}
		uint32_t hi = ch;
		if (peek_is(ps, '-') && ps->i + 1 < ps->n && ps->p[ps->i + 1] != ']') {
			ps->i++;
			hi = ps->p[ps->i++];
			if (hi == '\\') {
				bool hs;
				cp_class scratch = {0};
				if (!parse_escape(ps, &scratch, &hi, &hs))
					return NULL;
				if (!hs) {
					fail(ps, SL_ERR_UNSUPPORTED, "a class escape cannot end a range");
					return NULL;
				}
			}
		}
		if (!class_add_range(ps, c, ch, hi))
			return NULL;
	}
	node *nd = new_node(ps, N_CLASS);
	if (nd)
		nd->c = (uint32_t)idx;
	return nd;
}

/* An atom: a character, a class, a group, an anchor. */
static node *parse_atom(parser *ps, bool icase)
{
	uint32_t ch = ps->p[ps->i++];
	node *nd;
	switch (ch) {
	case '(': {
		int type = -1;
		bool sub_icase = icase;
		if (peek_is(ps, '?')) {
			uint32_t k = ps->i + 1 < ps->n ? ps->p[ps->i + 1] : 0;
			if (k == ':') {
				ps->i += 2;
			} else if (k == '=' || k == '!') {
				type = k == '=' ? N_LOOK : N_NLOOK;
				ps->i += 2;
			} else if (k == 'i' && ps->i + 2 < ps->n && ps->p[ps->i + 2] == ':') {
				sub_icase = true;
				ps->i += 3;
			} else {
				fail(ps, SL_ERR_UNSUPPORTED, "unsupported group kind");
				return NULL;
			}
		}
		if (++ps->depth > MAX_DEPTH) {
			fail(ps, SL_ERR_UNSUPPORTED, "groups nested too deeply");
			return NULL;
		}
		node *in = parse_alt(ps, sub_icase);
		ps->depth--;
		if (!in)
			return NULL;
		if (!peek_is(ps, ')')) {
			node_free(in);
			fail(ps, SL_ERR_FORMAT, "missing )");
			return NULL;
		}
		ps->i++;
		if (type < 0)
			return in;
		nd = new_node(ps, type);
		if (nd && !add_kid(ps, nd, in)) {
			node_free(nd);
			return NULL;
		}
		if (!nd)
			node_free(in);
		return nd;
	}
	case '[':
		return parse_class(ps, icase);
	case '^':
		return new_node(ps, N_BOL);
	case '$':
		return new_node(ps, N_EOL);
	case '\\': {
		cp_class tmp = {0};
		bool single;
		if (!parse_escape(ps, &tmp, &ch, &single))
			return NULL;
		if (!single) {
			int idx = new_class(ps);
			if (idx < 0)
				return NULL;
			tmp.icase = icase;
			ps->re->cls[idx] = tmp;
			nd = new_node(ps, N_CLASS);
			if (nd)
				nd->c = (uint32_t)idx;
			return nd;
		}
		break;
	}
	case '.':
	case ')':
	case '|':
	case '?':
	case '*':
	case '+':
	case '{':
		ps->i--;
		fail(ps, ch == '.' ? SL_ERR_UNSUPPORTED : SL_ERR_FORMAT,
		     ch == '.' ? "'.' is not supported" : "misplaced operator");
		return NULL;
	}
	nd = new_node(ps, N_CHAR);
	if (nd) {
		nd->c = ch;
		nd->icase = icase;
	}
	return nd;
}

static bool parse_count(parser *ps, int *v)
{
	if (ps->i >= ps->n || ps->p[ps->i] < '0' || ps->p[ps->i] > '9')
		return false;
	long x = 0;
	while (ps->i < ps->n && ps->p[ps->i] >= '0' && ps->p[ps->i] <= '9') {
		x = x * 10 + (long)(ps->p[ps->i++] - '0');
		if (x > MAX_REPEAT)
			return fail(ps, SL_ERR_UNSUPPORTED, "repeat count too large");
	}
	*v = (int)x;
	return true;
}

/* Reads a quantifier if one follows; false on error. *min < 0 when none. */
static bool parse_quant(parser *ps, int *min, int *max, bool *greedy)
{
	*min = -1;
	if (ps->i >= ps->n)
		return true;
	uint32_t q = ps->p[ps->i];
	if (q == '?' || q == '*' || q == '+') {
		ps->i++;
		*min = q == '+' ? 1 : 0;
		*max = q == '?' ? 1 : -1;
	} else if (q == '{') {
		ps->i++;
		if (!parse_count(ps, min))
			return fail(ps, SL_ERR_UNSUPPORTED, "bad {m,n} repeat");
		*max = *min;
		if (peek_is(ps, ',')) {
			ps->i++;
			*max = -1;
			if (!peek_is(ps, '}') && !parse_count(ps, max))
				return fail(ps, SL_ERR_UNSUPPORTED, "bad {m,n} repeat");
		}
		if (!peek_is(ps, '}') || (*max >= 0 && *max < *min))
			return fail(ps, SL_ERR_UNSUPPORTED, "bad {m,n} repeat");
		ps->i++;
	} else {
		return true;
	}
	*greedy = true;
	if (peek_is(ps, '?')) {
		ps->i++;
		*greedy = false;
	}
	return true;
}

static bool nullable(const node *nd)
{
	switch (nd->type) {
	case N_CHAR:
	case N_CLASS:
		return false;
	case N_CAT:
		for (size_t i = 0; i < nd->n_kids; i++)
			if (!nullable(nd->kids[i]))
				return false;
		return true;
	case N_ALT:
		for (size_t i = 0; i < nd->n_kids; i++)
			if (nullable(nd->kids[i]))
				return true;
		return false;
	case N_REPEAT:
		return nd->min == 0 || nullable(nd->kids[0]);
	}
	return true;
}

static node *parse_cat(parser *ps, bool icase)
{
	node *cat = new_node(ps, N_CAT);
	if (!cat)
		return NULL;
	while (ps->i < ps->n && ps->p[ps->i] != '|' && ps->p[ps->i] != ')') {
		node *a = parse_atom(ps, icase);
		int min, max = 0;
		bool greedy = true;
		if (!a || !parse_quant(ps, &min, &max, &greedy)) {
			node_free(a);
			node_free(cat);
			return NULL;
		}
		if (min >= 0) {
			/* A loop whose body can match nothing would never end. */
			if (max < 0 && nullable(a)) {
				node_free(a);
				node_free(cat);
				fail(ps, SL_ERR_UNSUPPORTED, "a repeated part can match nothing");
				return NULL;
			}
			node *r = new_node(ps, N_REPEAT);
			if (!r || !add_kid(ps, r, a)) {
				if (!r)
					node_free(a);
				node_free(r);
				node_free(cat);
				return NULL;
			}
			r->min = min;
			r->max = max;
			r->greedy = greedy;
			a = r;
		}
		if (!add_kid(ps, cat, a)) {
			node_free(cat);
			return NULL;
		}
	}
	return cat;
}

static node *parse_alt(parser *ps, bool icase)
{
	node *alt = new_node(ps, N_ALT);
	if (!alt)
		return NULL;
	for (;;) {
		node *c = parse_cat(ps, icase);
		if (!c || !add_kid(ps, alt, c)) {
			node_free(alt);
			return NULL;
		}
		if (!peek_is(ps, '|'))
			return alt;
		ps->i++;
	}
}

/* --- compiler --------------------------------------------------------- */

typedef struct {
	sl_regex *re;
	size_t cap;
	sl_error *err;
	sl_status st;
} compiler;

static int emit(compiler *cc, uint8_t op)
{
	if (cc->st != SL_OK)
		return -1;
	if (cc->re->n_prog == MAX_PROG) {
		cc->st = sl_errorf(cc->err, SL_ERR_UNSUPPORTED, "pattern compiles to more than %d steps", MAX_PROG);
		return -1;
	}
	if (cc->re->n_prog == cc->cap) {
		size_t cap = cc->cap ? cc->cap * 2 : 64;
		inst *p = realloc(cc->re->prog, cap * sizeof *p);
		if (!p) {
			cc->st = sl_errorf(cc->err, SL_ERR_NOMEM, "out of memory compiling a pattern");
			return -1;
		}
		cc->re->prog = p;
		cc->cap = cap;
	}
	int at = (int)cc->re->n_prog++;
	cc->re->prog[at] = (inst){.op = op};
	return at;
}

static void compile_node(compiler *cc, const node *nd);

static void set_split(compiler *cc, int at, int x, int y, bool greedy)
{
	if (at < 0 || cc->st != SL_OK)
		return;
	cc->re->prog[at].x = greedy ? x : y;
	cc->re->prog[at].y = greedy ? y : x;
}

static void compile_repeat(compiler *cc, const node *nd)
{
	for (int i = 0; i < nd->min && cc->st == SL_OK; i++)
		compile_node(cc, nd->kids[0]);
	if (nd->max < 0) {
		int split = emit(cc, OP_SPLIT);
		compile_node(cc, nd->kids[0]);
		int jmp = emit(cc, OP_JMP);
		if (cc->st != SL_OK)
			return;
		cc->re->prog[jmp].x = split;
		set_split(cc, split, split + 1, (int)cc->re->n_prog, nd->greedy);
		return;
	}
	/* x{0,k}: k optional copies, each choice leaving for the end; the
	 * splits are chained through y until the end is known. */
	int chain = -1;
	for (int i = nd->min; i < nd->max && cc->st == SL_OK; i++) {
		int split = emit(cc, OP_SPLIT);
		if (split < 0)
			return;
		cc->re->prog[split].y = chain;
		chain = split;
		compile_node(cc, nd->kids[0]);
	}
	while (chain >= 0 && cc->st == SL_OK) {
		int next = cc->re->prog[chain].y;
		set_split(cc, chain, chain + 1, (int)cc->re->n_prog, nd->greedy);
		chain = next;
	}
}

static void compile_node(compiler *cc, const node *nd)
{
	int at;
	switch (nd->type) {
	case N_CHAR:
	case N_CLASS:
		at = emit(cc, nd->type == N_CHAR ? OP_CHAR : OP_CLASS);
		if (at >= 0) {
			cc->re->prog[at].c = nd->c;
			cc->re->prog[at].icase = nd->icase;
		}
		break;
	case N_CAT:
		for (size_t i = 0; i < nd->n_kids; i++)
			compile_node(cc, nd->kids[i]);
		break;
	case N_ALT: {
		/* The jumps out of each alternative are chained through x until
		 * the end is known. */
		int chain = -1;
		for (size_t i = 0; i < nd->n_kids && cc->st == SL_OK; i++) {
			bool last = i + 1 == nd->n_kids;
			int split = last ? -1 : emit(cc, OP_SPLIT);
			compile_node(cc, nd->kids[i]);
			if (last)
				break;
			int jmp = emit(cc, OP_JMP);
			if (jmp < 0)
				return;
			cc->re->prog[jmp].x = chain;
			chain = jmp;
			set_split(cc, split, split + 1, (int)cc->re->n_prog, true);
		}
		while (chain >= 0 && cc->st == SL_OK) {
			int next = cc->re->prog[chain].x;
			cc->re->prog[chain].x = (int)cc->re->n_prog;
			chain = next;
		}
		break;
	}
	case N_REPEAT:
		compile_repeat(cc, nd);
		break;
	case N_LOOK:
	case N_NLOOK:
		at = emit(cc, nd->type == N_LOOK ? OP_LOOK : OP_NLOOK);
		compile_node(cc, nd->kids[0]);
		emit(cc, OP_MATCH);
		if (at >= 0 && cc->st == SL_OK)
			cc->re->prog[at].x = (int)cc->re->n_prog;
		break;
	case N_BOL:
		emit(cc, OP_BOL);
		break;
	case N_EOL:
		emit(cc, OP_EOL);
		break;
	}
}

void sl_regex_free(sl_regex *re)
{
	if (!re)
		return;
	for (size_t i = 0; i < re->n_cls; i++)
		free(re->cls[i].r);
	free(re->cls);
	free(re->prog);
	free(re);
}

sl_status sl_regex_compile(const char *pattern, size_t len, sl_regex **out, sl_error *err)
{
	*out = NULL;
	sl_regex *re = calloc(1, sizeof *re);
	uint32_t *cp = malloc((len + 1) * sizeof *cp);
	uint32_t *off = malloc((len + 1) * sizeof *off);
	if (!re || !cp || !off) {
		free(re);
		free(cp);
		free(off);
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory compiling a pattern");
	}
	size_t n = 0;
	for (size_t i = 0; i < len; n++) {
		off[n] = (uint32_t)i;
		i += sl_utf8_decode(pattern + i, len - i, &cp[n]);
	}
	off[n] = (uint32_t)len;
	parser ps = {.p = cp, .off = off, .n = n, .re = re, .err = err};
	node *root = parse_alt(&ps, false);
	if (root && ps.i < ps.n)
		fail(&ps, SL_ERR_FORMAT, "unbalanced )");
	sl_status st = ps.st;
	if (st == SL_OK) {
		compiler cc = {.re = re, .err = err};
		compile_node(&cc, root);
		emit(&cc, OP_MATCH);
		st = cc.st;
	}
	node_free(root);
	free(cp);
	free(off);
	if (st != SL_OK) {
		sl_regex_free(re);
		return st;
	}
	*out = re;
	return SL_OK;
}

/* --- matcher ---------------------------------------------------------- */

typedef struct {
	int32_t pc;
	size_t pos;
} choice;

/* States (pc, pos) from which no match can be reached. An attempt that
 * fails has tried everything from each choice point it passed, and what a
 * state leads to depends on nothing but the state and the piece, so later
 * attempts in the piece skip them. That keeps a pattern such as \s+$
 * linear on a long run of spaces it does not match. */
typedef struct {
	uint64_t *keys;      /* (pc << 40 | pos) + 1, 0 empty */
	size_t cap, n;
} stateset;

typedef struct {
	const sl_regex *re;
	const uint32_t *s;
	size_t begin, end;   /* the piece being searched */
	choice *stack;
	size_t sp, cap;
	long long budget;    /* steps left before the search gives up */
	bool memo;           /* this piece's failures have been costly: record them */
	stateset dead;
	uint64_t *trail;     /* the choice points of the current attempt */
	size_t n_trail, trail_cap;
} matcher;

static uint64_t state_key(int32_t pc, size_t pos)
{
	return ((uint64_t)pc << 40 | pos) + 1;
}

static bool set_has(const stateset *s, uint64_t key)
{
	if (!s->n)
		return false;
	for (size_t i = (size_t)(key * 0x9e3779b97f4a7c15ull >> 20) & (s->cap - 1); s->keys[i]; i = (i + 1) & (s->cap - 1))
		if (s->keys[i] == key)
			return true;
	return false;
}

static bool set_add(stateset *s, uint64_t key)
{
	if (2 * (s->n + 1) > s->cap) {
		stateset g = {.cap = s->cap ? 2 * s->cap : 1024};
		g.keys = calloc(g.cap, sizeof *g.keys);
		if (!g.keys)
			return false;
		for (size_t i = 0; i < s->cap; i++)
			if (s->keys[i])
				set_add(&g, s->keys[i]);
		free(s->keys);
		*s = g;
	}
	size_t i = (size_t)(key * 0x9e3779b97f4a7c15ull >> 20) & (s->cap - 1);
	while (s->keys[i] && s->keys[i] != key)
		i = (i + 1) & (s->cap - 1);
	s->n += !s->keys[i];
	s->keys[i] = key;
	return true;
}

static uint32_t fold(uint32_t c)
{
	return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static bool class_has(const cp_class *c, uint32_t ch)
{
	if (c->space && sl_unicode_is_space(ch))
		return true;
	if (c->nonspace && !sl_unicode_is_space(ch))
		return true;
	if (c->gc_mask & SL_GC_BIT(sl_unicode_gc(ch)))
		return true;
	for (size_t i = 0; i < c->nr; i++)
		if (ch >= c->r[i].lo && ch <= c->r[i].hi)
			return true;
	return false;
}

static bool class_match(const cp_class *c, uint32_t ch)
{
	bool in = class_has(c, ch);
	if (!in && c->icase) {
		uint32_t other = ch >= 'A' && ch <= 'Z' ? ch + 32 : ch >= 'a' && ch <= 'z' ? ch - 32 : ch;
		in = other != ch && class_has(c, other);
	}
	return in != c->neg;
}

static bool grow_trail(matcher *m)
{
	if (m->n_trail < m->trail_cap)
		return true;
	size_t cap = m->trail_cap ? 2 * m->trail_cap : 256;
	uint64_t *t = realloc(m->trail, cap * sizeof *t);
	if (!t)
		return false;
	m->trail = t;
	m->trail_cap = cap;
	return true;
}

/* Runs the program from pc at pos: 1 and *mend on a match, 0 without one,
 * -1 when the step budget ran out, -2 when memory did. top is false inside
 * lookahead, whose states lead to its own end rather than a match. */
static int run(matcher *m, int32_t pc, size_t pos, size_t *mend, bool top)
{
	size_t base = m->sp;
	const inst *prog = m->re->prog;
	for (;;) {
		if (--m->budget < 0)
			return -1;
		const inst *in = &prog[pc];
		bool ok = false;
		switch (in->op) {
		case OP_CHAR:
			ok = pos < m->end && (in->icase ? fold(m->s[pos]) == fold(in->c) : m->s[pos] == in->c);
			if (ok) {
				pos++;
				pc++;
			}
			break;
		case OP_CLASS:
			ok = pos < m->end && class_match(&m->re->cls[in->c], m->s[pos]);
			if (ok) {
				pos++;
				pc++;
			}
			break;
		case OP_JMP:
			pc = in->x;
			ok = true;
			break;
		case OP_SPLIT:
			if (top && m->memo) {
				uint64_t key = state_key(pc, pos);
				if (set_has(&m->dead, key))
					break;
				if (!grow_trail(m))
					return -2;
				m->trail[m->n_trail++] = key;
			}
			if (m->sp == m->cap) {
				size_t cap = m->cap ? m->cap * 2 : 256;
				choice *s = realloc(m->stack, cap * sizeof *s);
				if (!s)
					return -2;
				m->stack = s;
				m->cap = cap;
			}
			m->stack[m->sp++] = (choice){in->y, pos};
			pc = in->x;
			ok = true;
			break;
		case OP_BOL:
			ok = pos == m->begin;
			pc++;
			break;
		case OP_EOL:
			ok = pos == m->end;
			pc++;
			break;
		case OP_LOOK:
		case OP_NLOOK: {
			size_t e;
			int r = run(m, pc + 1, pos, &e, false);
			if (r < 0)
				return r;
			ok = (r == 1) == (in->op == OP_LOOK);
			pc = in->x;
			break;
		}
		case OP_MATCH:
			*mend = pos;
			m->sp = base;
			return 1;
		}
		if (ok)
			continue;
		if (m->sp == base)
			return 0;
		m->sp--;
		pc = m->stack[m->sp].pc;
		pos = m->stack[m->sp].pos;
	}
}

sl_status sl_regex_split(const sl_regex *re, const uint32_t *cp, size_t n, const size_t *cuts,
                         size_t ncuts, size_t **out, size_t *nout, sl_error *err)
{
	/* Each match adds at most two pieces, and matches are never empty. */
	size_t cap = ncuts + 2 * n + 1;
	size_t *res = malloc(cap * sizeof *res);
	if (!res)
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory splitting %zu characters", n);
	size_t k = 0;
	/* A safety net: real patterns take a few dozen steps a character. */
	matcher m = {.re = re, .s = cp, .budget = 2000000LL + 4000LL * (long long)n};
	size_t start = 0;
	sl_status st = SL_OK;
	for (size_t c = 0; c < ncuts && st == SL_OK; c++) {
		m.begin = start;
		m.end = cuts[c];
		m.memo = false;
		if (m.dead.n) {
			memset(m.dead.keys, 0, m.dead.cap * sizeof *m.dead.keys);
			m.dead.n = 0;
		}
		size_t pos = start, gap = start;
		while (pos < m.end) {
			size_t e = 0;
			long long before = m.budget;
			m.n_trail = 0;
			int r = run(&m, 0, pos, &e, true);
			for (size_t i = 0; r == 0 && m.memo && i < m.n_trail; i++)
				if (!set_add(&m.dead, m.trail[i]))
					r = -2;
			if (r == 0 && before - m.budget > 1000)
				m.memo = true;
			if (r < 0) {
				st = r == -1 ? sl_errorf(err, SL_ERR_UNSUPPORTED,
				                         "pre-tokenizer pattern too costly on this text (at character %zu)", pos)
				             : sl_errorf(err, SL_ERR_NOMEM, "out of memory matching a pattern");
				break;
			}
			if (r == 1 && e > pos) {
				if (gap < pos)
					res[k++] = pos;
				res[k++] = e;
				pos = gap = e;
			} else {
				pos++;
			}
		}
		if (st == SL_OK && gap < m.end)
			res[k++] = m.end;
		start = cuts[c];
	}
	free(m.stack);
	free(m.trail);
	free(m.dead.keys);
	if (st != SL_OK) {
		free(res);
		return st;
	}
	*out = res;
	*nout = k;
	return SL_OK;
}
