/* GGUF reader and writer. The reader trusts nothing: every count, length
 * and offset is checked against the bytes that remain before it is used. */
#include "gguf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "model.h"

#define GGUF_MAGIC 0x46554747u /* "GGUF" little-endian */
#define GGUF_DEFAULT_ALIGNMENT 32

typedef struct {
	const uint8_t *base, *p, *end;
	const char *name;
	sl_error *err;
} cursor;

static size_t cur_off(const cursor *c)
{
	return (size_t)(c->p - c->base);
}

static bool need(cursor *c, size_t n, const char *what)
{
	if ((size_t)(c->end - c->p) < n) {
		sl_errorf(c->err, SL_ERR_FORMAT,
		          "%s: truncated at offset %zu: %s needs %zu bytes, %zu remain",
		          c->name, cur_off(c), what, n, (size_t)(c->end - c->p));
		return false;
	}
	return true;
}

static bool rd(cursor *c, void *dst, size_t n, const char *what)
{
	if (!need(c, n, what))
		return false;
	memcpy(dst, c->p, n);
	c->p += n;
	return true;
}

/* A GGUF string: u64 length then bytes. Returns a pointer into the file. */
static bool rd_str(cursor *c, const char **s, uint64_t *len, const char *what)
{
	size_t at = cur_off(c);
	if (!rd(c, len, 8, what))
		return false;
	if (*len > (uint64_t)(c->end - c->p)) {
		sl_errorf(c->err, SL_ERR_FORMAT,
		          "%s: %s at offset %zu claims %llu bytes but only %zu remain in the file",
		          c->name, what, at, (unsigned long long)*len, (size_t)(c->end - c->p));
		return false;
	}
	*s = (const char *)c->p;
	c->p += *len;
	return true;
}

size_t sl_gguf_type_size(uint32_t type)
{
	static const size_t sz[SL_GGUF_NTYPES] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
	return type < SL_GGUF_NTYPES ? sz[type] : 0;
}

static const char *gguf_type_name(uint32_t t)
{
	static const char *names[SL_GGUF_NTYPES] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32",
	                                            "bool", "string", "array", "u64", "i64", "f64"};
	return t < SL_GGUF_NTYPES ? names[t] : "unknown";
}

static bool parse_kv(cursor *c, sl_gguf_kv *kv)
{
	const char *k;
	uint64_t klen;
	size_t at = cur_off(c);
	if (!rd_str(c, &k, &klen, "metadata key"))
		return false;
	if (klen == 0 || klen > 65535) {
		sl_errorf(c->err, SL_ERR_FORMAT, "%s: metadata key at offset %zu has length %llu",
		          c->name, at, (unsigned long long)klen);
		return false;
	}
	char *key = malloc(klen + 1);
	if (!key) {
		sl_errorf(c->err, SL_ERR_NOMEM, "%s: out of memory", c->name);
		return false;
	}
	memcpy(key, k, klen);
	key[klen] = 0;
	kv->key = key;
	if (!rd(c, &kv->type, 4, "metadata value type"))
		return false;
	kv->n = 1;
	uint32_t et = kv->type;
	if (kv->type == SL_GGUF_ARR) {
		if (!rd(c, &kv->arr_type, 4, "array element type") || !rd(c, &kv->n, 8, "array length"))
			return false;
		et = kv->arr_type;
		if (et == SL_GGUF_ARR) {
			sl_errorf(c->err, SL_ERR_UNSUPPORTED, "%s: metadata '%s' is an array of arrays",
			          c->name, key);
			return false;
		}
	}
	if (et >= SL_GGUF_NTYPES) {
		sl_errorf(c->err, SL_ERR_FORMAT, "%s: metadata '%s' at offset %zu has unknown type %u",
		          c->name, key, at, et);
		return false;
	}
	kv->data = c->p;
	if (et == SL_GGUF_STR) {
		/* Each string takes at least its 8-byte length. */
		if (kv->n > (uint64_t)(c->end - c->p) / 8) {
			sl_errorf(c->err, SL_ERR_FORMAT,
			          "%s: metadata '%s' claims %llu strings, more than the file can hold",
			          c->name, key, (unsigned long long)kv->n);
			return false;
		}
		if (kv->type == SL_GGUF_ARR) {
			kv->str_off = sl_malloc_array(kv->n, sizeof(size_t));
			if (!kv->str_off) {
				sl_errorf(c->err, SL_ERR_NOMEM, "%s: out of memory for '%s'", c->name, key);
				return false;
			}
		}
		for (uint64_t i = 0; i < kv->n; i++) {
			const char *s;
			uint64_t len;
			if (kv->str_off)
				kv->str_off[i] = (size_t)(c->p - kv->data);
			if (!rd_str(c, &s, &len, key))
				return false;
		}
		return true;
	}
	size_t es = sl_gguf_type_size(et);
	if (kv->n > (uint64_t)(c->end - c->p) / es) {
		sl_errorf(c->err, SL_ERR_FORMAT,
		          "%s: metadata '%s' claims %llu elements of %s, more than the file holds",
		          c->name, key, (unsigned long long)kv->n, gguf_type_name(et));
		return false;
	}
	c->p += kv->n * es;
	return true;
}

