/* The heatmap's colours, shared by the Heatmap view and its SVG picture. */
#ifndef SL_PALETTE_H
#define SL_PALETTE_H

/* A colour on a perceptually even scale (viridis-like), t in [0, 1]. */
void sl_palette(double t, int rgb[3]);

#endif
