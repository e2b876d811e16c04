/* Which technique wins at which size, as an SVG picture for reports: KL
 * against bytes on log scales, one point per measured option coloured by
 * its technique, the frontier through the options no smaller one beats,
 * the size as it is marked, and under the chart the winner up to each
 * size. The points are core/tradeoff.c's; the picture is made as wide as
 * its lines of text need. */
#include "tradeoff-svg.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/tradeoff.h"
#include "core/units.h"
#include "svg.h"

/* A colour per technique, told apart by most eyes (blue, vermilion, green). */
static const char *const tech_colour[SL_TECH_COUNT] = {"#0072b2", "#d55e00", "#009e73"};

/* A value's place on a log axis from lo to hi (decades) over len pixels. */
static double at(double v, double lo, double hi, double len)
{
	return (log10(v) - lo) / (hi - lo) * len;
}

char *sl_tradeoff_svg(const sl_sweep *sw, const char *row)
{
	const int rows = sl_sweep_rows(sw), cols = sl_sweep_cols(sw);
	int ri = -1;
	for (int r = 0; row && r < rows; r++)
		if (!strcmp(sl_sweep_row_name(sw, r), row))
			ri = r;
	if (row && ri < 0)
		return NULL;
	sl_sweep_cell *cells = malloc(((size_t)rows * cols + 1) * sizeof *cells);
	sl_sweep_option *opts = malloc((size_t)(cols ? cols : 1) * sizeof *opts);
	sl_tradeoff *pt = malloc((size_t)(cols ? cols : 1) * sizeof *pt);
	if (!cells || !opts || !pt) {
		free(cells);
		free(opts);
		free(pt);
		return NULL;
	}
	for (int c = 0; c < cols; c++) {
		opts[c] = *sl_sweep_col(sw, c);
		for (int r = 0; r < rows; r++)
			cells[(size_t)r * cols + c] = *sl_sweep_cell_at(sw, r, c);
	}
	const sl_model *m = sl_sweep_model(sw);
	double before;
	int n = sl_tradeoffs(cells, rows, cols, opts, ri, (double)sl_model_bytes(m), pt, &before);
	free(cells);
	free(opts);

	/* The axes: bytes from the smallest option to the size as it is, KL
	 * over the points (floor 1e-6), each widened to whole decades. */
	double xlo = log10(before > 0 ? before : 1), xhi = xlo, ylo = 0, yhi = -6;
	for (int i = 0; i < n; i++) {
		xlo = fmin(xlo, log10(pt[i].bytes));
		xhi = fmax(xhi, log10(pt[i].bytes));
		pt[i].kl = fmax(pt[i].kl, 1e-6);
		ylo = fmin(ylo, log10(pt[i].kl));
		yhi = fmax(yhi, log10(pt[i].kl));
	}
	xlo = floor(xlo * 4) / 4;
	xhi = ceil(xhi * 4) / 4 + (xhi - xlo < 0.25 ? 0.25 : 0);
	ylo = floor(ylo);
	yhi = ceil(yhi) + (ceil(yhi) <= ylo ? 1 : 0);

	char title[160], settings[160], bbefore[32];
	snprintf(title, sizeof title, "KL against bytes: %s",
	         row ? row : "the whole model, each option given to every module");
	sl_fmt_bytes(before, bbefore, sizeof bbefore);
	snprintf(settings, sizeof settings, ", %d windows of %d tokens, %s as it is", sl_sweep_windows(sw), sl_sweep_ctx(sw),
	         bbefore);
	const int margin = 10, left = 90, top = 70, pw = 560, ph = 320;
	int width = left + pw + 150;
	int title_w = 2 * margin + (int)ceil(sl_svg_text_px(title, 14, true));
	width = width < title_w ? title_w : width;
	/* The winner up to each size, one line per frontier point. */
	int n_front = 0;
	for (int i = 0; i < n; i++)
		n_front += pt[i].frontier;
	int height = top + ph + 90 + 16 * (n_front + 1);

	sl_buf b = {0};
	sl_buf_printf(&b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
	                  "font-family=\"DejaVu Sans, sans-serif\" font-size=\"11\">\n", width, height);
	sl_buf_printf(&b, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
	sl_buf_printf(&b, "<text x=\"%d\" y=\"20\" font-size=\"14\" font-weight=\"bold\">", margin);
	sl_svg_escape(&b, title);
	sl_buf_printf(&b, "</text>\n");
	const char *shown = sl_svg_tail_within(m->path, 11, width - 2 * margin - sl_svg_text_px(settings, 11, false));
	sl_buf_printf(&b, "<text x=\"%d\" y=\"38\" fill=\"#555\">%s", margin, shown != m->path ? "…" : "");
	sl_svg_escape(&b, shown);
	sl_buf_printf(&b, "%s</text>\n", settings);

	/* Frame, decade grid and tick labels. */
	sl_buf_printf(&b, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#999\"/>\n", left, top,
	              pw, ph);
	for (double e = ceil(xlo); e <= xhi + 1e-9; e += 1) {
		double x = left + at(pow(10, e), xlo, xhi, pw);
		char lab[32];
		sl_fmt_bytes(pow(10, e), lab, sizeof lab);
		sl_buf_printf(&b, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#eee\"/>\n", x, top, x, top + ph);
		sl_buf_printf(&b, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n", x, top + ph + 16, lab);
	}
	for (double e = ylo; e <= yhi + 1e-9; e += 1) {
		double y = top + ph - at(pow(10, e), ylo, yhi, ph);
		sl_buf_printf(&b, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#eee\"/>\n", left, y, left + pw, y);
		sl_buf_printf(&b, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n", left - 6, y + 4, pow(10, e));
	}
	sl_buf_printf(&b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">bytes (log scale)</text>\n", left + pw / 2,
	              top + ph + 34);
	sl_buf_printf(&b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" transform=\"rotate(-90 %d %d)\">"
	                  "KL divergence from the base (log scale)</text>\n",
	              24, top + ph / 2, 24, top + ph / 2);
	/* The size as it is. */
	if (before > 0) {
		double x = left + at(before, xlo, xhi, pw);
		sl_buf_printf(&b, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#555\" stroke-dasharray=\"4 3\"/>\n",
		              x, top, x, top + ph);
		sl_buf_printf(&b, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"end\" fill=\"#555\">as it is</text>\n", x - 3,
		              top + 12);
	}
	/* The frontier, then the points over it. */
	sl_buf_printf(&b, "<polyline fill=\"none\" stroke=\"#333\" stroke-width=\"1.5\" points=\"");
	for (int i = 0; i < n; i++)
		if (pt[i].frontier)
			sl_buf_printf(&b, "%.1f,%.1f ", left + at(pt[i].bytes, xlo, xhi, pw),
			              top + ph - at(pt[i].kl, ylo, yhi, ph));
	sl_buf_printf(&b, "\"/>\n");
	for (int i = 0; i < n; i++) {
		double x = left + at(pt[i].bytes, xlo, xhi, pw), y = top + ph - at(pt[i].kl, ylo, yhi, ph);
		const char *label = sl_sweep_col(sw, pt[i].opt)->label;
		char bytes[32];
		sl_fmt_bytes(pt[i].bytes, bytes, sizeof bytes);
		sl_buf_printf(&b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"5\" fill=\"%s\"%s><title>", x, y, tech_colour[pt[i].tech],
		              pt[i].frontier ? " stroke=\"black\" stroke-width=\"1.5\"" : "");
		sl_svg_escape(&b, label);
		sl_buf_printf(&b, " (%s): %s, KL %.4g</title></circle>\n", sl_technique_name(pt[i].tech), bytes, pt[i].kl);
		sl_buf_printf(&b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"9\" fill=\"#333\">", x + 7, y + 3);
		sl_svg_escape(&b, label);
		sl_buf_printf(&b, "</text>\n");
	}
	/* The legend, and the winners by size. */
	int ly = top + ph + 58, lx = margin;
	for (int t = 0; t < SL_TECH_COUNT; t++) {
		sl_buf_printf(&b, "<circle cx=\"%d\" cy=\"%d\" r=\"5\" fill=\"%s\"/>\n", lx + 5, ly - 4, tech_colour[t]);
		sl_buf_printf(&b, "<text x=\"%d\" y=\"%d\">%s</text>\n", lx + 14, ly, sl_technique_name(t));
		lx += 24 + (int)ceil(sl_svg_text_px(sl_technique_name(t), 11, false));
	}
	sl_buf_printf(&b, "<text x=\"%d\" y=\"%d\">ringed, joined: the frontier (no smaller option has less KL)</text>\n",
	              lx, ly);
	ly += 20;
	sl_buf_printf(&b, "<text x=\"%d\" y=\"%d\" font-weight=\"bold\">%s</text>\n", margin, ly,
	              n ? "The least KL up to each size" : "No option is measured in every row yet");
	for (int i = 0; i < n; i++) {
		if (!pt[i].frontier)
			continue;
		ly += 16;
		char bytes[32];
		sl_fmt_bytes(pt[i].bytes, bytes, sizeof bytes);
		sl_buf_printf(&b, "<text x=\"%d\" y=\"%d\">from %s: ", margin, ly, bytes);
		sl_svg_escape(&b, sl_sweep_col(sw, pt[i].opt)->label);
		sl_buf_printf(&b, " (%s), KL %.4g</text>\n", sl_technique_name(pt[i].tech), pt[i].kl);
	}
	sl_buf_printf(&b, "</svg>\n");
	free(pt);
	if (!sl_buf_put(&b, "", 1)) {
		sl_buf_free(&b);
		return NULL;
	}
	return b.data;
}