static bool parse_tensor_info(cursor *c, sl_gguf_tensor *t)
{
	const char *s;
	uint64_t len;
	size_t at = cur_off(c);
	if (!rd_str(c, &s, &len, "tensor name"))
		return false;
	if (len == 0 || len >= SL_NAME_MAX) {
		sl_errorf(c->err, SL_ERR_FORMAT, "%s: tensor name at offset %zu has length %llu (max %d)",
		          c->name, at, (unsigned long long)len, SL_NAME_MAX - 1);
		return false;
	}
	memcpy(t->name, s, len);
	t->name[len] = 0;
	uint32_t nd;
	if (!rd(c, &nd, 4, "tensor dimension count"))
		return false;
	if (nd == 0 || nd > SL_MAX_DIMS) {
		sl_errorf(c->err, SL_ERR_FORMAT, "%s: tensor '%s' has %u dimensions (1 to %d allowed)",
		          c->name, t->name, nd, SL_MAX_DIMS);
		return false;
	}
	t->n_dims = (int)nd;
	for (int i = 0; i < SL_MAX_DIMS; i++)
		t->ne[i] = 1;
	for (uint32_t i = 0; i < nd; i++) {
		uint64_t d;
		if (!rd(c, &d, 8, "tensor dimension"))
			return false;
		if (d == 0 || d > ((uint64_t)1 << 40)) {
			sl_errorf(c->err, SL_ERR_FORMAT, "%s: tensor '%s' dimension %u is %llu",
			          c->name, t->name, i, (unsigned long long)d);
			return false;
		}
		t->ne[i] = (int64_t)d;
	}
	uint32_t type;
	if (!rd(c, &type, 4, "tensor type") || !rd(c, &t->offset, 8, "tensor offset"))
		return false;
	t->type = (int)type;
	if (!sl_type_info_get(t->type)) {
		sl_errorf(c->err, SL_ERR_UNSUPPORTED, "%s: tensor '%s' has ggml type %u, which slimlab cannot read",
		          c->name, t->name, type);
		return false;
	}
	t->nbytes = sl_tensor_bytes_for(t->type, t->ne, t->n_dims);
	if (!t->nbytes) {
		sl_errorf(c->err, SL_ERR_FORMAT,
		          "%s: tensor '%s' of type %s has a row of %lld elements, not a whole number of blocks, or an absurd size",
		          c->name, t->name, sl_dtype_name(t->type), (long long)t->ne[0]);
		return false;
	}
	return true;
}

