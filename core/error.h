/* Status codes and error messages shared by every slimlab module.
 * A failing function returns an sl_status and fills an sl_error that says what
 * went wrong and where (file, offset, tensor), so callers never guess. */
#ifndef SL_ERROR_H
#define SL_ERROR_H

#include <stddef.h>

typedef enum {
	SL_OK = 0,
	SL_ERR_IO,          /* the file system refused (open, read, write, rename) */
	SL_ERR_FORMAT,      /* a file or text is malformed or hostile */
	SL_ERR_UNSUPPORTED, /* well-formed, but slimlab cannot handle it (yet) */
	SL_ERR_ARG,         /* the caller asked for something impossible */
	SL_ERR_NOMEM,       /* allocation failed or the request is absurdly large */
	SL_ERR_CANCELLED,   /* a job's cancel flag was raised */
} sl_status;

typedef struct {
	sl_status status;
	char msg[1024];
} sl_error;

/* Fills err (which may be NULL) and returns st, so that a failure reads
 * `return sl_errorf(err, SL_ERR_FORMAT, "%s: ...", path);`. */
sl_status sl_errorf(sl_error *err, sl_status st, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Prefixes an existing message with context ("loading x.gguf: "). */
sl_status sl_error_prefix(sl_error *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

const char *sl_status_name(sl_status st);

/* Allocation helpers that never return NULL silently: they return NULL only
 * for sizes that overflow or exceed the machine, and the caller reports it. */
void *sl_malloc(size_t n);
void *sl_calloc(size_t count, size_t size);
void *sl_malloc_array(size_t count, size_t size);
/* count x size bytes starting on a 64-byte cache line, rounded up to whole
 * lines (free() releases them). */
void *sl_malloc_lines(size_t count, size_t size);
char *sl_strdup(const char *s);

#endif
