/* A sweep measured by MPI ranks for the workbench (:sweep --ranks N): this
 * program is started again under mpirun as `slimlab sensitivity --stream`
 * with the sweep's model, options and settings, the cells it has already
 * go to rank 0 on stdin (mpirun passes its stdin to rank 0), and the cells
 * come back one JSON line each on mpirun's stdout, read through a pipe as
 * rank 0 finishes them. mpirun and its ranks run in a process group of
 * their own, which cancelling stops, keeping what arrived. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "core/sweep/mpi.h"
#include "tui.h"

/* The first executable NAME on PATH, into buf. */
static bool find_on_path(const char *name, char *buf, size_t n)
{
	const char *path = getenv("PATH");
	for (const char *p = path ? path : ""; *p;) {
		size_t len = strcspn(p, ":");
		if (len && snprintf(buf, n, "%.*s/%s", (int)len, p, name) < (int)n && access(buf, X_OK) == 0)
			return true;
		p += len + (p[len] == ':');
	}
	return false;
}

#ifdef SL_HAVE_MPI
static const bool mpi_built = true;
#else
static const bool mpi_built = false;
#endif

sl_status sl_ranks_check(const sl_ranks *how, char *mpirun, size_t n, sl_error *err)
{
	char buf[PATH_MAX];
	if (!mpi_built)
		return sl_errorf(err, SL_ERR_ARG, "this slimlab was built without MPI support (configure --with-mpi "
		                                  "needs Open MPI, Debian's libopenmpi-dev): :sweep runs here without --ranks");
	if (!find_on_path("mpirun", mpirun ? mpirun : buf, mpirun ? n : sizeof buf))
		return sl_errorf(err, SL_ERR_ARG, "mpirun is not on PATH: install Open MPI (Debian: openmpi-bin), "
		                                  "or run :sweep without --ranks");
	if (how->hostfile[0] && access(how->hostfile, R_OK))
		return sl_errorf(err, SL_ERR_ARG, "--hostfile %s: %s", how->hostfile, strerror(errno));
	return SL_OK;
}

/* --- the command line ---------------------------------------------------------- */

typedef struct {
	char *v[48];
	int n;
	char num[8][16];
	int n_num;
} args;

static void arg(args *a, const char *s)
{
	if (a->n < (int)(sizeof a->v / sizeof a->v[0]) - 1)
		a->v[a->n++] = (char *)s;
}

static void arg_int(args *a, const char *flag, long v)
{
	if (a->n_num == 8)
		return;
	snprintf(a->num[a->n_num], sizeof a->num[0], "%ld", v);
	arg(a, flag);
	arg(a, a->num[a->n_num++]);
}

/* mpirun's arguments for the sweep saved as j (its model, options and
 * settings), into a; the strings stay j's and opts'. */
static void command_line(args *a, const char *mpirun, const char *exe, const sl_ranks *how, const sl_sweep *sw,
                         const cJSON *j, const char *opts, bool resume)
{
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	int threads = how->threads;
	if (!threads && !how->hostfile[0])
		threads = cores > how->ranks ? (int)(cores / how->ranks) : 1;
	arg(a, mpirun);
	arg_int(a, "-n", how->ranks);
	if (how->hostfile[0]) {
		arg(a, "--hostfile");
		arg(a, how->hostfile);
	} else if (how->ranks > cores) {
		arg(a, "--oversubscribe");
	}
	/* Open MPI binds a rank to one core unless told not to: a rank's
	 * threads would share it. With --enable-recovery a rank that dies
	 * leaves the others running, and its cells go to them. */
	arg(a, "--bind-to");
	arg(a, "none");
	arg(a, "--enable-recovery");
	arg(a, exe);
	arg(a, "sensitivity");
	arg(a, sl_sweep_model(sw)->path);
	arg(a, "--stream");
	arg(a, "--options");
	arg(a, opts);
	arg(a, "--unit");
	arg(a, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "unit")));
	arg(a, "--text");
	arg(a, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "text")));
	arg_int(a, "--ctx", sl_sweep_ctx(sw));
	arg_int(a, "--windows", sl_sweep_windows(sw));
	arg_int(a, "--calib-tokens", (long)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(j, "calib_tokens")));
	arg_int(a, "--seed", (long)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(j, "seed")));
	if (threads > 0)
		arg_int(a, "--threads", threads);
	if (resume) {
		arg(a, "--resume");
		arg(a, "-");
	}
	a->v[a->n] = NULL;
}

/* --- the child ------------------------------------------------------------------ */

typedef struct {
	pid_t pid;
	int in, out, err;                 /* our ends: its stdin (or -1), stdout, stderr */
} child;

