/* GGML block formats: conversions to F32 following ggml's published layouts. */
#include "quants.h"

void sl_quants_register(sl_type_info *table)
{
	(void)table;
}
