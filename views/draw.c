/* Colour roles, clipped text, bars and charts, lists and menus. */
#define _GNU_SOURCE
#include "draw.h"

#include <ctype.h>
#include <curses.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

/* Each role: colours as 0xRRGGBB for 256 and true colour (-1 = the
 * terminal's default), the nearest of the 8 basic colours, extra
 * attributes with colour, and the attributes that stand in for colour on a
 * monochrome terminal. */
typedef struct {
	int fg, bg;
	short fg8, bg8;
	attr_t attr, mono;
} role_def;

static const role_def roles[SL_R_COUNT] = {
	[SL_R_NORMAL] = {-1, -1, -1, -1, 0, 0},
	[SL_R_DIM] = {0x8a8a8a, -1, -1, -1, 0, A_DIM},
	[SL_R_TITLE] = {0x87afff, -1, COLOR_CYAN, -1, A_BOLD, A_BOLD},
	[SL_R_BAR] = {0xe4e4e4, 0x264f78, COLOR_WHITE, COLOR_BLUE, 0, A_REVERSE},
	[SL_R_BAR_KEY] = {0xffd75f, 0x264f78, COLOR_YELLOW, COLOR_BLUE, A_BOLD, A_REVERSE | A_BOLD},
	[SL_R_TAB_ACTIVE] = {0x000000, 0x87d7ff, COLOR_BLACK, COLOR_CYAN, A_BOLD, A_BOLD | A_UNDERLINE},
	[SL_R_SELECTED] = {0xffffff, 0x005f87, COLOR_BLACK, COLOR_CYAN, 0, A_REVERSE},
	[SL_R_ACCENT] = {0x5fd7ff, -1, COLOR_CYAN, -1, 0, A_BOLD},
	[SL_R_GOOD] = {0x87d75f, -1, COLOR_GREEN, -1, 0, 0},
	[SL_R_BAD] = {0xff5f5f, -1, COLOR_RED, -1, A_BOLD, A_BOLD},
	[SL_R_WARN] = {0xffd75f, -1, COLOR_YELLOW, -1, 0, A_UNDERLINE},
	[SL_R_FILL] = {0x5faf5f, -1, COLOR_GREEN, -1, 0, 0},
	[SL_R_EMPTY] = {0x4e4e4e, -1, -1, -1, A_DIM, A_DIM},
	[SL_R_MENU] = {0xe4e4e4, 0x303030, COLOR_WHITE, COLOR_BLUE, 0, 0},
	[SL_R_MENU_SELECTED] = {0x000000, 0x87d7ff, COLOR_BLACK, COLOR_CYAN, 0, A_REVERSE},
	[SL_R_LEFT] = {0x87afff, -1, COLOR_BLUE, -1, A_BOLD, A_BOLD},
	[SL_R_RIGHT] = {0xffaf5f, -1, COLOR_MAGENTA, -1, A_BOLD, A_BOLD},
	[SL_R_REJECTED] = {0xaf5f5f, -1, COLOR_RED, -1, A_DIM, A_DIM},
};

/* The high-contrast palette, for projectors and bright rooms: white and
 * saturated colours on black, no dim text, reverse video for bars. */
