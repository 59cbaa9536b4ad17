// CUDA launchers of whole-frame inference over sample slots (one thread per ray; see include/ngp/slots.h).
#include "common.cuh"

namespace ngp {
namespace cuda {

__global__ void march_first_kernel(const float* rays_o, const float* rays_d, const uint8_t* occupied, int64_t n_rays,
                                   const MarchParams p, int64_t* k) {
    const int64_t r = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (r < n_rays) k[r] = first_sample_cursor(rays_o + 3 * r, rays_d + 3 * r, occupied, p);
}

__global__ void march_slots_kernel(const float* rays_o, const float* rays_d, const uint8_t* occupied,
                                   const int32_t* alive, int64_t n_alive, const MarchParams p, int32_t K, int64_t* k,
                                   const SlotBuffers out) {
    const int64_t j = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (j < n_alive) march_slots_ray(j, alive, rays_o, rays_d, occupied, p, K, k, out);
}

__global__ void composite_slots_kernel(const float* sigmas, const float* rgbs, const float* t, const float* dt,
                                       const int32_t* counts, const int32_t* alive, int64_t n_alive, int32_t K,
                                       float threshold, const FrameState s) {
    const int64_t j = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (j < n_alive) composite_slots_ray(j, alive, sigmas, rgbs, t, dt, counts, K, threshold, s);
}

// Warp-aggregated compaction: one atomicAdd per warp on the device counter, lanes write contiguously, so rays of a
// warp stay neighbours (the order between warps depends on scheduling; every ray's result does not).
__global__ void compact_rays_kernel(const int32_t* alive, int64_t n_alive, const int64_t* k, int32_t* out,
                                    int32_t* counter) {
    const int64_t j = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    const bool keep = j < n_alive && ray_alive(k, alive[j]);
    const unsigned int mask = __ballot_sync(0xffffffffu, keep);
    if (mask == 0) return;
    const int lane = threadIdx.x & 31;
    const int leader = __ffs(mask) - 1;
    int32_t base = 0;
    if (lane == leader) base = atomicAdd(counter, (int32_t)__popc(mask));
    base = __shfl_sync(0xffffffffu, base, leader);
    if (keep) out[base + __popc(mask & ((1u << lane) - 1u))] = alive[j];
}

__global__ void rgba8_kernel(const float* rgb, const float* trans, const float* background, int64_t n, uint8_t* out) {
    const int64_t r = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (r < n) rgba8_pixel(r, rgb, trans, background, out);
}

void march_first(const float* rays_o, const float* rays_d, const uint8_t* occupied, int64_t n_rays,
                 const MarchParams& p, int64_t* k, void* stream) {
    march_first_kernel<<<blocks_for(n_rays), kThreads, 0, as_stream(stream)>>>(rays_o, rays_d, occupied, n_rays, p, k);
}

void march_slots(const float* rays_o, const float* rays_d, const uint8_t* occupied, const int32_t* alive,
                 int64_t n_alive, const MarchParams& p, int32_t K, int64_t* k, const SlotBuffers& out, void* stream) {
    march_slots_kernel<<<blocks_for(n_alive), kThreads, 0, as_stream(stream)>>>(rays_o, rays_d, occupied, alive,
                                                                               n_alive, p, K, k, out);
}

void composite_slots(const float* sigmas, const float* rgbs, const float* t, const float* dt, const int32_t* counts,
                     const int32_t* alive, int64_t n_alive, int32_t K, float threshold, const FrameState& s,
                     void* stream) {
    composite_slots_kernel<<<blocks_for(n_alive), kThreads, 0, as_stream(stream)>>>(sigmas, rgbs, t, dt, counts,
                                                                                   alive, n_alive, K, threshold, s);
}

void compact_rays(const int32_t* alive, int64_t n_alive, const int64_t* k, int32_t* out, int32_t* counter,
                  void* stream) {
    cudaMemsetAsync(counter, 0, sizeof(int32_t), as_stream(stream));
    if (n_alive > 0)
        compact_rays_kernel<<<blocks_for(n_alive), kThreads, 0, as_stream(stream)>>>(alive, n_alive, k, out, counter);
}

void rgba8(const float* rgb, const float* trans, const float* background, int64_t n, uint8_t* out, void* stream) {
    rgba8_kernel<<<blocks_for(n), kThreads, 0, as_stream(stream)>>>(rgb, trans, background, n, out);
}

}  // namespace cuda
}  // namespace ngp
