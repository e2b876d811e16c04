/* The screens of the workbench, each a small object behind one vtable (as
 * htop's panels are): it draws the application state into the rectangle
 * the shell gives it and turns keys into commands. A new screen is a new
 * views/view-NAME.c exporting one sl_view_class, listed once in the
 * shell's view table. */
#ifndef SL_VIEW_H
#define SL_VIEW_H

#include <stdbool.h>
#include <stddef.h>

#include "app.h"
#include "draw.h"

/* One line of a view's key help ('?'). */
typedef struct {
	const char *keys;
	const char *what;
} sl_keyhelp;

typedef struct sl_view_class {
	const char *name;           /* in commands and session files: "model" */
	const char *title;          /* on its tab: "Model" */
	const char *hints;          /* short key hints for the status line */
	const sl_keyhelp *keys;     /* ended by {NULL, NULL} */
	void *(*create)(void);
	void (*destroy)(void *self);
	/* Shown again: take the cursor from the session (optional). */
	void (*enter)(void *self, sl_app *app);
	/* Hidden, or the session is about to be written: record the cursor
	 * (optional). */
	void (*leave)(void *self, sl_app *app);
	void (*draw)(void *self, sl_app *app, sl_rect r);
	/* Returns whether the key was used. A command for the shell to run
	 * (as if typed after ':') goes into cmd; a view that wants the user to
	 * finish typing one starts it with ':' ("::rule add "). */
	bool (*key)(void *self, sl_app *app, const sl_key *k, char *cmd, size_t n);
} sl_view_class;

extern const sl_view_class sl_view_model, sl_view_layer, sl_view_recipe, sl_view_eval, sl_view_generate,
	sl_view_heatmap, sl_view_heal, sl_view_speculate, sl_view_train, sl_view_help, sl_view_open;

/* The help view lists every technique card (Enter opens one), the global
 * keys, every view's keys and the commands: the shell tells it which
 * exist. */
void sl_view_help_set(const sl_view_class *const *views, int n, const sl_keyhelp *global, const sl_keyhelp *commands);

/* --- common.c: what views share --- */
int sl_app_module_index(const sl_app *app, const char *name);
/* Whether module is the token embedding that is also the output head
 * (tied embeddings: one matrix, so one format for both). */
bool sl_app_tied(const sl_app *app, const char *module);
/* The module's name as a row shows it: "token_embd+output" when tied. */
const char *sl_app_module_label(const sl_app *app, const char *module, char *buf, size_t n);
/* What the views say of tied embeddings. */
#define SL_TIED_NOTE "token_embd is also the output head (tied embeddings): one matrix, one format"
/* A list view's cursor and scroll, kept in the session under the view's name. */
void sl_list_restore(sl_list *l, const sl_app *app, const char *view);
void sl_list_remember(const sl_list *l, sl_app *app, const char *view);
/* Selector text for a rule ("blk.*.ffn_down", "layers 2-4", "all"). */
void sl_rule_selector(const sl_rule *r, char *buf, size_t n);
/* The format/method/sparsity a rule sets, in one short phrase. */
void sl_rule_summary(const sl_rule *r, char *buf, size_t n);
/* The recipe in a few words, as the history table shows it: "FORMAT
 * METHOD", "all: FORMAT", "FORMAT +3 rules"; with healed (a label, or
 * NULL), "... + qad 300 steps". */
void sl_recipe_summary(const sl_recipe *r, const char *healed, char *buf, size_t n);
/* "FORMAT METHOD", "f32 as is", "FORMAT · 50% 2:4" for a resolved plan. */
void sl_plan_summary(const sl_module_plan *p, const sl_tensor *w, char *buf, size_t n);

/* The drafts the Speculate view cycles through, as :speculate names them:
 * the recipe (when it changes something), the format registry's drafts,
 * the first half of the blocks, prompt lookup. The first is the draft a
 * run takes when none is named. Returns how many (at most max). */
#define SL_SPEC_ARG 160
int sl_spec_sources(const sl_app *app, char (*out)[SL_SPEC_ARG], int max);

/* Menus of recipe choices, opened with the current value selected; a
 * chosen item becomes the "key=value ..." words of a rule command. */
typedef enum { SL_PICK_FORMAT = 1, SL_PICK_METHOD, SL_PICK_SPARSITY, SL_PICK_PATTERN, SL_PICK_PRUNE } sl_pick;
void sl_pick_open(sl_menu *m, sl_pick what, const char *current);
/* The format menu, each format with the bits per weight and bytes it
 * gives the modules scope selects, and where some cannot hold it, the
 * format they fall back to. */
void sl_pick_format(sl_menu *m, const sl_app *app, const sl_rule *scope, const char *current);
void sl_pick_words(const sl_menu *m, int item, char *buf, size_t n);
/* The items of a menu (built from the registries), for completion. */
int sl_pick_items(sl_pick what, const char *const **items);

/* Technique cards, which '?' opens where one is under the cursor: the
 * command that shows a card ("card KIND NAME"), false when the entry has
 * none; the card of a pick menu's item under its cursor; the card of what
 * a rule (or a sweep's option) does that matters most. */
bool sl_card_cmd(sl_card_kind kind, const char *name, char *cmd, size_t n);
bool sl_pick_card_cmd(const sl_menu *m, char *cmd, size_t n);
bool sl_rule_card_cmd(const sl_rule *r, char *cmd, size_t n);
/* A card laid out in r (headings and wrapped text), its rows from top on;
 * returns the rows it needs (draw false: only counts them). */
int sl_card_draw(const sl_card *c, sl_rect r, int top, bool draw);

#endif