static const role_def roles_contrast[SL_R_COUNT] = {
	[SL_R_NORMAL] = {0xffffff, 0x000000, COLOR_WHITE, COLOR_BLACK, A_BOLD, 0},
	[SL_R_DIM] = {0xd0d0d0, 0x000000, COLOR_WHITE, COLOR_BLACK, 0, 0},
	[SL_R_TITLE] = {0xffff00, 0x000000, COLOR_YELLOW, COLOR_BLACK, A_BOLD, A_BOLD | A_UNDERLINE},
	[SL_R_BAR] = {0x000000, 0xffffff, COLOR_BLACK, COLOR_WHITE, A_BOLD, A_REVERSE},
	[SL_R_BAR_KEY] = {0x000000, 0xffff00, COLOR_BLACK, COLOR_YELLOW, A_BOLD, A_REVERSE | A_BOLD},
	[SL_R_TAB_ACTIVE] = {0x000000, 0xffff00, COLOR_BLACK, COLOR_YELLOW, A_BOLD, A_REVERSE | A_BOLD},
	[SL_R_SELECTED] = {0x000000, 0x00ffff, COLOR_BLACK, COLOR_CYAN, A_BOLD, A_REVERSE | A_BOLD},
	[SL_R_ACCENT] = {0x00ffff, 0x000000, COLOR_CYAN, COLOR_BLACK, A_BOLD, A_BOLD},
	[SL_R_GOOD] = {0x00ff00, 0x000000, COLOR_GREEN, COLOR_BLACK, A_BOLD, A_BOLD},
	[SL_R_BAD] = {0xff5050, 0x000000, COLOR_RED, COLOR_BLACK, A_BOLD, A_BOLD | A_UNDERLINE},
	[SL_R_WARN] = {0xffff00, 0x000000, COLOR_YELLOW, COLOR_BLACK, A_BOLD | A_UNDERLINE, A_UNDERLINE},
	[SL_R_FILL] = {0x00ff00, 0x000000, COLOR_GREEN, COLOR_BLACK, A_BOLD, A_BOLD},
	[SL_R_EMPTY] = {0x808080, 0x000000, COLOR_WHITE, COLOR_BLACK, 0, 0},
	[SL_R_MENU] = {0xffffff, 0x00005f, COLOR_WHITE, COLOR_BLUE, A_BOLD, A_BOLD},
	[SL_R_MENU_SELECTED] = {0x000000, 0xffff00, COLOR_BLACK, COLOR_YELLOW, A_BOLD, A_REVERSE | A_BOLD},
	[SL_R_LEFT] = {0x00ffff, 0x000000, COLOR_CYAN, COLOR_BLACK, A_BOLD, A_BOLD},
	[SL_R_RIGHT] = {0xffff00, 0x000000, COLOR_YELLOW, COLOR_BLACK, A_BOLD, A_BOLD | A_UNDERLINE},
	[SL_R_REJECTED] = {0xff5050, 0x000000, COLOR_RED, COLOR_BLACK, A_BOLD | A_UNDERLINE, A_UNDERLINE},
};

static const char *const palette_names[SL_PALETTES] = {"default", "contrast"};

enum { SCALE_STEPS = 16, SCALE_STEPS_8 = 5, SCALE_GLYPHS = 5 };

static struct {
	int depth;
	bool utf8;
	sl_palette_kind palette_kind;
	int pair[SL_R_COUNT];
	attr_t attr[SL_R_COUNT];
	void (*palette)(double t, int rgb[3]);
	int scale_pair[SCALE_STEPS];
	int scale_steps;        /* 0: glyph density */
} D;

/* The xterm 256-colour index nearest to rgb: the 6x6x6 cube or the grey ramp. */
static int rgb_to_256(int rgb)
{
	int r = rgb >> 16 & 255, g = rgb >> 8 & 255, b = rgb & 255;
	static const int lv[6] = {0, 95, 135, 175, 215, 255};
	int ci[3], c[3] = {r, g, b};
	for (int k = 0; k < 3; k++) {
		int best = 0;
		for (int i = 1; i < 6; i++)
			if (abs(lv[i] - c[k]) < abs(lv[best] - c[k]))
				best = i;
		ci[k] = best;
	}
	int cube = 16 + 36 * ci[0] + 6 * ci[1] + ci[2];
	int dc = (lv[ci[0]] - r) * (lv[ci[0]] - r) + (lv[ci[1]] - g) * (lv[ci[1]] - g) + (lv[ci[2]] - b) * (lv[ci[2]] - b);
	int avg = (r + g + b) / 3, gi = avg < 8 ? 0 : avg > 238 ? 23 : (avg - 8) / 10;
	int gv = 8 + 10 * gi;
	int dg = (gv - r) * (gv - r) + (gv - g) * (gv - g) + (gv - b) * (gv - b);
	return dg < dc ? 232 + gi : cube;
}

