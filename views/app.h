/* The state the workbench shows, shared by the shell (tui/, which owns and
 * changes it) and the views (which draw it and turn keys into commands).
 * Views never change it: what they want done they hand back as a command
 * line, the same the user could type after ':'. */
#ifndef SL_APP_H
#define SL_APP_H

#include <stdbool.h>
#include <stddef.h>

#include "core/methods/method.h"
#include "core/recipe.h"
#include "core/speculate.h"
#include "core/stats.h"
#include "core/sweep/sweep.h"
#include "sessions/lesson.h"
#include "sessions/session.h"

/* Keys, as the shell hands them to views: Unicode code points, or these. */
enum {
	SL_KEY_UP = 0x110000, SL_KEY_DOWN, SL_KEY_LEFT, SL_KEY_RIGHT,
	SL_KEY_PGUP, SL_KEY_PGDN, SL_KEY_HOME, SL_KEY_END,
	SL_KEY_ENTER, SL_KEY_TAB, SL_KEY_BACKSPACE, SL_KEY_DELETE, SL_KEY_ESC,
	SL_KEY_F1,       /* F1 .. F12 follow */
	SL_KEY_MOUSE = SL_KEY_F1 + 12,
};
enum { SL_KMOD_SHIFT = 1, SL_KMOD_ALT = 2, SL_KMOD_CTRL = 4 };
enum { SL_MOUSE_LEFT = 1, SL_MOUSE_MIDDLE = 2, SL_MOUSE_RIGHT = 3, SL_MOUSE_WHEEL_UP = 4, SL_MOUSE_WHEEL_DOWN = 5 };

typedef struct {
	int code;               /* code point or SL_KEY_* */
	int mods;               /* SL_KMOD_* */
	int y, x;               /* SL_KEY_MOUSE: screen cell, from 0 */
	int button;             /* SL_KEY_MOUSE: SL_MOUSE_*; press events only */
} sl_key;

/* A generation pane: one model continuing the prompt. */
typedef struct {
	char label[64];
	char *text;             /* NUL-terminated */
	size_t len;
	int n_tokens;
	double tok_per_s;
	bool done;
} sl_gen_pane;

/* A sensitivity sweep as the Heatmap view shows it: the shell's copy of
 * the sweep, kept up to date while the sweep runs on the worker thread,
 * with the rows to show in the order to show them. */
typedef struct {
	int rows, cols;          /* 0: no sweep yet */
	struct {
		char name[64];
		char kind[16];       /* attn_q, ffn_down, ... ("block" for a block) */
		int block;           /* -1: token_embd, output */
		double params;
	} *row;
	sl_sweep_option *opt;    /* [cols] */
	sl_sweep_cell *cell;     /* [rows * cols], row-major */
	double *rho;             /* [(cols + 1) * SL_PROXY_COUNT]: per option, then over all */
	int done;                /* cells measured */
	double base_ppl;
	char fisher_note[160];
	/* The settings it was made with, as :sweep takes them. */
	char options[512];
	sl_sweep_unit unit;
	int ctx, windows, calib_tokens;
	uint64_t seed;
	char text[4096];
	char state[96];          /* "" when idle, else what the job is doing to it */
	/* Derived by the shell from the session's heatmap settings. */
	int *order;              /* rows shown, in order */
	int n_order;
	double lo, hi;           /* log10 range of the metric over the measured cells */
} sl_heat;

/* A training run as the Train view shows it. */
typedef struct {
	char config[4096];       /* the configuration file; "" when none ran */
	char output[4096];       /* the model it writes */
	char log[4096];          /* its loss table, beside the model */
	char checkpoint[4096];   /* its checkpoint, beside the model: what r resumes from */
	bool running, finished;  /* finished: the model was written */
	int64_t step, steps;
	double *loss;            /* [loss_cap]: training loss of each step so far */
	int n_loss, loss_cap;
	double *val;             /* pairs (step, validation loss) */
	int n_val;
	double lr, grad_norm, tokens_per_s, elapsed, eta, val_ppl;
	char notes[4][160];      /* the latest notes, oldest first */
	int n_notes;
	char outcome[256];       /* how it ended */
} sl_training;

/* What each byte of a speculative run's text is. */
enum { SL_SPEC_PROMPT = 0, SL_SPEC_KEPT, SL_SPEC_OWN };

/* A speculative run as the Speculate view shows it, and the settings
 * :speculate keeps from one run to the next. */
typedef struct {
	int k, n;                /* draft tokens per pass at most; tokens to generate */
	double temp, p_min;      /* 0: greedy; the draft stops below p_min */
	char prompt[1024];       /* "" until the first run picks the default */
	/* The run shown (or the last). */
	char draft[160];         /* the draft as :speculate names it ("--draft-ngram 3"); "" before any run */
	char label[96];          /* and in words */
	bool running, cancelled;
	char *text;              /* the prompt, then the continuation; NUL-terminated */
	unsigned char *kind;     /* SL_SPEC_* of each byte of text */
	size_t len;
	char rejected[256];      /* the last pass's rejected draft tokens, decoded */
	sl_spec_stats st;        /* the figures so far, every stretch of the run summed */
	double *pass_accept;     /* each pass's share of what was drafted that was kept */
	int n_pass;
	double predicted;        /* the acceptance the session predicts for the draft (NaN: none) */
	char predicted_from[64]; /* where that comes from, in words */
} sl_speculation;
/* What the next healing run takes (:heal, :heal set, the Heal view's
 * menus); zero values mean the defaults noted. */
