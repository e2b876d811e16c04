/* Sessions: everything a user did to one model, kept in a versioned JSON
 * file: the model's path and SHA-256, the recipe (and the healed model
 * that stands for it, when healing made one), calibration and
 * evaluation settings, the history of evaluation runs, notes and where
 * each view was. Saves are atomic; an autosave in the XDG state directory
 * follows every change so a crash never loses work; a session whose model
 * no longer hashes the same is refused.
 *
 *   session.c    the session, its JSON form, undo and redo of the recipe
 *   modelhash.c  SHA-256 of model files, cached by path, size and mtime
 *   autosave.c   the state directory, autosave files, crash recovery */
#ifndef SL_SESSION_H
#define SL_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "core/error.h"
#include "core/eval.h"
#include "core/progress.h"
#include "core/recipe.h"

/* Version 2 added the sensitivity sweep, the heatmap's settings and the
 * predicted KL of runs; version 1 files still load. Fields added since are
 * optional (a run's acceptance and text file, speculative runs); version
 * 3 adds the healed model; older files still load. A lesson's progress
 * (an optional "lesson" object, man/slimlab-lesson.5) came after. */
#define SL_SESSION_VERSION 3
/* Larger files are refused rather than read (a session is kilobytes). */
#define SL_SESSION_MAX_BYTES ((size_t)64 << 20)
#define SL_SESSION_MAX_RUNS 10000
#define SL_SESSION_MAX_VIEWS 16
#define SL_UNDO_DEPTH 100

/* A speculative run's figures (the Speculate view's), kept in the same
 * history as evaluations. */
typedef struct {
	char draft[96];         /* the draft, in words */
	int k;                  /* draft tokens per pass at most */
	double temp;            /* 0: greedy */
	long long generated, passes;
	double acceptance;      /* drafted tokens kept */
	double token_acceptance; /* draft tokens checked and kept (NAN: not recorded) */
	double tokens_per_pass; /* the target's own included */
	double tps, target_tps; /* speculative, and the target alone in the same run (0: not measured) */
	double speedup, predicted_speedup;
	double predicted_costed; /* the prediction at the verification's measured cost (NAN: not recorded) */
	bool has_predicted;     /* the acceptance a sweep or an evaluation of the draft predicted */
	double predicted_acceptance;
	bool cancelled;         /* the figures of the part that ran */
} sl_spec_run;

/* One run of the history, as its table shows it: an evaluation, or a
 * speculative run (then only the names, bpw and spec mean anything). An
 * evaluation's figures hold for its text and its r.n_chunks windows of
 * r.n_ctx tokens (r.base_ppl is the base model's on those windows): runs
 * measured on other texts or windows are not comparable. */
typedef struct {
	char when[32];          /* UTC, ISO 8601 */
	char model[16];         /* "base" or "recipe"; "speculative" */
	char recipe[64];        /* the recipe's name then */
	char recipe_summary[128];
	char text[16];          /* "calibration", "evaluation" or the start of the file's name */
	char *text_path;        /* the file measured; NULL for speculative runs and runs from before runs
	                         * kept it. The session owns its runs' copies. */
	double bpw, bytes;      /* of the model evaluated */
	bool has_predicted;     /* an automatic recipe: the KL its sweep predicted */
	double predicted_kl;
	char *recipe_json;      /* the recipe measured, as JSON; NULL for runs from before runs kept it.
	                         * The session owns its runs' copies. */
	sl_eval_result r;       /* r.acceptance is NaN for runs from before runs kept it */
	bool speculative;
	sl_spec_run spec;
} sl_run;

typedef struct {
	char name[16];
	int cursor, top;
} sl_view_pos;

/* The recipe's model healed by training: the file the healed model was
 * written to (GGUF, packed in the recipe's formats), its SHA-256, and how
 * it was healed. model "": not healed, the recipe's model is the one
 * post-training compression gives. */
typedef struct {
	char model[4096];
	char sha256[65];
	char label[64];         /* "qad 300 steps" */
} sl_healed;

/* What undo and redo step between: a recipe and its healing (NULL: none). */
typedef struct {
	sl_recipe *recipe;
	sl_healed *healed;
} sl_session_step;

typedef struct sl_session {
	int version;
	char model_path[4096];  /* absolute */
	char model_sha256[65];
	sl_recipe *recipe;
	sl_healed healed;       /* model "": the recipe is not healed */
	struct {
		char calib_text[4096], eval_text[4096];
		int ctx, chunks;    /* evaluation windows: length, count (0 = all) */
		int stats_tokens;   /* tokens for activation statistics */
	} settings;
	sl_run *runs;
	int n_runs;
	char *notes;            /* never NULL */
	cJSON *sweep;           /* the latest sensitivity sweep as sl_sweep_to_json gives it, or NULL */
	cJSON *lesson;          /* a lesson's progress as sl_lesson_progress_json gives it, or NULL */
	struct {
		char current[16];   /* the view shown */
		sl_view_pos pos[SL_SESSION_MAX_VIEWS];
		int n_pos;
		char inspect[96];   /* module the layer inspector shows */
		char prompt[1024];  /* generate: prompt, token count, temperature */
		int gen_tokens;
		double temp;
		struct {
			char metric[8];     /* a sweep metric: kl, dppl, top1 or accept */
			char sort[8];       /* block, metric or params */
			int sort_col;       /* the option sorted by */
			char filter[128];   /* a glob over module names or kinds; "" = every row */
		} heat;
	} view;

	/* Not part of the file. */
	char path[4096];        /* where it was saved or opened ("" = never saved) */
	bool dirty;             /* changed since then */
	bool recovered;         /* read from an autosave left by a crash */
	sl_session_step *undo, *redo;
	int n_undo, n_redo;
} sl_session;

