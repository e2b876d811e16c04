/* The heatmap's SVG picture: well formed, every row and option named,
 * every measured cell coloured; and every line of text that runs from the
 * left edge (the title, the model and windows under it) fits in the
 * picture's width, for each metric, on the narrowest heatmap (one option)
 * and with a model path too long for any width, which loses its start to
 * an ellipsis. Widths are reckoned as DejaVu Sans sets text: 0.60 em a
 * character, 0.66 em in bold (its mean advances over printable ASCII). */
#include <stdbool.h>

#include "core/sweep/sweep.h"
#include "test.h"
#include "views/heat-svg.h"

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

static void test_picture(sl_model *m)
{
	sl_sweep_option *opts;
	int n;
	sl_error err = {0};
	REQUIRE(sl_sweep_parse_options("q4_0", &opts, &n, &err) == SL_OK, "options: %s", err.msg);
	sl_sweep_opts o = {.text_path = test_srcpath("data/calib.txt"), .ctx = 32, .windows = 2, .calib_tokens = 256,
	                   .no_fisher = true};
	sl_sweep *sw = NULL;
	CHECK(sl_sweep_new(m, opts, n, &o, &sw, &err) == SL_OK, "sweep: %s", err.msg);
	free(opts);
	if (!sw)
		return;
	CHECK(sl_sweep_run(sw, NULL, NULL, NULL, &err) == SL_OK, "run: %s", err.msg);

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

int main(void)
{
	sl_model *m = test_load(test_srcpath("models/workshop.gguf"));
	if (!m)
		return 1;
	test_picture(m);
	sl_model_free(m);
	return test_finish();
}