sl_status sl_gguf_parse(const void *buf, size_t size, const char *name, sl_gguf **out, sl_error *err)
{
	*out = NULL;
	sl_gguf *g = calloc(1, sizeof *g);
	if (!g)
		return sl_errorf(err, SL_ERR_NOMEM, "%s: out of memory", name);
	snprintf(g->path, sizeof g->path, "%s", name);
	g->base = buf;
	g->size = size;
	cursor c = {buf, buf, (const uint8_t *)buf + size, g->path, err};
	uint32_t magic;
	if (!rd(&c, &magic, 4, "magic"))
		goto fail;
	if (magic != GGUF_MAGIC) {
		sl_errorf(err, SL_ERR_FORMAT, "%s: not a GGUF file (magic at offset 0 is 0x%08x)", name, magic);
		goto fail;
	}
	if (!rd(&c, &g->version, 4, "version"))
		goto fail;
	if (g->version != 2 && g->version != 3) {
		sl_errorf(err, SL_ERR_UNSUPPORTED, "%s: GGUF version %u; slimlab reads versions 2 and 3",
		          name, g->version);
		goto fail;
	}
	if (!rd(&c, &g->n_tensors, 8, "tensor count") || !rd(&c, &g->n_kv, 8, "metadata count"))
		goto fail;
	/* A key-value pair takes at least 8 + 1 + 4 + 1 bytes, a tensor info 8 + 1 + 4 + 8 + 4 + 8. */
	if (g->n_kv > (size - cur_off(&c)) / 14) {
		sl_errorf(err, SL_ERR_FORMAT, "%s: header claims %llu metadata entries, more than the file can hold",
		          name, (unsigned long long)g->n_kv);
		goto fail;
	}
	if (g->n_tensors > (size - cur_off(&c)) / 33) {
		sl_errorf(err, SL_ERR_FORMAT, "%s: header claims %llu tensors, more than the file can hold",
		          name, (unsigned long long)g->n_tensors);
		goto fail;
	}
	g->kv = calloc(g->n_kv ? g->n_kv : 1, sizeof *g->kv);
	g->tensors = calloc(g->n_tensors ? g->n_tensors : 1, sizeof *g->tensors);
	if (!g->kv || !g->tensors) {
		sl_errorf(err, SL_ERR_NOMEM, "%s: out of memory", name);
		goto fail;
	}
	for (uint64_t i = 0; i < g->n_kv; i++) {
		if (!parse_kv(&c, &g->kv[i]))
			goto fail;
		for (uint64_t j = 0; j < i; j++)
			if (!strcmp(g->kv[j].key, g->kv[i].key)) {
				sl_errorf(err, SL_ERR_FORMAT, "%s: metadata key '%s' appears twice", name, g->kv[i].key);
				goto fail;
			}
	}
	g->alignment = GGUF_DEFAULT_ALIGNMENT;
	const sl_gguf_kv *al = sl_gguf_find(g, "general.alignment");
	if (al) {
		int64_t a;
		if (!sl_gguf_get_i64(g, "general.alignment", &a) || a <= 0 || a > (1 << 20) || (a & (a - 1))) {
			sl_errorf(err, SL_ERR_FORMAT, "%s: general.alignment must be a power of two up to 1 MiB", name);
			goto fail;
		}
		g->alignment = (size_t)a;
	}
	for (uint64_t i = 0; i < g->n_tensors; i++)
		if (!parse_tensor_info(&c, &g->tensors[i]))
			goto fail;
	size_t off = cur_off(&c);
	g->data_offset = (off + g->alignment - 1) / g->alignment * g->alignment;
	if (g->n_tensors && g->data_offset > size) {
		sl_errorf(err, SL_ERR_FORMAT, "%s: truncated: tensor data would start at offset %zu, past the end (%zu bytes)",
		          name, g->data_offset, size);
		goto fail;
	}
	for (uint64_t i = 0; i < g->n_tensors; i++) {
		sl_gguf_tensor *t = &g->tensors[i];
		if (t->offset % g->alignment) {
			sl_errorf(err, SL_ERR_FORMAT, "%s: tensor '%s' offset %llu is not a multiple of the alignment %zu",
			          name, t->name, (unsigned long long)t->offset, g->alignment);
			goto fail;
		}
		if (t->offset > size - g->data_offset || t->nbytes > size - g->data_offset - t->offset) {
			sl_errorf(err, SL_ERR_FORMAT,
			          "%s: tensor '%s' (%zu bytes at data offset %llu) runs past the end of the file (%zu bytes): the file is truncated or corrupt",
			          name, t->name, t->nbytes, (unsigned long long)t->offset, size);
			goto fail;
		}
		t->data = g->base + g->data_offset + t->offset;
		for (uint64_t j = 0; j < i; j++)
			if (!strcmp(g->tensors[j].name, t->name)) {
				sl_errorf(err, SL_ERR_FORMAT, "%s: tensor '%s' appears twice", name, t->name);
				goto fail;
			}
	}
	*out = g;
	return SL_OK;
fail:
	sl_gguf_close(g);
	return err ? err->status : SL_ERR_FORMAT;
}

