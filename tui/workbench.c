/* The workbench: startup (a model, a session, a crashed session to
 * recover, or the file picker), the main loop that waits on the terminal
 * and the self-pipe together, the frame around the views (header, tabs,
 * status line with job progress, overlays), and where keys go. */
#define _GNU_SOURCE
#include <curses.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <locale.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termkey.h>
#include <unistd.h>

#include "core/fileio.h"
#include "core/units.h"
#include "tui.h"

/* Tab order; the file picker comes last and has no tab. */
static const sl_view_class *const view_table[] = {
	&sl_view_model, &sl_view_layer, &sl_view_recipe, &sl_view_eval, &sl_view_generate, &sl_view_heatmap,
	&sl_view_heal, &sl_view_speculate, &sl_view_train, &sl_view_help, &sl_view_open,
};
#define N_VIEWS ((int)(sizeof view_table / sizeof view_table[0]))
#define N_TABS (N_VIEWS - 1)

static const sl_keyhelp global_keys[] = {
	{"1-9 0  Tab  Shift-Tab", "switch views (or click a tab)"},
	{"?", "the card of what is under the cursor (a menu item, a column, a figure), else the keys of this view"},
	{"F1", "the keys of this view"},
	{":", "command line (Tab completes, Up recalls)"},
	{"o", "open a model or a session"},
	{"u / U  Ctrl-R", "undo / redo a recipe change"},
	{"Ctrl-S", "save the session (asks for a name the first time)"},
	{"Esc  Ctrl-C", "cancel the running job"},
	{"Ctrl-L", "redraw the screen"},
	{"q", "quit (asks when there are unsaved changes)"},
	{NULL, NULL},
};

static const char usage[] =
	"Usage: slimlab [--palette default|contrast] [MODEL | --session FILE]\n"
	"Opens the workbench on MODEL (GGUF, safetensors or llama2.c), on a saved\n"
	"session, or on the workshop model that ships with slimlab (a file picker\n"
	"when it is absent). --palette contrast (or SLIMLAB_PALETTE=contrast) draws\n"
	"in high contrast, for projectors. See slimlab(1) for its keys, and\n"
	"'slimlab --help' for the command-line tools.\n";

/* The keys a question accepts: the letters in brackets ("[y]es  [n]o"). */
static bool ask_accepts(const sl_tui *t, int key)
{
	for (const char *p = t->ask.choices; (p = strchr(p, '[')); p++)
		if (p[1] == key)
			return true;
	return false;
}

/* Esc means the last choice (which is always the harmless one). */
static int ask_default(const sl_tui *t)
{
	const char *last = strrchr(t->ask.choices, '[');
	return last ? last[1] : 'n';
}

/* The inspector's figures are computed when it is first shown. */
static void view_shown(sl_tui *t)
{
	if (view_table[t->cur] == &sl_view_layer && t->app.n_mods) {
		const char *m = t->app.ses->view.inspect;
		sl_task_weight_stats(t, sl_app_module_index(&t->app, m) >= 0 ? m : t->app.mods[0].name);
	}
}

/* --- drawing ----------------------------------------------------------------- */

static void draw_too_small(void)
{
	/* Whatever fits of a short explanation, centred. */
	char l2[64];
	snprintf(l2, sizeof l2, "%dx%d, needs %dx%d", COLS, LINES, SL_MIN_COLS, SL_MIN_ROWS);
	const char *lines[] = {"Terminal too small", l2, "enlarge it or q"};
	int n = LINES < 3 ? LINES : 3, y0 = (LINES - n) / 2;
	for (int i = 0; i < n; i++) {
		int w = sl_text_width(lines[i]);
		int x = w < COLS ? (COLS - w) / 2 : 0;
		sl_text(y0 + i, x, COLS - x, i ? SL_R_NORMAL : SL_R_BAD, lines[i]);
	}
}

/* The running job, right-aligned on the header row from column right
 * leftwards: " name [bar] 45%  ETA 0:12  stage  Esc cancels", dropping the
 * stage, then the hint, then the bar until it fits in budget columns.
 * Returns the columns it takes (0: nothing drawn when draw is false). */
