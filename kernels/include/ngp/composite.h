// Per-ray volume compositing, forward and backward (see ngp_app/render/composite.py).
#pragma once

#include "common.h"

namespace ngp {

struct CompositeOut {
    float* rgb;      // (n_rays, 3)
    float* opacity;  // (n_rays,)
    float* depth;    // (n_rays,)
    float* weights;  // (n,)
    float* trans;    // (n,) transmittance before each sample
};

// Front-to-back compositing of samples [s, e) of ray r. Samples whose transmittance fell below the threshold get
// zero weight and are not accumulated (early termination); their transmittance is still reported.
NGP_HD void composite_ray(int64_t r, int64_t s, int64_t e, const float* sigmas, const float* rgbs, const float* t,
                          const float* dt, float threshold, const CompositeOut& out) {
    double optical = 0.0;  // running sum of sigma * dt, in double as the reference
    float acc[3] = {0.f, 0.f, 0.f}, op = 0.f, depth = 0.f;
    for (int64_t i = s; i < e; ++i) {
        const float tau = sigmas[i] * dt[i];
        const float T = expf(-(float)optical);
        out.trans[i] = T;
        optical += (double)tau;
        if (threshold > 0.f && !(T >= threshold)) {
            out.weights[i] = 0.f;
            continue;
        }
        const float w = T * (1.0f - expf(-tau));
        out.weights[i] = w;
        for (int c = 0; c < 3; ++c) acc[c] += w * rgbs[3 * i + c];
        op += w;
        depth += w * t[i];
    }
    for (int c = 0; c < 3; ++c) out.rgb[3 * r + c] = acc[c];
    out.opacity[r] = op;
    out.depth[r] = depth;
}

struct CompositeGrad {
    const float* rgb;      // (n_rays, 3)
    const float* opacity;  // (n_rays,)
    const float* depth;    // (n_rays,)
    const float* weights;  // (n,) or null
    const float* trans;    // (n,) or null
};

// Backward of composite_ray. With w_i = m_i T_i (1 - exp(-tau_i)) and T_i = exp(-sum_{j<i} tau_j):
// dL/dtau_i = gw_i m_i T_i exp(-tau_i) - sum_{j>i} (gw_j w_j + gT_j T_j).
NGP_HD void composite_ray_backward(int64_t r, int64_t s, int64_t e, const float* sigmas, const float* rgbs,
                                   const float* t, const float* dt, const float* weights, const float* trans,
                                   float threshold, const CompositeGrad& g, float* g_sigmas, float* g_rgbs) {
    double suffix = 0.0;
    const float* gr = g.rgb + 3 * r;
    for (int64_t i = e - 1; i >= s; --i) {
        const float w = weights[i], T = trans[i];
        float gw = gr[0] * rgbs[3 * i] + gr[1] * rgbs[3 * i + 1] + gr[2] * rgbs[3 * i + 2] + g.opacity[r] +
                   g.depth[r] * t[i];
        if (g.weights) gw += g.weights[i];
        const float gT = g.trans ? g.trans[i] : 0.f;
        const float tau = sigmas[i] * dt[i];
        const bool live = !(threshold > 0.f) || T >= threshold;
        const float dtau = (live ? gw * T * expf(-tau) : 0.f) - (float)suffix;
        g_sigmas[i] = dtau * dt[i];
        for (int c = 0; c < 3; ++c) g_rgbs[3 * i + c] = w * gr[c];
        suffix += (double)gw * w + (double)gT * T;
    }
}

}  // namespace ngp