static int map_colour(int rgb, short c8)
{
	if (D.depth == 8)
		return c8;
	if (rgb < 0)
		return -1;
	return D.depth >= 0x1000000 ? rgb : rgb_to_256(rgb);
}

void sl_draw_init(bool utf8)
{
	D.utf8 = utf8;
	const char *no_color = getenv("NO_COLOR");
	D.depth = 0;
	if (has_colors() && !(no_color && *no_color) && start_color() == OK) {
		use_default_colors();
		D.depth = COLORS >= 0x1000000 ? 0x1000000 : COLORS >= 256 ? 256 : COLORS >= 8 ? 8 : 0;
	}
	sl_draw_palette(D.palette_kind);
}

/* The roles' colour pairs and attributes from the palette's table; the
 * screen's background takes the normal role's (black in high contrast). */
void sl_draw_palette(sl_palette_kind kind)
{
	D.palette_kind = kind == SL_PALETTE_CONTRAST ? kind : SL_PALETTE_DEFAULT;
	const role_def *table = D.palette_kind == SL_PALETTE_CONTRAST ? roles_contrast : roles;
	for (int r = 0; r < SL_R_COUNT; r++) {
		D.pair[r] = 0;
		D.attr[r] = table[r].mono;
		if (!D.depth)
			continue;
		D.attr[r] = table[r].attr;
		int fg = map_colour(table[r].fg, table[r].fg8), bg = map_colour(table[r].bg, table[r].bg8);
		if (fg < 0 && bg < 0)
			continue;
		int p = alloc_pair(fg, bg);
		if (p > 0)
			D.pair[r] = p;
		else
			D.attr[r] = table[r].mono; /* out of pairs: fall back to attributes */
	}
	if (stdscr)
		bkgdset((chtype)COLOR_PAIR(D.pair[SL_R_NORMAL]) | ' ');
}

sl_palette_kind sl_draw_palette_kind(void)
{
	return D.palette_kind;
}

const char *sl_palette_name(sl_palette_kind kind)
{
	return kind >= 0 && kind < SL_PALETTES ? palette_names[kind] : NULL;
}

bool sl_palette_parse(const char *name, sl_palette_kind *kind)
{
	for (int i = 0; name && i < SL_PALETTES; i++)
		if (!strcmp(name, palette_names[i])) {
			*kind = (sl_palette_kind)i;
			return true;
		}
	return false;
}

void sl_scale_set(void (*palette)(double t, int rgb[3]))
{
	if (palette == D.palette)
		return;
	D.palette = palette;
	D.scale_steps = 0;
	if (!D.depth)
		return;
	/* Eight colours hold five coarse steps along the palette's hues. */
	static const short hue8[SCALE_STEPS_8] = {COLOR_MAGENTA, COLOR_BLUE, COLOR_CYAN, COLOR_GREEN, COLOR_YELLOW};
	int n = D.depth == 8 ? SCALE_STEPS_8 : SCALE_STEPS;
	for (int i = 0; i < n; i++) {
		int fg, bg;
		if (D.depth == 8) {
			bg = hue8[i];
			fg = i < 2 ? COLOR_WHITE : COLOR_BLACK;
		} else {
			int c[3];
			palette((i + 0.5) / n, c);
			int rgb = c[0] << 16 | c[1] << 8 | c[2];
			/* Text stays readable: black on light colours, white on dark. */
			int ink = c[0] + c[1] + c[2] > 380 ? 0x000000 : 0xffffff;
			bg = map_colour(rgb, 0);
			fg = map_colour(ink, 0);
		}
		int p = alloc_pair(fg, bg);
		if (p <= 0)
			return; /* out of pairs: glyphs stand in */
		D.scale_pair[i] = p;
	}
	D.scale_steps = n;
}

