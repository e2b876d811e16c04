/* Error messages and checked allocation. */
#include "error.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

sl_status sl_errorf(sl_error *err, sl_status st, const char *fmt, ...)
{
	if (err) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof err->msg, fmt, ap);
		va_end(ap);
		err->status = st;
	}
	return st;
}

sl_status sl_error_prefix(sl_error *err, const char *fmt, ...)
{
	if (!err)
		return SL_ERR_ARG;
	char prefix[512], old[sizeof err->msg];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof prefix, fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof old);
	size_t k = strlen(prefix);
	if (k >= sizeof err->msg)
		k = sizeof err->msg - 1;
	memcpy(err->msg, prefix, k);
	size_t rest = strnlen(old, sizeof old - 1);
	if (rest > sizeof err->msg - 1 - k)
		rest = sizeof err->msg - 1 - k;
	memcpy(err->msg + k, old, rest);
	err->msg[k + rest] = 0;
	return err->status;
}

const char *sl_status_name(sl_status st)
{
	switch (st) {
	case SL_OK: return "ok";
	case SL_ERR_IO: return "I/O error";
	case SL_ERR_FORMAT: return "malformed input";
	case SL_ERR_UNSUPPORTED: return "unsupported";
	case SL_ERR_ARG: return "invalid argument";
	case SL_ERR_NOMEM: return "out of memory";
	case SL_ERR_CANCELLED: return "cancelled";
	}
	return "unknown error";
}

void *sl_malloc(size_t n)
{
	return malloc(n ? n : 1);
}

void *sl_calloc(size_t count, size_t size)
{
	return calloc(count ? count : 1, size ? size : 1);
}

void *sl_malloc_array(size_t count, size_t size)
{
	if (size && count > SIZE_MAX / size)
		return NULL;
	return sl_malloc(count * size);
}

void *sl_malloc_lines(size_t count, size_t size)
{
	if (size && count > (SIZE_MAX - 63) / size)
		return NULL;
	size_t n = (count * size + 63) & ~(size_t)63;
	return aligned_alloc(64, n ? n : 64);
}

char *sl_strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = malloc(n);
	if (d)
		memcpy(d, s, n);
	return d;
}