typedef struct {
	char method[8];          /* qat, qad, kd, lora */
	int steps, batch;
	double lr;               /* 0: the method's */
	double temperature;      /* of the KL losses */
	int rank;                /* LoRA */
	int seq_len;             /* 0: min(128, context) */
	int eval_every;          /* held-out KL every N updates (0: a tenth of the run) */
	int probe;               /* windows of those (0: 4) */
	uint64_t seed;
	char out[4096];          /* the healed model ("": a new file in the data directory) */
	char checkpoint[4096];   /* ("": the data directory, named by the run's settings) */
} sl_heal_settings;

/* Healing as the Heal view shows it: the settings, and the run going on
 * or the last one (of this model). */
typedef struct {
	sl_heal_settings set;
	char label[64];          /* the run's: "qad 300 steps"; "" when none ran */
	char recipe[160];        /* the recipe it heals, in a few words */
	char out[4096], checkpoint[4096]; /* where it writes */
	bool running, finished;  /* finished: the healed model is the session's */
	int64_t step, steps;
	double *loss;            /* [steps]: training loss of each update (0: not known) */
	int n_loss;              /* the last update known */
	double *kl;              /* pairs (step, held-out KL against the base) */
	int n_kl;
	double lr, grad_norm, tokens_per_s, elapsed, eta;
	sl_eval_result before, after; /* post-training and healed, on the evaluation text */
	bool has_before, has_after;
	double recovered;        /* the share of the post-training KL recovered */
	char loss_name[16];
	char notes[3][160];      /* the latest notes, oldest first */
	int n_notes;
	char outcome[256];       /* how it ended */
} sl_healing;

/* The lesson going on (tui/lesson.c): its file, the step whose goal is
 * checked, since when, and what the engine showed when the last one held.
 * Its progress lives in the session (ses->lesson). */
typedef struct {
	sl_lesson *lesson;       /* NULL: none */
	bool pending;            /* waiting for its model to open */
	char model[4096];        /* that model */
	int step;                /* n_steps: every step done */
	double since;            /* when the step began (monotonic seconds) */
	unsigned generation;     /* of the session it was checked against */
	char last[600];
} sl_lesson_state;

typedef struct sl_app {
	sl_session *ses;        /* never NULL */
	sl_model *model;        /* the base model; NULL until one is open */
	char model_name[256];   /* its file name */
	sl_module *mods;        /* its linear modules in model order */
	int n_mods;
	struct {
		int n_mods;
		double params, bytes;
	} *blocks;              /* [n_layers]: what each block's modules add up to */
	sl_module_plan *plans;  /* [n_mods]: the recipe resolved for each module */
	sl_lowrank_plan *lowrank; /* [n_mods]: the ranks and shared bases it gives (sl_lowrank_layout) */
	sl_recipe_estimate est; /* bytes and bits per weight the recipe gives */
	int *rule_matches;      /* [1 + n_rules]: modules each rule selects (default first) */
	sl_recipe_issue issues[16];
	int n_issues;           /* may exceed 16: only the first 16 are kept */
	sl_recipe_issue fallbacks[8]; /* formats some modules cannot hold, and what they get */
	int n_fallbacks;
	bool recipe_empty;      /* the recipe changes nothing */
	unsigned runs_added;    /* evaluations that joined the history: the Evaluate view selects each new one */
	/* Two runs of the history marked for comparison (numbers from 1, in
	 * order; 0: none), and the modules whose plans differ
	 * between the recipes they measured (known only when both runs kept
	 * their recipe). */
	int marked[2];
	struct {
		char module[96];
		char a[96], b[96];      /* each run's plan for it, in words */
	} *diffs;
	int n_diffs;
	bool diffs_known;

	/* The running job, as the header and status line show it. */
	struct {
		bool active;
		char name[32];
		char stage[64];
		double frac, elapsed, eta; /* eta < 0: unknown yet */
		int queued;
	} job;

	/* Layer inspector: the module whose weights are summarized. */
	char wstats_module[96];
	sl_weight_stats wstats;  /* n == 0 until computed */
	sl_act_profile *act;     /* activation statistics, NULL until gathered */
	const sl_act_channels *act_in; /* the inspected module's input in act, or NULL */
	sl_act_summary act_sum;        /* and its summary */
	const char *act_tap;           /* where that input is observed, in words */

	sl_gen_pane gen[2];      /* base, recipe */
	size_t gen_common;       /* bytes both continuations share from the start */
	char gen_prompt[1024];

	sl_heat heat;
	sl_healing heal;
	sl_training train;
	sl_speculation spec;
	sl_lesson_state lesson;
	unsigned generation;     /* counts the sessions installed */

	char message[512];       /* shown on the status line until the next key */
	bool message_error;

	bool utf8;               /* the terminal takes UTF-8: block glyphs for bars */
	char calib_path[4096], eval_path[4096]; /* resolved texts */
} sl_app;

#endif
