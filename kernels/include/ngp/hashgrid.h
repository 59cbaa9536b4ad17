// Per-element logic of the multiresolution hash encoding (tiny-cuda-nn grid conventions, see hashgrid.py).
#pragma once

#include "common.h"

namespace ngp {

// Static layout of the grid, passed by value to kernels.
struct GridParams {
    int32_t n_levels;
    int32_t n_features;
    uint32_t hash_mask;  // 2^log2_hashmap_size - 1
    float scale[kMaxLevels];
    uint32_t res[kMaxLevels];
    int32_t size[kMaxLevels];
    int64_t offset[kMaxLevels];
    uint8_t hashed[kMaxLevels];
};

// Table row of integer grid vertex (x, y, z) on level l: dense index while res^3 fits, else the spatial hash.
// uint32 arithmetic wraps exactly like the reference's int32 arithmetic.
NGP_HD int64_t grid_row(const GridParams& g, int l, uint32_t x, uint32_t y, uint32_t z) {
    int64_t idx;
    if (g.hashed[l]) {
        idx = (x ^ (y * 2654435761u) ^ (z * 805459861u)) & g.hash_mask;
    } else {
        const uint32_t r = g.res[l];
        int32_t d = (int32_t)((x + y * r) + z * (r * r));
        if (d >= g.size[l]) d -= g.size[l];  // modulo the table size (exceeds it by less than one size)
        idx = d;
    }
    return g.offset[l] + idx;
}

// The 8 corners of the cell holding x on level l: table rows, trilinear weights and the cell fraction.
// Corner c has offset bits (c & 1, c >> 1 & 1, c >> 2 & 1) along (x, y, z).
struct Corners {
    int64_t row[8];
    float w[8];
    float frac[3];
};

NGP_HD void level_corners(const GridParams& g, int l, const float* x, Corners& c) {
    const float s = g.scale[l];
    uint32_t b[3];
    for (int a = 0; a < 3; ++a) {
        // Clamp into [0, 1] (NaN -> 0: comparisons with NaN are false), so no input can index outside the table.
        float xa = x[a] >= 0.0f ? x[a] : 0.0f;
        xa = xa <= 1.0f ? xa : 1.0f;
        const float p = mul_rn(xa, s) + 0.5f;  // decides the cell: as the reference rounds it (common.h)
        const float fl = floorf(p);
        b[a] = (uint32_t)(int32_t)fl;
        c.frac[a] = p - fl;
    }
    for (int k = 0; k < 8; ++k) {
        const int bx = k & 1, by = (k >> 1) & 1, bz = (k >> 2) & 1;
        const float wx = bx ? c.frac[0] : 1.0f - c.frac[0];
        const float wy = by ? c.frac[1] : 1.0f - c.frac[1];
        const float wz = bz ? c.frac[2] : 1.0f - c.frac[2];
        c.w[k] = (wz * wy) * wx;
        c.row[k] = grid_row(g, l, b[0] + bx, b[1] + by, b[2] + bz);
    }
}

// Whether any of v[0..n) is non-zero (NaN counts as non-zero). A (point, level) whose output gradient is all zero
// (a sample past the transmittance threshold, a dead ReLU path) adds nothing to any gradient: the backward passes
// skip it.
NGP_HD bool any_nonzero(const float* v, int n) {
    bool any = false;
    for (int i = 0; i < n; ++i) any |= v[i] != 0.0f;
    return any;
}

// d w_k / d frac_a for corner k.
NGP_HD float weight_grad(const Corners& c, int k, int a) {
    float d = 1.0f;
    for (int e = 0; e < 3; ++e) {
        const int bit = (k >> e) & 1;
        if (e == a) d *= bit ? 1.0f : -1.0f;
        else d *= bit ? c.frac[e] : 1.0f - c.frac[e];
    }
    return d;
}

// Loads the F = FC features (2 or 4 on the vector paths) of one table row as floats.
// On the device, rows of 2 or 4 features go through one 8- or 16-byte load when `vec` says the table is aligned for
// it (rows are contiguous, so that holds when the table's base address is: the launchers check). Same values as the
// scalar loop, so results do not depend on the path.
template <int FC, typename T>
NGP_HD void load_row(const T* row, int F, bool vec, float* v) {
#if defined(__CUDA_ARCH__)
    if constexpr (FC == 4 && sizeof(T) == 4) {
        if (vec) {
            const float4 q = *reinterpret_cast<const float4*>(row);
            v[0] = q.x, v[1] = q.y, v[2] = q.z, v[3] = q.w;
            return;
        }
    } else if constexpr (FC == 2 && sizeof(T) == 4) {
        if (vec) {
            const float2 q = *reinterpret_cast<const float2*>(row);
            v[0] = q.x, v[1] = q.y;
            return;
        }
    } else if constexpr (FC == 4 && sizeof(T) == 2) {
        if (vec) {
            const uint2 q = *reinterpret_cast<const uint2*>(row);
            const float2 a = __half22float2(*reinterpret_cast<const __half2*>(&q.x));
            const float2 b = __half22float2(*reinterpret_cast<const __half2*>(&q.y));
            v[0] = a.x, v[1] = a.y, v[2] = b.x, v[3] = b.y;
            return;
        }
    } else if constexpr (FC == 2 && sizeof(T) == 2) {
        if (vec) {
            const float2 a = __half22float2(*reinterpret_cast<const __half2*>(row));
            v[0] = a.x, v[1] = a.y;
            return;
        }
    }
#else
    (void)vec;
#endif
    for (int f = 0; f < F; ++f) v[f] = to_float(row[f]);
}

// Forward of one (point, level): out[f] = sum_k w_k * table[row_k, f]. FC: the feature count when known at compile
// time (lets the compiler unroll), 0 for g.n_features. T: float or half16 table entries (accumulated in float).
// vec: vector row loads allowed (see load_row).
template <int FC = 0, typename T = float>
NGP_HD void encode_level(const GridParams& g, const Corners& c, const T* table, float* out, bool vec = false) {
    const int F = FC ? FC : g.n_features;
    float v[FC ? FC : 1];
    for (int f = 0; f < F; ++f) out[f] = 0.0f;
    for (int k = 0; k < 8; ++k) {
        const T* row = table + c.row[k] * F;
        if constexpr (FC == 0) {  // any feature count: no staging array
            for (int f = 0; f < F; ++f) out[f] += c.w[k] * to_float(row[f]);
        } else {
            load_row<FC, T>(row, F, vec, v);
            for (int f = 0; f < F; ++f) out[f] += c.w[k] * v[f];
        }
    }
}

// Gradient of one (point, level) with respect to x: adds scale_l * sum_k dw_k/dfrac . <gout, table[row_k]>.
template <int FC = 0, typename T = float>
NGP_HD void encode_level_grad_x(const GridParams& g, int l, const Corners& c, const T* table, const float* gout,
                                float* gx, bool vec = false) {
    const int F = FC ? FC : g.n_features;
    float v[FC ? FC : 1];
    for (int k = 0; k < 8; ++k) {
        const T* row = table + c.row[k] * F;
        float dot = 0.0f;
        if constexpr (FC == 0) {
            for (int f = 0; f < F; ++f) dot += gout[f] * to_float(row[f]);
        } else {
            load_row<FC, T>(row, F, vec, v);
            for (int f = 0; f < F; ++f) dot += gout[f] * v[f];
        }
        for (int a = 0; a < 3; ++a) gx[a] += g.scale[l] * weight_grad(c, k, a) * dot;
    }
}

}  // namespace ngp