static int job_progress(const sl_app *a, int budget, bool draw)
{
	char name[48], eta[16], tail[160];
	snprintf(name, sizeof name, " ● %s ", a->job.name);
	sl_fmt_duration(a->job.eta, eta, sizeof eta);
	const char *hint = a->job.queued ? "  Esc cancels (more queued) " : "  Esc cancels ";
	int bw = 0, used = 0;
	for (int drop = 0; drop < 4; drop++) {
		bw = drop < 3 ? (COLS >= 120 ? 20 : 10) : 0;
		snprintf(tail, sizeof tail, " %3.0f%%  ETA %s%s%s%s", 100 * a->job.frac, a->job.eta >= 0 ? eta : "--:--",
		         drop < 1 ? "  " : "", drop < 1 ? a->job.stage : "", drop < 2 ? hint : " ");
		used = sl_text_width(name) + bw + sl_text_width(tail);
		if (used <= budget)
			break;
	}
	if (!draw)
		return used;
	int x = COLS - used;
	x += sl_text(0, x, COLS - x, SL_R_BAR_KEY, name);
	if (bw)
		sl_bar(0, x, bw, a->job.frac, SL_R_FILL, SL_R_EMPTY);
	sl_text(0, x + bw, COLS - x - bw, SL_R_BAR, tail);
	return used;
}

/* The header: slimlab, the model, the recipe; at the right the session's
 * file, or while a job runs its progress (which the left side makes room
 * for, keeping the model's name). */
static void draw_header(sl_tui *t)
{
	sl_app *a = &t->app;
	sl_fill(0, 0, COLS, SL_R_BAR);
	int right = a->job.active ? job_progress(a, COLS - 28, false) : 0, lw = COLS - right - 1;
	int x = sl_text(0, 0, lw, SL_R_BAR_KEY, " slimlab ");
	if (a->model) {
		x += sl_textf(0, x, lw - x, SL_R_BAR, " %s ", a->model_name);
		const sl_recipe *r = a->ses->recipe;
		x += sl_textf(0, x, lw - x, SL_R_BAR, "%s recipe%s%s%s", a->utf8 ? "│" : "|", r->name[0] ? " " : "", r->name,
		              a->recipe_empty ? " (changes nothing)" : "");
		if (!a->recipe_empty)
			x += sl_textf(0, x, lw - x, SL_R_BAR, " %.2f bpw", a->est.bpw);
		if (a->ses->healed.model[0])
			x += sl_textf(0, x, lw - x, SL_R_BAR, ", healed %s", a->ses->healed.label);
	}
	if (a->job.active) {
		job_progress(a, COLS - 28, true);
		return;
	}
	if (!a->model || COLS - x - 3 < 1)
		return;
	/* The session's file: a long path keeps its file name. */
	char path[160];
	sl_path_fit(a->ses->path[0] ? a->ses->path : "unsaved session", COLS - x - 3 - (a->ses->dirty ? 2 : 0), path,
	            sizeof path);
	char label[200];
	snprintf(label, sizeof label, " %s%s ", path, a->ses->dirty ? " *" : "");
	int rw = sl_text_width(label);
	sl_text(0, COLS - rw, rw, SL_R_BAR, label);
}

/* The tabs, " 1 Model " with a space between them; on narrower screens
 * without the space, then without the space after each title, then with
 * the titles cut to the length that fits. */
static int tabs_width(int cut, int pad)
{
	int full = 0;
	for (int i = 0; i < N_TABS; i++) {
		int w = sl_text_width(view_table[i]->title);
		full += (w < cut ? w : cut) + pad;
	}
	return full;
}

static void draw_tabs(sl_tui *t)
{
	int cut = 64, pad = 4;
	int gap = tabs_width(cut, pad) + N_TABS <= COLS ? 1 : 0;
	if (tabs_width(cut, pad) > COLS)
		pad = 3;
	while (cut > 1 && tabs_width(cut, pad) > COLS)
		cut--;
	int x = 0;
	for (int i = 0; i < N_TABS && x < COLS; i++) {
		t->tab_x[i] = x;
		x += sl_textf(1, x, COLS - x, i == t->cur ? SL_R_TAB_ACTIVE : SL_R_DIM, " %d %.*s%s", (i + 1) % 10, cut,
		              view_table[i]->title, pad == 4 ? " " : "");
		x += sl_text(1, x, gap, SL_R_NORMAL, " ");
	}
	t->tab_x[N_TABS] = x;
}

/* A framed box with text word-wrapped into it and a last line of
 * choices (or nothing); centred, or at the bottom above the status line. */
