/* Calibration: the statistics of every linear module's input over windows
 * of a calibration text (sums of squares and |x|, max |x|, optionally the
 * Hessian X^T X), and each block's influence on the residual stream,
 * observed through the forward pass's taps. Gathering costs a forward pass
 * over the text, so results are cached on disk, keyed by a hash of the
 * weights, the text and the settings; a cache file that fails any check
 * is ignored and rewritten. */
#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "compress.h"
#include "forward.h"
#include "sample.h"
#include "tokenizer.h"

/* Taps whose activations are module inputs, in slot order within a block. */
static const sl_tap input_taps[] = {SL_TAP_ATTN_IN, SL_TAP_ATTN_OUT_IN, SL_TAP_FFN_IN, SL_TAP_FFN_DOWN_IN};
#define TAPS_PER_LAYER 4
#define CACHE_VERSION 1
static const char cache_magic[8] = {'S', 'L', 'C', 'A', 'L', 'I', 'B', '\n'};

struct sl_calib {
	uint64_t model_hash;
	int n_layers;
	int n_slots;             /* TAPS_PER_LAYER per block, then the output head's input */
	sl_act_stats *slots;
	double *influence;       /* [n_layers] */
	bool hessians;
};

static int tap_index(sl_tap t)
{
	for (int i = 0; i < TAPS_PER_LAYER; i++)
		if (input_taps[i] == t)
			return i;
	return -1;
}

/* --- hashing -------------------------------------------------------------- */

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

uint64_t sl_hash64(const void *data, size_t n, uint64_t h)
{
	const unsigned char *p = data;
	h = mix64(h ^ (n * 0x9e3779b97f4a7c15ull));
	for (; n >= 8; n -= 8, p += 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		h = mix64(h ^ w) + 0x632be59bd9b4e019ull;
	}
	uint64_t t = 0;
	memcpy(&t, p, n);
	return mix64(h ^ t ^ ((uint64_t)n << 56));
}

uint64_t sl_model_hash(const sl_model *m)
{
	uint64_t h = sl_hash64(&m->cfg.n_layers, sizeof m->cfg.n_layers, 0);
	for (int i = 0; i < m->n_tensors; i++) {
		const sl_tensor *t = m->tensors[i];
		h = sl_hash64(t->name, strlen(t->name), h);
		h = sl_hash64(t->ne, sizeof t->ne, h ^ (uint64_t)t->type);
		h = sl_hash64(t->data, t->nbytes, h);
	}
	return h;
}

/* --- the statistics --------------------------------------------------------- */

static void stats_free(sl_act_stats *s)
{
	free(s->sum_sq);
	free(s->sum_abs);
	free(s->abs_max);
	free(s->hessian);
	memset(s, 0, sizeof *s);
}

static bool stats_alloc(sl_act_stats *s, int n, bool hessian)
{
	s->n = n;
	s->sum_sq = sl_calloc((size_t)n, sizeof *s->sum_sq);
	s->sum_abs = sl_calloc((size_t)n, sizeof *s->sum_abs);
	s->abs_max = sl_calloc((size_t)n, sizeof *s->abs_max);
	if (hessian)
		s->hessian = sl_calloc((size_t)n * n, sizeof *s->hessian);
	return s->sum_sq && s->sum_abs && s->abs_max && (!hessian || s->hessian);
}

void sl_calib_free(sl_calib *c)
{
	if (!c)
		return;
	for (int i = 0; i < c->n_slots; i++)
		stats_free(&c->slots[i]);
	free(c->slots);
	free(c->influence);
	free(c);
}

/* Input widths of every slot, as the model's shapes give them. */
static int slot_width(const sl_model *m, int slot)
{
	if (slot == m->cfg.n_layers * TAPS_PER_LAYER)
		return m->cfg.dim;
	const sl_layer *L = &m->layers[slot / TAPS_PER_LAYER];
	switch (input_taps[slot % TAPS_PER_LAYER]) {
	case SL_TAP_ATTN_OUT_IN:
		return L->n_heads * m->cfg.head_dim;
	case SL_TAP_FFN_DOWN_IN:
		return L->hidden_dim;
	default:
		return m->cfg.dim;
	}
}

