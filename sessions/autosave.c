/* Where slimlab keeps state between runs, and the autosave that makes a
 * crash lose nothing: each running slimlab writes autosave-<pid>.json in
 * the state directory after every change and removes it on a clean exit,
 * so a file whose process is gone is work to offer back. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/fileio.h"
#include "session.h"

static sl_status mkdirs(char *path, sl_error *err)
{
	for (char *p = path + 1;; p++) {
		if (*p == '/' || !*p) {
			char c = *p;
			*p = 0;
			int bad = mkdir(path, 0700) != 0 && errno != EEXIST;
			*p = c;
			if (bad)
				return sl_errorf(err, SL_ERR_IO, "%s: cannot create directory: %s", path, strerror(errno));
			if (!c)
				break;
		}
	}
	return sl_is_dir(path) ? SL_OK : sl_errorf(err, SL_ERR_IO, "%s: not a directory", path);
}

/* $env/slimlab when env holds an absolute path (as the XDG spec asks),
 * else $HOME/fallback/slimlab. */
static sl_status xdg_dir(const char *env, const char *fallback, char *buf, size_t n, sl_error *err)
{
	const char *base = getenv(env);
	int k;
	if (base && base[0] == '/') {
		k = snprintf(buf, n, "%s/slimlab", base);
	} else {
		const char *home = getenv("HOME");
		if (!home || home[0] != '/')
			return sl_errorf(err, SL_ERR_IO, "neither $%s nor $HOME is set to an absolute path", env);
		k = snprintf(buf, n, "%s/%s/slimlab", home, fallback);
	}
	if (k < 0 || (size_t)k >= n)
		return sl_errorf(err, SL_ERR_IO, "the $%s path is too long", env);
	return mkdirs(buf, err);
}

sl_status sl_state_dir(char *buf, size_t n, sl_error *err)
{
	return xdg_dir("XDG_STATE_HOME", ".local/state", buf, n, err);
}

sl_status sl_cache_dir(char *buf, size_t n, sl_error *err)
{
	return xdg_dir("XDG_CACHE_HOME", ".cache", buf, n, err);
}

sl_status sl_data_dir(char *buf, size_t n, sl_error *err)
{
	return xdg_dir("XDG_DATA_HOME", ".local/share", buf, n, err);
}

static sl_status pid_file(long pid, char *buf, size_t n, sl_error *err)
{
	char dir[PATH_MAX - 64];
	sl_status st = sl_state_dir(dir, sizeof dir, err);
	if (st)
		return st;
	snprintf(buf, n, "%s/autosave-%ld.json", dir, pid);
	return SL_OK;
}

sl_status sl_autosave_path(char *buf, size_t n, sl_error *err)
{
	return pid_file((long)getpid(), buf, n, err);
}

sl_status sl_autosave(const sl_session *s, sl_error *err)
{
	char path[PATH_MAX];
	sl_status st = sl_autosave_path(path, sizeof path, err);
	return st ? st : sl_session_write(s, path, true, err);
}

void sl_autosave_remove(void)
{
	char path[PATH_MAX];
	if (sl_autosave_path(path, sizeof path, NULL) == SL_OK)
		unlink(path);
}

/* Whether pid is a slimlab still running (a reused pid belongs to some
 * other program, whose name differs). */
static bool slimlab_alive(long pid)
{
	if (pid == (long)getpid())
		return true;
	if (kill((pid_t)pid, 0) != 0 && errno != EPERM)
		return false;
	char path[64], comm[64] = "";
	snprintf(path, sizeof path, "/proc/%ld/comm", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return true;
	bool same = fgets(comm, sizeof comm, f) && !strncmp(comm, "slimlab", 7);
	fclose(f);
	return same;
}

bool sl_autosave_find_orphan(char *out, size_t n)
{
	char dir[PATH_MAX - 300];
	if (sl_state_dir(dir, sizeof dir, NULL))
		return false;
	DIR *d = opendir(dir);
	if (!d)
		return false;
	time_t newest = 0;
	bool found = false;
	struct dirent *e;
	while ((e = readdir(d))) {
		long pid;
		int used = 0;
		if (sscanf(e->d_name, "autosave-%ld.json%n", &pid, &used) != 1 || pid <= 0 || slimlab_alive(pid))
			continue;
		char path[PATH_MAX];
		struct stat st;
		if (!sl_path_join(path, sizeof path, dir, e->d_name) || stat(path, &st) != 0)
			continue;
		if (e->d_name[used]) { /* a temporary file a killed process left half-written */
			if (!strncmp(e->d_name + used, ".tmp.", 5))
				unlink(path);
			continue;
		}
		/* A session with nothing unsaved holds nothing to recover. */
		sl_session *s;
		if (sl_session_load(path, &s, NULL) == SL_OK) {
			bool dirty = s->dirty;
			sl_session_free(s);
			if (!dirty) {
				unlink(path);
				continue;
			}
		}
		if (!found || st.st_mtime > newest) {
			snprintf(out, n, "%s", path);
			newest = st.st_mtime;
			found = true;
		}
	}
	closedir(d);
	return found;
}