static void draw_text_box(const char *title, const char *text, sl_role role, const char *footer, bool bottom)
{
	int w = COLS - 4 < 76 ? COLS - 4 : 76;
	char lines[8][128];
	int n = 0;
	const char *p = text;
	while (*p && n < 8) {
		int len = (int)strlen(p), cut = len;
		if (len > w - 4) {
			cut = w - 4;
			while (cut > 0 && p[cut] != ' ')
				cut--;
			if (cut == 0)
				cut = w - 4;
		}
		snprintf(lines[n++], sizeof lines[0], "%.*s", cut, p);
		p += cut;
		while (*p == ' ')
			p++;
	}
	int h = n + (footer ? 4 : 2);
	sl_rect r = {bottom ? LINES - 1 - h : (LINES - h) / 2, (COLS - w) / 2, h, w};
	for (int i = 0; i < r.h; i++)
		sl_fill(r.y + i, r.x, r.w, SL_R_MENU);
	sl_frame(r, title, SL_R_MENU);
	for (int i = 0; i < n; i++)
		sl_text(r.y + 1 + i, r.x + 2, r.w - 4, role, lines[i]);
	if (footer)
		sl_text(r.y + 2 + n, r.x + 2, r.w - 4, SL_R_ACCENT, footer);
}

/* An error too long for the status line, shown whole in a box above it:
 * the next key only closes it. */
static bool message_box(const sl_tui *t)
{
	const sl_app *a = &t->app;
	return !t->cl.active && a->message[0] && a->message_error && sl_text_width(a->message) > COLS - 2;
}

/* A question, a long error, the key overlay or a card is over the view. */
static bool popup_shown(const sl_tui *t)
{
	return t->ask.active || message_box(t) || t->help || t->card.card;
}

/* The key bar: the view's hints and the global ones, each whole; the
 * view's last hints give way first on narrow screens. */
static void draw_hints(const char *view_hints, int y, int x, int w)
{
	static const char global[] = "  ? keys  : command  q quit";
	char line[512];
	int n = snprintf(line, sizeof line, "%s", view_hints);
	while (n > 0 && sl_text_width(line) + sl_text_width(global) > w) {
		char *cut = line;
		for (char *p = line; (p = strstr(p, "  ")); p += 2)
			cut = p;
		*cut = 0;
		n = (int)(cut - line);
	}
	int used = sl_text(y, x, w, SL_R_BAR, line);
	sl_text(y, x + used, w - used, SL_R_BAR, n ? global : global + 2);
}

static void draw_status(sl_tui *t)
{
	sl_app *a = &t->app;
	int y = LINES - 1;
	if (t->cl.active) {
		/* Completions and errors show above the line being edited. */
		if (a->message[0]) {
			sl_fill(y - 1, 0, COLS, SL_R_BAR);
			sl_text(y - 1, 1, COLS - 2, a->message_error ? SL_R_BAD : SL_R_BAR, a->message);
		}
		sl_cmdline_draw(&t->cl, y, COLS);
		return;
	}
	sl_fill(y, 0, COLS, SL_R_BAR);
	int w = COLS - 1;
	if (message_box(t)) {
		/* An error too long for the line is shown whole, above it. */
		draw_text_box("error", a->message, SL_R_BAD, NULL, true);
		sl_text(y, 1, w, SL_R_BAR, "(any key closes the message)");
		return;
	}
	if (a->message[0]) {
		sl_text(y, 1, w, a->message_error ? SL_R_BAD : SL_R_BAR, a->message);
		return;
	}
	draw_hints(view_table[t->cur]->hints, y, 1, w);
}

static void draw_box_lines(const char *title, const sl_keyhelp *a, const sl_keyhelp *b, int top)
{
	int n = 0, kw = 0;
	for (const sl_keyhelp *k = a; k && k->keys; k++, n++)
		kw = sl_text_width(k->keys) > kw ? sl_text_width(k->keys) : kw;
	for (const sl_keyhelp *k = b; k && k->keys; k++, n++)
		kw = sl_text_width(k->keys) > kw ? sl_text_width(k->keys) : kw;
	int h = n + 4 < LINES - top - 1 ? n + 4 : LINES - top - 1, w = COLS - 8 < 84 ? COLS - 8 : 84;
	sl_rect r = {top, (COLS - w) / 2, h, w};
	for (int i = 0; i < r.h; i++)
		sl_fill(r.y + i, r.x, r.w, SL_R_MENU);
	sl_frame(r, title, SL_R_MENU);
	int y = r.y + 1;
	for (int pass = 0; pass < 2; pass++) {
		for (const sl_keyhelp *k = pass ? b : a; k && k->keys && y < r.y + r.h - 2; k++, y++) {
			sl_text(y, r.x + 2, kw, SL_R_ACCENT, k->keys);
			sl_text(y, r.x + 4 + kw, r.w - 6 - kw, SL_R_MENU, k->what);
		}
		if (!pass)
			y++;
	}
	sl_text(r.y + r.h - 1, r.x + 2, r.w - 4, SL_R_MENU, " any key closes ");
}

