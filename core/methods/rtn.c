/* Rounding to nearest: each weight goes to the nearest value its format's
 * scales allow, the scales chosen by the format's own quantizer. Nothing
 * to prepare: packing the weights is the method. */
#include "method.h"

static const sl_card card_rtn = {
	.title = "Rounding to nearest",
	.what = "Each weight goes to the nearest value of the format's grid, with the scales the format itself "
	        "chooses: no calibration, no correction. The baseline every other method is measured against.",
	.formula = "w_q = s * clamp(round(w / s), q_min, q_max), s fixed per row, group or block by the format.",
	.watch = "Heatmap: a sweep of bare formats is rounding to nearest; Evaluate: run it first, then a calibrated "
	         "method on the same format, and compare KL.",
	.pitfall = "Rounding errors of neighbouring weights add up in the layer's output; at 3 bits and below that sum, "
	           "not each error, is what hurts.",
	.paper = "Nagel et al. 2021, A White Paper on Neural Network Quantization.",
};

const sl_method sl_method_rtn = {
	.card = &card_rtn,
	.name = "rtn",
	.kind = SL_METHOD_QUANT,
	.summary = "round to nearest",
};
