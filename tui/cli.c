/* Helpers shared by the command-line subcommands. */
#include "cli.h"
#include "core/fileio.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

bool cli_may_write(const char *path, bool force, const char *instead)
{
	if (!sl_file_exists(path) || force)
		return true;
	if (isatty(STDIN_FILENO) && isatty(STDERR_FILENO)) {
		fprintf(stderr, "slimlab: %s exists; write over it? [y/N] ", path);
		char line[16];
		return fgets(line, sizeof line, stdin) && (line[0] == 'y' || line[0] == 'Y');
	}
	fprintf(stderr, "slimlab: %s exists; give --force to write over it, or %s\n", path, instead);
	return false;
}

int cli_error(const sl_error *err)
{
	fprintf(stderr, "slimlab: %s\n", err->msg[0] ? err->msg : sl_status_name(err->status));
	return CLI_FAIL;
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "slimlab %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'slimlab %s --help'.\n", cmd);
	return CLI_USAGE;
}

sl_model *cli_load_model(const char *path, const char *tokenizer_path)
{
	sl_error err = {0};
	sl_model *m = NULL;
	sl_load_opts o = {.tokenizer_path = tokenizer_path, .check_finite = true};
	if (sl_model_load(path, &o, &m, &err)) {
		cli_error(&err);
		return NULL;
	}
	return m;
}

static void bar_cb(void *ctx, double frac, const char *stage)
{
	cli_bar *b = ctx;
	int pct = (int)(frac * 100.0 + 0.5);
	if (!b->tty || pct == b->last_pct)
		return;
	b->last_pct = pct;
	int w = 30, fill = pct * w / 100;
	fprintf(stderr, "\r%s [", b->label);
	for (int i = 0; i < w; i++)
		fputc(i < fill ? '#' : '.', stderr);
	fprintf(stderr, "] %3d%% %s\033[K", pct, stage ? stage : "");
	fflush(stderr);
}

/* The first Ctrl-C asks the running job to stop, so it can finish cleanly
 * and say how far it got; a second one ends the program at once. */
static atomic_int interrupted;

static void on_sigint(int sig)
{
	if (atomic_exchange(&interrupted, 1)) {
		signal(sig, SIG_DFL);
		raise(sig);
	}
}

void cli_bar_init(cli_bar *b, const char *label)
{
	memset(b, 0, sizeof *b);
	b->label = label;
	b->tty = isatty(STDERR_FILENO);
	b->last_pct = -1;
	b->p.fn = bar_cb;
	b->p.ctx = b;
	b->p.cancel = &interrupted;
	atomic_store(&interrupted, 0);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_sigint;
	sigaction(SIGINT, &sa, NULL);
}

void cli_bar_done(cli_bar *b)
{
	signal(SIGINT, SIG_DFL);
	if (b->tty && b->last_pct >= 0)
		fprintf(stderr, "\r\033[K");
}

void cli_print_json(cJSON *o)
{
	char *s = cJSON_Print(o);
	if (s)
		puts(s);
	free(s);
	cJSON_Delete(o);
}

bool cli_parse_int(const char *cmd, const char *opt, const char *s, long lo, long hi, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi) {
		cli_usage_error(cmd, "%s wants a whole number from %ld to %ld, not '%s'", opt, lo, hi, s);
		return false;
	}
	*out = v;
	return true;
}

bool cli_parse_float(const char *cmd, const char *opt, const char *s, double lo, double hi, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= lo && v <= hi)) {
		cli_usage_error(cmd, "%s wants a number from %g to %g, not '%s'", opt, lo, hi, s);
		return false;
	}
	*out = v;
	return true;
}
