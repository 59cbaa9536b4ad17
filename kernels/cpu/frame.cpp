// CPU launchers of whole-frame inference over sample slots (OpenMP over rays; see include/ngp/slots.h).
#include "ngp/launchers.h"

namespace ngp {
namespace cpu {

void march_first(const float* rays_o, const float* rays_d, const uint8_t* occupied, int64_t n_rays,
                 const MarchParams& p, int64_t* k) {
#pragma omp parallel for schedule(dynamic, 64)
    for (int64_t r = 0; r < n_rays; ++r) k[r] = first_sample_cursor(rays_o + 3 * r, rays_d + 3 * r, occupied, p);
}

void march_slots(const float* rays_o, const float* rays_d, const uint8_t* occupied, const int32_t* alive,
                 int64_t n_alive, const MarchParams& p, int32_t K, int64_t* k, const SlotBuffers& out) {
#pragma omp parallel for schedule(dynamic, 64)
    for (int64_t j = 0; j < n_alive; ++j) march_slots_ray(j, alive, rays_o, rays_d, occupied, p, K, k, out);
}

void composite_slots(const float* sigmas, const float* rgbs, const float* t, const float* dt, const int32_t* counts,
                     const int32_t* alive, int64_t n_alive, int32_t K, float threshold, const FrameState& s) {
#pragma omp parallel for schedule(static)
    for (int64_t j = 0; j < n_alive; ++j) composite_slots_ray(j, alive, sigmas, rgbs, t, dt, counts, K, threshold, s);
}

// Sequential, so the alive rays keep their order (one pass over a few million indices is cheap next to the MLP).
void compact_rays(const int32_t* alive, int64_t n_alive, const int64_t* k, int32_t* out, int32_t* counter) {
    int32_t m = 0;
    for (int64_t j = 0; j < n_alive; ++j)
        if (ray_alive(k, alive[j])) out[m++] = alive[j];
    *counter = m;
}

void rgba8(const float* rgb, const float* trans, const float* background, int64_t n, uint8_t* out) {
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < n; ++r) rgba8_pixel(r, rgb, trans, background, out);
}

}  // namespace cpu
}  // namespace ngp
