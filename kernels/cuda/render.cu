// CUDA launchers of ray marching (count and write passes, one thread per ray) and compositing (one thread per ray).
#include "common.cuh"

namespace ngp {
namespace cuda {

__device__ __forceinline__ int64_t segment_end(const int64_t* offsets, int64_t r, int64_t n_rays, int64_t n) {
    return r + 1 < n_rays ? offsets[r + 1] : n;
}

__global__ void composite_fwd_kernel(const float* sigmas, const float* rgbs, const float* t, const float* dt,
                                     const int64_t* offsets, int64_t n_rays, int64_t n, float threshold,
                                     const CompositeOut out) {
    const int64_t r = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= n_rays) return;
    composite_ray(r, offsets[r], segment_end(offsets, r, n_rays, n), sigmas, rgbs, t, dt, threshold, out);
}

__global__ void composite_bwd_kernel(const float* sigmas, const float* rgbs, const float* t, const float* dt,
                                     const int64_t* offsets, int64_t n_rays, int64_t n, const float* weights,
                                     const float* trans, float threshold, const CompositeGrad g, float* g_sigmas,
                                     float* g_rgbs) {
    const int64_t r = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= n_rays) return;
    composite_ray_backward(r, offsets[r], segment_end(offsets, r, n_rays, n), sigmas, rgbs, t, dt, weights, trans,
                           threshold, g, g_sigmas, g_rgbs);
}

__global__ void march_count_kernel(const float* rays_o, const float* rays_d, const float* jitter,
                                   const uint8_t* occupied, int64_t n_rays, const MarchParams p,
                                   const MarchRange range, int32_t* counts) {
    const int64_t r = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= n_rays) return;
    counts[r] = march_count_ray(r, rays_o, rays_d, jitter, occupied, p, range);
}

__global__ void march_write_kernel(const float* rays_o, const float* rays_d, const float* jitter,
                                   const uint8_t* occupied, int64_t n_rays, const MarchParams p,
                                   const MarchRange range, const int64_t* offsets, const int64_t* counts,
                                   const PackedOut out) {
    const int64_t r = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (r < n_rays && counts[r] > 0) march_write_ray(r, rays_o, rays_d, jitter, occupied, p, offsets, out, range);
}

void composite_fwd(const float* sigmas, const float* rgbs, const float* t, const float* dt, const int64_t* offsets,
                   int64_t n_rays, int64_t n, float threshold, const CompositeOut& out, void* stream) {
    composite_fwd_kernel<<<blocks_for(n_rays), kThreads, 0, as_stream(stream)>>>(sigmas, rgbs, t, dt, offsets, n_rays,
                                                                                n, threshold, out);
}

void composite_bwd(const float* sigmas, const float* rgbs, const float* t, const float* dt, const int64_t* offsets,
                   int64_t n_rays, int64_t n, const float* weights, const float* trans, float threshold,
                   const CompositeGrad& g, float* g_sigmas, float* g_rgbs, void* stream) {
    composite_bwd_kernel<<<blocks_for(n_rays), kThreads, 0, as_stream(stream)>>>(
        sigmas, rgbs, t, dt, offsets, n_rays, n, weights, trans, threshold, g, g_sigmas, g_rgbs);
}

void march_count(const float* rays_o, const float* rays_d, const float* jitter, const uint8_t* occupied,
                 int64_t n_rays, const MarchParams& p, const MarchRange& range, int32_t* counts, void* stream) {
    march_count_kernel<<<blocks_for(n_rays), kThreads, 0, as_stream(stream)>>>(rays_o, rays_d, jitter, occupied,
                                                                              n_rays, p, range, counts);
}

void march_write(const float* rays_o, const float* rays_d, const float* jitter, const uint8_t* occupied,
                 int64_t n_rays, const MarchParams& p, const MarchRange& range, const int64_t* offsets,
                 const int64_t* counts, const PackedOut& out, void* stream) {
    march_write_kernel<<<blocks_for(n_rays), kThreads, 0, as_stream(stream)>>>(
        rays_o, rays_d, jitter, occupied, n_rays, p, range, offsets, counts, out);
}

}  // namespace cuda
}  // namespace ngp