static sl_calib *calib_new(const sl_model *m, bool hessians)
{
	sl_calib *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->n_layers = m->cfg.n_layers;
	c->n_slots = c->n_layers * TAPS_PER_LAYER + 1;
	c->hessians = hessians;
	c->slots = calloc((size_t)c->n_slots, sizeof *c->slots);
	c->influence = calloc((size_t)c->n_layers, sizeof *c->influence);
	if (!c->slots || !c->influence)
		goto oom;
	for (int i = 0; i < c->n_slots; i++)
		if (!stats_alloc(&c->slots[i], slot_width(m, i), hessians))
			goto oom;
	return c;
oom:
	sl_calib_free(c);
	return NULL;
}

const sl_act_stats *sl_calib_stats(const sl_calib *c, const sl_module *mod)
{
	if (!c)
		return NULL;
	if (mod->layer < 0)
		return mod->kind == SL_MOD_OUTPUT ? &c->slots[c->n_slots - 1] : NULL;
	int ti = tap_index(mod->input);
	if (mod->layer >= c->n_layers || ti < 0)
		return NULL;
	return &c->slots[mod->layer * TAPS_PER_LAYER + ti];
}

double sl_calib_block_influence(const sl_calib *c, int layer)
{
	return c && layer >= 0 && layer < c->n_layers ? c->influence[layer] : NAN;
}

bool sl_calib_matches(const sl_calib *c, const sl_model *m, bool hessians)
{
	return c && (c->hessians || !hessians) && c->n_layers == m->cfg.n_layers && c->model_hash == sl_model_hash(m);
}

/* --- gathering through the forward pass's taps ------------------------------ */

typedef struct {
	sl_calib *c;
	const sl_model *m;
	float *h_in;      /* the residual stream entering the current block */
	float *normed;    /* the head's input */
	float *xtx;       /* one call's X^T X */
	double *hsum;     /* running Hessian sums, per slot, before scaling */
	size_t *hoff;     /* offset of each slot in hsum */
} gather;

static void accumulate(gather *g, int slot, const float *x, int T, int n)
{
	sl_act_stats *s = &g->c->slots[slot];
	for (int t = 0; t < T; t++) {
		const float *row = x + (size_t)t * n;
		for (int j = 0; j < n; j++) {
			float a = fabsf(row[j]);
			s->sum_sq[j] += (double)row[j] * row[j];
			s->sum_abs[j] += a;
			if (a > s->abs_max[j])
				s->abs_max[j] = a;
		}
	}
	s->n_tokens += T;
	if (!g->hsum)
		return;
	/* Float products per window, summed in double across windows. */
	cblas_ssyrk(CblasRowMajor, CblasLower, CblasTrans, n, T, 1.0f, x, n, 0.0f, g->xtx, n);
	double *h = g->hsum + g->hoff[slot];
	for (int a = 0; a < n; a++)
		for (int b = 0; b <= a; b++)
			h[(size_t)a * n + b] += g->xtx[(size_t)a * n + b];
}

static void on_tap(void *ctx, int layer, sl_tap where, float *x, int T, int n)
{
	gather *g = ctx;
	const sl_model *m = g->m;
	int ti = tap_index(where);
	if (ti >= 0) {
		accumulate(g, layer * TAPS_PER_LAYER + ti, x, T, n);
	} else if (where == SL_TAP_BLOCK_IN) {
		memcpy(g->h_in, x, (size_t)T * n * sizeof *x);
	} else if (where == SL_TAP_BLOCK_OUT) {
		for (int t = 0; t < T; t++) {
			const float *a = g->h_in + (size_t)t * n, *b = x + (size_t)t * n;
			double ab = 0, aa = 0, bb = 0;
			for (int j = 0; j < n; j++) {
				ab += (double)a[j] * b[j];
				aa += (double)a[j] * a[j];
				bb += (double)b[j] * b[j];
			}
			g->c->influence[layer] += aa > 0 && bb > 0 ? 1.0 - ab / sqrt(aa * bb) : 0.0;
		}
		if (layer == m->cfg.n_layers - 1) {
			const sl_kernels *K = sl_kernels_cpu();
			if (m->cfg.arch == SL_ARCH_GPT2)
				K->layernorm(g->normed, x, m->out_norm->data, m->out_norm_b ? m->out_norm_b->data : NULL, T, n,
				             m->cfg.norm_eps);
			else
				K->rmsnorm(g->normed, x, m->out_norm->data, T, n, m->cfg.norm_eps);
			accumulate(g, g->c->n_slots - 1, g->normed, T, n);
		}
	}
}