static void close_pair(int fd[2])
{
	for (int i = 0; i < 2; i++)
		if (fd[i] >= 0)
			close(fd[i]);
}

/* Starts argv in a process group of its own with pipes as its stdin (when
 * fed; else /dev/null), stdout and stderr. posix_spawn, not fork: this
 * process has threads, and may hold a large model. */
static sl_status spawn(char **argv, bool fed, child *c, sl_error *err)
{
	int in[2] = {-1, -1}, out[2] = {-1, -1}, er[2] = {-1, -1};
	bool ok = (fed ? pipe2(in, O_CLOEXEC) : (in[0] = open("/dev/null", O_RDONLY | O_CLOEXEC))) >= 0 &&
	          !pipe2(out, O_CLOEXEC) && !pipe2(er, O_CLOEXEC);
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	int e = ok ? 0 : errno;
	pid_t pid = -1;
	if (ok) {
		posix_spawn_file_actions_init(&fa);
		posix_spawn_file_actions_adddup2(&fa, in[0], 0);
		posix_spawn_file_actions_adddup2(&fa, out[1], 1);
		posix_spawn_file_actions_adddup2(&fa, er[1], 2);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 34)
		posix_spawn_file_actions_addclosefrom_np(&fa, 3); /* the terminal's and the workbench's own */
#endif
		posix_spawnattr_init(&at);
		posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP);
		posix_spawnattr_setpgroup(&at, 0);
		e = posix_spawn(&pid, argv[0], &fa, &at, argv, environ);
		posix_spawnattr_destroy(&at);
		posix_spawn_file_actions_destroy(&fa);
	}
	close(in[0]);
	in[0] = -1;
	if (out[1] >= 0)
		close(out[1]);
	if (er[1] >= 0)
		close(er[1]);
	out[1] = er[1] = -1;
	if (!ok || e) {
		close_pair(in);
		close_pair(out);
		close_pair(er);
		return sl_errorf(err, SL_ERR_IO, "cannot start %s: %s", argv[0], strerror(e));
	}
	*c = (child){pid, in[1], out[0], er[0]};
	if (c->in >= 0)
		fcntl(c->in, F_SETFL, fcntl(c->in, F_GETFL) | O_NONBLOCK);
	return SL_OK;
}

/* Writes what the pipe takes now; SIGPIPE (mpirun gone) is held back from
 * this thread and dropped, the write failing instead. */