/* The card panel over the view: the card's title in its frame, its text
 * scrolling inside, and the keys it takes at the bottom. */
static void draw_card(sl_tui *t)
{
	int w = COLS < 92 ? COLS : 90, h = LINES - 3;
	sl_rect r = {2, (COLS - w) / 2, h, w};
	for (int i = 0; i < r.h; i++)
		sl_fill(r.y + i, r.x, r.w, SL_R_MENU);
	sl_frame(r, t->card.card->title, SL_R_MENU);
	sl_rect in = {r.y + 1, r.x + 2, r.h - 3, r.w - 4};
	int rows = sl_card_draw(t->card.card, in, 0, false), max = rows > in.h ? rows - in.h : 0;
	t->card.top = t->card.top < 0 ? 0 : t->card.top > max ? max : t->card.top;
	t->card.at = in;
	for (int i = 0; i < in.h; i++)
		sl_fill(in.y + i, in.x, in.w, SL_R_NORMAL);
	sl_card_draw(t->card.card, in, t->card.top, true);
	char foot[160];
	snprintf(foot, sizeof foot, " %s  Esc closes  %sF1 keys ", t->card.name, max ? "Up/Down PgUp/PgDn scroll  " : "");
	sl_text(r.y + r.h - 2, r.x + 2, r.w - 4, SL_R_ACCENT, foot);
	if (max)
		sl_textf(r.y + r.h - 1, r.x + r.w - 14, 12, SL_R_MENU, " %d/%d ", t->card.top + in.h < rows ? t->card.top + in.h : rows, rows);
}

/* Keys on the card panel: scrolling, F1 or ? the keys instead, ':' the
 * command line; anything else closes it. */
static void card_key(sl_tui *t, const sl_key *k)
{
	int page = t->card.at.h > 1 ? t->card.at.h - 1 : 1;
	switch (k->code) {
	case SL_KEY_UP: case 'k': t->card.top--; return;
	case SL_KEY_DOWN: case 'j': t->card.top++; return;
	case SL_KEY_PGUP: t->card.top -= page; return;
	case SL_KEY_PGDN: case ' ': t->card.top += page; return;
	case SL_KEY_HOME: case 'g': t->card.top = 0; return;
	case SL_KEY_END: case 'G': t->card.top = 1 << 20; return;
	case SL_KEY_MOUSE:
		if (k->button == SL_MOUSE_WHEEL_UP || k->button == SL_MOUSE_WHEEL_DOWN) {
			t->card.top += k->button == SL_MOUSE_WHEEL_UP ? -3 : 3;
			return;
		}
		break;
	}
	t->card.card = NULL;
	if (k->code == SL_KEY_F1 || k->code == '?')
		t->help = true;
	else if (k->code == ':' && !k->mods)
		sl_cmdline_open(&t->cl, "");
}

static void draw(sl_tui *t)
{
	erase();
	curs_set(0);
	if (COLS < SL_MIN_COLS || LINES < SL_MIN_ROWS) {
		draw_too_small();
		refresh();
		return;
	}
	draw_header(t);
	draw_tabs(t);
	sl_rect body = {2, 0, LINES - 3, COLS};
	int panel = sl_lesson_rows(t, body.h);
	body.h -= panel;
	view_table[t->cur]->draw(t->views[t->cur], &t->app, body);
	/* After the view, which may draw a row past its rectangle. */
	sl_lesson_draw(t, (sl_rect){body.y + body.h, 0, panel, COLS});
	if (t->card.card)
		draw_card(t);
	if (t->help)
		draw_box_lines(view_table[t->cur]->title, view_table[t->cur]->keys, global_keys, 3);
	if (t->ask.active)
		draw_text_box("slimlab asks", t->ask.text, SL_R_MENU, t->ask.choices, false);
	draw_status(t);
	if (t->cl.active)
		curs_set(1);
	refresh();
}

