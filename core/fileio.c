/* File helpers: mappings, whole-file reads and atomic writes, and where the
 * files that ship with slimlab are. */
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

sl_status sl_map_file(const char *path, sl_mapping *map, sl_error *err)
{
	map->addr = NULL;
	map->size = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return sl_errorf(err, SL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int e = errno;
		close(fd);
		return sl_errorf(err, SL_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return sl_errorf(err, SL_ERR_IO, "%s: not a regular file", path);
	}
	if (st.st_size == 0) {
		close(fd);
		return SL_OK;
	}
	void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	int e = errno;
	close(fd);
	if (p == MAP_FAILED)
		return sl_errorf(err, SL_ERR_IO, "%s: cannot map %lld bytes: %s", path,
		                 (long long)st.st_size, strerror(e));
	map->addr = p;
	map->size = (size_t)st.st_size;
	/* Pages read from here on come in 2 MB pieces that map as huge pages:
	 * a fresh read of a 143 MB file mapped 139 MB that way advised, 98 MB
	 * not. Decoding a 374M-parameter file of 8-bit blocks on one thread of
	 * a Xeon (KVM): 27.8 tokens/s with the file's pages cached in 4 KB
	 * pieces, as the program that wrote it left them, 34.5 in 2 MB ones. */
	sl_advise_huge(p, map->size);
	return SL_OK;
}

void sl_advise_huge(void *p, size_t n)
{
#ifdef MADV_HUGEPAGE
	const uintptr_t ext = (uintptr_t)2 << 20;
	uintptr_t a = (uintptr_t)p, lo = (a + ext - 1) & ~(ext - 1), hi = (a + n) & ~(ext - 1);
	if (p && hi > lo)
		madvise((void *)lo, hi - lo, MADV_HUGEPAGE); /* a hint: where refused, 4 KB pages */
#else
	(void)p;
	(void)n;
#endif
}

/* Adds one mapping's figures (from s to e, huge bytes of it in huge
 * pages, advised) to u for its overlap with the spans. */
static void huge_add(sl_huge_usage *u, uintptr_t s, uintptr_t e, size_t huge, bool advised, const sl_span *spans,
                     int n_spans)
{
	size_t over = 0;
	for (int i = 0; i < n_spans; i++) {
		uintptr_t lo = (uintptr_t)spans[i].p, hi = lo + spans[i].n;
		uintptr_t a = s > lo ? s : lo, b = e < hi ? e : hi;
		if (b > a)
			over += (size_t)(b - a);
	}
	u->bytes += over;
	u->huge += huge < over ? huge : over;
	if (advised)
		u->advised += over;
}

bool sl_huge_usage_scan(FILE *smaps, const sl_span *spans, int n_spans, sl_huge_usage *out)
{
	*out = (sl_huge_usage){0};
	if (!smaps)
		return false;
	uintptr_t s = 0, e = 0;
	size_t huge = 0;
	bool advised = false, any = false;
	char line[PATH_MAX + 256]; /* a header names a path */
	while (fgets(line, sizeof line, smaps)) {
		uintptr_t a, b;
		unsigned long long kb;
		if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " ", &a, &b) == 2 && b > a) {
			if (any)
				huge_add(out, s, e, huge, advised, spans, n_spans);
			s = a;
			e = b;
			huge = 0;
			advised = false;
			any = true;
		} else if (sscanf(line, "AnonHugePages: %llu kB", &kb) == 1 ||
		           sscanf(line, "FilePmdMapped: %llu kB", &kb) == 1) {
			huge += (size_t)kb * 1024;
		} else if (!strncmp(line, "VmFlags:", 8)) {
			/* two-letter flags, each after a space; "hg": advised */
			for (const char *f = line + 8; (f = strstr(f, " hg")); f += 3)
				if (f[3] == ' ' || f[3] == '\n' || !f[3])
					advised = true;
		}
	}
	if (any)
		huge_add(out, s, e, huge, advised, spans, n_spans);
	return any;
}

