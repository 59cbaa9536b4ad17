// Per-ray logic of whole-frame inference in passes over fixed-stride sample slots (ngp_app/render/slots.py is the
// PyTorch reference). A pass gives the j-th alive ray the K slots [j*K, j*K+K): no prefix sum and no read-back of
// a sample total is needed to place its samples. Each ray's state lives in per-ray arrays indexed by its pixel:
// transmittance, accumulated colour and depth, and the cursor its walk resumes from (make_cursor; -1: finished).
#pragma once

#include "raymarch.h"

namespace ngp {

// Per-ray state of a frame being rendered (n_rays entries each).
struct FrameState {
    float* trans;  // transmittance left after the samples composited so far
    float* rgb;    // (n_rays, 3) accumulated colour, background not included
    float* depth;  // accumulated weight * t
    int64_t* k;    // walk cursor to resume from (lattice index and samples taken); -1 once the ray is finished
};

// One pass's samples: K slots per alive ray; slots past a ray's count hold t = dt = 0 at the ray's origin.
struct SlotBuffers {
    float* positions;  // (n_alive * K, 3)
    float* dirs;       // (n_alive * K, 3)
    float* t;          // (n_alive * K,)
    float* dt;         // (n_alive * K,)
    int32_t* counts;   // (n_alive,) samples written per ray
};

// Cursor of ray r's first sample (its lattice index, none taken), or -1 when it has none (misses the box or crosses
// only empty cells).
NGP_HD int64_t first_sample_cursor(const float* o, const float* d, const uint8_t* occupied, const MarchParams& p) {
    int64_t first = -1;
    march_ray(o, d, 0.0f, occupied, p, [&](int32_t, float, float, int64_t k) { first = make_cursor(k, 0); }, 0, 1);
    return first;
}

// Marches alive ray j (pixel alive[j]) on from cursor k[ray] into its K slots and stores where it resumes in k[ray].
NGP_HD void march_slots_ray(int64_t j, const int32_t* alive, const float* rays_o, const float* rays_d,
                            const uint8_t* occupied, const MarchParams& p, int32_t K, int64_t* k,
                            const SlotBuffers& out) {
    const int64_t r = alive[j];
    const float* o = rays_o + 3 * r;
    const float* d = rays_d + 3 * r;
    const int64_t base = j * (int64_t)K;
    int64_t resume = -1;
    const int32_t n = march_ray(o, d, 0.0f, occupied, p, [&](int32_t i, float t, float dt, int64_t) {
        const int64_t s = base + i;
        for (int a = 0; a < 3; ++a) {
            out.positions[3 * s + a] = o[a] + t * d[a];
            out.dirs[3 * s + a] = d[a];
        }
        out.t[s] = t;
        out.dt[s] = dt;
    }, k[r], K, &resume);
    for (int32_t i = n; i < K; ++i) {  // empty slots: evaluated with the others, never composited
        const int64_t s = base + i;
        for (int a = 0; a < 3; ++a) {
            out.positions[3 * s + a] = o[a];
            out.dirs[3 * s + a] = d[a];
        }
        out.t[s] = 0.0f;
        out.dt[s] = 0.0f;
    }
    out.counts[j] = n;
    k[r] = resume;
}

// Composites alive ray j's samples of this pass into its state, front to back. A sample is composited while the
// transmittance before it is >= threshold; the state keeps the transmittance after the last composited sample, so
// 1 - trans is the sum of the weights, as in the packed compositing. A ray whose transmittance fell below the
// threshold is finished (k = -1).
NGP_HD void composite_slots_ray(int64_t j, const int32_t* alive, const float* sigmas, const float* rgbs,
                                const float* t, const float* dt, const int32_t* counts, int32_t K, float threshold,
                                const FrameState& s) {
    const int64_t r = alive[j];
    const int64_t base = j * (int64_t)K;
    const float T0 = s.trans[r];
    double optical = 0.0;  // sum of sigma * dt over this pass's composited samples, in double as the reference
    float T = T0, acc[3] = {0.f, 0.f, 0.f}, depth = 0.f;
    for (int32_t i = 0; i < counts[j]; ++i) {
        if (!(T >= threshold)) break;
        const int64_t q = base + i;
        const float tau = sigmas[q] * dt[q];
        const float w = T * (1.0f - expf(-tau));
        for (int c = 0; c < 3; ++c) acc[c] += w * rgbs[3 * q + c];
        depth += w * t[q];
        optical += (double)tau;
        T = T0 * expf(-(float)optical);
    }
    s.trans[r] = T;
    for (int c = 0; c < 3; ++c) s.rgb[3 * r + c] += acc[c];
    s.depth[r] += depth;
    if (!(T >= threshold)) s.k[r] = -1;
}

// Whether a ray goes on to the next pass.
NGP_HD bool ray_alive(const int64_t* k, int64_t r) { return k[r] >= 0; }

// [0, 1] -> 0..255, rounding to nearest (NaN -> 0), as (v.clamp(0, 1) * 255 + 0.5).to(uint8).
NGP_HD uint8_t unorm8(float v) { return (uint8_t)(clampf(v, 0.0f, 1.0f) * 255.0f + 0.5f); }

// Pixel r of the output: colour over the background and alpha = 1 - transmittance, as uint8 RGBA.
NGP_HD void rgba8_pixel(int64_t r, const float* rgb, const float* trans, const float* background, uint8_t* out) {
    const float T = trans[r];
    for (int c = 0; c < 3; ++c) out[4 * r + c] = unorm8(rgb[3 * r + c] + T * background[c]);
    out[4 * r + 3] = unorm8(1.0f - T);
}

}  // namespace ngp