/* --- keys ------------------------------------------------------------------------ */

static void run_view_command(sl_tui *t, const char *cmd)
{
	if (cmd[0] == ':')
		sl_cmdline_open(&t->cl, cmd + 1);
	else if (cmd[0])
		sl_command(t, cmd);
}

static void answer_quit(sl_tui *t, int key, void *arg)
{
	(void)arg;
	if (key == 'y')
		sl_command(t, "quit");
}

static void interrupt(sl_tui *t)
{
	if (sl_jobs_cancel(&t->jobs))
		sl_tui_msg(t, false, "cancelling %s...", t->app.job.name);
	else if (!t->ask.active)
		sl_tui_ask(t, "[y]es  [n]o", answer_quit, NULL, "Quit slimlab?");
}

static bool global_key(sl_tui *t, const sl_key *k)
{
	if (k->code == SL_KEY_MOUSE) {
		if (k->y != 1 || k->button != SL_MOUSE_LEFT)
			return false;
		for (int i = 0; i < N_TABS; i++)
			if (k->x >= t->tab_x[i] && k->x < t->tab_x[i + 1])
				sl_tui_switch(t, i);
		return true;
	}
	if (k->mods & SL_KMOD_CTRL) {
		switch (k->code) {
		case 's': sl_command(t, "save"); return true;
		case 'r': sl_command(t, "redo"); return true;
		case 'l': clearok(curscr, TRUE); return true;
		}
		return false;
	}
	int tab = t->cur < N_TABS ? t->cur : t->back;
	switch (k->code) {
	case SL_KEY_TAB:
		sl_tui_switch(t, (tab + ((k->mods & SL_KMOD_SHIFT) ? N_TABS - 1 : 1)) % N_TABS);
		return true;
	case '?':
	case SL_KEY_F1:
		t->help = true;
		return true;
	case ':':
		sl_cmdline_open(&t->cl, "");
		return true;
	case 'o': sl_command(t, "open"); return true;
	case 'u': sl_command(t, "undo"); return true;
	case 'U': sl_command(t, "redo"); return true;
	case 'q': sl_command(t, "quit"); return true;
	case SL_KEY_ESC:
		if (sl_jobs_cancel(&t->jobs))
			sl_tui_msg(t, false, "cancelling %s...", t->app.job.name);
		else if (view_table[t->cur] == &sl_view_open && t->app.model)
			sl_tui_switch(t, t->back);
		return true;
	}
	/* 1-9 then 0, as the tabs are numbered. */
	int num = k->code >= '1' && k->code <= '9' ? k->code - '1' : k->code == '0' ? 9 : -1;
	if (num >= 0 && num < N_TABS) {
		sl_tui_switch(t, num);
		return true;
	}
	return false;
}

static void handle_key(sl_tui *t, const sl_key *k)
{
	bool ctrl_c = (k->mods & SL_KMOD_CTRL) && k->code == 'c';
	if (t->ask.active) {
		int key = k->code == SL_KEY_ESC || ctrl_c ? ask_default(t) : k->code;
		if (ask_accepts(t, key)) {
			t->ask.active = false;
			t->ask.answer(t, key, t->ask.arg);
		}
		return;
	}
	if (t->card.card && !t->cl.active && !message_box(t)) {
		t->app.message[0] = 0;
		card_key(t, k);
		return;
	}
	/* A key closes the error box or the key overlay and does nothing else,
	 * unless it is ':', which goes on to open the command line. */
	if (message_box(t) || (t->help && !t->cl.active)) {
		t->app.message[0] = 0;
		t->help = false;
		if (k->code == ':' && !k->mods)
			sl_cmdline_open(&t->cl, "");
		return;
	}
	t->app.message[0] = 0;
	if (ctrl_c && !t->cl.active) {
		interrupt(t);
		return;
	}
	if (t->cl.active) {
		switch (sl_cmdline_key(&t->cl, k)) {
		case SL_CL_SUBMIT: sl_command(t, t->cl.buf); break;
		case SL_CL_COMPLETE: sl_complete(t, &t->cl); break;
		}
		return;
	}
	if (COLS >= SL_MIN_COLS && LINES >= SL_MIN_ROWS) {
		char cmd[1200] = "";
		if (view_table[t->cur]->key(t->views[t->cur], &t->app, k, cmd, sizeof cmd)) {
			run_view_command(t, cmd);
			return;
		}
	}
	global_key(t, k);
}

