/* The workbench shell: the main loop, the terminal, the job runner, the
 * command line and the commands, and the jobs they start. One header lists
 * them, grouped by file, each file calling only those below it (what
 * points up goes through function pointers: a job's kind, the main loop's
 * view_shown):
 *
 *   workbench.c  startup, the main loop, drawing the frame, key dispatch
 *   commands.c   the ':' commands (they mirror the CLI) and completion
 *   lesson.c     a lesson: its goals checked, its progress, its panel
 *   task-train.c training runs
 *   task-open.c  opening a model or a session; installing what was opened
 *   task-speculate.c speculative runs
 *   task-heal.c  healing the recipe's model by training
 *   task-sweep.c sensitivity sweeps, their export, the heatmap's rows,
 *                automatic recipes
 *   sweep-ranks.c a sweep measured by MPI ranks that mpirun starts
 *   tasks.c      the jobs on the model: evaluate, apply, generate, weight
 *                and activation statistics
 *   services.c   what commands and jobs ask of the workbench: messages,
 *                questions, views, recipe and session changes, saving,
 *                submitting jobs, the files jobs may write
 *   job.c        worker thread, queue, progress and cancel
 *   cmdline.c    the line editor under ':'
 *   screen.c     ncursesw + libtermkey setup, signals, terminal restore */
#ifndef SL_TUI_H
#define SL_TUI_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <termkey.h>

#include "core/compress.h"
#include "views/view.h"

typedef struct sl_tui sl_tui;

/* The model that ships with slimlab (sl_shipped_find); while it is absent
 * the workbench opens the file picker instead. */
#define SL_SHIPPED_MODEL "models/workshop.gguf"
/* Below this size the workbench shows a message instead of the views. */
#define SL_MIN_COLS 60
#define SL_MIN_ROWS 15

/* --- job.c --- */
typedef struct sl_job sl_job;

typedef struct {
	const char *name;
	/* Main thread, just before the worker starts: takes what the job reads
	 * from the application (models are only replaced between jobs).
	 * Returns false (with a message set) to drop the job. */
	bool (*start)(sl_tui *t, void *ctx);
	/* Worker thread. */
	sl_status (*run)(void *ctx, sl_job *j, const sl_progress *p, sl_error *err);
	/* Main thread, after the worker called sl_job_post (optional). */
	void (*update)(sl_tui *t, void *ctx, sl_job *j);
	/* Main thread, once the worker has returned. */
	void (*done)(sl_tui *t, void *ctx, sl_status st, const sl_error *err);
	void (*free)(void *ctx);
} sl_job_kind;

#define SL_JOB_QUEUE 8

typedef struct {
	const sl_job_kind *kind;
	void *ctx;
} sl_job_req;

typedef struct {
	int wake_fd;             /* written to wake the main loop */
	sl_job *cur;             /* running, or finished and not yet collected */
	sl_job_req queue[SL_JOB_QUEUE];
	int n_queued;
} sl_jobs;

void sl_jobs_init(sl_jobs *q, int wake_fd);
/* Queues a job (taking ctx); fails when the queue is full (ctx freed). */
sl_status sl_jobs_submit(sl_jobs *q, const sl_job_kind *k, void *ctx, sl_error *err);
/* Main thread, whenever woken: collects a finished job, starts the next,
 * delivers posted updates, and refreshes the progress the app shows.
 * Fails when a job could not be started (it is dropped). */
sl_status sl_jobs_poll(sl_jobs *q, sl_tui *t, sl_error *err);
/* Raises the running job's cancel flag; returns whether one was running. */
bool sl_jobs_cancel(sl_jobs *q);
/* Cancels everything and waits for the worker. */
void sl_jobs_shutdown(sl_jobs *q, sl_tui *t);
bool sl_jobs_busy(const sl_jobs *q);
/* Worker side: guard data shared with update(), and wake the main loop. */
void sl_job_lock(sl_job *j);
void sl_job_unlock(sl_job *j);
void sl_job_post(sl_job *j);

/* --- cmdline.c --- */
typedef struct {
	bool active;
	char buf[1024];
	int len, pos;            /* bytes; pos is on a character boundary */
	char hist[32][1024];
	int n_hist, hist_at;
	int comp_next;           /* which completion a repeated Tab shows */
	char comp_stem[1024];    /* the line the completions were made for */
	char comp_last[1024];    /* the line after the last Tab */
} sl_cmdline;