static ssize_t feed(int fd, const char *s, size_t n)
{
	sigset_t pipe_sig, old;
	sigemptyset(&pipe_sig);
	sigaddset(&pipe_sig, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_sig, &old);
	ssize_t k = write(fd, s, n);
	if (k < 0 && errno == EPIPE) {
		struct timespec zero = {0, 0};
		sigtimedwait(&pipe_sig, NULL, &zero);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return k;
}

/* What mpirun and the ranks said on stderr that says most: the last lines
 * of slimlab's and of mpirun about a rank. */
typedef struct {
	char line[1024];
	size_t len;
	char said[3][320];
	int n_said;
} errlog;

static void errlog_line(errlog *l, const char *s)
{
	if (!strstr(s, "slimlab") && !strstr(s, "rank") && !strstr(s, "mpirun") && !strstr(s, "rror"))
		return;
	if (l->n_said == 3) {
		memmove(l->said[0], l->said[1], sizeof l->said[0] * 2);
		l->n_said = 2;
	}
	snprintf(l->said[l->n_said++], sizeof l->said[0], "%.319s", s);
}

/* Splits what arrived into lines, each to fn; a line too long for buf is
 * cut. */
static void lines(char *buf, size_t cap, size_t *len, const char *data, size_t n, void (*fn)(void *, const char *),
                  void *ctx)
{
	for (size_t i = 0; i < n; i++) {
		if (data[i] != '\n') {
			if (*len < cap - 1)
				buf[(*len)++] = data[i];
			continue;
		}
		buf[*len] = 0;
		while (*len && buf[*len - 1] == '\r')
			buf[--*len] = 0;
		fn(ctx, buf);
		*len = 0;
	}
}

typedef struct {
	sl_sweep *sw;
	sl_sweep_cell_fn on_cell;
	void *ctx;
	const sl_progress *p;
	sl_status st;
	sl_error err;
	errlog log;
} reader;

static void take_line(void *arg, const char *s)
{
	reader *r = arg;
	if (r->st || !s[0])
		return;
	r->st = sl_sweep_stream_take(r->sw, s, r->on_cell, r->ctx, r->p, &r->err);
}

static void take_err_line(void *arg, const char *s)
{
	errlog_line(&((reader *)arg)->log, s);
}

/* --- the run -------------------------------------------------------------------- */

sl_status sl_sweep_run_ranks(sl_sweep *sw, const sl_ranks *how, sl_sweep_cell_fn on_cell, void *ctx,
                             const sl_progress *p, sl_error *err)
{
	char mpirun[PATH_MAX], exe[PATH_MAX];
	sl_status st = sl_ranks_check(how, mpirun, sizeof mpirun, err);
	if (st)
		return st;
	ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (k <= 0)
		return sl_errorf(err, SL_ERR_IO, "cannot tell where this program is: %s", strerror(errno));
	exe[k] = 0;
	cJSON *j = sl_sweep_to_json(sw);
	sl_buf opts = {0};
	bool ok = true;
	for (int c = 0; c < sl_sweep_cols(sw); c++)
		ok = ok && sl_buf_printf(&opts, "%s%s", c ? "," : "", sl_sweep_col(sw, c)->label);
	ok = ok && sl_buf_put(&opts, "", 1);
	bool resume = sl_sweep_done(sw) > 0;
	char *saved = j && resume ? cJSON_PrintUnformatted(j) : NULL;
	if (!j || !ok || (resume && !saved)) {
		cJSON_Delete(j);
		sl_buf_free(&opts);
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory");
	}
	args a = {0};
	command_line(&a, mpirun, exe, how, sw, j, opts.data, resume);
	child c;
	st = spawn(a.v, resume, &c, err);
	cJSON_Delete(j);
	sl_buf_free(&opts);
	if (st) {
		free(saved);
		return st;
	}

	reader r = {.sw = sw, .on_cell = on_cell, .ctx = ctx, .p = p};
	char outbuf[8192];
	size_t out_len = 0, fed = 0, to_feed = saved ? strlen(saved) : 0;
	double term_at = 0;
	bool killed = false, exited = false;
	int status = 0;
	while (!exited) {
		/* Esc, or a stream that makes no sense: the whole group goes, asked
		 * first, then told. */
		if (!term_at && (sl_cancelled(p) || r.st)) {
			kill(-c.pid, SIGTERM);
			term_at = sl_now();
		} else if (term_at && !killed && sl_now() - term_at > 3) {
			kill(-c.pid, SIGKILL);
			killed = true;
		}
		struct pollfd fds[3] = {{c.out, POLLIN, 0}, {c.err, POLLIN, 0}, {c.in, POLLOUT, 0}};
		bool reading = c.out >= 0 || c.err >= 0;
		if (poll(fds, 3, reading ? 100 : 20) < 0 && errno != EINTR)
			break;
		char data[8192];
		for (int i = 0; i < 2; i++) {
			int *fd = i ? &c.err : &c.out;
			if (*fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			ssize_t n = read(*fd, data, sizeof data);
			if (n > 0 && !i)
				lines(outbuf, sizeof outbuf, &out_len, data, (size_t)n, take_line, &r);
			else if (n > 0)
				lines(r.log.line, sizeof r.log.line, &r.log.len, data, (size_t)n, take_err_line, &r);
			else if (n == 0 || errno != EINTR) {
				close(*fd);
				*fd = -1;
			}
		}
		if (c.in >= 0 && (fds[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
			ssize_t n = feed(c.in, saved + fed, to_feed - fed);
			if (n > 0)
				fed += (size_t)n;
			if ((n < 0 && errno != EAGAIN && errno != EINTR) || fed == to_feed) {
				close(c.in);
				c.in = -1;
			}
		}
		if (!reading)
			exited = waitpid(c.pid, &status, WNOHANG) == c.pid;
	}
	free(saved);
	int ends[3] = {c.in, c.out, c.err};
	for (int i = 0; i < 3; i++)
		if (ends[i] >= 0)
			close(ends[i]);
	if (!exited) {
		kill(-c.pid, SIGKILL);
		waitpid(c.pid, &status, 0);
	}

	int total = sl_sweep_rows(sw) * sl_sweep_cols(sw), done = sl_sweep_done(sw);
	if (r.st) {
		*err = r.err;
		return r.st;
	}
	if (sl_cancelled(p))
		return sl_sweep_stream_end(sw, p, err);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && done == total)
		return SL_OK;
	char why[1000] = "";
	for (int i = 0; i < r.log.n_said; i++) {
		size_t n = strlen(why);
		snprintf(why + n, sizeof why - n, "%s%s", i ? "; " : "", r.log.said[i]);
	}
	return sl_errorf(err, SL_ERR_IO, "mpirun -n %d ended (%s %d) with %d of %d cells measured, kept: %s",
	                 how->ranks, WIFSIGNALED(status) ? "signal" : "status",
	                 WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status), done, total,
	                 why[0] ? why : "it said nothing");
}