void sl_scale_cell(int y, int x, int w, double t, const char *text)
{
	if (w <= 0 || y < 0 || y >= LINES || x < 0 || x >= COLS)
		return;
	if (x + w > COLS)
		w = COLS - x;
	if (!(t >= 0))
		t = 0;
	if (t > 1)
		t = 1;
	if (!D.scale_steps) {
		static const char *shades[SCALE_GLYPHS] = {"-", "░", "▒", "▓", "█"};
		static const char *ascii[SCALE_GLYPHS] = {"-", ":", "+", "#", "@"};
		int level = t >= 1 ? SCALE_GLYPHS - 1 : (int)(t * SCALE_GLYPHS);
		for (int i = 0; i < w; i++)
			sl_text(y, x + i, 1, SL_R_NORMAL, (D.utf8 ? shades : ascii)[level]);
		return;
	}
	int step = t >= 1 ? D.scale_steps - 1 : (int)(t * D.scale_steps);
	attr_set(A_NORMAL, (short)D.scale_pair[step], NULL);
	mvhline(y, x, ' ', w);
	if (text) {
		int tw = sl_text_width(text);
		if (tw <= w) {
			move(y, x + (w - tw) / 2);
			addstr(text);
		}
	}
	sl_role_set(SL_R_NORMAL);
}

void sl_role_set(sl_role r)
{
	attr_set(D.attr[r], (short)D.pair[r], NULL);
}

int sl_text_width(const char *s)
{
	mbstate_t ps;
	memset(&ps, 0, sizeof ps);
	int w = 0;
	size_t len = strlen(s);
	while (len) {
		wchar_t wc;
		size_t k = mbrtowc(&wc, s, len, &ps);
		if (k == (size_t)-1 || k == (size_t)-2) {
			memset(&ps, 0, sizeof ps);
			k = 1;
			wc = '?';
		}
		if (k == 0)
			break;
		int cw = wcwidth(wc);
		w += cw > 0 ? cw : 0;
		s += k;
		len -= k;
	}
	return w;
}

void sl_path_fit(const char *path, int w, char *buf, size_t n)
{
	const char *ell = D.utf8 ? "…" : "...";
	if (sl_text_width(path) <= w) {
		snprintf(buf, n, "%s", path);
		return;
	}
	/* The longest tail from a '/' on that fits after the ellipsis. */
	for (const char *p = strchr(path + 1, '/'); p; p = strchr(p + 1, '/')) {
		snprintf(buf, n, "%s%s", ell, p);
		if (sl_text_width(buf) <= w)
			return;
	}
	/* Not even the file name: its beginning, then the ellipsis. */
	const char *name = strrchr(path, '/');
	name = name ? name + 1 : path;
	int keep = (int)strlen(name);
	do
		snprintf(buf, n, "%.*s%s", keep, name, ell);
	while (keep-- > 0 && sl_text_width(buf) > w);
}

int sl_text(int y, int x, int w, sl_role r, const char *s)
{
	if (w <= 0 || y < 0 || y >= LINES || x < 0 || x >= COLS)
		return 0;
	if (x + w > COLS)
		w = COLS - x;
	sl_role_set(r);
	move(y, x);
	mbstate_t ps;
	memset(&ps, 0, sizeof ps);
	int used = 0;
	size_t len = strlen(s);
	while (len) {
		wchar_t wc;
		size_t k = mbrtowc(&wc, s, len, &ps);
		bool bad = k == (size_t)-1 || k == (size_t)-2;
		if (bad) {
			memset(&ps, 0, sizeof ps);
			k = 1;
		}
		if (k == 0)
			break;
		int cw = bad ? 1 : wcwidth(wc);
		if (cw < 0 || wc == '\t' || wc == '\n' || wc == '\r') {
			/* Control characters would move the cursor: show a space. */
			if (used + 1 > w)
				break;
			addch(' ');
			used++;
		} else if (cw > 0) {
			if (used + cw > w)
				break;
			if (bad)
				addch('?');
			else
				addnstr(s, (int)k);
			used += cw;
		}
		s += k;
		len -= k;
	}
	sl_role_set(SL_R_NORMAL);
	return used;
}

int sl_textf(int y, int x, int w, sl_role r, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	return sl_text(y, x, w, r, buf);
}