enum { SL_CL_EDIT, SL_CL_CANCEL, SL_CL_SUBMIT, SL_CL_COMPLETE };
void sl_cmdline_open(sl_cmdline *c, const char *prefill);
int sl_cmdline_key(sl_cmdline *c, const sl_key *k);
/* Draws ":" and the line in w columns at row y; leaves the cursor there. */
void sl_cmdline_draw(const sl_cmdline *c, int y, int w);
/* Replaces the line's last word. */
void sl_cmdline_set_word(sl_cmdline *c, const char *word);

/* --- commands.c --- */
/* Runs one command line (without the ':'). */
void sl_command(sl_tui *t, const char *line);
/* Tab on the command line: completes the last word, or lists the choices
 * and, on further Tabs, cycles through them. */
void sl_complete(sl_tui *t, sl_cmdline *c);
/* Every command with what it does, for the help view. */
const sl_keyhelp *sl_command_help(void);

/* --- lesson.c --- */
/* Starts a lesson by name or file (opening its model first, asking about
 * unsaved work, when another is open). */
void sl_lesson_start(sl_tui *t, const char *name);
void sl_lesson_stop(sl_tui *t);
/* After every event: resumes a saved session's lesson, checks the current
 * step's goal and moves on while goals hold, recording each in the session. */
void sl_lesson_tick(sl_tui *t);
/* Milliseconds until the current step's hint shows (-1: nothing to wait for). */
int sl_lesson_wait_ms(const sl_tui *t);
/* The rows the lesson's panel takes under a view body_h rows high (0:
 * no lesson, or no room), and the panel drawn in p. */
int sl_lesson_rows(const sl_tui *t, int body_h);
void sl_lesson_draw(sl_tui *t, sl_rect p);

/* --- task-open.c --- */
/* Opens a model (a new session for it), or a session (its model after
 * checking the hash). */
void sl_task_open_model(sl_tui *t, const char *path);
void sl_task_open_session(sl_tui *t, const char *path);
/* Opens the autosave a crashed slimlab left, and removes it once the
 * session it holds is back. */
void sl_task_recover(sl_tui *t, const char *autosave_path);
/* Opens a model as :open does: a path that does not exist is said so,
 * else it asks first about unsaved changes. */
void sl_open_asking(sl_tui *t, const char *path);
/* Whether path exists; says it does not when so. */
bool sl_open_exists(sl_tui *t, const char *path);
/* Replaces the session (and the model, which may be NULL). */
void sl_tui_install(sl_tui *t, sl_session *s, sl_model *m);
/* Frees the session, the model and everything derived from them. */
void sl_tui_release(sl_tui *t);

/* --- task-speculate.c --- */
/* A :speculate request: one draft (or none: the first of
 * sl_spec_sources), and the settings that change (the rest are kept from
 * the last run). */
typedef struct {
	const char *format;      /* --draft-format: the model, every module in FORMAT */
	const char *recipe;      /* --draft-recipe: the model compressed by a recipe file */
	bool current;            /* --draft-current: the model under the session's recipe */
	int layers, ngram;       /* --draft-layers N (early exit), --draft-ngram N (prompt lookup); 0: not these */
	int k, n;                /* 0: as last time */
	double temp, p_min;      /* < 0: as last time */
	const char *prompt;      /* NULL: as last time */
} sl_spec_request;
/* Runs it as a job that streams into the Speculate view (cancelling a
 * speculative run that is going); its figures join the history. */
void sl_task_speculate(sl_tui *t, const sl_spec_request *r);
/* The settings' defaults; forgetting the run shown (the settings stay). */
void sl_speculation_init(sl_speculation *s);
void sl_speculation_clear(sl_speculation *s);

/* --- tasks.c --- */
/* A recipe's calibration text: the session's, unless it names its own
 * (as the CLI's --calib stands in for it). */
void sl_task_calib_default(sl_tui *t, sl_recipe *r);
/* text: "calibration", "evaluation" or a file; predicted_kl: what a sweep
 * predicted for the recipe, kept with the run (NaN: nothing). */
void sl_task_eval(sl_tui *t, const char *text, int ctx, int chunks, double predicted_kl);
/* The text file a run measured, as the run keeps it: its real path, so
 * that runs on one file by two names are one series (malloc'ed; NULL when
 * out of memory, which only keeps the run out of its series). */