sl_status sl_gguf_open(const char *path, sl_gguf **out, sl_error *err)
{
	sl_mapping map;
	sl_status st = sl_map_file(path, &map, err);
	if (st)
		return st;
	st = sl_gguf_parse(map.addr, map.size, path, out, err);
	if (st) {
		sl_unmap(&map);
		return st;
	}
	(*out)->owns_map = true;
	return SL_OK;
}

void sl_gguf_release_map(sl_gguf *g, void **addr, size_t *size)
{
	*addr = (void *)g->base;
	*size = g->size;
	g->owns_map = false;
}

void sl_gguf_close(sl_gguf *g)
{
	if (!g)
		return;
	if (g->kv)
		for (uint64_t i = 0; i < g->n_kv; i++) {
			free((char *)g->kv[i].key);
			free(g->kv[i].str_off);
		}
	free(g->kv);
	free(g->tensors);
	if (g->owns_map) {
		sl_mapping m = {(void *)g->base, g->size};
		sl_unmap(&m);
	}
	free(g);
}

const sl_gguf_kv *sl_gguf_find(const sl_gguf *g, const char *key)
{
	for (uint64_t i = 0; i < g->n_kv; i++)
		if (!strcmp(g->kv[i].key, key))
			return &g->kv[i];
	return NULL;
}

static double num_at(uint32_t type, const uint8_t *p, bool *ok)
{
	*ok = true;
	switch (type) {
	case SL_GGUF_U8: return *p;
	case SL_GGUF_I8: return (int8_t)*p;
	case SL_GGUF_BOOL: return *p != 0;
	case SL_GGUF_U16: { uint16_t v; memcpy(&v, p, 2); return v; }
	case SL_GGUF_I16: { int16_t v; memcpy(&v, p, 2); return v; }
	case SL_GGUF_U32: { uint32_t v; memcpy(&v, p, 4); return v; }
	case SL_GGUF_I32: { int32_t v; memcpy(&v, p, 4); return v; }
	case SL_GGUF_F32: { float v; memcpy(&v, p, 4); return v; }
	case SL_GGUF_U64: { uint64_t v; memcpy(&v, p, 8); return (double)v; }
	case SL_GGUF_I64: { int64_t v; memcpy(&v, p, 8); return (double)v; }
	case SL_GGUF_F64: { double v; memcpy(&v, p, 8); return v; }
	}
	*ok = false;
	return 0;
}

bool sl_gguf_get_i64(const sl_gguf *g, const char *key, int64_t *out)
{
	const sl_gguf_kv *kv = sl_gguf_find(g, key);
	if (!kv || kv->type == SL_GGUF_ARR || kv->type == SL_GGUF_F32 || kv->type == SL_GGUF_F64)
		return false;
	if (kv->type == SL_GGUF_U64) {
		uint64_t v;
		memcpy(&v, kv->data, 8);
		if (v > INT64_MAX)
			return false;
		*out = (int64_t)v;
		return true;
	}
	if (kv->type == SL_GGUF_I64) {
		memcpy(out, kv->data, 8);
		return true;
	}
	bool ok;
	double v = num_at(kv->type, kv->data, &ok);
	if (ok)
		*out = (int64_t)v;
	return ok;
}

bool sl_gguf_get_f32(const sl_gguf *g, const char *key, float *out)
{
	const sl_gguf_kv *kv = sl_gguf_find(g, key);
	if (!kv || kv->type == SL_GGUF_ARR)
		return false;
	bool ok;
	double v = num_at(kv->type, kv->data, &ok);
	if (ok)
		*out = (float)v;
	return ok;
}

bool sl_gguf_get_bool(const sl_gguf *g, const char *key, bool *out)
{
	const sl_gguf_kv *kv = sl_gguf_find(g, key);
	if (!kv || kv->type != SL_GGUF_BOOL)
		return false;
	*out = kv->data[0] != 0;
	return true;
}

