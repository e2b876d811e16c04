/* The heatmap's SVG picture: well formed, every row and option named,
 * every measured cell coloured; and every line of text that runs from the
 * left edge (the title, the model and windows under it) fits in the
 * picture's width, for each metric, on the narrowest heatmap (one option)
 * and with a model path too long for any width, which loses its start to
 * an ellipsis. The chart of KL against bytes likewise, with each
 * technique's points, the frontier, and the whole model's sizes those a
 * recipe giving each option to every module is estimated to take. Widths are reckoned as DejaVu Sans sets text: 0.60 em a
 * character, 0.66 em in bold (its mean advances over printable ASCII). */
#include <stdbool.h>

#include "core/recipe.h"
#include "core/sweep/sweep.h"
#include "core/tradeoff.h"
#include "test.h"
#include "views/heat-svg.h"
#include "views/tradeoff-svg.h"

/* Characters in [s, end) as they are drawn: an entity is one, and so is
 * a UTF-8 sequence. */
static int drawn_chars(const char *s, const char *end)
{
	int n = 0;
	while (s < end) {
		const char *semi = *s == '&' ? memchr(s, ';', (size_t)(end - s)) : NULL;
		n += ((unsigned char)*s & 0xc0) != 0x80;
		s = semi ? semi + 1 : s + 1;
	}
	return n;
}

/* Checks every <text> set from its x rightwards (not centred, not ended
 * at x, not rotated) against the width; returns how many were checked. */
static int check_left_texts(const char *svg, const char *what)
{
	int width = 0, n = 0;
	if (!TEST_EVAL(sscanf(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\"", &width) == 1,
	               "%s: the picture's width", what))
		return 0;
	for (const char *t = strstr(svg, "<text "); t; t = strstr(t + 1, "<text ")) {
		const char *gt = strchr(t, '>'), *close = gt ? strstr(gt, "</text>") : NULL;
		if (!TEST_EVAL(close, "%s: a text element is closed", what))
			return n;
		char attrs[512];
		snprintf(attrs, sizeof attrs, "%.*s", (int)(gt - t), t);
		if (strstr(attrs, "text-anchor") || strstr(attrs, "transform"))
			continue;
		int x = -1, size = 11;
		sscanf(attrs, "<text x=\"%d\"", &x);
		const char *fs = strstr(attrs, "font-size=\"");
		if (fs)
			sscanf(fs, "font-size=\"%d\"", &size);
		double em = strstr(attrs, "font-weight=\"bold\"") ? 0.66 : 0.60;
		int chars = drawn_chars(gt + 1, close);
		CHECK(x >= 0 && x + chars * size * em <= width, "%s: '%.*s' (%d characters at %d px from %d) is wider than %d",
		      what, (int)(close - gt - 1), gt + 1, chars, size, x, width);
		n++;
	}
	return n;
}

/* A small sweep of m under options, run to the end (NULL: it failed). */
static sl_sweep *small_sweep(sl_model *m, const char *options)
{
	sl_sweep_option *opts;
	int n;
	sl_error err = {0};
	if (!TEST_EVAL(sl_sweep_parse_options(options, &opts, &n, &err) == SL_OK, "options: %s", err.msg))
		return NULL;
	sl_sweep_opts o = {.text_path = test_srcpath("data/calib.txt"), .ctx = 32, .windows = 2, .calib_tokens = 256,
	                   .no_fisher = true};
	sl_sweep *sw = NULL;
	CHECK(sl_sweep_new(m, opts, n, &o, &sw, &err) == SL_OK, "sweep: %s", err.msg);
	free(opts);
	if (sw)
		CHECK(sl_sweep_run(sw, NULL, NULL, NULL, &err) == SL_OK, "run: %s", err.msg);
	return sw;
}

static void test_picture(sl_model *m)
{
	sl_sweep *sw = small_sweep(m, "q4_0");
	if (!sw)
		return;

	const char *metrics[] = {"kl", "dppl", "top1", "accept"};
	const char *titles[] = {"KL divergence from the base", "change in perplexity", "1 - top-1 agreement",
	                        "1 - acceptance as a draft"};
	CHECK(sl_sweep_metric_count() == 4, "%d metrics", sl_sweep_metric_count());
	for (int k = 0; k < 4; k++) {
		char *svg = sl_heat_svg(sw, metrics[k]);
		REQUIRE(svg, "%s: out of memory", metrics[k]);
		size_t len = strlen(svg);
		CHECK(!strncmp(svg, "<svg", 4) && len > 7 && !strcmp(svg + len - 7, "</svg>\n"), "%s: an SVG document",
		      metrics[k]);
		char title[128];
		snprintf(title, sizeof title, ">Sensitivity: %s (log scale)</text>", titles[k]);
		CHECK(strstr(svg, title), "%s: the whole title '%s'", metrics[k], title);
		CHECK(check_left_texts(svg, metrics[k]) == 2, "%s: the title and the line under it checked", metrics[k]);
		for (int r = 0; r < sl_sweep_rows(sw); r++)
			CHECK(strstr(svg, sl_sweep_row_name(sw, r)), "%s: row %s", metrics[k], sl_sweep_row_name(sw, r));
		CHECK(strstr(svg, "blk.3.ffn_up x q4_0"), "%s: a cell's tooltip", metrics[k]);
		CHECK(!strstr(svg, "fill=\"#eeeeee\""), "%s: every measured cell has a colour", metrics[k]);
		free(svg);
	}

	/* A path no width holds keeps its end: the file, and what follows. */
	char saved[sizeof m->path];
	memcpy(saved, m->path, sizeof saved);
	int k = snprintf(m->path, sizeof m->path, "/");
	while (k < 600)
		k += snprintf(m->path + k, sizeof m->path - (size_t)k, "a-rather-long-folder-name/");
	snprintf(m->path + k, sizeof m->path - (size_t)k, "r&d/workshop.gguf");
	char *svg = sl_heat_svg(sw, "kl");
	REQUIRE(svg, "out of memory");
	CHECK(check_left_texts(svg, "a long path") == 2, "a long path: two lines checked");
	CHECK(strstr(svg, ">…/") && strstr(svg, "/r&amp;d/workshop.gguf, 2 windows of 32 tokens, base PPL "),
	      "a long path is cut at a folder, its end kept");
	free(svg);
	memcpy(m->path, saved, sizeof saved);
	sl_sweep_free(sw);
}

