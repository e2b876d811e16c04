/* slimlab lesson: the lessons there are (list), a lesson opened in the
 * workbench on its model, or written out as a Markdown handout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "sessions/lesson.h"
#include "tui.h"

static const char usage[] =
	"Usage: slimlab lesson [list]\n"
	"       slimlab lesson NAME|FILE.json [--handout [OUT.md]] [--force]\n"
	"Lists the lessons that ship with slimlab and those in $XDG_DATA_HOME/slimlab/lessons,\n"
	"or opens the workbench on a lesson's model with the lesson's panel: each step states\n"
	"a goal the workbench checks from its own state, shows a hint after a while and moves\n"
	"on when the goal holds. --handout writes the lesson as Markdown (to stdout, or OUT.md,\n"
	"which is not written over without --force). The file format: slimlab-lesson(5).\n";

static void print_one(const char *path, void *ctx)
{
	int *n = ctx;
	sl_lesson *l = NULL;
	sl_error err = {0};
	if (sl_lesson_load(path, sl_workbench_view_known, &l, &err)) {
		fprintf(stderr, "slimlab: %s\n", err.msg);
		return;
	}
	printf("%-12s %-50s %2d steps  %s\n", l->name, l->title, l->n_steps, path);
	sl_lesson_free(l);
	(*n)++;
}

int sl_cmd_lesson(int argc, char **argv)
{
	const char *name = NULL, *out = NULL;
	bool handout = false, force = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(usage, stdout);
			return CLI_OK;
		} else if (!strcmp(argv[i], "--handout")) {
			handout = true;
			if (i + 1 < argc && argv[i + 1][0] != '-')
				out = argv[++i];
		} else if (!strcmp(argv[i], "--force")) {
			force = true;
		} else if (argv[i][0] == '-' || name) {
			return cli_usage_error("lesson", "unexpected '%s'", argv[i]);
		} else {
			name = argv[i];
		}
	}
	if (!name || !strcmp(name, "list")) {
		if (handout)
			return cli_usage_error("lesson", "--handout needs a lesson");
		int n = 0;
		sl_lesson_each(print_one, &n);
		if (!n)
			printf("no lessons found (set SLIMLAB_DATA, or put some in $XDG_DATA_HOME/slimlab/lessons)\n");
		return CLI_OK;
	}
	char path[4096], model[4096];
	sl_lesson *l = NULL;
	sl_error err = {0};
	if (sl_lesson_find(name, path, sizeof path, &err) || sl_lesson_load(path, sl_workbench_view_known, &l, &err))
		return cli_error(&err);
	if (handout) {
		char *md = sl_lesson_handout(l);
		sl_lesson_free(l);
		if (!md) {
			fprintf(stderr, "slimlab: out of memory\n");
			return CLI_FAIL;
		}
		int rc = CLI_OK;
		if (!out) {
			fputs(md, stdout);
		} else if (!cli_may_write(out, force, "another OUT.md")) {
			rc = CLI_FAIL;
		} else if (sl_write_file_atomic(out, md, strlen(md), &err)) {
			rc = cli_error(&err);
		}
		free(md);
		return rc;
	}
	sl_status st = sl_lesson_model(l, model, sizeof model, &err);
	sl_lesson_free(l);
	if (st)
		return cli_error(&err);
	char *args[] = {argv[0], "--lesson", path, NULL};
	return sl_workbench_main(3, args);
}