/* --- startup and the loop ------------------------------------------------------- */

typedef struct {
	char model[PATH_MAX];
	char session[PATH_MAX];
	char lesson[PATH_MAX];
} start_args;

bool sl_workbench_view_known(const char *name)
{
	for (int i = 0; i < N_TABS; i++)
		if (!strcmp(view_table[i]->name, name))
			return true;
	return false;
}

static void begin(sl_tui *t, const start_args *a)
{
	char shipped[PATH_MAX];
	if (a->lesson[0])
		sl_lesson_start(t, a->lesson);
	else if (a->session[0])
		sl_task_open_session(t, a->session);
	else if (a->model[0])
		sl_task_open_model(t, a->model);
	else if (sl_shipped_find(SL_SHIPPED_MODEL, shipped, sizeof shipped, NULL) == SL_OK)
		sl_task_open_model(t, shipped);
	else
		sl_tui_show(t, "open");
}

typedef struct {
	start_args args;
	char orphan[PATH_MAX];
} recovery;

static void answer_recover(sl_tui *t, int key, void *arg)
{
	recovery *r = arg;
	if (key == 'r') {
		sl_task_recover(t, r->orphan);
	} else {
		if (key == 'd')
			unlink(r->orphan);
		begin(t, &r->args);
	}
	free(r);
}

static void offer_recovery_or_begin(sl_tui *t, const start_args *a)
{
	recovery *r = calloc(1, sizeof *r);
	if (!r || !sl_autosave_find_orphan(r->orphan, sizeof r->orphan)) {
		free(r);
		begin(t, a);
		return;
	}
	r->args = *a;
	sl_session *s = NULL;
	char what[600] = "";
	if (sl_session_load(r->orphan, &s, NULL) == SL_OK) {
		snprintf(what, sizeof what, " (model %.250s, %d evaluation%s, %.250s)", s->model_path, s->n_runs,
		         s->n_runs == 1 ? "" : "s", s->path[0] ? s->path : "never saved");
		sl_session_free(s);
	}
	sl_tui_ask(t, "[r]estore  [d]iscard it  [l]ater", answer_recover, r,
	           "slimlab did not exit cleanly last time. Restore the session it was working on%s?", what);
}

/* The keys of one read. Once a popup has been over the view during it
 * (one was up when a key came, or a key raised one), the rest of the
 * read was typed ahead of it: it goes to the command line when that is
 * open, and is dropped otherwise, so that it neither answers a question
 * nobody saw nor runs as the view's keys. */
static void read_keys(sl_tui *t, bool *pending)
{
	TermKeyKey tk;
	TermKeyResult r;
	bool typed_ahead = false;
	*pending = false;
	while ((r = termkey_getkey(t->tk, &tk)) == TERMKEY_RES_KEY) {
		sl_key k;
		if (!sl_screen_translate(t, &tk, &k) || (typed_ahead && !t->cl.active))
			continue;
		bool before = popup_shown(t);
		handle_key(t, &k);
		typed_ahead = typed_ahead || before || popup_shown(t);
	}
	if (r == TERMKEY_RES_AGAIN)
		*pending = true;
	else if (r == TERMKEY_RES_EOF)
		t->quit = true; /* the terminal went away */
}

/* Returns the terminating signal that ended the loop, or 0. */
static int loop(sl_tui *t)
{
	bool pending = false;
	int terminated = 0;
	while (!t->quit) {
		sl_error err = {0};
		if (sl_jobs_poll(&t->jobs, t, &err))
			sl_tui_msg(t, true, "%s", err.msg);
		sl_lesson_tick(t);
		draw(t);
		struct pollfd fds[2] = {{termkey_get_fd(t->tk), POLLIN, 0}, {t->wake[0], POLLIN, 0}};
		int timeout = pending ? termkey_get_waittime(t->tk) : t->app.job.active ? 250 : -1;
		int hint = sl_lesson_wait_ms(t);
		if (hint >= 0 && (timeout < 0 || hint < timeout))
			timeout = hint;
		int n = poll(fds, 2, timeout);
		if (n < 0 && errno != EINTR)
			break;
		if (n == 0 && pending) {
			TermKeyKey tk;
			sl_key k;
			if (termkey_getkey_force(t->tk, &tk) == TERMKEY_RES_KEY && sl_screen_translate(t, &tk, &k))
				handle_key(t, &k);
			pending = false;
		}
		if (n > 0 && fds[0].revents) {
			termkey_advisereadable(t->tk);
			read_keys(t, &pending);
		}
		if (n > 0 && fds[1].revents) {
			char buf[64];
			ssize_t got;
			while ((got = read(t->wake[0], buf, sizeof buf)) > 0)
				for (ssize_t i = 0; i < got; i++) {
					if (buf[i] == 'w')
						sl_screen_resize(t);
					else if (buf[i] == 'c')
						interrupt(t);
					else if (buf[i] > 0 && buf[i] < 32) {
						terminated = buf[i];
						t->quit = true;
					}
				}
		}
	}
	return terminated;
}

