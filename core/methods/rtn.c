/* Rounding to nearest: each weight goes to the nearest value its format's
 * scales allow, the scales chosen by the format's own quantizer. Nothing
 * to prepare: packing the weights is the method. */
#include "method.h"

const sl_method sl_method_rtn = {
	.name = "rtn",
	.kind = SL_METHOD_QUANT,
	.summary = "round to nearest",
};