static void test_chart(sl_model *m)
{
	static const char *const labels[] = {"q4_0", "int8", "magnitude-50%", "svd-0.5", "svd-0.8"};
	static const char *const rules[] = {"\"format\": \"q4_0\"", "\"format\": \"int8\"", NULL,
	                                    "\"method\": \"svd\", \"params\": {\"keep\": 0.5}",
	                                    "\"method\": \"svd\", \"params\": {\"keep\": 0.8}"};
	sl_error err = {0};
	sl_sweep *sw = small_sweep(m, "q4_0,int8,magnitude-50%,svd-0.5,svd-0.8");
	if (!sw)
		return;
	char *svg = sl_tradeoff_svg(sw, NULL);
	REQUIRE(svg, "out of memory");
	size_t len = strlen(svg);
	CHECK(!strncmp(svg, "<svg", 4) && len > 7 && !strcmp(svg + len - 7, "</svg>\n"), "the chart is an SVG document");
	CHECK(strstr(svg, ">KL against bytes: the whole model, each option given to every module</text>"), "its title");
	CHECK(check_left_texts(svg, "the chart") >= 7, "title, settings, legend and winners checked");
	for (int i = 0; i < 5; i++)
		CHECK(strstr(svg, labels[i]), "option %s on the chart", labels[i]);
	CHECK(strstr(svg, "fill=\"#0072b2\"") && strstr(svg, "fill=\"#d55e00\"") && strstr(svg, "fill=\"#009e73\""),
	      "quantization, pruning and low rank have their colours");
	CHECK(strstr(svg, "<polyline") && strstr(svg, ">from "), "the frontier and the winners by size");
	free(svg);
	svg = sl_tradeoff_svg(sw, "blk.2.ffn_up");
	CHECK(svg && strstr(svg, ">KL against bytes: blk.2.ffn_up</text>"), "a row's chart");
	free(svg);
	CHECK(sl_tradeoff_svg(sw, "blk.99.ffn_up") == NULL, "no chart of a row the sweep lacks");
	/* The whole model's points: each option everywhere, sized as a recipe estimates it. */
	int rows = sl_sweep_rows(sw);
	sl_sweep_cell *cells = malloc((size_t)rows * 5 * sizeof *cells);
	sl_sweep_option o5[5];
	for (int c = 0; c < 5; c++) {
		o5[c] = *sl_sweep_col(sw, c);
		for (int r = 0; r < rows; r++)
			cells[(size_t)r * 5 + c] = *sl_sweep_cell_at(sw, r, c);
	}
	sl_tradeoff pt[5];
	double before;
	int np = sl_tradeoffs(cells, rows, 5, o5, -1, (double)sl_model_bytes(m), pt, &before);
	CHECK(np == 5 && before == (double)sl_model_bytes(m), "five points, the model as it is");
	for (int i = 0; i < np; i++) {
		if (!rules[pt[i].opt])
			continue;
		char json[256];
		snprintf(json, sizeof json, "{\"slimlab_recipe\": 1, \"default\": {%s}}", rules[pt[i].opt]);
		sl_recipe *r = NULL;
		REQUIRE(sl_recipe_parse(json, strlen(json), &r, &err) == SL_OK, "%s", err.msg);
		sl_recipe_estimate est;
		sl_recipe_estimate_size(r, m, &est);
		CHECK(fabs(est.bytes - pt[i].bytes) <= 1e-9 * est.bytes, "%s everywhere: the chart's %.0f bytes, the estimate's %.0f",
		      labels[pt[i].opt], pt[i].bytes, est.bytes);
		sl_recipe_free(r);
	}
	free(cells);
	sl_sweep_free(sw);
}

int main(void)
{
	sl_model *m = test_load(test_srcpath("models/workshop.gguf"));
	if (!m)
		return 1;
	test_picture(m);
	test_chart(m);
	sl_model_free(m);
	return test_finish();
}