char *sl_task_text_path(const char *path);
void sl_task_apply(sl_tui *t, const char *out_gguf);
void sl_task_generate(sl_tui *t);
void sl_task_weight_stats(sl_tui *t, const char *module);
void sl_task_act_stats(sl_tui *t);

/* --- sweep-ranks.c --- */
typedef struct {
	int ranks;               /* mpirun -n; 0: the sweep runs in this process */
	char hostfile[4096];     /* mpirun --hostfile, or "" for this machine */
	int threads;             /* per rank; 0: this machine's cores shared out
	                          * among the ranks, or with a hostfile all of each
	                          * machine's (one rank per machine) */
} sl_ranks;
/* Whether a sweep can run as how says: MPI support built, mpirun on PATH
 * (its path into mpirun when not NULL), the hostfile readable. */
sl_status sl_ranks_check(const sl_ranks *how, char *mpirun, size_t n, sl_error *err);
/* Measures sw's cells not yet done on how->ranks MPI ranks: mpirun runs
 * this program's `sensitivity --stream` with sw's model, options and
 * settings, rank 0 gets the cells sw has, and each cell reaches sw and
 * on_cell as rank 0 finishes it. Cancelling stops mpirun and every rank,
 * keeping what arrived. */
sl_status sl_sweep_run_ranks(sl_sweep *sw, const sl_ranks *how, sl_sweep_cell_fn on_cell, void *ctx,
                             const sl_progress *p, sl_error *err);
/* --- task-heal.c --- */
/* Heals the session's recipe as app.heal.set says, showing the run in the
 * Heal view (resume: from the checkpoint of the same run); asks first
 * about a checkpoint of the same run and an existing output file. The
 * healed model becomes the session's model, undoably. */
void sl_task_heal(sl_tui *t, bool resume);
void sl_heal_settings_init(sl_heal_settings *s);
/* Forgets the run (the settings stay). */
void sl_healing_reset(sl_healing *h);

/* --- task-sweep.c --- */
/* Measures the sweep these settings describe: the current one goes on from
 * its measured cells when they are the same; another carries over the
 * session's cells of the options both have. ranks: the MPI ranks that
 * measure it (NULL: this process). */
void sl_task_sweep(sl_tui *t, const char *options, sl_sweep_unit unit, int ctx, int windows, const sl_ranks *ranks);
/* Brings the session's sweep back: the base model's caches are computed
 * again, the cells are read from the session. */
void sl_task_sweep_restore(sl_tui *t);
/* FILE.csv, FILE.json, or FILE.svg (the heatmap in its current metric). */
void sl_sweep_export(sl_tui *t, const char *path);
/* KL against bytes of every option, for one row (NULL: the whole model),
 * as an SVG picture. */
void sl_sweep_chart(sl_tui *t, const char *path, const char *row);
/* A recipe from the sweep under the budget ("4.5bpw", "3MB", "50%"),
 * undoably in place of the current one, then evaluated for real. */
void sl_task_autorecipe(sl_tui *t, const char *budget);
/* After the sweep or the heatmap's settings changed: the rows to show, in
 * order, and the colour scale. */
void sl_heat_refresh(sl_tui *t);
void sl_heat_free(sl_heat *h);

/* --- task-train.c --- */
/* Trains as CONFIG says, showing the run in the Train view; offers to open
 * the model it writes. The model goes to out (NULL: a new folder in the
 * data directory's train/), its loss table and checkpoint beside it;
 * resume: from the checkpoint of the last run (out's, when given). */
void sl_task_train(sl_tui *t, const char *config, bool resume, const char *out);
void sl_training_free(sl_training *s);

/* --- screen.c --- */
sl_status sl_screen_open(sl_tui *t, sl_error *err);
void sl_screen_close(sl_tui *t);
/* Reads the terminal's size after SIGWINCH and resizes the screen. */
void sl_screen_resize(sl_tui *t);
/* Turns what libtermkey read into a key for views; false for events that
 * are not keys (mouse releases, unknown sequences). */
bool sl_screen_translate(sl_tui *t, TermKeyKey *in, sl_key *out);