static uint64_t next_rand(uint64_t *s)
{
	*s += 0x9e3779b97f4a7c15ull;
	return mix64(*s);
}

/* Runs the windows through the model, filling c. */
static sl_status run_windows(const sl_model *m, const int32_t *ids, size_t n_ids, const sl_calib_opts *o, int ctx,
                             sl_calib *c, sl_error *err)
{
	/* Fewer tokens than one window: the one window there is. */
	int len = n_ids < (size_t)ctx ? (int)n_ids : ctx;
	int n_win = len < ctx ? 1 : (o->tokens + ctx - 1) / ctx;
	int width_max = 0;
	for (int i = 0; i < c->n_slots; i++)
		if (c->slots[i].n > width_max)
			width_max = c->slots[i].n;
	gather g = {c, m, NULL, NULL, NULL, NULL, NULL};
	sl_state *s = NULL;
	int32_t *win = sl_malloc_array((size_t)ctx, sizeof *win);
	g.h_in = sl_malloc_array((size_t)ctx * m->cfg.dim, sizeof(float));
	g.normed = sl_malloc_array((size_t)ctx * m->cfg.dim, sizeof(float));
	sl_status st = SL_OK;
	if (o->hessians) {
		g.hoff = sl_malloc_array((size_t)c->n_slots, sizeof *g.hoff);
		size_t total = 0;
		for (int i = 0; g.hoff && i < c->n_slots; i++) {
			g.hoff[i] = total;
			total += (size_t)c->slots[i].n * c->slots[i].n;
		}
		g.hsum = g.hoff ? sl_calloc(total, sizeof *g.hsum) : NULL;
		g.xtx = sl_malloc_array((size_t)width_max * width_max, sizeof *g.xtx);
	}
	if (!win || !g.h_in || !g.normed || (o->hessians && (!g.hsum || !g.xtx))) {
		st = sl_errorf(err, SL_ERR_NOMEM, "out of memory for calibration statistics");
		goto done;
	}
	if ((st = sl_state_new(m, ctx, &s, err)))
		goto done;
	s->tap = on_tap;
	s->tap_ctx = &g;
	uint64_t rng = o->seed;
	int bos = m->tok && sl_tok_add_bos(m->tok) ? sl_tok_bos(m->tok) : -1;
	for (int w = 0; w < n_win; w++) {
		if (sl_cancelled(o->progress)) {
			st = sl_errorf(err, SL_ERR_CANCELLED, "calibration cancelled after %d of %d windows", w, n_win);
			goto done;
		}
		size_t start = n_ids > (size_t)len ? next_rand(&rng) % (n_ids - (size_t)len + 1) : 0;
		memcpy(win, ids + start, (size_t)len * sizeof *win);
		if (bos >= 0)
			win[0] = bos; /* every window starts like a fresh sequence */
		sl_state_reset(s);
		if ((st = sl_forward(s, win, len, NULL, len, err)))
			goto done;
		char stage[64];
		snprintf(stage, sizeof stage, "calibration window %d/%d", w + 1, n_win);
		sl_report(o->progress, (double)(w + 1) / n_win, stage);
	}
	long long tokens = (long long)n_win * len;
	for (int l = 0; l < c->n_layers; l++)
		c->influence[l] /= (double)tokens;
	for (int i = 0; g.hsum && i < c->n_slots; i++) {
		sl_act_stats *a = &c->slots[i];
		const double *h = g.hsum + g.hoff[i];
		for (int p = 0; p < a->n; p++)
			for (int q = 0; q <= p; q++)
				a->hessian[(size_t)p * a->n + q] = a->hessian[(size_t)q * a->n + p] =
					(float)(h[(size_t)p * a->n + q] / (double)a->n_tokens);
	}
done:
	sl_state_free(s);
	free(win);
	free(g.h_in);
	free(g.normed);
	free(g.xtx);
	free(g.hsum);
	free(g.hoff);
	return st;
}

/* --- the cache file ----------------------------------------------------------- */

