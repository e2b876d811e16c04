/* SmoothQuant (Xiao et al. 2023): activations with outlier channels are
 * hard to quantize per token, weights are easy, so difficulty migrates
 * from one to the other with per-input-channel scales
 * s_j = max|X_j|^alpha / max|W_j|^(1 - alpha): the input is divided by s
 * (folded into the previous operation) and the weights multiplied by it.
 * The weights are then quantized per channel and the activations per
 * token, dynamically, in the forward pass (layer act_int8). alpha is the
 * last one the members asking for these scales set, else 0.5. */
#include <math.h>
#include <string.h>

#include "method.h"

static const sl_param_spec params[] = {
	{"alpha", 0, 1, 0.5, false, false, "migration strength", false},
};

static const char name[] = "smoothquant";

static sl_status sq_scales(sl_scale_job *j, float *s, sl_error *err)
{
	(void)err;
	double alpha = 0.5;
	for (int k = 0; k < j->n_mem; k++) {
		const sl_module_plan *p = j->mem[k].plan;
		if (p && !strcmp(p->method, name))
			for (int i = 0; i < p->n_params; i++)
				if (!strcmp(p->params[i].key, "alpha") && p->params[i].value >= 0 && p->params[i].value <= 1)
					alpha = p->params[i].value;
	}
	const float *x_max = j->x_max, *w_max = j->w_max;
	int n = j->n;
	for (int i = 0; i < n; i++) {
		double x = x_max[i] > 1e-5f ? x_max[i] : 1e-5, w = w_max[i] > 1e-5f ? w_max[i] : 1e-5;
		double v = pow(x, alpha) / pow(w, 1 - alpha);
		s[i] = (float)(v > 1e-5 ? v : 1e-5);
	}
	j->chosen = alpha;
	return SL_OK;
}

static const sl_card card_smoothquant = {
	.title = "SmoothQuant: moving outliers into weights",
	.what = "For 8-bit weights and 8-bit activations (W8A8): divides each input channel of the activations by a "
	        "scale and multiplies the weights by it, so the activations' outliers become easier weights; "
	        "activations are then rounded to int8 per token.",
	.formula = "Y = (X diag(s)^-1) (diag(s) W), s_j = max|X_j|^alpha / max|W_j|^(1 - alpha), alpha = 0.5 by default.",
	.watch = "Layer: the activations' channel ranges before and after; Evaluate: KL of W8A8, which includes the "
	         "activations' rounding, against weights alone.",
	.pitfall = "alpha too high moves so much into the weights that they become the hard part; the figure includes "
	           "activation rounding, so compare it with other W8A8 runs only.",
	.paper = "Xiao et al. 2023, SmoothQuant: Accurate and Efficient Post-Training Quantization for Large Language "
	         "Models (ICML).",
};

const sl_method sl_method_smoothquant = {
	.card = &card_smoothquant,
	.name = name,
	.kind = SL_METHOD_QUANT,
	.needs = SL_NEEDS_STATS,
	.params = params,
	.n_params = 1,
	.summary = "W8A8, moves outliers into weights",
	.scales = sq_scales,
	.act_int8 = true,
};