void sl_fill(int y, int x, int w, sl_role r)
{
	if (y < 0 || y >= LINES || x < 0 || x >= COLS || w <= 0)
		return;
	if (x + w > COLS)
		w = COLS - x;
	sl_role_set(r);
	mvhline(y, x, ' ', w);
	sl_role_set(SL_R_NORMAL);
}

void sl_frame(sl_rect r, const char *title, sl_role role)
{
	if (r.h < 2 || r.w < 2)
		return;
	const char *h = D.utf8 ? "─" : "-", *v = D.utf8 ? "│" : "|";
	const char *c[4] = {D.utf8 ? "┌" : "+", D.utf8 ? "┐" : "+", D.utf8 ? "└" : "+", D.utf8 ? "┘" : "+"};
	for (int x = 1; x < r.w - 1; x++) {
		sl_text(r.y, r.x + x, 1, role, h);
		sl_text(r.y + r.h - 1, r.x + x, 1, role, h);
	}
	for (int y = 1; y < r.h - 1; y++) {
		sl_text(r.y + y, r.x, 1, role, v);
		sl_text(r.y + y, r.x + r.w - 1, 1, role, v);
	}
	sl_text(r.y, r.x, 1, role, c[0]);
	sl_text(r.y, r.x + r.w - 1, 1, role, c[1]);
	sl_text(r.y + r.h - 1, r.x, 1, role, c[2]);
	sl_text(r.y + r.h - 1, r.x + r.w - 1, 1, role, c[3]);
	if (title && *title)
		sl_textf(r.y, r.x + 2, r.w - 4, SL_R_TITLE, " %s ", title);
}

void sl_bar(int y, int x, int w, double frac, sl_role fill, sl_role empty)
{
	if (!(frac >= 0))
		frac = 0;
	if (frac > 1)
		frac = 1;
	int full = (int)(frac * w + 0.5);
	for (int i = 0; i < w; i++) {
		if (D.utf8)
			sl_text(y, x + i, 1, i < full ? fill : empty, i < full ? "█" : "░");
		else
			sl_text(y, x + i, 1, i < full ? fill : empty, i < full ? "#" : ".");
	}
}

static const char *level_glyph(int level) /* 0..8 */
{
	static const char *blocks[9] = {" ", "▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"};
	static const char *ascii[9] = {" ", ".", ".", ":", ":", "+", "+", "#", "#"};
	return (D.utf8 ? blocks : ascii)[level < 0 ? 0 : level > 8 ? 8 : level];
}

/* Values resampled into w cells: the maximum or the mean of each cell's
 * share (a mean, not a sum, so cells that got one value more than their
 * neighbours do not stand out). */
static void resample(const double *v, int n, int w, bool mean, double *out)
{
	for (int c = 0; c < w; c++) {
		int a = (int)((long long)c * n / w), b = (int)((long long)(c + 1) * n / w);
		if (b <= a)
			b = a + 1;
		double acc = mean ? 0 : -INFINITY;
		int k = 0;
		for (int i = a; i < b && i < n; i++, k++)
			acc = mean ? acc + v[i] : (v[i] > acc ? v[i] : acc);
		out[c] = mean && k ? acc / k : acc;
	}
}

static double scaled(double v, double mx, bool log_scale)
{
	if (!(v > 0) || !(mx > 0))
		return 0;
	return log_scale ? log1p(v) / log1p(mx) : v / mx;
}

void sl_spark(int y, int x, int w, const double *v, int n, bool log_scale, sl_role r)
{
	if (w <= 0 || n <= 0)
		return;
	if (w > n)
		w = n;
	double *cells = malloc((size_t)w * sizeof *cells);
	if (!cells)
		return;
	resample(v, n, w, false, cells);
	double mx = 0;
	for (int i = 0; i < w; i++)
		mx = cells[i] > mx ? cells[i] : mx;
	for (int i = 0; i < w; i++) {
		double f = scaled(cells[i], mx, log_scale);
		sl_text(y, x + i, 1, r, level_glyph(f > 0 ? 1 + (int)(f * 7 + 0.5) : 0));
	}
	free(cells);
}

