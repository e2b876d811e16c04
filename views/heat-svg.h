/* A sweep's heatmap as an SVG picture: slimlab sensitivity --svg and
 * :sweep export FILE.svg. */
#ifndef SL_HEAT_SVG_H
#define SL_HEAT_SVG_H

#include "core/sweep/sweep.h"

/* The picture of one metric (a name sl_sweep_metric_find knows) on a
 * log scale, as wide as its title needs; NULL when out of memory. */
char *sl_heat_svg(const sl_sweep *sw, const char *metric);

#endif