/* --- session.c --- */
sl_session *sl_session_new(void);
void sl_session_free(sl_session *s);
/* malloc'ed, pretty-printed; NULL when out of memory. autosave adds the
 * fields a recovery needs (the session's own path, whether it was dirty). */
char *sl_session_to_json(const sl_session *s, bool autosave);
/* origin names the file in messages. Every problem names its JSON path;
 * truncated, hostile and future-version files fail with a clear message. */
sl_status sl_session_parse(const char *json, size_t len, const char *origin, sl_session **out, sl_error *err);
sl_status sl_session_load(const char *path, sl_session **out, sl_error *err);
/* Atomic; on success the session is clean and lives at path. */
sl_status sl_session_save(sl_session *s, const char *path, sl_error *err);
/* Writes without touching path or dirty (autosave). */
sl_status sl_session_write(const sl_session *s, const char *path, bool autosave, sl_error *err);

/* Adds a copy of run (and of its recipe_json and text_path). */
sl_status sl_session_add_run(sl_session *s, const sl_run *run, sl_error *err);
/* Whether two evaluations were measured on the same text (its path, or for
 * runs from before runs kept it, its name), windows and window length, so
 * that their figures belong to one series. */
bool sl_run_same_measure(const sl_run *a, const sl_run *b);
void sl_session_remove_run(sl_session *s, int index);
sl_status sl_session_add_note(sl_session *s, const char *line, sl_error *err);
/* Replaces the sweep (taking it; NULL forgets it). */
void sl_session_set_sweep(sl_session *s, cJSON *sweep);
/* Replaces the lesson's progress (taking it; NULL forgets it). */
void sl_session_set_lesson(sl_session *s, cJSON *progress);
/* Where view name was (cursor 0 when never recorded), and recording it. */
sl_view_pos sl_session_view_pos(const sl_session *s, const char *name);
void sl_session_set_view_pos(sl_session *s, const char *name, int cursor, int top);

/* Call before changing s->recipe: the current recipe and its healing go
 * onto the undo stack, the redo stack is cleared, and the healing is
 * forgotten (the healed model was made for the recipe as it was). */
sl_status sl_session_recipe_edit(sl_session *s, sl_error *err);
/* Replaces the recipe (e.g. one loaded from a file), undoably. */
sl_status sl_session_set_recipe(sl_session *s, sl_recipe *r, sl_error *err);
/* Replaces the recipe with r (taken) and its model with the healed one h
 * made from it, in one undoable step. */
sl_status sl_session_set_healed(sl_session *s, sl_recipe *r, const sl_healed *h, sl_error *err);
bool sl_session_undo(sl_session *s);
bool sl_session_redo(sl_session *s);

/* Refuses (SL_ERR_ARG, naming both hashes) when sha256 is not the hash the
 * session recorded. */
sl_status sl_session_check_model(const sl_session *s, const char *sha256, sl_error *err);

/* --- modelhash.c --- */
/* SHA-256 of a model: of the file, or for a directory (safetensors) of
 * each regular file's name and hash in name order. Cached in
 * $XDG_CACHE_HOME/slimlab/model-hashes.json keyed by the real path, size
 * and modification time, so a big model is hashed once. */
sl_status sl_model_file_sha256(const char *path, const sl_progress *p, char hex[65], sl_error *err);

/* --- autosave.c --- */
/* $XDG_STATE_HOME/slimlab (default ~/.local/state/slimlab),
 * $XDG_CACHE_HOME/slimlab (default ~/.cache/slimlab) or $XDG_DATA_HOME/slimlab
 * (default ~/.local/share/slimlab: what the user makes, such as healed models
 * and their checkpoints), created if needed. */
sl_status sl_state_dir(char *buf, size_t n, sl_error *err);
sl_status sl_cache_dir(char *buf, size_t n, sl_error *err);
sl_status sl_data_dir(char *buf, size_t n, sl_error *err);
/* This process's autosave file. */
sl_status sl_autosave_path(char *buf, size_t n, sl_error *err);
sl_status sl_autosave(const sl_session *s, sl_error *err);
/* Called on a clean exit: nothing is left to recover. */
void sl_autosave_remove(void);
/* The newest autosave with unsaved work left by a slimlab that is no
 * longer running; removes the ones without unsaved work and temporary
 * files such processes left half-written. False when there is none. */
bool sl_autosave_find_orphan(char *path, size_t n);

#endif
