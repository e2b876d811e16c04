/* The CUDA backend's C interface (built only when configure finds nvcc). */
#ifndef SL_CUDA_H
#define SL_CUDA_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Number of usable CUDA devices (0 when there is no driver or GPU). */
int sl_cuda_device_count(void);
/* Describes device 0 into buf ("NVIDIA H100 80GB HBM3, 79.1 GiB, sm_90"). */
int sl_cuda_describe(char *buf, size_t n);
/* y = x / rms(x) * w over T rows of n, on device pointers. */
int sl_cuda_rmsnorm(float *y, const float *x, const float *w, int T, int n, float eps);
/* gate = silu(gate) * up over n elements, on device pointers. */
int sl_cuda_swiglu(float *gate, const float *up, size_t n);

#ifdef __cplusplus
}
#endif

#endif
