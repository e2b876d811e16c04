/* Which technique wins at which size, as an SVG picture: slimlab
 * sensitivity --chart and :sweep chart FILE.svg. */
#ifndef SL_TRADEOFF_SVG_H
#define SL_TRADEOFF_SVG_H

#include "core/sweep/sweep.h"

/* KL against bytes (both on log scales) of every measured option, for the
 * sweep's row named row, or for the whole model when row is NULL: points
 * coloured by technique (quantization, pruning, low rank), the frontier
 * drawn through the options no smaller option beats, and under the chart
 * which option wins up to each size. NULL when out of memory or when no
 * row has that name. */
char *sl_tradeoff_svg(const sl_sweep *sw, const char *row);

#endif