bool sl_gguf_get_str(const sl_gguf *g, const char *key, char *buf, size_t n)
{
	const sl_gguf_kv *kv = sl_gguf_find(g, key);
	if (!kv || kv->type != SL_GGUF_STR || n == 0)
		return false;
	uint64_t len;
	memcpy(&len, kv->data, 8);
	size_t k = len < n - 1 ? (size_t)len : n - 1;
	memcpy(buf, kv->data + 8, k);
	buf[k] = 0;
	return true;
}

const char *sl_gguf_arr_str(const sl_gguf_kv *kv, uint64_t i, size_t *len)
{
	if (kv->type != SL_GGUF_ARR || kv->arr_type != SL_GGUF_STR || i >= kv->n)
		return NULL;
	const uint8_t *p = kv->data + kv->str_off[i];
	uint64_t l;
	memcpy(&l, p, 8);
	*len = (size_t)l;
	return (const char *)p + 8;
}

double sl_gguf_arr_num(const sl_gguf_kv *kv, uint64_t i)
{
	if (kv->type != SL_GGUF_ARR || i >= kv->n)
		return 0;
	bool ok;
	return num_at(kv->arr_type, kv->data + i * sl_gguf_type_size(kv->arr_type), &ok);
}

/* --- writer ---------------------------------------------------------- */

typedef struct {
	char name[SL_NAME_MAX];
	int type, n_dims;
	int64_t ne[SL_MAX_DIMS];
	const void *data;
	size_t nbytes;
} wtensor;

struct sl_gguf_writer {
	sl_buf kv;        /* serialized key-value pairs */
	uint64_t n_kv;
	wtensor *t;
	size_t n_t, cap_t;
	bool oom;
};

sl_gguf_writer *sl_gguf_writer_new(void)
{
	return calloc(1, sizeof(sl_gguf_writer));
}

void sl_gguf_writer_free(sl_gguf_writer *w)
{
	if (!w)
		return;
	sl_buf_free(&w->kv);
	free(w->t);
	free(w);
}

static void put_str(sl_gguf_writer *w, const char *s, size_t len)
{
	uint64_t l = len;
	w->oom |= !sl_buf_put(&w->kv, &l, 8);
	w->oom |= !sl_buf_put(&w->kv, s, len);
}

static void put_key(sl_gguf_writer *w, const char *key, uint32_t type)
{
	put_str(w, key, strlen(key));
	w->oom |= !sl_buf_put(&w->kv, &type, 4);
	w->n_kv++;
}

void sl_gguf_set_str(sl_gguf_writer *w, const char *key, const char *val)
{
	put_key(w, key, SL_GGUF_STR);
	put_str(w, val, strlen(val));
}

void sl_gguf_set_u32(sl_gguf_writer *w, const char *key, uint32_t val)
{
	put_key(w, key, SL_GGUF_U32);
	w->oom |= !sl_buf_put(&w->kv, &val, 4);
}

void sl_gguf_set_f32(sl_gguf_writer *w, const char *key, float val)
{
	put_key(w, key, SL_GGUF_F32);
	w->oom |= !sl_buf_put(&w->kv, &val, 4);
}

void sl_gguf_set_bool(sl_gguf_writer *w, const char *key, bool val)
{
	uint8_t b = val;
	put_key(w, key, SL_GGUF_BOOL);
	w->oom |= !sl_buf_put(&w->kv, &b, 1);
}

void sl_gguf_set_arr(sl_gguf_writer *w, const char *key, uint32_t elem_type, const void *vals, uint64_t n)
{
	put_key(w, key, SL_GGUF_ARR);
	w->oom |= !sl_buf_put(&w->kv, &elem_type, 4);
	w->oom |= !sl_buf_put(&w->kv, &n, 8);
	w->oom |= !sl_buf_put(&w->kv, vals, n * sl_gguf_type_size(elem_type));
}

void sl_gguf_set_arr_str(sl_gguf_writer *w, const char *key, const char *const *vals,
                         const size_t *lens, uint64_t n)
{
	uint32_t et = SL_GGUF_STR;
	put_key(w, key, SL_GGUF_ARR);
	w->oom |= !sl_buf_put(&w->kv, &et, 4);
	w->oom |= !sl_buf_put(&w->kv, &n, 8);
	for (uint64_t i = 0; i < n; i++)
		put_str(w, vals[i], lens ? lens[i] : strlen(vals[i]));
}

