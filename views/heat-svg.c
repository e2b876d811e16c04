/* The heatmap as an SVG picture, for reports: a title, the model and the
 * windows measured, the cells in the palette's colours on a log scale
 * with their figures in a tooltip, and a legend. Drawn from the sweep's
 * public API; the picture is made as wide as its title needs. */
#include "heat-svg.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "core/fileio.h"
#include "palette.h"
#include "svg.h"

/* The log-scale range of a metric over the done cells (floor 1e-6). */
static void metric_range(const sl_sweep *sw, const char *metric, double *lo, double *hi)
{
	*lo = INFINITY;
	*hi = -INFINITY;
	for (int r = 0; r < sl_sweep_rows(sw); r++)
		for (int c = 0; c < sl_sweep_cols(sw); c++) {
			double v = sl_sweep_metric(sl_sweep_cell_at(sw, r, c), metric);
			if (!isfinite(v))
				continue;
			v = log10(fmax(v, 1e-6));
			*lo = fmin(*lo, v);
			*hi = fmax(*hi, v);
		}
	if (!isfinite(*lo)) {
		*lo = -6;
		*hi = 0;
	}
	if (*hi - *lo < 1e-9)
		*hi = *lo + 1;
}

char *sl_heat_svg(const sl_sweep *sw, const char *metric)
{
	const int rows = sl_sweep_rows(sw), cols = sl_sweep_cols(sw);
	const int cw = 84, ch = 18, left = 170, top = 110, legend_h = 70, margin = 10;
	const int lw = cw * cols > 200 ? cw * cols : 200; /* the legend's width */
	double lo, hi;
	metric_range(sw, metric, &lo, &hi);
	char title[96], settings[128];
	int mi = sl_sweep_metric_find(metric);
	snprintf(title, sizeof title, "Sensitivity: %s (log scale)", sl_sweep_metric_title(mi < 0 ? 0 : mi));
	snprintf(settings, sizeof settings, ", %d windows of %d tokens, base PPL %.3f", sl_sweep_windows(sw),
	         sl_sweep_ctx(sw), sl_sweep_base_ppl(sw));
	int width = left + lw + 40, height = top + ch * rows + legend_h;
	int title_w = 2 * margin + (int)ceil(sl_svg_text_px(title, 14, true));
	if (width < title_w)
		width = title_w;
	/* The model's path gives way to the title: its start is cut. */
	const char *path = sl_sweep_model(sw)->path;
	const char *shown = sl_svg_tail_within(path, 11, width - 2 * margin - sl_svg_text_px(settings, 11, false));
	sl_buf b = {0};
	sl_buf_printf(&b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
	                  "font-family=\"DejaVu Sans, sans-serif\" font-size=\"11\">\n", width, height);
	sl_buf_printf(&b, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
	sl_buf_printf(&b, "<text x=\"%d\" y=\"20\" font-size=\"14\" font-weight=\"bold\">%s</text>\n", margin, title);
	sl_buf_printf(&b, "<text x=\"%d\" y=\"38\" fill=\"#555\">%s", margin, shown != path ? "…" : "");
	sl_svg_escape(&b, shown);
	sl_buf_printf(&b, "%s</text>\n", settings);
	for (int c = 0; c < cols; c++) {
		int x = left + c * cw + cw / 2;
		sl_buf_printf(&b, "<text x=\"%d\" y=\"%d\" transform=\"rotate(-35 %d %d)\">", x, top - 8, x, top - 8);
		sl_svg_escape(&b, sl_sweep_col(sw, c)->label);
		sl_buf_printf(&b, "</text>\n");
	}
	for (int r = 0; r < rows; r++) {
		int y = top + r * ch;
		sl_buf_printf(&b, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">", left - 6, y + ch - 5);
		sl_svg_escape(&b, sl_sweep_row_name(sw, r));
		sl_buf_printf(&b, "</text>\n");
		for (int c = 0; c < cols; c++) {
			const sl_sweep_cell *cl = sl_sweep_cell_at(sw, r, c);
			double v = sl_sweep_metric(cl, metric);
			int rgb[3] = {0xee, 0xee, 0xee};
			if (isfinite(v))
				sl_palette((log10(fmax(v, 1e-6)) - lo) / (hi - lo), rgb);
			sl_buf_printf(&b, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#%02x%02x%02x\" "
			                  "stroke=\"white\"><title>",
			              left + c * cw, y, cw, ch, rgb[0], rgb[1], rgb[2]);
			sl_svg_escape(&b, sl_sweep_row_name(sw, r));
			sl_buf_printf(&b, " x ");
			sl_svg_escape(&b, sl_sweep_col(sw, c)->label);
			if (isfinite(v))
				sl_buf_printf(&b, ": KL %.3g, dPPL %.3g, top-1 %.1f%%, acceptance %.1f%%", cl->kl, cl->dppl,
				              100 * cl->top1, 100 * cl->acceptance);
			sl_buf_printf(&b, "</title></rect>\n");
			if (isfinite(v))
				sl_buf_printf(&b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" font-size=\"9\" fill=\"%s\">%.2g</text>\n",
				              left + c * cw + cw / 2, y + ch - 5,
				              (rgb[0] + rgb[1] + rgb[2]) > 380 ? "black" : "white", v);
		}
	}
	/* The legend: the scale from the smallest to the largest value. */
	int ly = top + rows * ch + 25;
	for (int i = 0; i < 50; i++) {
		int rgb[3];
		sl_palette(i / 49.0, rgb);
		sl_buf_printf(&b, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"12\" fill=\"#%02x%02x%02x\"/>\n",
		              left + i * lw / 50, ly, lw / 50 + 1, rgb[0], rgb[1], rgb[2]);
	}
	for (int i = 0; i <= 4; i++) {
		double e = lo + (hi - lo) * i / 4;
		sl_buf_printf(&b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%.2g</text>\n", left + i * lw / 4,
		              ly + 26, pow(10, e));
	}
	sl_buf_printf(&b, "</svg>\n");
	if (!sl_buf_put(&b, "", 1)) {
		sl_buf_free(&b);
		return NULL;
	}
	return b.data;
}
