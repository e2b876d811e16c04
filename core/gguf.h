/* GGUF v2/v3: parse a mapped file's metadata and tensor directory with every
 * length and offset checked against the file, and write GGUF files. */
#ifndef SL_GGUF_H
#define SL_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "tensor.h"

enum {
	SL_GGUF_U8 = 0, SL_GGUF_I8 = 1, SL_GGUF_U16 = 2, SL_GGUF_I16 = 3,
	SL_GGUF_U32 = 4, SL_GGUF_I32 = 5, SL_GGUF_F32 = 6, SL_GGUF_BOOL = 7,
	SL_GGUF_STR = 8, SL_GGUF_ARR = 9, SL_GGUF_U64 = 10, SL_GGUF_I64 = 11,
	SL_GGUF_F64 = 12, SL_GGUF_NTYPES = 13,
};

typedef struct {
	const char *key;      /* NUL-terminated copy */
	uint32_t type;
	uint32_t arr_type;    /* element type when type == SL_GGUF_ARR */
	uint64_t n;           /* array length (1 for scalars) */
	const uint8_t *data;  /* scalar value, or first array element, in the file */
	size_t *str_off;      /* string arrays: offset of each element from data */
} sl_gguf_kv;

typedef struct {
	char name[SL_NAME_MAX];
	int n_dims;
	int64_t ne[SL_MAX_DIMS];
	int type;
	uint64_t offset;      /* from the start of the data section */
	const void *data;
	size_t nbytes;
} sl_gguf_tensor;

typedef struct sl_gguf {
	char path[4096];
	uint32_t version;
	const uint8_t *base;  /* the whole file, mapped */
	size_t size;
	size_t alignment;
	size_t data_offset;
	sl_gguf_kv *kv;
	uint64_t n_kv;
	sl_gguf_tensor *tensors;
	uint64_t n_tensors;
	bool owns_map;
} sl_gguf;

sl_status sl_gguf_open(const char *path, sl_gguf **out, sl_error *err);
/* Parses a GGUF image in memory (not copied; must outlive the result). */
sl_status sl_gguf_parse(const void *buf, size_t size, const char *name, sl_gguf **out, sl_error *err);
void sl_gguf_close(sl_gguf *g);
/* Hands the file mapping to the caller (whose tensors point into it). */
void sl_gguf_release_map(sl_gguf *g, void **addr, size_t *size);

const sl_gguf_kv *sl_gguf_find(const sl_gguf *g, const char *key);
/* Typed getters: false when the key is absent or of an incompatible type.
 * Integers of any width convert when the value fits. */
bool sl_gguf_get_i64(const sl_gguf *g, const char *key, int64_t *out);
bool sl_gguf_get_f32(const sl_gguf *g, const char *key, float *out);
bool sl_gguf_get_bool(const sl_gguf *g, const char *key, bool *out);
/* Copies a string value (NUL-terminated, truncated to n-1 bytes). */
bool sl_gguf_get_str(const sl_gguf *g, const char *key, char *buf, size_t n);
/* Element i of a string array; *len gets its length (not NUL-terminated). */
const char *sl_gguf_arr_str(const sl_gguf_kv *kv, uint64_t i, size_t *len);
/* Element i of a numeric array, converted. */
double sl_gguf_arr_num(const sl_gguf_kv *kv, uint64_t i);
size_t sl_gguf_type_size(uint32_t type); /* 0 for strings and arrays */

/* --- writing --------------------------------------------------------- */

typedef struct sl_gguf_writer sl_gguf_writer;

sl_gguf_writer *sl_gguf_writer_new(void);
void sl_gguf_writer_free(sl_gguf_writer *w);
void sl_gguf_set_str(sl_gguf_writer *w, const char *key, const char *val);
void sl_gguf_set_u32(sl_gguf_writer *w, const char *key, uint32_t val);
void sl_gguf_set_f32(sl_gguf_writer *w, const char *key, float val);
void sl_gguf_set_bool(sl_gguf_writer *w, const char *key, bool val);
/* Numeric arrays of elem_type (n elements at vals, copied). */
void sl_gguf_set_arr(sl_gguf_writer *w, const char *key, uint32_t elem_type, const void *vals, uint64_t n);
void sl_gguf_set_arr_str(sl_gguf_writer *w, const char *key, const char *const *vals,
                         const size_t *lens, uint64_t n);
/* The tensor's bytes are written from data at sl_gguf_write time (not copied). */
void sl_gguf_add_tensor(sl_gguf_writer *w, const char *name, int type, const int64_t *ne,
                        int n_dims, const void *data, size_t nbytes);
/* Writes to a temporary file beside path and renames it into place. */
sl_status sl_gguf_write(sl_gguf_writer *w, const char *path, sl_error *err);
/* The same bytes into memory (*data is malloc'ed), for sl_gguf_parse. */
sl_status sl_gguf_write_mem(sl_gguf_writer *w, void **data, size_t *size, sl_error *err);

#endif
