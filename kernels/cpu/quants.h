/* GGML block formats (Q4_0 ... Q6_K): layouts and conversions to F32. */
#ifndef SL_QUANTS_H
#define SL_QUANTS_H

#include "../dtype.h"

/* Fills the table entries of every block format this file implements. */
void sl_quants_register(sl_type_info *table);

#endif
