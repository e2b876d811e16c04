/* Files: read-only mappings, whole-file reads, atomic writes (temporary file,
 * fsync, rename), a growable byte buffer, and where the files that ship
 * with slimlab are. */
#ifndef SL_FILEIO_H
#define SL_FILEIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "error.h"

typedef struct sl_mapping {
	void *addr;
	size_t size;
} sl_mapping;

/* Maps a whole file read-only (an empty file maps to a NULL address),
 * advised to take huge pages (sl_advise_huge). */
sl_status sl_map_file(const char *path, sl_mapping *map, sl_error *err);
void sl_unmap(sl_mapping *map);
/* Gives the pages wholly inside [p, p + n) of a read-only mapping back to
 * the system: they leave this process's resident memory and come back from
 * the file, unchanged, when next read. Does nothing outside map. */
void sl_mapping_release(const sl_mapping *map, const void *p, size_t n);

/* Asks the kernel to back the whole 2 MB extents inside [p, p + n) with
 * huge pages (transparent huge pages, which Linux commonly grants only
 * where asked). Decoding streams its weights once a token, and with 4 KB
 * pages a miss of the address cache every 4 KB costs a fifth of the speed
 * (see sl_map_file). Extents only partly inside are left as they are, so
 * no byte outside the range is held for it. Does nothing where the system
 * has no such pages. */
void sl_advise_huge(void *p, size_t n);

/* How the spans of memory are mapped now, from /proc/self/smaps (or text
 * in its format, for a test): their bytes, those in huge pages (anonymous
 * ones or a file's 2 MB page-cache pieces; smaps counts them per mapping,
 * so each mapping adds at most its overlap with the spans) and those
 * advised to take them. The spans must not overlap. false where the text
 * cannot be read. */
typedef struct {
	const void *p;
	size_t n;
} sl_span;
typedef struct {
	size_t bytes, huge, advised;
} sl_huge_usage;
bool sl_huge_usage_scan(FILE *smaps, const sl_span *spans, int n_spans, sl_huge_usage *out);
bool sl_huge_usage_of(const sl_span *spans, int n_spans, sl_huge_usage *out);

/* Reads a whole file into a NUL-terminated malloc'ed buffer, refusing files
 * larger than max_bytes. */
sl_status sl_read_file(const char *path, size_t max_bytes, char **data, size_t *len, sl_error *err);

/* Writes path through fn into a temporary file in the same directory, syncs
 * it and renames it into place: readers see the old file or the new one,
 * never a mix, even if the process dies midway. */
typedef sl_status (*sl_write_fn)(FILE *f, void *ctx, sl_error *err);
sl_status sl_write_atomic(const char *path, sl_write_fn fn, void *ctx, sl_error *err);
sl_status sl_write_file_atomic(const char *path, const void *data, size_t len, sl_error *err);

bool sl_file_exists(const char *path);
bool sl_is_dir(const char *path);
/* dir/name into buf; false if it does not fit. */
bool sl_path_join(char *buf, size_t n, const char *dir, const char *name);
/* The directory part of path ("." when none). */
void sl_path_dir(const char *path, char *buf, size_t n);

/* A file that ships with slimlab, named as it lies in the source tree
 * ("data/calib.txt", "models/workshop.gguf"): the first that exists of
 * $SLIMLAB_DATA/rel, the source tree's when the program runs from the
 * build tree it was built in, <program dir>/../share/slimlab/rel (an
 * installed copy, wherever its prefix is now) and the pkgdatadir it was
 * configured with. Paths a user gives are not looked up this way. */
sl_status sl_shipped_find(const char *rel, char *out, size_t n, sl_error *err);

typedef struct {
	char *data;
	size_t len, cap;
} sl_buf;

bool sl_buf_put(sl_buf *b, const void *p, size_t n);
bool sl_buf_printf(sl_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sl_buf_free(sl_buf *b);

#endif
