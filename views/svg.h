/* Helpers of the SVG pictures (heat-svg.c, tradeoff-svg.c). */
#ifndef SL_SVG_H
#define SL_SVG_H

#include <stdbool.h>

#include "core/fileio.h"

/* s into b with <, >, & and " as entities. */
void sl_svg_escape(sl_buf *b, const char *s);
/* How wide a line of text is set in DejaVu Sans, estimated from its
 * characters: the font's mean advance over printable ASCII is 0.60 em,
 * 0.66 em in bold. */
double sl_svg_text_px(const char *s, int size, bool bold);
/* The end of a path that fits in px after an ellipsis, from a '/' where
 * one is left ("…/models/x.gguf"), or all of it when it fits. */
const char *sl_svg_tail_within(const char *path, int size, double px);

#endif
