/* What the processor can run, asked once: the AVX2 kernels need AVX2, FMA
 * and F16C. SL_NO_AVX2 in the environment forces the portable kernels
 * (for comparisons and tests). */
#ifndef SL_CPU_H
#define SL_CPU_H

#include <stdbool.h>

bool sl_cpu_avx2(void);

#endif
