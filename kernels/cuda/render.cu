// CUDA launchers of ray marching (count and write passes), compositing and live-sample compaction (one thread per
// ray each).
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

__global__ void live_counts_kernel(const float* sigmas, const float* dt, const int64_t* offsets,
                                   const int64_t* counts, int64_t n_rays, float threshold, int32_t* n_live) {
    const int64_t r = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= n_rays) return;
    n_live[r] = live_prefix(offsets[r], offsets[r] + counts[r], sigmas, dt, threshold);
}

__global__ void compact_write_kernel(const SampleView src, const int64_t* src_offsets, const int64_t* dst_offsets,
                                     const int64_t* n_keep, int64_t n_rays, const PackedOut dst) {
    const int64_t r = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (r < n_rays && n_keep[r] > 0) copy_ray_samples(r, src_offsets[r], dst_offsets[r], n_keep[r], src, dst);
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

void live_counts(const float* sigmas, const float* dt, const int64_t* offsets, const int64_t* counts, int64_t n_rays,
                 float threshold, int32_t* n_live, void* stream) {
    live_counts_kernel<<<blocks_for(n_rays), kThreads, 0, as_stream(stream)>>>(sigmas, dt, offsets, counts, n_rays,
                                                                              threshold, n_live);
}

void compact_write(const SampleView& src, const int64_t* src_offsets, const int64_t* dst_offsets,
                   const int64_t* n_keep, int64_t n_rays, const PackedOut& dst, void* stream) {
    compact_write_kernel<<<blocks_for(n_rays), kThreads, 0, as_stream(stream)>>>(src, src_offsets, dst_offsets, n_keep,
                                                                                n_rays, dst);
}

}  // namespace cuda
}  // namespace ngp
