/* Lessons: guided sequences of steps on a model, kept in versioned JSON
 * files that teachers write (man/slimlab-lesson.5). Each step states a
 * goal of one kind from a fixed registry, with parameters; the workbench
 * checks the goal against the engine's own state (tui/lesson.c), never
 * against the keys pressed. This file reads and checks lesson files,
 * finds the shipped and the user's lessons, describes goals in words and
 * writes a lesson as a Markdown handout. */
#ifndef SL_LESSON_H
#define SL_LESSON_H

#include <stdbool.h>
#include <stddef.h>

#include "core/error.h"

#define SL_LESSON_VERSION 1
#define SL_LESSON_MAX_STEPS 64
#define SL_LESSON_MAX_BYTES ((size_t)1 << 20)

/* The goal kinds, each checked from the workbench's state. */
typedef enum {
	SL_GOAL_VIEW = 0,      /* view_is: the view shown */
	SL_GOAL_SWEEP,         /* sweep_done: a sweep with every cell of these options measured */
	SL_GOAL_CURSOR_MAX,    /* cursor_on_max_sensitivity: the heatmap's cursor on the row the option hurts most */
	SL_GOAL_EVALUATED,     /* evaluated: a measured evaluation of a recipe as the parameters say */
	SL_GOAL_SPEC,          /* spec_run: a finished speculative run */
	SL_GOAL_HEAL,          /* heal_run: a finished healing run */
	SL_GOAL_KINDS
} sl_goal_kind;

/* A goal: its kind and the parameters it was given (a string "" or a
 * number NaN is one not given). */
typedef struct {
	sl_goal_kind kind;
	char view[16];           /* view_is */
	char options[256];       /* sweep_done: comma-separated options */
	char option[64];         /* cursor_on_max_sensitivity: the option (column) */
	char metric[8];          /* cursor_on_max_sensitivity: kl or dppl ("" = kl) */
	char rows[64];           /* cursor_on_max_sensitivity: among the rows whose names match this glob ("" = all) */
	char format[32];         /* evaluated: every compressed module in this format */
	char method[16];         /* evaluated: every quantized module by this method; heal_run: the healing method */
	char prune[16];          /* evaluated: some module pruned by this criterion */
	char pattern[16];        /* evaluated: some module pruned in this pattern */
	double sparsity_min;     /* evaluated: some module at least this sparse */
	double bpw_below;        /* evaluated: the model under this many bits per weight */
	double kl_below;         /* evaluated: KL to the base under this */
	char beats[32];          /* evaluated: KL under a measured run of every module in this format, rounded */
	bool mixed;              /* evaluated: modules in at least two formats */
	double acceptance_min;   /* spec_run */
	int k;                   /* spec_run: draft tokens per pass (0: any) */
	char draft[64];          /* spec_run: the draft, as the history names it, contains this */
	double recovered_min;    /* heal_run: share of the KL recovered */
} sl_lesson_goal;

typedef struct {
	char *text;              /* what to do, in the teacher's words */
	char *hint;              /* shown after hint_after seconds ("" = none) */
	double hint_after;
	char card[64];           /* a technique card to show beside the step ("" = none) */
	sl_lesson_goal goal;
} sl_lesson_step;

typedef struct {
	char path[4096];         /* the file it was read from (canonical) */
	char name[64], title[128];
	char *intro;             /* "" when none */
	char model[4096];        /* the model, as the file names it */
	sl_lesson_step *steps;
	int n_steps;
} sl_lesson;

/* Checks a name against the caller's list (views are the shell's). */
typedef bool (*sl_lesson_name_ok)(const char *name);

/* Reads and checks a lesson file. Every problem names the file, the step
 * and the field ("bits.json: steps[2].goal.kind: unknown goal kind
 * 'foo'; known: ..."): malformed JSON, unknown or missing fields, an
 * unknown goal kind, a parameter the kind does not take, a format, method
 * or view slimlab does not have. view_ok may be NULL (any view). */
sl_status sl_lesson_load(const char *path, sl_lesson_name_ok view_ok, sl_lesson **out, sl_error *err);
sl_status sl_lesson_parse(const char *json, size_t len, const char *origin, sl_lesson_name_ok view_ok,
                          sl_lesson **out, sl_error *err);
void sl_lesson_free(sl_lesson *l);

/* The goal kinds' names ("view_is", ...). */
const char *sl_goal_kind_name(sl_goal_kind k);
/* The goal in words, as the panel and the handout state it. */
void sl_goal_describe(const sl_lesson_goal *g, char *buf, size_t n);

/* The folders lessons are found in, in order: the shipped ones
 * (data/lessons/) and $XDG_DATA_HOME/slimlab/lessons. Returns how many
 * exist (at most 2), each in dirs[i]. */
int sl_lesson_dirs(char (*dirs)[4096], int max);
/* A lesson by name or file: a path to an existing file, or NAME.json in
 * the folders above (the user's first, so a teacher's copy wins). */
sl_status sl_lesson_find(const char *name, char *path, size_t n, sl_error *err);
/* Every lesson file in the folders, sorted by name: calls fn for each
 * with its path (and stops when it returns false). */
void sl_lesson_each(void (*fn)(const char *path, void *ctx), void *ctx);
/* The model a lesson names, as a file: relative to the lesson's folder,
 * else among the files that ship with slimlab. */
sl_status sl_lesson_model(const sl_lesson *l, char *path, size_t n, sl_error *err);

/* The lesson as Markdown (malloc'ed; NULL when out of memory). */
char *sl_lesson_handout(const sl_lesson *l);

#endif
