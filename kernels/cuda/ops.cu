// CUDA kernels: the first elementwise and normalization ops of the GPU
// backend, behind the C interface in cuda.h.
#include <cuda_runtime.h>
#include <stdio.h>

#include "cuda.h"

extern "C" int sl_cuda_device_count(void)
{
	int n = 0;
	if (cudaGetDeviceCount(&n) != cudaSuccess)
		return 0;
	return n;
}

extern "C" int sl_cuda_describe(char *buf, size_t n)
{
	cudaDeviceProp p;
	if (cudaGetDeviceProperties(&p, 0) != cudaSuccess)
		return -1;
	snprintf(buf, n, "%s, %.1f GiB, sm_%d%d", p.name, p.totalGlobalMem / 1073741824.0, p.major, p.minor);
	return 0;
}

// One block per row; threads stride over the row and reduce in shared memory.
__global__ void rmsnorm_kernel(float *y, const float *x, const float *w, int n, float eps)
{
	extern __shared__ float partial[];
	const float *xr = x + (size_t)blockIdx.x * n;
	float *yr = y + (size_t)blockIdx.x * n;
	float ss = 0.0f;
	for (int i = threadIdx.x; i < n; i += blockDim.x)
		ss += xr[i] * xr[i];
	partial[threadIdx.x] = ss;
	__syncthreads();
	for (int s = blockDim.x / 2; s > 0; s >>= 1) {
		if (threadIdx.x < s)
			partial[threadIdx.x] += partial[threadIdx.x + s];
		__syncthreads();
	}
	float scale = rsqrtf(partial[0] / n + eps);
	for (int i = threadIdx.x; i < n; i += blockDim.x)
		yr[i] = w[i] * (xr[i] * scale);
}

__global__ void swiglu_kernel(float *gate, const float *up, size_t n)
{
	size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (i < n) {
		float g = gate[i];
		gate[i] = g / (1.0f + __expf(-g)) * up[i];
	}
}

extern "C" int sl_cuda_rmsnorm(float *y, const float *x, const float *w, int T, int n, float eps)
{
	const int threads = 256;
	rmsnorm_kernel<<<T, threads, threads * sizeof(float)>>>(y, x, w, n, eps);
	return cudaGetLastError() == cudaSuccess ? 0 : -1;
}

extern "C" int sl_cuda_swiglu(float *gate, const float *up, size_t n)
{
	const int threads = 256;
	swiglu_kernel<<<(unsigned)((n + threads - 1) / threads), threads>>>(gate, up, n);
	return cudaGetLastError() == cudaSuccess ? 0 : -1;
}