typedef struct {
	char magic[8];
	uint32_t version, n_layers, n_slots, hessians;
	uint64_t key, model_hash;
} cache_header;

static size_t slot_bytes(const sl_act_stats *s, bool hessians)
{
	size_t n = (size_t)s->n;
	return sizeof(int64_t) + n * (2 * sizeof(double) + sizeof(float)) + (hessians ? n * n * sizeof(float) : 0);
}

typedef struct {
	const sl_calib *c;
	uint64_t key;
} cache_writer;

static sl_status write_cache(FILE *f, void *ctx, sl_error *err)
{
	const cache_writer *w = ctx;
	const sl_calib *c = w->c;
	sl_buf b = {0};
	cache_header h = {{0}, CACHE_VERSION, (uint32_t)c->n_layers, (uint32_t)c->n_slots, c->hessians, w->key,
	                  c->model_hash};
	memcpy(h.magic, cache_magic, sizeof h.magic);
	bool ok = sl_buf_put(&b, &h, sizeof h);
	for (int i = 0; ok && i < c->n_slots; i++) {
		const sl_act_stats *s = &c->slots[i];
		int64_t nt = s->n_tokens;
		size_t n = (size_t)s->n;
		ok = sl_buf_put(&b, &nt, sizeof nt) && sl_buf_put(&b, s->sum_sq, n * sizeof(double)) &&
		     sl_buf_put(&b, s->sum_abs, n * sizeof(double)) && sl_buf_put(&b, s->abs_max, n * sizeof(float)) &&
		     (!c->hessians || sl_buf_put(&b, s->hessian, n * n * sizeof(float)));
	}
	ok = ok && sl_buf_put(&b, c->influence, (size_t)c->n_layers * sizeof(double));
	uint64_t sum = ok ? sl_hash64(b.data, b.len, 0) : 0;
	ok = ok && sl_buf_put(&b, &sum, sizeof sum);
	sl_status st = !ok ? sl_errorf(err, SL_ERR_NOMEM, "out of memory writing the calibration cache")
	               : fwrite(b.data, b.len, 1, f) != 1 ? SL_ERR_IO : SL_OK;
	sl_buf_free(&b);
	return st;
}

/* Reads a cache file into a fresh sl_calib for m; NULL when it is absent,
 * stale or damaged in any way (the caller then gathers afresh). */
static sl_calib *read_cache(const char *path, const sl_model *m, uint64_t key, uint64_t model_hash, bool hessians)
{
	sl_mapping map;
	if (!sl_file_exists(path) || sl_map_file(path, &map, NULL))
		return NULL;
	sl_calib *c = NULL;
	const unsigned char *p = map.addr;
	size_t size = map.size;
	cache_header h;
	if (size < sizeof h + sizeof(uint64_t))
		goto bad;
	memcpy(&h, p, sizeof h);
	uint64_t sum;
	memcpy(&sum, p + size - sizeof sum, sizeof sum);
	if (memcmp(h.magic, cache_magic, sizeof h.magic) || h.version != CACHE_VERSION || h.key != key ||
	    h.model_hash != model_hash || h.n_layers != (uint32_t)m->cfg.n_layers ||
	    h.n_slots != (uint32_t)m->cfg.n_layers * TAPS_PER_LAYER + 1 || h.hessians > 1 || (hessians && !h.hessians) ||
	    sl_hash64(p, size - sizeof sum, 0) != sum)
		goto bad;
	if (!(c = calib_new(m, h.hessians)))
		goto bad;
	size_t off = sizeof h;
	for (int i = 0; i < c->n_slots; i++) {
		sl_act_stats *s = &c->slots[i];
		size_t n = (size_t)s->n;
		if (off + slot_bytes(s, c->hessians) > size - sizeof sum)
			goto bad;
		int64_t nt;
		memcpy(&nt, p + off, sizeof nt);
		off += sizeof nt;
		s->n_tokens = nt;
		memcpy(s->sum_sq, p + off, n * sizeof(double));
		off += n * sizeof(double);
		memcpy(s->sum_abs, p + off, n * sizeof(double));
		off += n * sizeof(double);
		memcpy(s->abs_max, p + off, n * sizeof(float));
		off += n * sizeof(float);
		if (c->hessians) {
			memcpy(s->hessian, p + off, n * n * sizeof(float));
			off += n * n * sizeof(float);
		}
		if (nt <= 0)
			goto bad;
	}
	if (off + (size_t)c->n_layers * sizeof(double) + sizeof sum != size)
		goto bad;
	memcpy(c->influence, p + off, (size_t)c->n_layers * sizeof(double));
	c->model_hash = model_hash;
	sl_unmap(&map);
	return c;
bad:
	sl_calib_free(c);
	sl_unmap(&map);
	return NULL;
}

