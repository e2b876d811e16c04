/* What the processor can run, asked once: the AVX2 kernels need AVX2, FMA
 * and F16C, and some of them have AVX-512 VNNI forms. SL_NO_AVX2 in the
 * environment forces the portable kernels (for comparisons and tests). */
#ifndef SL_CPU_H
#define SL_CPU_H

#include <stdbool.h>

bool sl_cpu_avx2(void);
/* AVX-512 VNNI (with AVX-512 VL, for its 256-bit forms) besides the AVX2
 * set; SL_NO_VNNI (or SL_NO_AVX512, or SL_NO_AVX2) in the environment turns it off. */
bool sl_cpu_vnni(void);
/* AVX-512 F and VL besides the AVX2 set: 256-bit operations over 32
 * registers. SL_NO_AVX512 (or SL_NO_AVX2) in the environment turns it off. */
bool sl_cpu_avx512vl(void);
/* AMX tiles with int8 products, granted to the process by the OS, besides
 * the AVX-512 VNNI set; SL_NO_AMX (or any switch that turns VNNI off)
 * turns it off. */
bool sl_cpu_amx(void);

#endif
