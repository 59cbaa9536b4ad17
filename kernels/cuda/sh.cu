// CUDA launchers of the spherical-harmonics encoding: one thread per direction, one launch per pass (the torch
// reference takes ~45 elementwise kernels for the forward alone).
#include "common.cuh"

namespace ngp {
namespace cuda {

template <int D>
__global__ void sh_fwd_kernel(const float* __restrict__ dirs, float* __restrict__ out, int64_t n) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) sh_encode_dir<D>(dirs + 3 * i, out + D * D * i);
}

template <int D>
__global__ void sh_bwd_kernel(const float* __restrict__ dirs, const float* __restrict__ grad_out,
                              float* __restrict__ grad_dirs, int64_t n) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) sh_encode_dir_grad<D>(dirs + 3 * i, grad_out + D * D * i, grad_dirs + 3 * i);
}

void sh_encode_fwd(const float* dirs, float* out, int64_t n, int degree, void* stream) {
    const unsigned blocks = blocks_for(n);
    const cudaStream_t s = as_stream(stream);
    switch (degree) {
        case 1: sh_fwd_kernel<1><<<blocks, kThreads, 0, s>>>(dirs, out, n); break;
        case 2: sh_fwd_kernel<2><<<blocks, kThreads, 0, s>>>(dirs, out, n); break;
        case 3: sh_fwd_kernel<3><<<blocks, kThreads, 0, s>>>(dirs, out, n); break;
        default: sh_fwd_kernel<4><<<blocks, kThreads, 0, s>>>(dirs, out, n); break;  // bindings: 1 <= degree <= 4
    }
}

void sh_encode_bwd(const float* dirs, const float* grad_out, float* grad_dirs, int64_t n, int degree, void* stream) {
    const unsigned blocks = blocks_for(n);
    const cudaStream_t s = as_stream(stream);
    switch (degree) {
        case 1: sh_bwd_kernel<1><<<blocks, kThreads, 0, s>>>(dirs, grad_out, grad_dirs, n); break;
        case 2: sh_bwd_kernel<2><<<blocks, kThreads, 0, s>>>(dirs, grad_out, grad_dirs, n); break;
        case 3: sh_bwd_kernel<3><<<blocks, kThreads, 0, s>>>(dirs, grad_out, grad_dirs, n); break;
        default: sh_bwd_kernel<4><<<blocks, kThreads, 0, s>>>(dirs, grad_out, grad_dirs, n); break;
    }
}

}  // namespace cuda
}  // namespace ngp
