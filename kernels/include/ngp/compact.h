// Per-ray logic of live-sample compaction (training only on the samples compositing weighs; see
// ngp_app/render/batch.py): how many leading samples of a ray are live, and copying them into a packed buffer.
#pragma once

#include "raymarch.h"

namespace ngp {

// Number of live samples among a ray's samples [s, e): those whose transmittance before them,
// T_i = exp(-sum_{j<i} sigma_j dt_j) accumulated exactly as composite_ray does, is >= threshold. T never grows
// along a ray, so the live samples are a prefix.
NGP_HD int32_t live_prefix(int64_t s, int64_t e, const float* sigmas, const float* dt, float threshold) {
    double optical = 0.0;
    int64_t i = s;
    for (; i < e; ++i) {
        const float T = expf(-(float)optical);
        if (!(T >= threshold)) break;
        const float tau = sigmas[i] * dt[i];
        optical += (double)tau;
    }
    return (int32_t)(i - s);
}

// Input samples, packed ray after ray.
struct SampleView {
    const float* positions;  // (n, 3)
    const float* dirs;       // (n, 3)
    const float* t;          // (n,)
    const float* dt;         // (n,)
};

// Copies the first n samples of ray r from src[src_begin:] to dst[dst_begin:], recording r as their ray.
NGP_HD void copy_ray_samples(int64_t r, int64_t src_begin, int64_t dst_begin, int64_t n, const SampleView& src,
                             const PackedOut& dst) {
    for (int64_t j = 0; j < n; ++j) {
        const int64_t a = src_begin + j, b = dst_begin + j;
        for (int c = 0; c < 3; ++c) {
            dst.positions[3 * b + c] = src.positions[3 * a + c];
            dst.dirs[3 * b + c] = src.dirs[3 * a + c];
        }
        dst.t[b] = src.t[a];
        dst.dt[b] = src.dt[a];
        dst.ray_indices[b] = r;
    }
}

}  // namespace ngp
