/* Which compute backends this build of slimlab has and this machine offers. */
#include <stdio.h>

#include "config.h"
#include "core/backend.h"
#include "kernels/cpu/cpu.h"
#ifdef SL_HAVE_CUDA
#include "kernels/cuda/cuda.h"
#endif

void sl_backend_describe(char *buf, size_t n)
{
	/* The kernels this machine runs, as the run-time choice makes it
	 * (SL_NO_AVX2, SL_NO_AVX512, SL_NO_VNNI and SL_NO_AMX turn forms
	 * off). */
	int k = snprintf(buf, n, "cpu:  %s%s%s%s kernels, OpenBLAS sgemm\n",
			 sl_cpu_avx2() ? "AVX2+FMA+F16C" : "portable C", sl_cpu_avx512vl() ? ", AVX-512" : "",
			 sl_cpu_vnni() ? " with VNNI" : "", sl_cpu_amx() ? " and AMX" : "");
	if (k < 0 || (size_t)k >= n)
		return;
#ifdef SL_HAVE_CUDA
	char dev[256];
	int count = sl_cuda_device_count();
	if (count > 0 && sl_cuda_describe(dev, sizeof dev) == 0)
		snprintf(buf + k, n - (size_t)k, "cuda: built; %d device%s: %s\n", count,
			 count == 1 ? "" : "s", dev);
	else
		snprintf(buf + k, n - (size_t)k, "cuda: built; no usable device\n");
#else
	snprintf(buf + k, n - (size_t)k, "cuda: not built (configure found no nvcc with libcudart)\n");
#endif
}
