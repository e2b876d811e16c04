/* SmoothQuant (Xiao et al. 2023): activations with outlier channels are
 * hard to quantize per token, weights are easy, so difficulty migrates
 * from one to the other with per-input-channel scales
 * s_j = max|X_j|^alpha / max|W_j|^(1 - alpha): the input is divided by s
 * (folded into the previous operation) and the weights multiplied by it.
 * The weights are then quantized per channel and the activations per
 * token, dynamically, in the forward pass (layer act_int8). */
#include <math.h>

#include "methods.h"

void sl_smoothquant_scales(const float *x_max, const float *w_max, int n, double alpha, float *s)
{
	if (!(alpha >= 0 && alpha <= 1))
		alpha = 0.5;
	for (int j = 0; j < n; j++) {
		double x = x_max[j] > 1e-5f ? x_max[j] : 1e-5, w = w_max[j] > 1e-5f ? w_max[j] : 1e-5;
		double v = pow(x, alpha) / pow(w, 1 - alpha);
		s[j] = (float)(v > 1e-5 ? v : 1e-5);
	}
}
