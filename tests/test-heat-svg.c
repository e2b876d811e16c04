/* The heatmap's SVG picture: well formed, every row and option named,
 * every measured cell coloured, for each metric. */
#include "core/sweep/sweep.h"
#include "test.h"
#include "views/heat-svg.h"

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

	const char *metrics[] = {"kl", "dppl", "top1"};
	const char *titles[] = {"KL divergence from the base", "change in perplexity", "1 - top-1 agreement"};
	for (int k = 0; k < 3; k++) {
		char *svg = sl_heat_svg(sw, metrics[k]);
		REQUIRE(svg, "%s: out of memory", metrics[k]);
		size_t len = strlen(svg);
		CHECK(!strncmp(svg, "<svg", 4) && len > 7 && !strcmp(svg + len - 7, "</svg>\n"), "%s: an SVG document",
		      metrics[k]);
		char title[128];
		snprintf(title, sizeof title, ">Sensitivity: %s (log scale)</text>", titles[k]);
		CHECK(strstr(svg, title), "%s: the whole title '%s'", metrics[k], title);
		for (int r = 0; r < sl_sweep_rows(sw); r++)
			CHECK(strstr(svg, sl_sweep_row_name(sw, r)), "%s: row %s", metrics[k], sl_sweep_row_name(sw, r));
		CHECK(strstr(svg, "blk.3.ffn_up x q4_0"), "%s: a cell's tooltip", metrics[k]);
		CHECK(!strstr(svg, "fill=\"#eeeeee\""), "%s: every measured cell has a colour", metrics[k]);
		free(svg);
	}
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