int sl_workbench_main(int argc, char **argv)
{
	start_args args = {{0}, {0}, {0}};
	/* SLIMLAB_PALETTE gives the default; --palette overrides it. */
	sl_palette_kind palette = SL_PALETTE_DEFAULT;
	const char *env_palette = getenv("SLIMLAB_PALETTE");
	if (env_palette && *env_palette && !sl_palette_parse(env_palette, &palette)) {
		fprintf(stderr, "slimlab: SLIMLAB_PALETTE is default or contrast, not '%s'\n", env_palette);
		return 2;
	}
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--session") && i + 1 < argc) {
			snprintf(args.session, sizeof args.session, "%s", argv[++i]);
		} else if (!strcmp(argv[i], "--palette") && i + 1 < argc) {
			if (!sl_palette_parse(argv[++i], &palette)) {
				fprintf(stderr, "slimlab: --palette takes default or contrast, not '%s'\n", argv[i]);
				return 2;
			}
		} else if (!strcmp(argv[i], "--lesson") && i + 1 < argc) {
			snprintf(args.lesson, sizeof args.lesson, "%s", argv[++i]);
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(usage, stdout);
			return 0;
		} else if (argv[i][0] != '-' && !args.model[0]) {
			snprintf(args.model, sizeof args.model, "%s", argv[i]);
		} else {
			fprintf(stderr, "slimlab: unexpected '%s'\n%s", argv[i], usage);
			return 2;
		}
	}
	if (args.model[0] && args.session[0]) {
		fprintf(stderr, "slimlab: give a model or --session, not both (a session names its model)\n");
		return 2;
	}
	setlocale(LC_ALL, "");
	static sl_tui tui;
	sl_tui *t = &tui;
	if (pipe2(t->wake, O_NONBLOCK | O_CLOEXEC) != 0) {
		perror("slimlab: pipe");
		return 1;
	}
	sl_jobs_init(&t->jobs, t->wake[1]);
	t->app.ses = sl_session_new();
	sl_speculation_init(&t->app.spec);
	t->classes = view_table;
	t->n_views = N_VIEWS;
	t->view_shown = view_shown;
	t->views = calloc(N_VIEWS, sizeof *t->views);
	bool ok = t->app.ses && t->views;
	for (int i = 0; ok && i < N_VIEWS; i++)
		ok = (t->views[i] = view_table[i]->create()) != NULL;
	if (!ok) {
		fprintf(stderr, "slimlab: out of memory\n");
		return 1;
	}
	sl_view_help_set(view_table, N_TABS, global_keys, sl_command_help());
	sl_heal_settings_init(&t->app.heal.set);
	sl_tui_recipe_refresh(t);

	sl_draw_palette(palette);
	sl_error err = {0};
	if (sl_screen_open(t, &err)) {
		fprintf(stderr, "slimlab: %s\n", err.msg);
		return 1;
	}
	offer_recovery_or_begin(t, &args);
	int terminated = loop(t);
	sl_jobs_shutdown(&t->jobs, t);
	/* A session with unsaved work stays recoverable after a kill; a clean
	 * quit (the user was asked about unsaved changes) leaves nothing. */
	if (!(terminated && t->app.ses->dirty))
		sl_autosave_remove();
	sl_screen_close(t);

	for (int i = 0; i < N_VIEWS; i++)
		view_table[i]->destroy(t->views[i]);
	free(t->views);
	sl_tui_release(t);
	sl_lesson_stop(t);
	sl_training_free(&t->app.train);
	sl_speculation_clear(&t->app.spec);
	close(t->wake[0]);
	close(t->wake[1]);
	if (terminated) {
		/* Die of the signal, now that the terminal is back, so that whoever
		 * sent it sees it did its work. */
		signal(terminated, SIG_DFL);
		raise(terminated);
	}
	return 0;
}
