/* CPU feature detection for the run-time choice of kernels. F16C is read
 * through cpuid because not every compiler's __builtin_cpu_supports knows
 * it (clang 14 does not). */
#include "cpu.h"

#include <stdlib.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <pthread.h>
#if defined(__linux__) && defined(__x86_64__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

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

/* Whether the tile unit can be used: the CPU has AMX-TILE and AMX-INT8,
 * and the kernel grants this process the tile data (Linux hands it out on
 * request only: arch_prctl ARCH_REQ_XCOMP_PERM for feature 18, XTILEDATA;
 * the grant holds for every thread of the process). Asked once. */
static bool amx_granted;
static pthread_once_t amx_once = PTHREAD_ONCE_INIT;

static void amx_request(void)
{
	unsigned a, b, c, d;
	if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(d & (1u << 24)) || !(d & (1u << 25)))
		return;
#if defined(__linux__) && defined(__x86_64__)
	const long arch_req_xcomp_perm = 0x1023, xfeature_xtiledata = 18;
	amx_granted = syscall(SYS_arch_prctl, arch_req_xcomp_perm, xfeature_xtiledata) == 0;
#endif
}

bool sl_cpu_amx(void)
{
	/* Its kernels work in AVX-512 registers around the tiles. */
	if (!sl_cpu_vnni() || !__builtin_cpu_supports("avx512dq") || getenv("SL_NO_AMX"))
		return false;
	pthread_once(&amx_once, amx_request);
	return amx_granted;
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

bool sl_cpu_amx(void)
{
	return false;
}
#endif
