/* Model hashes, computed once per file version: hashing gigabytes takes
 * seconds, so results are kept in a small cache keyed by real path, size
 * and modification time (a rewritten file changes at least one). */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/fileio.h"
#include "core/sha256.h"
#include "session.h"

#define CACHE_ENTRIES 256

/* What identifies one version of a file (or of a directory's files):
 * bytes and the latest modification time, to the nanosecond. */
typedef struct {
	long long size;
	struct timespec mtime;
} file_key;

static void key_add(file_key *k, const struct stat *st)
{
	k->size += (long long)st->st_size;
	if (st->st_mtim.tv_sec > k->mtime.tv_sec ||
	    (st->st_mtim.tv_sec == k->mtime.tv_sec && st->st_mtim.tv_nsec > k->mtime.tv_nsec))
		k->mtime = st->st_mtim;
}

/* The key as text: JSON numbers would round nanosecond times. */
static void key_text(const file_key *k, char *buf, size_t n)
{
	snprintf(buf, n, "%lld bytes, %lld.%09ld", k->size, (long long)k->mtime.tv_sec, (long)k->mtime.tv_nsec);
}

static int not_hidden(const struct dirent *d)
{
	return d->d_name[0] != '.';
}

/* Regular files of a directory in name order, with their combined key. */
static sl_status list_dir(const char *dir, struct dirent ***names, int *n, file_key *key, sl_error *err)
{
	*n = scandir(dir, names, not_hidden, alphasort);
	if (*n < 0)
		return sl_errorf(err, SL_ERR_IO, "%s: cannot list: %s", dir, strerror(errno));
	memset(key, 0, sizeof *key);
	for (int i = 0; i < *n; i++) {
		char p[PATH_MAX];
		struct stat st;
		if (!sl_path_join(p, sizeof p, dir, (*names)[i]->d_name) || stat(p, &st) != 0 || !S_ISREG(st.st_mode)) {
			(*names)[i]->d_name[0] = 0; /* not a file we hash */
			continue;
		}
		key_add(key, &st);
	}
	return SL_OK;
}

static sl_status hash_dir(const char *dir, struct dirent **names, int n, double total, const sl_progress *p,
                          uint8_t digest[32], sl_error *err)
{
	sl_sha256_ctx c;
	sl_sha256_init(&c);
	double done = 0;
	if (!(total > 0))
		total = 1;
	for (int i = 0; i < n; i++) {
		const char *name = names[i]->d_name;
		if (!*name)
			continue;
		char path[PATH_MAX];
		struct stat st;
		if (!sl_path_join(path, sizeof path, dir, name) || stat(path, &st) != 0)
			return sl_errorf(err, SL_ERR_IO, "%s/%s: cannot read", dir, name);
		uint8_t d[32];
		sl_progress_slice part;
		double size = (double)st.st_size;
		sl_status s = sl_sha256_file(path, sl_progress_slice_init(&part, p, done / total, (done + size) / total), d, err);
		if (s)
			return s;
		done += size;
		sl_sha256_update(&c, name, strlen(name) + 1);
		sl_sha256_update(&c, d, sizeof d);
	}
	sl_sha256_final(&c, digest);
	return SL_OK;
}

static cJSON *read_cache(const char *path)
{
	char *data;
	size_t len;
	if (sl_read_file(path, (size_t)4 << 20, &data, &len, NULL))
		return NULL;
	cJSON *c = cJSON_ParseWithLength(data, len);
	free(data);
	if (c && !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(c, "entries"))) {
		cJSON_Delete(c);
		return NULL;
	}
	return c;
}

static bool cache_lookup(const cJSON *cache, const char *real, const file_key *k, char hex[65])
{
	char key[96];
	key_text(k, key, sizeof key);
	const cJSON *e;
	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(cache, "entries"))
	{
		const cJSON *p = cJSON_GetObjectItemCaseSensitive(e, "path");
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(e, "version");
		const cJSON *h = cJSON_GetObjectItemCaseSensitive(e, "sha256");
		if (cJSON_IsString(p) && !strcmp(p->valuestring, real) && cJSON_IsString(v) && !strcmp(v->valuestring, key) &&
		    cJSON_IsString(h) && strlen(h->valuestring) == 64) {
			memcpy(hex, h->valuestring, 65);
			return true;
		}
	}
	return false;
}

/* Records the hash, dropping the file's older entries and the oldest
 * entries beyond the limit. A cache that cannot be written only costs time. */
static void cache_store(cJSON *cache, const char *cache_path, const char *real, const file_key *k, const char *hex)
{
	cJSON *entries = cJSON_GetObjectItemCaseSensitive(cache, "entries");
	for (int i = cJSON_GetArraySize(entries) - 1; i >= 0; i--) {
		const cJSON *p = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(entries, i), "path");
		if (cJSON_IsString(p) && !strcmp(p->valuestring, real))
			cJSON_DeleteItemFromArray(entries, i);
	}
	while (cJSON_GetArraySize(entries) >= CACHE_ENTRIES)
		cJSON_DeleteItemFromArray(entries, 0);
	char key[96];
	key_text(k, key, sizeof key);
	cJSON *e = cJSON_CreateObject();
	cJSON_AddStringToObject(e, "path", real);
	cJSON_AddStringToObject(e, "version", key);
	cJSON_AddStringToObject(e, "sha256", hex);
	cJSON_AddItemToArray(entries, e);
	char *json = cJSON_Print(cache);
	if (json)
		sl_write_file_atomic(cache_path, json, strlen(json), NULL);
	free(json);
}

sl_status sl_model_file_sha256(const char *path, const sl_progress *p, char hex[65], sl_error *err)
{
	char real[PATH_MAX];
	struct stat st;
	if (!realpath(path, real) || stat(real, &st) != 0)
		return sl_errorf(err, SL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
	file_key key = {0, {0, 0}};
	struct dirent **names = NULL;
	int n = 0;
	bool dir = S_ISDIR(st.st_mode);
	if (dir) {
		sl_status s = list_dir(real, &names, &n, &key, err);
		if (s)
			return s;
	} else if (!S_ISREG(st.st_mode)) {
		return sl_errorf(err, SL_ERR_IO, "%s: not a file or directory", path);
	} else {
		key_add(&key, &st);
	}

	char cache_path[PATH_MAX], cdir[PATH_MAX - 32];
	bool have_cache = sl_cache_dir(cdir, sizeof cdir, NULL) == SL_OK &&
	                  sl_path_join(cache_path, sizeof cache_path, cdir, "model-hashes.json");
	cJSON *cache = have_cache ? read_cache(cache_path) : NULL;
	sl_status s = SL_OK;
	if (!cache_lookup(cache, real, &key, hex)) {
		uint8_t d[32];
		s = dir ? hash_dir(real, names, n, (double)key.size, p, d, err) : sl_sha256_file(real, p, d, err);
		if (!s) {
			sl_sha256_hex(d, hex);
			if (!cache) {
				cache = cJSON_CreateObject();
				cJSON_AddNumberToObject(cache, "version", 1);
				cJSON_AddArrayToObject(cache, "entries");
			}
			if (have_cache)
				cache_store(cache, cache_path, real, &key, hex);
		}
	}
	cJSON_Delete(cache);
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return s;
}