/* The cache directory, created if needed; false when there is none to use. */
static bool cache_dir(const sl_calib_opts *o, char *buf, size_t n)
{
	const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
	int w;
	if (o->cache_dir && !*o->cache_dir)
		return false;
	if (o->cache_dir)
		w = snprintf(buf, n, "%s", o->cache_dir);
	else if (xdg && *xdg)
		w = snprintf(buf, n, "%s/slimlab", xdg);
	else if (home && *home)
		w = snprintf(buf, n, "%s/.cache/slimlab", home);
	else
		return false;
	if (w < 0 || (size_t)w >= n)
		return false;
	/* mkdir -p */
	for (char *q = buf + 1; *q; q++)
		if (*q == '/') {
			*q = 0;
			if (mkdir(buf, 0755) && errno != EEXIST) {
				*q = '/';
				return false;
			}
			*q = '/';
		}
	return (!mkdir(buf, 0755) || errno == EEXIST) && sl_is_dir(buf);
}

sl_status sl_calib_gather(const sl_model *m, const sl_calib_opts *opts, sl_calib **out, sl_error *err)
{
	*out = NULL;
	sl_calib_opts o = *opts;
	if (o.tokens <= 0)
		o.tokens = 8192;
	if (o.ctx <= 0)
		o.ctx = 256;
	if (!o.text_path || !*o.text_path)
		return sl_errorf(err, SL_ERR_ARG, "calibration needs a text file; none was given");
	if (!m->tok)
		return sl_errorf(err, SL_ERR_ARG, "%s has no tokenizer, so calibration text cannot be encoded", m->path);
	int ctx = o.ctx < m->cfg.max_seq_len ? o.ctx : m->cfg.max_seq_len;
	char *text;
	size_t len;
	sl_status st = sl_read_file(o.text_path, (size_t)1 << 30, &text, &len, err);
	if (st)
		return sl_error_prefix(err, "calibration text: ");
	uint64_t model_hash = sl_model_hash(m);
	uint64_t key = sl_hash64(text, len, model_hash);
	int64_t settings[4] = {o.tokens, ctx, (int64_t)o.seed, CACHE_VERSION};
	key = sl_hash64(settings, sizeof settings, key);
	char dir[4096], path[4200];
	bool cached = cache_dir(&o, dir, sizeof dir);
	if (cached) {
		snprintf(path, sizeof path, "%s/calib-%016llx.bin", dir, (unsigned long long)key);
		sl_calib *c = read_cache(path, m, key, model_hash, o.hessians);
		if (c) {
			free(text);
			sl_report(o.progress, 1.0, "calibration statistics from the cache");
			*out = c;
			return SL_OK;
		}
	}
	int32_t *ids = NULL;
	size_t n_ids = 0;
	st = sl_tok_encode(m->tok, text, len, sl_tok_add_bos(m->tok), &ids, &n_ids, err);
	free(text);
	if (st)
		return sl_error_prefix(err, "calibration text %s: ", o.text_path);
	if (n_ids < 2) {
		free(ids);
		return sl_errorf(err, SL_ERR_ARG, "calibration text %s holds %zu tokens; it needs at least 2", o.text_path,
		                 n_ids);
	}
	sl_calib *c = calib_new(m, o.hessians);
	if (!c) {
		free(ids);
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory for calibration statistics");
	}
	c->model_hash = model_hash;
	st = run_windows(m, ids, n_ids, &o, ctx, c, err);
	free(ids);
	if (st) {
		sl_calib_free(c);
		return st;
	}
	/* A cache that cannot be written costs time later, not correctness. */
	if (cached) {
		cache_writer w = {c, key};
		sl_write_atomic(path, write_cache, &w, NULL);
	}
	*out = c;
	return SL_OK;
}