void sl_columns(sl_rect rc, const double *v, int n, bool log_scale, sl_role role)
{
	if (rc.w <= 0 || rc.h <= 0 || n <= 0)
		return;
	double *cells = malloc((size_t)rc.w * sizeof *cells);
	if (!cells)
		return;
	resample(v, n, rc.w, true, cells);
	double mx = 0;
	for (int i = 0; i < rc.w; i++)
		mx = cells[i] > mx ? cells[i] : mx;
	for (int i = 0; i < rc.w; i++) {
		int eighths = (int)(scaled(cells[i], mx, log_scale) * rc.h * 8 + 0.5);
		if (cells[i] > 0 && eighths == 0)
			eighths = 1; /* a nonzero bin never disappears */
		for (int row = 0; row < rc.h; row++) {
			int level = eighths - 8 * row;
			sl_text(rc.y + rc.h - 1 - row, rc.x + i, 1, role, level_glyph(level));
		}
	}
	free(cells);
}

/* --- wrapped text ------------------------------------------------------- */

/* Display width of one character at text (length k), or 0. */
static int char_width(const char *text, size_t len, size_t *k)
{
	mbstate_t ps;
	memset(&ps, 0, sizeof ps);
	wchar_t wc;
	*k = mbrtowc(&wc, text, len, &ps);
	if (*k == (size_t)-1 || *k == (size_t)-2 || *k == 0) {
		*k = 1;
		return 1;
	}
	if (wc == '\n')
		return 0;
	int w = wcwidth(wc);
	return w > 0 ? w : 0;
}

/* Width of the word starting at text (up to a space or newline). */
static int word_width(const char *text, size_t len)
{
	int w = 0;
	for (size_t i = 0, k; i < len && text[i] != ' ' && text[i] != '\n'; i += k)
		w += char_width(text + i, len - i, &k);
	return w;
}

int sl_wrap(sl_rect r, const char *text, size_t len, sl_role (*role)(const void *ctx, size_t i), const void *ctx,
            int first, bool draw)
{
	int row = 0, col = 0;
	size_t k;
	for (size_t i = 0; i < len; i += k) {
		int cw = char_width(text + i, len - i, &k);
		bool word_start = text[i] != ' ' && text[i] != '\n' && (i == 0 || text[i - 1] == ' ');
		int ww = word_start ? word_width(text + i, len - i) : 0;
		if (text[i] == '\n' || col + cw > r.w || (word_start && col > 0 && col + ww > r.w && ww <= r.w)) {
			row++;
			col = 0;
			if (text[i] == ' ' || text[i] == '\n')
				continue; /* a break swallows the space or newline it replaces */
		}
		if (cw > 0 && draw && row >= first && row - first < r.h) {
			char ch[8] = "?";
			if (k < sizeof ch) {
				memcpy(ch, text + i, k);
				ch[k] = 0;
			}
			sl_text(r.y + row - first, r.x + col, cw, role(ctx, i), ch);
		}
		col += cw;
	}
	return row + 1;
}

void sl_wrap_end(sl_rect r, const char *text, size_t len, sl_role (*role)(const void *ctx, size_t i), const void *ctx)
{
	if (r.w < 1 || r.h < 1)
		return;
	int rows = sl_wrap(r, text, len, role, ctx, 0, false);
	sl_wrap(r, text, len, role, ctx, rows > r.h ? rows - r.h : 0, true);
}

void sl_curve(sl_rect r, int label_w, const double *v, int n, int span, sl_role role)
{
	if (r.h < 1 || r.w < 1 || n <= 0)
		return;
	double lo = INFINITY, hi = -INFINITY;
	for (int i = 0; i < n; i++)
		if (v[i] > 0) {
			lo = fmin(lo, v[i]);
			hi = fmax(hi, v[i]);
		}
	span = span > n ? span : n;
	double *up = hi >= lo ? calloc((size_t)span, sizeof *up) : NULL;
	if (!up)
		return;
	double base = lo - 0.05 * (hi - lo + 1e-9);
	for (int i = 0; i < n; i++)
		up[i] = v[i] > 0 ? v[i] - base : 0;
	sl_textf(r.y, r.x - label_w, label_w - 1, SL_R_DIM, "%.3g", hi);
	if (r.h > 1)
		sl_textf(r.y + r.h - 1, r.x - label_w, label_w - 1, SL_R_DIM, "%.3g", lo);
	sl_columns(r, up, span, false, role);
	free(up);
}