/* --- workbench.c --- */
struct sl_tui {
	sl_app app;
	sl_jobs jobs;
	const sl_view_class *const *classes;
	void **views;
	int n_views;             /* in tab order; the open view is last and has no tab */
	int cur, back;           /* the view shown; where the open view returns to */
	sl_cmdline cl;
	bool help;               /* the key overlay of the current view */
	struct {
		const sl_card *card; /* the card panel over the view; NULL: none */
		char name[80];       /* its kind and name, as the panel says them */
		int top;             /* the first row shown */
		sl_rect at;          /* where its text was drawn */
	} card;
	struct {
		bool active;
		char text[600];
		char choices[64];    /* "[y]es  [n]o" */
		void (*answer)(sl_tui *t, int key, void *arg); /* the key pressed; frees arg */
		void *arg;
	} ask;
	bool quit;
	bool opening;            /* a model or session is being opened */
	sl_sweep *sweep;         /* the sensitivity sweep, unless a job holds it */
	bool sweeping;           /* a sweep job holds it */
	sl_model *qmodel;        /* the recipe's model (simulated, or healed and packed), or NULL */
	char *qmodel_recipe;     /* what it was made from (sl_tui_model_key) */
	double qmodel_bpw;
	TermKey *tk;
	int wake[2];             /* self-pipe: signals and jobs wake the loop */
	int tab_x[16];           /* where each tab starts, for clicks */
	void (*view_shown)(sl_tui *t); /* the main loop's: after another view is shown */
};

int sl_workbench_main(int argc, char **argv);
/* Whether the workbench has a view called name (lesson files name views). */
bool sl_workbench_view_known(const char *name);

/* --- services.c --- */
/* Whether a job may use the model (one is open and no other is being
 * opened); says why not when it may not. */
bool sl_tui_can_use_model(sl_tui *t);
/* The status-line message (printf-style); error colours it. */
void sl_tui_msg(sl_tui *t, bool error, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Queues a job (taking ctx); false, with the message shown, when it cannot. */
bool sl_tui_submit(sl_tui *t, const sl_job_kind *k, void *ctx);
/* A view's place in the view table, or -1. */
int sl_tui_view_index(const sl_tui *t, const char *name);
/* Shows view i (it leaves the one shown, enters the new one and calls
 * view_shown); nothing when it is shown already. */
void sl_tui_switch(sl_tui *t, int i);
/* Shows view name ("model", "layer", ...); false if there is none. */
bool sl_tui_show(sl_tui *t, const char *name);
/* Opens the card panel on a technique's card: by kind and name, or (kind
 * NULL) by a name any kind knows; false with a message when there is none. */
bool sl_tui_card(sl_tui *t, const char *kind, const char *name);
/* Asks a one-key question; answer gets the key and arg (and frees it). */
void sl_tui_ask(sl_tui *t, const char *choices, void (*answer)(sl_tui *t, int key, void *arg), void *arg,
                const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Resolves the recipe for every module, estimates its size and checks it;
 * drops the recipe's model once it no longer matches. */
void sl_tui_recipe_refresh(sl_tui *t);
/* After the recipe or the model changed: refreshes as above, and marks
 * and autosaves the session. */
void sl_tui_recipe_changed(sl_tui *t);
/* After the session changed: marks it and autosaves. */
void sl_tui_session_changed(sl_tui *t);
/* Forgets the recipe's model (the recipe changed, or the base model did). */
void sl_tui_drop_recipe_model(sl_tui *t);
/* What the recipe's model is made from, to key it by (malloc'ed; NULL when
 * out of memory): the recipe, and the healed model when healing made one. */
char *sl_tui_model_key(const sl_session *s);
/* Saves the session to path (views record their cursors first); false
 * with the message shown when it cannot. */
bool sl_tui_save(sl_tui *t, const char *path);
/* Runs fn(t, arg) now, or after asking when the session has unsaved
 * changes that what would drop; fn frees arg (also when it does not run). */
void sl_tui_unless_unsaved(sl_tui *t, const char *what, void (*fn)(sl_tui *t, void *arg, bool go), void *arg);
/* Whether a and b name one file (both must exist): the open model under
 * another name is still the open model. */
bool sl_tui_same_file(const char *a, const char *b);
/* Whether path starts as a GGUF file does (checkpoints are GGUF: anything
 * else is some other file that starting afresh would remove). */
bool sl_tui_is_gguf(const char *path);
/* The data directory's folder sub (heal, train), made when missing, in
 * buf; false with a message, which ends with hint (how to name the files
 * instead), when it cannot be. */
bool sl_tui_data_subdir(sl_tui *t, const char *sub, const char *hint, char *buf, size_t n);

#endif
