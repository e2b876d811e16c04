/* Key-to-redraw latency of the workbench, idle and while a long job runs:
 * the real program runs on a pseudo-terminal; each key is a letter typed on
 * the ':' command line, and its latency is the time from writing the key
 * to reading the screen update that draws it. The job is an evaluation of
 * the whole calibration text, which keeps every core busy for minutes.
 *
 *   bench/tui-latency [MODEL]     (default: the stories260K fixture) */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

enum { SAMPLES = 60, LINE = 20 };

static int pty_fd;
static char seen[1 << 16];
static size_t n_seen;

/* Reads what the program drew for up to timeout seconds, until needle
 * shows up in what was read after offset `from`; returns whether it did. */
static bool read_until(const char *needle, size_t from, double timeout)
{
	double end = bench_now() + timeout;
	for (;;) {
		seen[n_seen] = 0;
		if (n_seen > from && memmem(seen + from, n_seen - from, needle, strlen(needle)))
			return true;
		double left = end - bench_now();
		if (left <= 0)
			return false;
		struct pollfd p = {pty_fd, POLLIN, 0};
		if (poll(&p, 1, (int)(left * 1000) + 1) <= 0)
			continue;
		if (n_seen > sizeof seen - 4096) { /* keep the tail, where the needle can still begin */
			memmove(seen, seen + n_seen - 1024, 1024);
			from = from > n_seen - 1024 ? from - (n_seen - 1024) : 0;
			n_seen = 1024;
		}
		ssize_t k = read(pty_fd, seen + n_seen, sizeof seen - 1 - n_seen);
		if (k <= 0 && errno != EINTR && errno != EAGAIN)
			return false;
		if (k > 0)
			n_seen += (size_t)k;
	}
}

static void send_keys(const char *s)
{
	ssize_t ignored = write(pty_fd, s, strlen(s));
	(void)ignored;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Types SAMPLES letters on the command line and times each one's echo.
 * The letters never appear in what a job's progress draws. */
static bool measure(const char *what, double *ms)
{
	static const char letters[] = "zxjkybfghmp";
	send_keys(":");
	usleep(100000);
	for (int i = 0; i < SAMPLES; i++) {
		if (i % LINE == 0) {
			send_keys("\025"); /* Ctrl-U: an empty line, so nothing scrolls */
			usleep(50000);
		}
		char key[2] = {letters[i % (sizeof letters - 1)], 0};
		size_t from = n_seen;
		double t0 = bench_now();
		send_keys(key);
		if (!read_until(key, from, 5)) {
			fprintf(stderr, "tui-latency: %s: key %d was not drawn within 5 s\n", what, i);
			return false;
		}
		ms[i] = (bench_now() - t0) * 1e3;
		usleep(20000 + (useconds_t)(i % 7) * 7000); /* unevenly, so keys land anywhere in the job's steps */
	}
	send_keys("\033"); /* leave the command line */
	usleep(100000);
	qsort(ms, SAMPLES, sizeof *ms, cmp_double);
	printf("%-22s median %6.2f ms   p95 %6.2f ms   max %6.2f ms   (%d keys)\n", what, ms[SAMPLES / 2],
	       ms[(int)(SAMPLES * 0.95)], ms[SAMPLES - 1], SAMPLES);
	return true;
}

int main(int argc, char **argv)
{
	const char *fx = getenv("SL_FIXTURES");
	char model[4096], state[] = "/tmp/sl-latency.XXXXXX";
	snprintf(model, sizeof model, "%s", argc > 1 ? argv[1] : "");
	if (!model[0])
		snprintf(model, sizeof model, "%s/models/stories260K.gguf", fx && *fx ? fx : "../shared/fixtures");
	if (access(model, R_OK) != 0 || access("./slimlab", X_OK) != 0) {
		fprintf(stderr, "tui-latency: needs ./slimlab and %s (run it from the build directory)\n", model);
		return 1;
	}
	if (!mkdtemp(state)) {
		perror("mkdtemp");
		return 1;
	}
	struct winsize ws = {24, 80, 0, 0};
	pid_t pid = forkpty(&pty_fd, NULL, NULL, &ws);
	if (pid < 0) {
		perror("forkpty");
		return 1;
	}
	if (pid == 0) {
		setenv("TERM", "xterm-256color", 1);
		setenv("XDG_STATE_HOME", state, 1);
		setenv("XDG_CACHE_HOME", state, 1);
		execl("./slimlab", "slimlab", model, (char *)NULL);
		_exit(127);
	}
	fcntl(pty_fd, F_SETFL, O_NONBLOCK);
	int rc = 1;
	double idle[SAMPLES], busy[SAMPLES];
	if (!read_until("token_embd", 0, 30)) {
		fprintf(stderr, "tui-latency: the workbench did not show the model\n");
		goto done;
	}
	printf("slimlab workbench, 80x24, %s, %d kernel threads\n", model, sl_kernels_threads());
	if (!measure("idle", idle))
		goto done;
	/* Every window of the calibration text: minutes of work on all cores. */
	send_keys(":set chunks=0\r");
	usleep(200000);
	size_t from = n_seen;
	send_keys("4e");
	if (!read_until("ETA", from, 30)) {
		fprintf(stderr, "tui-latency: the evaluation did not start (is data/calib.txt there?)\n");
		goto done;
	}
	usleep(500000);
	if (!measure("while a job runs", busy))
		goto done;
	from = n_seen;
	send_keys("\033"); /* cancels the job */
	if (!read_until("cancelled", from, 10))
		fprintf(stderr, "tui-latency: the job did not report its cancellation\n");
	printf("aim: under 50 ms while a job runs: %s\n", busy[(int)(SAMPLES * 0.95)] < 50 ? "met (p95)" : "NOT met");
	rc = 0;
done:
	send_keys(":quit!\r");
	usleep(300000);
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", state);
	if (system(cmd) != 0)
		fprintf(stderr, "tui-latency: could not remove %s\n", state);
	return rc;
}
