// CPU launchers of ray marching, compositing and live-sample compaction (OpenMP over rays).
#include "ngp/launchers.h"

namespace ngp {
namespace cpu {

static inline int64_t segment_end(const int64_t* offsets, int64_t r, int64_t n_rays, int64_t n) {
    return r + 1 < n_rays ? offsets[r + 1] : n;
}

void composite_fwd(const float* sigmas, const float* rgbs, const float* t, const float* dt, const int64_t* offsets,
                   int64_t n_rays, int64_t n, float threshold, const CompositeOut& out) {
#pragma omp parallel for schedule(dynamic, 256)
    for (int64_t r = 0; r < n_rays; ++r)
        composite_ray(r, offsets[r], segment_end(offsets, r, n_rays, n), sigmas, rgbs, t, dt, threshold, out);
}

void composite_bwd(const float* sigmas, const float* rgbs, const float* t, const float* dt, const int64_t* offsets,
                   int64_t n_rays, int64_t n, const float* weights, const float* trans, float threshold,
                   const CompositeGrad& g, float* g_sigmas, float* g_rgbs) {
#pragma omp parallel for schedule(dynamic, 256)
    for (int64_t r = 0; r < n_rays; ++r)
        composite_ray_backward(r, offsets[r], segment_end(offsets, r, n_rays, n), sigmas, rgbs, t, dt, weights,
                               trans, threshold, g, g_sigmas, g_rgbs);
}

void march_count(const float* rays_o, const float* rays_d, const float* jitter, const uint8_t* occupied,
                 int64_t n_rays, const MarchParams& p, const MarchRange& range, int32_t* counts) {
#pragma omp parallel for schedule(dynamic, 64)
    for (int64_t r = 0; r < n_rays; ++r) counts[r] = march_count_ray(r, rays_o, rays_d, jitter, occupied, p, range);
}

void march_write(const float* rays_o, const float* rays_d, const float* jitter, const uint8_t* occupied,
                 int64_t n_rays, const MarchParams& p, const MarchRange& range, const int64_t* offsets,
                 const int64_t* counts, const PackedOut& out) {
#pragma omp parallel for schedule(dynamic, 64)
    for (int64_t r = 0; r < n_rays; ++r)
        if (counts[r] > 0) march_write_ray(r, rays_o, rays_d, jitter, occupied, p, offsets, out, range);
}

void live_counts(const float* sigmas, const float* dt, const int64_t* offsets, const int64_t* counts, int64_t n_rays,
                 float threshold, int32_t* n_live) {
#pragma omp parallel for schedule(dynamic, 256)
    for (int64_t r = 0; r < n_rays; ++r)
        n_live[r] = live_prefix(offsets[r], offsets[r] + counts[r], sigmas, dt, threshold);
}

void compact_write(const SampleView& src, const int64_t* src_offsets, const int64_t* dst_offsets,
                   const int64_t* n_keep, int64_t n_rays, const PackedOut& dst) {
#pragma omp parallel for schedule(dynamic, 256)
    for (int64_t r = 0; r < n_rays; ++r)
        if (n_keep[r] > 0) copy_ray_samples(r, src_offsets[r], dst_offsets[r], n_keep[r], src, dst);
}

}  // namespace cpu
}  // namespace ngp