/* --- list --------------------------------------------------------------- */

void sl_list_fit(sl_list *l, int n, int rows)
{
	l->n = n;
	l->rows = rows > 0 ? rows : 1;
	if (l->cursor >= n)
		l->cursor = n - 1;
	if (l->cursor < 0)
		l->cursor = 0;
	if (l->top > l->cursor)
		l->top = l->cursor;
	if (l->cursor >= l->top + l->rows)
		l->top = l->cursor - l->rows + 1;
	if (l->top > n - l->rows)
		l->top = n - l->rows;
	if (l->top < 0)
		l->top = 0;
}

bool sl_list_key(sl_list *l, const sl_key *k)
{
	int c = l->cursor;
	switch (k->code) {
	case SL_KEY_UP: case 'k': c--; break;
	case SL_KEY_DOWN: case 'j': c++; break;
	case SL_KEY_PGUP: c -= l->rows - 1; break;
	case SL_KEY_PGDN: c += l->rows - 1; break;
	case SL_KEY_HOME: case 'g': c = 0; break;
	case SL_KEY_END: case 'G': c = l->n - 1; break;
	case SL_KEY_MOUSE:
		if (k->button == SL_MOUSE_WHEEL_UP)
			c -= 3;
		else if (k->button == SL_MOUSE_WHEEL_DOWN)
			c += 3;
		else
			return false;
		break;
	default:
		return false;
	}
	if (k->mods & (SL_KMOD_CTRL | SL_KMOD_ALT))
		return false;
	l->cursor = c;
	sl_list_fit(l, l->n, l->rows);
	return true;
}

bool sl_list_click(sl_list *l, const sl_key *k, sl_rect r)
{
	if (k->code != SL_KEY_MOUSE || k->button != SL_MOUSE_LEFT || k->y < r.y || k->y >= r.y + r.h ||
	    k->x < r.x || k->x >= r.x + r.w)
		return false;
	int i = l->top + (k->y - r.y);
	if (i >= l->n)
		return false;
	l->cursor = i;
	return true;
}

/* --- menu --------------------------------------------------------------- */

void sl_menu_open(sl_menu *m, const char *title, const char *const *items, const char *const *notes, int n,
                  int current, int tag)
{
	memset(m, 0, sizeof *m);
	m->open = true;
	snprintf(m->title, sizeof m->title, "%s", title);
	m->items = items;
	m->notes = notes;
	m->n = n < SL_MENU_MAX ? n : SL_MENU_MAX;
	m->tag = tag;
	for (int i = 0; i < m->n; i++)
		m->shown[i] = i;
	m->n_shown = m->n;
	m->list.cursor = current > 0 && current < m->n ? current : 0;
	sl_list_fit(&m->list, m->n_shown, 10);
}

/* Whether s holds the characters of pat in order, case aside. */
static bool fuzzy_match(const char *pat, const char *s)
{
	for (; *pat; pat++) {
		while (*s && tolower((unsigned char)*s) != tolower((unsigned char)*pat))
			s++;
		if (!*s++)
			return false;
	}
	return true;
}

/* The items the filter keeps; the cursor goes to the first of them. */
static void menu_filter(sl_menu *m)
{
	m->n_shown = 0;
	for (int i = 0; i < m->n; i++)
		if (fuzzy_match(m->filter, m->items[i]))
			m->shown[m->n_shown++] = i;
	m->list.cursor = 0;
	m->list.top = 0;
	sl_list_fit(&m->list, m->n_shown, m->list.rows);
}

static int menu_choose(sl_menu *m)
{
	if (!m->n_shown)
		return SL_MENU_OPEN;
	m->open = false;
	return m->shown[m->list.cursor];
}

