// Launchers over raw pointers: ngp::cpu::* (OpenMP) and ngp::cuda::* (CUDA, stream given as void*).
// No torch headers here, so the CUDA launchers compile with plain `nvcc -c`.
#pragma once

#include "adam.h"
#include "compact.h"
#include "composite.h"
#include "hashgrid.h"
#include "raymarch.h"
#include "sh.h"
#include "slots.h"

namespace ngp {

#define NGP_DECLARE_LAUNCHERS(...)                                                                                  \
    void hash_grid_fwd(const float* x, const float* table, float* out, int64_t n, const GridParams& g __VA_ARGS__); \
    void hash_grid_fwd(const float* x, const half16* table, float* out, int64_t n, const GridParams& g __VA_ARGS__); \
    void hash_grid_bwd(const float* x, const float* table, const float* grad_out, float* grad_table,              \
                       float* grad_x, int64_t n, const GridParams& g __VA_ARGS__);                                  \
    void hash_grid_bwd(const float* x, const half16* table, const float* grad_out, float* grad_table,             \
                       float* grad_x, int64_t n, const GridParams& g __VA_ARGS__);                                  \
    void adam_step(float* param, const float* grad, float* m, float* v, int64_t n, const AdamParams& a,            \
                   bool skip_zero_grad __VA_ARGS__);                                                                \
    void adam_step_counted(float* param, const float* grad, float* m, float* v, int32_t* counts, int64_t n,        \
                           const AdamParams& a, const CountedAdam& ca __VA_ARGS__);                                 \
    void composite_fwd(const float* sigmas, const float* rgbs, const float* t, const float* dt,                    \
                       const int64_t* offsets, int64_t n_rays, int64_t n, float threshold,                         \
                       const CompositeOut& out __VA_ARGS__);                                                        \
    void composite_bwd(const float* sigmas, const float* rgbs, const float* t, const float* dt,                    \
                       const int64_t* offsets, int64_t n_rays, int64_t n, const float* weights, const float* trans, \
                       float threshold, const CompositeGrad& g, float* g_sigmas, float* g_rgbs __VA_ARGS__);       \
    void march_count(const float* rays_o, const float* rays_d, const float* jitter, const uint8_t* occupied,       \
                     int64_t n_rays, const MarchParams& p, const MarchRange& range, int32_t* counts __VA_ARGS__);   \
    void march_write(const float* rays_o, const float* rays_d, const float* jitter, const uint8_t* occupied,       \
                     int64_t n_rays, const MarchParams& p, const MarchRange& range, const int64_t* offsets,         \
                     const int64_t* counts, const PackedOut& out __VA_ARGS__);                                      \
    void live_counts(const float* sigmas, const float* dt, const int64_t* offsets, const int64_t* counts,          \
                     int64_t n_rays, float threshold, int32_t* n_live __VA_ARGS__);                                 \
    void compact_write(const SampleView& src, const int64_t* src_offsets, const int64_t* dst_offsets,              \
                       const int64_t* n_keep, int64_t n_rays, const PackedOut& dst __VA_ARGS__);                    \
    void occupancy_cell_positions(const int64_t* indices, const float* jitter, int64_t n, int cascade,             \
                                  int resolution, float* pos __VA_ARGS__);                                          \
    void occupancy_decay_max(float* density, const float* fresh, int64_t n, float decay __VA_ARGS__);              \
    void sh_encode_fwd(const float* dirs, float* out, int64_t n, int degree __VA_ARGS__);                          \
    void sh_encode_bwd(const float* dirs, const float* grad_out, float* grad_dirs, int64_t n,                      \
                       int degree __VA_ARGS__);                                                                     \
    void march_first(const float* rays_o, const float* rays_d, const uint8_t* occupied, int64_t n_rays,            \
                     const MarchParams& p, int64_t* k __VA_ARGS__);                                                 \
    void march_slots(const float* rays_o, const float* rays_d, const uint8_t* occupied, const int32_t* alive,      \
                     int64_t n_alive, const MarchParams& p, int32_t K, int64_t* k, const SlotBuffers& out __VA_ARGS__); \
    void composite_slots(const float* sigmas, const float* rgbs, const float* t, const float* dt,                  \
                         const int32_t* counts, const int32_t* alive, int64_t n_alive, int32_t K, float threshold,  \
                         const FrameState& s __VA_ARGS__);                                                          \
    void compact_rays(const int32_t* alive, int64_t n_alive, const int64_t* k, int32_t* out,                       \
                      int32_t* counter __VA_ARGS__);                                                                \
    void rgba8(const float* rgb, const float* trans, const float* background, int64_t n, uint8_t* out __VA_ARGS__);

namespace cpu {
NGP_DECLARE_LAUNCHERS()
}
namespace cuda {
NGP_DECLARE_LAUNCHERS(, void* stream)
}

#undef NGP_DECLARE_LAUNCHERS

// Position of a cell of an occupancy cascade; jitter in [0, 1)^3 picks a point in the cell (occupancy.cell_centers).
NGP_HD void occupancy_cell_position(int64_t idx, const float* jitter, int cascade, int resolution, float* pos) {
    const int64_t r = resolution;
    const int64_t ijk[3] = {idx % r, (idx / r) % r, idx / (r * r)};
    const float size = ldexpf(1.0f, cascade);
    for (int a = 0; a < 3; ++a) pos[a] = mul_rn(((float)ijk[a] + jitter[a]) / (float)r - 0.5f, size) + 0.5f;
}

// EMA-max update of one occupancy cell: max(density * decay, fresh); cells marked untrained (density < 0: seen by
// no training camera) keep their mark.
NGP_HD float occupancy_decay_max_cell(float density, float fresh, float decay) {
    return density < 0.0f ? density : maxf(density * decay, fresh);
}

}  // namespace ngp
