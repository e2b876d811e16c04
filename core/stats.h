/* Statistics the layer inspector shows: a weight matrix's distribution
 * (histogram, moments, outliers, per-channel ranges) and the activations
 * entering each linear module over a calibration text (per-channel
 * magnitudes, outlier channels). Computed here so that views only draw. */
#ifndef SL_STATS_H
#define SL_STATS_H

#include <stdint.h>

#include "forward.h"
#include "progress.h"

#define SL_STATS_TOP 8

typedef struct {
	int64_t row, col;
	float value;
} sl_weight_outlier;

typedef struct {
	int64_t n, rows, cols;      /* elements; output channels (rows) of input channels (cols) */
	double min, max, mean, std, abs_max;
	double kurtosis;            /* excess kurtosis: 0 for a normal distribution */
	/* Histogram of values over [lo, hi] = [min, max] in n_bins equal bins. */
	int n_bins;
	double lo, hi;
	int64_t *hist;
	double outlier_sigma;       /* |w - mean| beyond this many std counts as an outlier */
	int64_t n_outliers;
	sl_weight_outlier top[SL_STATS_TOP]; /* largest |w|, largest first */
	int n_top;
	float *row_min, *row_max;   /* [rows]: range of each output channel */
	float *col_abs_max;         /* [cols]: largest |w| of each input channel */
} sl_weight_stats;

/* n_bins in [1, 4096]; outlier_sigma > 0 (6 is a common choice). */
sl_status sl_weight_stats_compute(const sl_tensor *t, int n_bins, double outlier_sigma, const sl_progress *p,
                                  sl_weight_stats *out, sl_error *err);
void sl_weight_stats_free(sl_weight_stats *s);

/* Activations at one tap of one block, per channel, over every token seen. */
typedef struct {
	int n;                      /* channels (0: never observed) */
	long long n_tokens;
	float *abs_max;             /* [n] */
	double *sum, *sum_sq;       /* [n] */
} sl_act_channels;

/* What the inspector prints about one tap. */
typedef struct {
	double abs_max, rms, median_channel_max;
	double outlier_ratio;       /* channels whose max |x| exceeds this times the median are outliers */
	int n_outlier_channels;
	int top[SL_STATS_TOP];      /* channels by max |x|, largest first */
	int n_top;
} sl_act_summary;

typedef struct sl_act_profile {
	int n_layers;
	sl_act_channels *at;        /* [n_layers * SL_TAP_COUNT] */
	long long n_tokens;
	int n_ctx, n_windows;
	char text[4096];            /* the text it was gathered from */
} sl_act_profile;

/* Runs the model over up to n_tokens tokens of text in windows of n_ctx
 * (0 = min(256, context)) and records every tap. */
sl_status sl_act_profile_gather(const sl_model *m, const char *text, size_t len, const char *text_name,
                                int n_tokens, int n_ctx, const sl_progress *p, sl_act_profile **out,
                                sl_error *err);
void sl_act_profile_free(sl_act_profile *a);
/* NULL where the tap was not observed (layer -1: embedding and output). */
const sl_act_channels *sl_act_profile_at(const sl_act_profile *a, int layer, sl_tap where);
void sl_act_summarize(const sl_act_channels *c, double outlier_ratio, sl_act_summary *out);

#endif
