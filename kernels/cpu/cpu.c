/* CPU feature detection for the run-time choice of kernels. F16C is read
 * through cpuid because not every compiler's __builtin_cpu_supports knows
 * it (clang 14 does not). */
#include "cpu.h"

#include <stdlib.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

bool sl_cpu_avx2(void)
{
	unsigned a, b, c, d;
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __get_cpuid(1, &a, &b, &c, &d) &&
	       (c & bit_F16C) && !getenv("SL_NO_AVX2");
}

bool sl_cpu_vnni(void)
{
	__builtin_cpu_init();
	/* Its kernels use 512-bit registers: SL_NO_AVX512 turns them off too. */
	return sl_cpu_avx512vl() && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vnni") &&
	       !getenv("SL_NO_VNNI");
}

bool sl_cpu_avx512vl(void)
{
	__builtin_cpu_init();
	return sl_cpu_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
	       !getenv("SL_NO_AVX512");
}
#else
bool sl_cpu_avx2(void)
{
	return false;
}

bool sl_cpu_vnni(void)
{
	return false;
}

bool sl_cpu_avx512vl(void)
{
	return false;
}
#endif