bool sl_huge_usage_of(const sl_span *spans, int n_spans, sl_huge_usage *out)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	bool ok = sl_huge_usage_scan(f, spans, n_spans, out);
	if (f)
		fclose(f);
	return ok;
}

void sl_unmap(sl_mapping *map)
{
	if (map->addr && map->size)
		munmap(map->addr, map->size);
	map->addr = NULL;
	map->size = 0;
}

void sl_mapping_release(const sl_mapping *map, const void *p, size_t n)
{
	uintptr_t a = (uintptr_t)map->addr, b = (uintptr_t)p;
	if (!map->addr || b < a || n > map->size || b - a > map->size - n)
		return;
	long ps = sysconf(_SC_PAGESIZE);
	uintptr_t page = ps > 0 ? (uintptr_t)ps : 4096;
	uintptr_t lo = (b + page - 1) / page * page, hi = (b + n) / page * page;
	if (hi > lo)
		madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

sl_status sl_read_file(const char *path, size_t max_bytes, char **data, size_t *len, sl_error *err)
{
	*data = NULL;
	*len = 0;
	FILE *f = fopen(path, "rb");
	if (!f)
		return sl_errorf(err, SL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
	sl_buf b = {0};
	char chunk[65536];
	size_t n;
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
		if (b.len + n > max_bytes) {
			fclose(f);
			sl_buf_free(&b);
			return sl_errorf(err, SL_ERR_FORMAT, "%s: larger than the %zu bytes slimlab accepts here",
			                 path, max_bytes);
		}
		if (!sl_buf_put(&b, chunk, n)) {
			fclose(f);
			sl_buf_free(&b);
			return sl_errorf(err, SL_ERR_NOMEM, "%s: out of memory", path);
		}
	}
	int bad = ferror(f);
	fclose(f);
	if (bad) {
		sl_buf_free(&b);
		return sl_errorf(err, SL_ERR_IO, "%s: read error", path);
	}
	if (!sl_buf_put(&b, "", 1)) {
		sl_buf_free(&b);
		return sl_errorf(err, SL_ERR_NOMEM, "%s: out of memory", path);
	}
	*data = b.data;
	*len = b.len - 1;
	return SL_OK;
}

sl_status sl_write_atomic(const char *path, sl_write_fn fn, void *ctx, sl_error *err)
{
	size_t n = strlen(path) + 32;
	char *tmp = malloc(n);
	if (!tmp)
		return sl_errorf(err, SL_ERR_NOMEM, "%s: out of memory", path);
	snprintf(tmp, n, "%s.tmp.%ld", path, (long)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		sl_status st = sl_errorf(err, SL_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
		free(tmp);
		return st;
	}
	FILE *f = fdopen(fd, "wb");
	if (!f) {
		close(fd);
		unlink(tmp);
		free(tmp);
		return sl_errorf(err, SL_ERR_NOMEM, "%s: out of memory", path);
	}
	sl_status st = fn(f, ctx, err);
	if (st == SL_OK && (fflush(f) != 0 || ferror(f)))
		st = sl_errorf(err, SL_ERR_IO, "%s: write failed: %s", tmp, strerror(errno));
	else if (st == SL_ERR_IO && err && !err->msg[0])
		sl_errorf(err, SL_ERR_IO, "%s: write failed: %s", tmp, strerror(errno));
	if (st == SL_OK && fsync(fileno(f)) != 0)
		st = sl_errorf(err, SL_ERR_IO, "%s: fsync failed: %s", tmp, strerror(errno));
	if (fclose(f) != 0 && st == SL_OK)
		st = sl_errorf(err, SL_ERR_IO, "%s: close failed: %s", tmp, strerror(errno));
	if (st == SL_OK && rename(tmp, path) != 0)
		st = sl_errorf(err, SL_ERR_IO, "%s: cannot rename into place: %s", path, strerror(errno));
	if (st != SL_OK)
		unlink(tmp);
	free(tmp);
	return st;
}

typedef struct {
	const void *data;
	size_t len;
} blob;

static sl_status write_blob(FILE *f, void *ctx, sl_error *err)
{
	blob *b = ctx;
	(void)err;
	return (!b->len || fwrite(b->data, b->len, 1, f) == 1) ? SL_OK : SL_ERR_IO;
}

sl_status sl_write_file_atomic(const char *path, const void *data, size_t len, sl_error *err)
{
	blob b = {data, len};
	if (err)
		err->msg[0] = 0;
	return sl_write_atomic(path, write_blob, &b, err);
}

bool sl_file_exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

bool sl_is_dir(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

bool sl_path_join(char *buf, size_t n, const char *dir, const char *name)
{
	int k = snprintf(buf, n, "%s/%s", dir, name);
	return k >= 0 && (size_t)k < n;
}

void sl_path_dir(const char *path, char *buf, size_t n)
{
	const char *slash = strrchr(path, '/');
	if (!slash) {
		snprintf(buf, n, ".");
		return;
	}
	size_t k = (size_t)(slash - path);
	if (k == 0)
		k = 1;
	snprintf(buf, n, "%.*s", (int)k, path);
}

/* Where the build put things; the Makefile defines them (a program built
 * otherwise only has $SLIMLAB_DATA and its own location to go by). */
#ifndef SL_SOURCE_TREE
#define SL_SOURCE_TREE ""
#endif
#ifndef SL_BUILD_TREE
#define SL_BUILD_TREE ""
#endif
#ifndef SL_PKGDATADIR
#define SL_PKGDATADIR ""
#endif

/* rel under root (made canonical) into out when that file exists. */
static bool found_in(const char *root, const char *rel, char *out, size_t n)
{
	char real[PATH_MAX];
	return root[0] && realpath(root, real) && sl_path_join(out, n, real, rel) && sl_file_exists(out);
}

sl_status sl_shipped_find(const char *rel, char *out, size_t n, sl_error *err)
{
	const char *env = getenv("SLIMLAB_DATA");
	if (env && found_in(env, rel, out, n))
		return SL_OK;
	char exe[PATH_MAX], dir[PATH_MAX], build[PATH_MAX], share[PATH_MAX];
	ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (k > 0) {
		exe[k] = 0;
		sl_path_dir(exe, dir, sizeof dir);
		/* Run from the build tree it was built in: the source tree's files. */
		if (SL_BUILD_TREE[0] && realpath(SL_BUILD_TREE, build) && !strcmp(build, dir) &&
		    found_in(SL_SOURCE_TREE, rel, out, n))
			return SL_OK;
		/* Installed: bin/ and share/slimlab/ under one prefix, wherever
		 * that prefix has been put since (DESTDIR, a moved tree). */
		if (sl_path_join(share, sizeof share, dir, "../share/slimlab") && found_in(share, rel, out, n))
			return SL_OK;
	}
	if (found_in(SL_PKGDATADIR, rel, out, n))
		return SL_OK;
	if (n)
		out[0] = 0;
	return sl_errorf(err, SL_ERR_IO,
	                 "%s ships with slimlab but was not found: not in $SLIMLAB_DATA, the source tree of this build, "
	                 "share/slimlab beside the program's bin/ or %s; set SLIMLAB_DATA to the folder that holds data/ "
	                 "and models/",
	                 rel, SL_PKGDATADIR[0] ? SL_PKGDATADIR : "an installed copy");
}

bool sl_buf_put(sl_buf *b, const void *p, size_t n)
{
	if (n > SIZE_MAX - b->len)
		return false;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n)
			cap = cap > SIZE_MAX / 2 ? b->len + n : cap * 2;
		char *d = realloc(b->data, cap);
		if (!d)
			return false;
		b->data = d;
		b->cap = cap;
	}
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	return true;
}

bool sl_buf_printf(sl_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int k = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (k < 0)
		return false;
	char *tmp = malloc((size_t)k + 1);
	if (!tmp)
		return false;
	va_start(ap, fmt);
	vsnprintf(tmp, (size_t)k + 1, fmt, ap);
	va_end(ap);
	bool ok = sl_buf_put(b, tmp, (size_t)k);
	free(tmp);
	return ok;
}

void sl_buf_free(sl_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}
