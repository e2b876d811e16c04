/* The heatmap's palette: viridis, sampled and interpolated. */
#include "palette.h"

/* Ten colours along viridis (matplotlib's perceptually uniform colormap, in
 * the public domain), interpolated linearly. */
void sl_palette(double t, int rgb[3])
{
	static const unsigned char stops[10][3] = {
		{0x44, 0x01, 0x54}, {0x48, 0x28, 0x78}, {0x3e, 0x49, 0x89}, {0x31, 0x68, 0x8e}, {0x26, 0x82, 0x8e},
		{0x1f, 0x9e, 0x89}, {0x35, 0xb7, 0x79}, {0x6e, 0xce, 0x58}, {0xb5, 0xde, 0x2b}, {0xfd, 0xe7, 0x25},
	};
	if (!(t >= 0))
		t = 0;
	if (t > 1)
		t = 1;
	double x = t * 9;
	int i = x >= 9 ? 8 : (int)x;
	double f = x - i;
	for (int k = 0; k < 3; k++)
		rgb[k] = (int)(stops[i][k] + f * (stops[i + 1][k] - stops[i][k]) + 0.5);
}
