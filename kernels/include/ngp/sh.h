// Per-element logic of the spherical-harmonics direction encoding (encoding/sh.py, tiny-cuda-nn's basis and order):
// real SH of bands 0..D-1 (D = degree, 1..4, giving D^2 values) of a unit direction (x, y, z), and the gradient of
// those values with respect to the direction. The forward repeats the reference's float32 operations in its order,
// so with contraction off (g++ -ffp-contract=off) it gives the reference's bits.
#pragma once

#include "common.h"

namespace ngp {

constexpr int kMaxShDegree = 4;

// Basis constants, rounded to float32 as torch rounds the reference's Python scalars.
constexpr float kSh0 = 0.28209479177387814f;
constexpr float kSh1 = 0.48860251190291987f;
constexpr float kSh2a = 1.0925484305920792f;
constexpr float kSh2b = 0.94617469575755997f;
constexpr float kSh2c = 0.31539156525251999f;
constexpr float kSh2d = 0.54627421529603959f;
constexpr float kSh3a = 0.59004358992664352f;
constexpr float kSh3b = 2.8906114426405538f;
constexpr float kSh3c = 0.45704579946446572f;
constexpr float kSh3d = 0.3731763325901154f;
constexpr float kSh3e = 1.4453057213202769f;

// out[0 .. D*D): the basis at direction d. D: compile-time degree (1..4).
template <int D>
NGP_HD void sh_encode_dir(const float* d, float* out) {
    const float x = d[0], y = d[1], z = d[2];
    out[0] = kSh0;
    if constexpr (D > 1) {
        out[1] = -kSh1 * y;
        out[2] = kSh1 * z;
        out[3] = -kSh1 * x;
    }
    if constexpr (D > 2) {
        const float x2 = x * x, y2 = y * y, z2 = z * z;
        const float xy = x * y, yz = y * z, xz = x * z;
        out[4] = kSh2a * xy;
        out[5] = -kSh2a * yz;
        out[6] = kSh2b * z2 - kSh2c;
        out[7] = -kSh2a * xz;
        out[8] = kSh2d * x2 - kSh2d * y2;
        if constexpr (D > 3) {
            out[9] = kSh3a * y * (-3.0f * x2 + y2);
            out[10] = kSh3b * xy * z;
            out[11] = kSh3c * y * (1.0f - 5.0f * z2);
            out[12] = kSh3d * z * (5.0f * z2 - 3.0f);
            out[13] = kSh3c * x * (1.0f - 5.0f * z2);
            out[14] = kSh3e * z * (x2 - y2);
            out[15] = kSh3a * x * (-x2 + 3.0f * y2);
        }
    }
}

// gd[0..3) = sum_j g[j] * d out_j / d (x, y, z): the gradient of the basis values with gradient g[0 .. D*D).
template <int D>
NGP_HD void sh_encode_dir_grad(const float* d, const float* g, float* gd) {
    const float x = d[0], y = d[1], z = d[2];
    float gx = 0.0f, gy = 0.0f, gz = 0.0f;
    if constexpr (D > 1) {
        gy -= kSh1 * g[1];
        gz += kSh1 * g[2];
        gx -= kSh1 * g[3];
    }
    if constexpr (D > 2) {
        gx += kSh2a * (y * g[4] - z * g[7]) + 2.0f * kSh2d * x * g[8];
        gy += kSh2a * (x * g[4] - z * g[5]) - 2.0f * kSh2d * y * g[8];
        gz += kSh2a * (-y * g[5] - x * g[7]) + 2.0f * kSh2b * z * g[6];
        if constexpr (D > 3) {
            const float x2 = x * x, y2 = y * y, z2 = z * z;
            const float a = 1.0f - 5.0f * z2;             // d(out11)/dy / kSh3c, d(out13)/dx / kSh3c
            const float b = 3.0f * (y2 - x2);             // d(out9)/dy / kSh3a, d(out15)/dx / kSh3a
            gx += kSh3a * (-6.0f * x * y * g[9] + b * g[15]) + kSh3b * y * z * g[10] + kSh3c * a * g[13] +
                  2.0f * kSh3e * x * z * g[14];
            gy += kSh3a * (b * g[9] + 6.0f * x * y * g[15]) + kSh3b * x * z * g[10] + kSh3c * a * g[11] -
                  2.0f * kSh3e * y * z * g[14];
            gz += kSh3b * x * y * g[10] - 10.0f * kSh3c * z * (y * g[11] + x * g[13]) +
                  kSh3d * (15.0f * z2 - 3.0f) * g[12] + kSh3e * (x2 - y2) * g[14];
        }
    }
    gd[0] = gx;
    gd[1] = gy;
    gd[2] = gz;
}

}  // namespace ngp
