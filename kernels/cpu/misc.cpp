// CPU launchers of the sparse Adam steps (global or per-entry step counts) and the occupancy-grid helpers.
#include "ngp/launchers.h"

namespace ngp {
namespace cpu {

// One block of entries. Sparse: skipped when its gradient is all zero, else updated by a SIMD loop that keeps the
// zero-gradient entries as they were. Cloned for AVX-512/AVX2 with run-time dispatch.
__attribute__((target_clones("avx512f", "avx2", "default"))) static void adam_block(
    float* __restrict param, const float* __restrict grad, float* __restrict m, float* __restrict v, int64_t s,
    int64_t e, const AdamParams& a, bool skip_zero_grad) {
    if (!skip_zero_grad) {
#pragma omp simd
        for (int64_t i = s; i < e; ++i) adam_update(a, param[i], m[i], v[i], grad[i]);
        return;
    }
    int any = 0;
#pragma omp simd reduction(| : any)
    for (int64_t i = s; i < e; ++i) any |= grad[i] != 0.0f;
    if (!any) return;
#pragma omp simd
    for (int64_t i = s; i < e; ++i) sparse_adam_entry_select(a, param + i, m + i, v + i, grad[i]);
}

void adam_step(float* param, const float* grad, float* m, float* v, int64_t n, const AdamParams& a,
               bool skip_zero_grad) {
    constexpr int64_t B = 256;
    const int64_t n_blocks = (n + B - 1) / B;
#pragma omp parallel for schedule(static) if (n_blocks > 16)
    for (int64_t b = 0; b < n_blocks; ++b)
        adam_block(param, grad, m, v, b * B, b + 1 < n_blocks ? (b + 1) * B : n, a, skip_zero_grad);
}

// Per-entry counts: blocks without a non-zero gradient are skipped, the others run the branch-free SIMD loop.
__attribute__((target_clones("avx512f", "avx2", "default"))) static void adam_block_counted(
    float* __restrict param, const float* __restrict grad, float* __restrict m, float* __restrict v,
    int32_t* __restrict counts, int64_t s, int64_t e, const AdamParams& a, const CountedAdam& ca) {
    int any = 0;
#pragma omp simd reduction(| : any)
    for (int64_t i = s; i < e; ++i) any |= grad[i] != 0.0f;
    if (!any) return;
#pragma omp simd
    for (int64_t i = s; i < e; ++i) counted_adam_entry_select(a, ca, param + i, m + i, v + i, counts + i, grad[i]);
}

void adam_step_counted(float* param, const float* grad, float* m, float* v, int32_t* counts, int64_t n,
                       const AdamParams& a, const CountedAdam& ca) {
    constexpr int64_t B = 256;
    const int64_t n_blocks = (n + B - 1) / B;
#pragma omp parallel for schedule(static) if (n_blocks > 16)
    for (int64_t b = 0; b < n_blocks; ++b)
        adam_block_counted(param, grad, m, v, counts, b * B, b + 1 < n_blocks ? (b + 1) * B : n, a, ca);
}

void occupancy_cell_positions(const int64_t* indices, const float* jitter, int64_t n, int cascade, int resolution,
                              float* pos) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) occupancy_cell_position(indices[i], jitter + 3 * i, cascade, resolution, pos + 3 * i);
}

void occupancy_decay_max(float* density, const float* fresh, int64_t n, float decay) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) density[i] = occupancy_decay_max_cell(density[i], fresh[i], decay);
}

}  // namespace cpu
}  // namespace ngp
