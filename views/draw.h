/* Drawing for the workbench: colour roles that degrade from true colour to
 * 256, 8 and no colours, width-aware clipped text, bars, sparklines and
 * column charts, and the two widgets every view uses: a scrolling list
 * with a cursor and a pop-up menu. Draws on stdscr through ncursesw. */
#ifndef SL_DRAW_H
#define SL_DRAW_H

#include <stdbool.h>
#include <stddef.h>

#include "app.h"

typedef struct {
	int y, x, h, w;
} sl_rect;

/* What a piece of text is; the colour depth decides how it looks. */
typedef enum {
	SL_R_NORMAL, SL_R_DIM, SL_R_TITLE, SL_R_BAR, SL_R_BAR_KEY, SL_R_TAB_ACTIVE,
	SL_R_SELECTED, SL_R_ACCENT, SL_R_GOOD, SL_R_BAD, SL_R_WARN,
	SL_R_FILL, SL_R_EMPTY, SL_R_MENU, SL_R_MENU_SELECTED, SL_R_LEFT, SL_R_RIGHT,
	SL_R_REJECTED,  /* what was offered and turned down: a draft's rejected tokens */
	SL_R_COUNT
} sl_role;

/* After initscr: picks the colour depth (none when NO_COLOR is set or the
 * terminal has no colours) and whether block glyphs can be used. */
void sl_draw_init(bool utf8);

/* The colour palettes: the default one, and high contrast (white and
 * saturated colours on black, nothing dim) for projectors. Chosen before
 * sl_draw_init or at any time after it; the screen is redrawn next. */
typedef enum { SL_PALETTE_DEFAULT = 0, SL_PALETTE_CONTRAST, SL_PALETTES } sl_palette_kind;
void sl_draw_palette(sl_palette_kind kind);
sl_palette_kind sl_draw_palette_kind(void);
/* "default", "contrast"; false for any other name. */
const char *sl_palette_name(sl_palette_kind kind);
bool sl_palette_parse(const char *name, sl_palette_kind *kind);
void sl_role_set(sl_role r);

/* Text clipped to w columns (wide characters count twice); returns the
 * columns used. */
int sl_text(int y, int x, int w, sl_role r, const char *s);
int sl_textf(int y, int x, int w, sl_role r, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Display width of UTF-8 text. */
int sl_text_width(const char *s);
/* A path in at most w columns: whole when it fits, else an ellipsis and
 * as much of its end as fits, so the file name stays whole where it can. */
void sl_path_fit(const char *path, int w, char *buf, size_t n);
void sl_fill(int y, int x, int w, sl_role r);
/* Text laid out in r, wrapping at spaces (inside words only when a word
 * is wider than r) and at newlines; role(ctx, i) colours byte i. Returns
 * the rows the text needs; with draw, shows them from row first on. */
int sl_wrap(sl_rect r, const char *text, size_t len, sl_role (*role)(const void *ctx, size_t i), const void *ctx,
            int first, bool draw);
/* The same, drawn so that its end shows (its last r.h rows). */
void sl_wrap_end(sl_rect r, const char *text, size_t len, sl_role (*role)(const void *ctx, size_t i), const void *ctx);
/* A box's frame with a title in its top edge. */
void sl_frame(sl_rect r, const char *title, sl_role role);

/* A horizontal bar w cells wide filled to frac. */
void sl_bar(int y, int x, int w, double frac, sl_role fill, sl_role empty);
/* One row of n values squeezed (maximum per cell) into w cells; values at
 * or below lo draw blank. log: on a log scale. */
void sl_spark(int y, int x, int w, const double *v, int n, bool log, sl_role r);
/* Columns in r, one per group of values (their mean), heights to the maximum. */
void sl_columns(sl_rect r, const double *v, int n, bool log, sl_role role);
/* A curve of n values (those at or below 0 missing) as columns in r that
 * rise from just under its lowest value, so that its fall is what one
 * sees, its highest and lowest values labelled in the label_w columns left
 * of r. The x axis holds span values: more than n leaves the rest of a run
 * still to come blank. */
void sl_curve(sl_rect r, int label_w, const double *v, int n, int span, sl_role role);

/* A continuous scale, as a heatmap draws it: t in [0, 1] becomes the
 * palette's colour behind the cell (true colour, the nearest of the
 * 256-colour cube and greys, or five of the 8 basic colours, coarsely),
 * or, where colours are missing, glyphs of increasing density. */
void sl_scale_set(void (*palette)(double t, int rgb[3]));
/* A cell w columns wide; text (or NULL) is written on the colour, and
 * left out when the scale is drawn in glyphs. */
void sl_scale_cell(int y, int x, int w, double t, const char *text);

/* A cursor over n rows shown rows at a time. */
typedef struct {
	int n, cursor, top, rows;
} sl_list;

/* Keeps the cursor in range and on screen. */
void sl_list_fit(sl_list *l, int n, int rows);
/* Moves on Up/Down/j/k/PgUp/PgDn/Home/End/g/G and the mouse wheel. */
bool sl_list_key(sl_list *l, const sl_key *k);
/* A left click on a row of the list drawn at r: moves the cursor there. */
bool sl_list_click(sl_list *l, const sl_key *k, sl_rect r);

/* A pop-up menu. Typing filters it: the items shown hold the letters
 * typed, in order (fuzzy), Backspace takes one back; arrows, PgUp/PgDn,
 * Home/End and the wheel move, Enter (Space, Right, a click) chooses. */
#define SL_MENU_MAX 64

typedef struct {
	bool open;
	char title[48];
	const char *const *items;
	const char *const *notes; /* a line per item, or NULL */
	int n;                    /* at most SL_MENU_MAX */
	int tag;                  /* what the view opened it for */
	char filter[32];          /* typed so far */
	int shown[SL_MENU_MAX];   /* the items that match it, in order */
	int n_shown;
	sl_list list;             /* over the items shown */
	sl_rect at;               /* where it was drawn, for clicks */
	char note_buf[SL_MENU_MAX][128]; /* notes the opener computed (notes may point here) */
	const char *note_ptr[SL_MENU_MAX];
} sl_menu;

void sl_menu_open(sl_menu *m, const char *title, const char *const *items, const char *const *notes, int n,
                  int current, int tag);
enum { SL_MENU_OPEN = -1, SL_MENU_CLOSED = -2, SL_MENU_CARD = -3 };
/* SL_MENU_OPEN, SL_MENU_CLOSED (dismissed), SL_MENU_CARD ('?': the card
 * of the item under the cursor is wanted; the menu stays open), or the
 * chosen item (its index in items). */
int sl_menu_key(sl_menu *m, const sl_key *k);
/* The item under the menu's cursor (its index in items), or -1. */
int sl_menu_current(const sl_menu *m);
/* Drawn centred in area. */
void sl_menu_draw(sl_menu *m, sl_rect area);

#endif
