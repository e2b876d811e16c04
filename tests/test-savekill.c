/* A save or an autosave killed at any moment (SIGKILL, which nothing can
 * catch) never leaves a damaged session: the file is always the previous
 * complete version or the new one. A child process saves sessions of
 * growing size in a loop; the parent kills it after a random delay, then
 * loads what is on disk, many times over. */
#include <signal.h>
#include <stdint.h>
#include <sys/wait.h>
#include <time.h>

#include "sessions/session.h"
#include "test.h"

enum { ROUNDS = 150 };

static long version_of(const char *path, sl_error *err);

/* Saves version v+1, v+2, ... of a session forever, v being the version
 * on disk (0 when none); each version's notes end with its number and are
 * long enough that writing takes a while. */
static void saver(const char *path, bool autosave)
{
	sl_session *s = sl_session_new();
	memset(s->model_sha256, 'f', 64);
	snprintf(s->model_path, sizeof s->model_path, "/m.gguf");
	free(s->notes);
	s->notes = malloc(400001);
	memset(s->notes, 'x', 400000);
	s->notes[400000] = 0;
	char line[64];
	long v0 = autosave ? 0 : version_of(path, NULL);
	for (long v = v0 > 0 ? v0 + 1 : 1;; v++) {
		snprintf(line, sizeof line, "version %ld", v);
		sl_session_add_note(s, line, NULL);
		sl_error err = {0};
		if ((autosave ? sl_autosave(s, &err) : sl_session_save(s, path, &err)) != SL_OK)
			_exit(3);
	}
}

/* The version number the file holds, or -1 when it cannot be loaded. */
static long version_of(const char *path, sl_error *err)
{
	sl_session *s;
	if (sl_session_load(path, &s, err) != SL_OK)
		return -1;
	const char *v = strrchr(s->notes, 'v');
	long n = v && !strncmp(v, "version ", 8) ? strtol(v + 8, NULL, 10) : -1;
	sl_session_free(s);
	return n;
}

static void run(bool autosave)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", test_tmpdir(), autosave ? "" : "kill.json");
	setenv("XDG_STATE_HOME", test_tmpdir(), 1);
	uint64_t rng = (uint64_t)time(NULL) ^ (uint64_t)getpid();
	long last = 0;
	int loaded = 0, bad = 0;
	for (int round = 0; round < ROUNDS; round++) {
		pid_t pid = fork();
		REQUIRE(pid >= 0, "fork");
		if (pid == 0) {
			saver(path, autosave);
			_exit(0);
		}
		if (autosave)
			snprintf(path, sizeof path, "%s/slimlab/autosave-%ld.json", test_tmpdir(), (long)pid);
		/* Kill during a later save, not before the first one is done. */
		for (int i = 0; i < 2000 && access(path, F_OK) != 0; i++) {
			struct timespec ms = {0, 1000000};
			nanosleep(&ms, NULL);
		}
		rng = rng * 6364136223846793005ull + 1442695040888963407ull;
		struct timespec d = {0, (long)(rng >> 40) % 30000000}; /* 0 to 30 ms */
		nanosleep(&d, NULL);
		kill(pid, SIGKILL);
		int status;
		waitpid(pid, &status, 0);
		CHECK(WIFSIGNALED(status), "round %d: the saver stopped by itself (status %d)", round, status);
		REQUIRE(access(path, F_OK) == 0, "round %d: the saver never wrote %s", round, path);
		sl_error err = {0};
		long v = version_of(path, &err);
		if (v < 0 && bad++ < 3)
			fprintf(stderr, "round %d: %s\n", round, err.msg);
		/* Saves go to one file that each round continues: what is on disk
		 * is never older than what the previous round left. */
		if (!autosave && v >= 0) {
			CHECK(v >= last, "round %d: version %ld after %ld: a save went back", round, v, last);
			last = v;
		}
		loaded += v >= 0;
		if (autosave)
			unlink(path);
	}
	CHECK(bad == 0, "%s: %d of %d killed files could not be loaded", autosave ? "autosave" : "save", bad, ROUNDS);
	printf("%s: %d rounds, %d files loaded after SIGKILL\n", autosave ? "autosave" : "save", ROUNDS, loaded);
}

int main(void)
{
	run(false);
	run(true);
	/* Leftover temporaries of killed savers. */
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", test_tmpdir());
	return system(cmd) == 0 ? test_finish() : 99;
}