void sl_gguf_add_tensor(sl_gguf_writer *w, const char *name, int type, const int64_t *ne,
                        int n_dims, const void *data, size_t nbytes)
{
	if (w->n_t == w->cap_t) {
		size_t cap = w->cap_t ? 2 * w->cap_t : 64;
		wtensor *t = realloc(w->t, cap * sizeof *t);
		if (!t) {
			w->oom = true;
			return;
		}
		w->t = t;
		w->cap_t = cap;
	}
	wtensor *t = &w->t[w->n_t++];
	memset(t, 0, sizeof *t);
	snprintf(t->name, sizeof t->name, "%s", name);
	t->type = type;
	t->n_dims = n_dims;
	for (int i = 0; i < SL_MAX_DIMS; i++)
		t->ne[i] = i < n_dims ? ne[i] : 1;
	t->data = data;
	t->nbytes = nbytes;
}

static size_t align_up(size_t x, size_t a)
{
	return (x + a - 1) / a * a;
}

static sl_status write_gguf(sl_gguf_writer *w, FILE *f, sl_error *err)
{
	(void)err;
	const size_t align = GGUF_DEFAULT_ALIGNMENT;
	static const uint8_t zeros[GGUF_DEFAULT_ALIGNMENT];
	uint32_t magic = GGUF_MAGIC, version = 3;
	uint64_t nt = w->n_t;
	bool ok = fwrite(&magic, 4, 1, f) && fwrite(&version, 4, 1, f) && fwrite(&nt, 8, 1, f) &&
	          fwrite(&w->n_kv, 8, 1, f) && (!w->kv.len || fwrite(w->kv.data, w->kv.len, 1, f));
	size_t pos = 24 + w->kv.len;
	uint64_t off = 0;
	for (size_t i = 0; ok && i < w->n_t; i++) {
		wtensor *t = &w->t[i];
		uint64_t len = strlen(t->name);
		uint32_t nd = (uint32_t)t->n_dims, type = (uint32_t)t->type;
		ok = fwrite(&len, 8, 1, f) && fwrite(t->name, len, 1, f) && fwrite(&nd, 4, 1, f);
		for (int d = 0; ok && d < t->n_dims; d++) {
			uint64_t v = (uint64_t)t->ne[d];
			ok = fwrite(&v, 8, 1, f);
		}
		ok = ok && fwrite(&type, 4, 1, f) && fwrite(&off, 8, 1, f);
		pos += 8 + len + 4 + 8 * (size_t)t->n_dims + 4 + 8;
		off = align_up(off + t->nbytes, align);
	}
	if (ok && align_up(pos, align) > pos)
		ok = fwrite(zeros, align_up(pos, align) - pos, 1, f);
	for (size_t i = 0; ok && i < w->n_t; i++) {
		wtensor *t = &w->t[i];
		ok = !t->nbytes || fwrite(t->data, t->nbytes, 1, f);
		size_t pad = align_up(t->nbytes, align) - t->nbytes;
		if (ok && pad && i + 1 < w->n_t)
			ok = fwrite(zeros, pad, 1, f);
	}
	return ok ? SL_OK : SL_ERR_IO;
}

static sl_status write_cb(FILE *f, void *ctx, sl_error *err)
{
	return write_gguf(ctx, f, err);
}

sl_status sl_gguf_write(sl_gguf_writer *w, const char *path, sl_error *err)
{
	if (w->oom)
		return sl_errorf(err, SL_ERR_NOMEM, "%s: out of memory while building the GGUF file", path);
	return sl_write_atomic(path, write_cb, w, err);
}

sl_status sl_gguf_write_mem(sl_gguf_writer *w, void **data, size_t *size, sl_error *err)
{
	*data = NULL;
	*size = 0;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = w->oom ? NULL : open_memstream(&buf, &len);
	if (!f)
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory building a GGUF image");
	sl_status st = write_gguf(w, f, err);
	if (fclose(f) || st) {
		free(buf);
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory building a GGUF image");
	}
	*data = buf;
	*size = len;
	return SL_OK;
}