int sl_menu_current(const sl_menu *m)
{
	return m->open && m->n_shown ? m->shown[m->list.cursor] : -1;
}

int sl_menu_key(sl_menu *m, const sl_key *k)
{
	if (!m->open)
		return SL_MENU_CLOSED;
	if (k->code == SL_KEY_ESC || k->code == SL_KEY_LEFT) {
		m->open = false;
		return SL_MENU_CLOSED;
	}
	if (k->code == SL_KEY_ENTER || k->code == ' ' || k->code == SL_KEY_RIGHT)
		return menu_choose(m);
	if (k->code == '?' && !k->mods)
		return m->n_shown ? SL_MENU_CARD : SL_MENU_OPEN;
	if (k->code == SL_KEY_MOUSE && k->button == SL_MOUSE_LEFT) {
		sl_rect inner = {m->at.y + 1, m->at.x + 1, m->at.h - 2, m->at.w - 2};
		if (sl_list_click(&m->list, k, inner))
			return menu_choose(m);
		if (k->y < m->at.y || k->y >= m->at.y + m->at.h || k->x < m->at.x || k->x >= m->at.x + m->at.w) {
			m->open = false;
			return SL_MENU_CLOSED;
		}
		return SL_MENU_OPEN;
	}
	size_t len = strlen(m->filter);
	if (k->code == SL_KEY_BACKSPACE) {
		if (len) {
			m->filter[len - 1] = 0;
			menu_filter(m);
		}
		return SL_MENU_OPEN;
	}
	if (k->code > ' ' && k->code < 127 && !(k->mods & (SL_KMOD_CTRL | SL_KMOD_ALT))) {
		if (len + 1 < sizeof m->filter) {
			m->filter[len] = (char)k->code;
			menu_filter(m);
		}
		return SL_MENU_OPEN;
	}
	sl_list_key(&m->list, k);
	return SL_MENU_OPEN;
}

void sl_menu_draw(sl_menu *m, sl_rect area)
{
	if (!m->open)
		return;
	int iw = 0, nw = 0;
	for (int i = 0; i < m->n; i++) {
		int a = sl_text_width(m->items[i]), b = m->notes ? sl_text_width(m->notes[i]) : 0;
		iw = a > iw ? a : iw;
		nw = b > nw ? b : nw;
	}
	char title[96];
	snprintf(title, sizeof title, m->filter[0] ? "%s · %s" : "%s", m->title, m->filter);
	int w = iw + (nw ? nw + 3 : 0) + 4, tw = sl_text_width(title) + 6;
	w = w < tw ? tw : w;
	w = w > area.w ? area.w : w;
	int want = m->n_shown ? m->n_shown : 1, rows = want < area.h - 2 ? want : area.h - 2;
	if (rows < 1 || w < 6)
		return;
	sl_list_fit(&m->list, m->n_shown, rows);
	sl_rect r = {area.y + (area.h - rows - 2) / 2, area.x + (area.w - w) / 2, rows + 2, w};
	m->at = r;
	for (int y = 0; y < r.h; y++)
		sl_fill(r.y + y, r.x, r.w, SL_R_MENU);
	sl_frame(r, title, SL_R_MENU);
	if (!m->n_shown)
		sl_textf(r.y + 1, r.x + 2, r.w - 4, SL_R_DIM, "nothing holds '%s' (Backspace)", m->filter);
	for (int i = 0; i < rows && m->list.top + i < m->n_shown; i++) {
		int at = m->list.top + i, it = m->shown[at];
		sl_role role = at == m->list.cursor ? SL_R_MENU_SELECTED : SL_R_MENU;
		sl_fill(r.y + 1 + i, r.x + 1, r.w - 2, role);
		sl_text(r.y + 1 + i, r.x + 2, iw, role, m->items[it]);
		if (m->notes && r.w - iw - 7 > 0)
			sl_text(r.y + 1 + i, r.x + 5 + iw, r.w - iw - 7, at == m->list.cursor ? role : SL_R_DIM, m->notes[it]);
	}
}
