// Shared definitions for the native kernels: the host+device qualifier and small math helpers.
// Everything under include/ngp is plain C++ that compiles both with g++ (CPU launchers) and nvcc (CUDA launchers).
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#include <cuda_fp16.h>
#define NGP_HD __host__ __device__ __forceinline__
#else
#define NGP_HD inline
#endif

namespace ngp {

constexpr int kMaxLevels = 32;
constexpr float kInf = INFINITY;

// a * b rounded to float and never fused with a following add into an FMA. nvcc contracts a * b + c into one FMA
// by default (one rounding instead of two); the torch reference runs them as separate ops. Products whose rounding
// decides something discrete (which cell a sample falls in, whether it is inside the box) use this, so CUDA makes the
// reference's decisions; everything else may be contracted. (The CPU build does not contract: -ffp-contract=off.)
NGP_HD float mul_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
    return __fmul_rn(a, b);
#else
    return a * b;
#endif
}

NGP_HD float minf(float a, float b) { return a < b ? a : b; }
NGP_HD float maxf(float a, float b) { return a > b ? a : b; }
NGP_HD float clampf(float v, float lo, float hi) { return minf(maxf(v, lo), hi); }

// Exponent e of frexp (v = f * 2^e, f in [0.5, 1)); 0 for v == 0, as torch.frexp returns.
NGP_HD int frexp_exponent(float v) {
    int e = 0;
    frexpf(v, &e);
    return e;
}

// IEEE 754 binary16 storage (hash tables in half precision). Only decoding is needed in the kernels: tables are
// rounded to half by torch (round to nearest even) and gradients stay float32.
struct half16 {
    uint16_t bits;
};

// Feature loads: float tables pass through, half tables are widened exactly.
NGP_HD float to_float(float v) { return v; }

NGP_HD float to_float(half16 h) {
#if defined(__CUDA_ARCH__)
    return __half2float(__ushort_as_half(h.bits));
#else
    // Branch-free (selects, not jumps: table values mix subnormals and normals at random, and mispredicted branches
    // cost more than the decoding). Normal: rebias the exponent 15 -> 127; all-ones exponent: inf/nan;
    // zero exponent: zero or subnormal, mantissa * 2^-24 (exact in float).
    const uint32_t exponent = (h.bits >> 10) & 0x1fu;
    uint32_t bits = ((uint32_t)(h.bits & 0x7fffu) << 13) + (112u << 23);
    bits |= exponent == 0x1fu ? 0x7f800000u : 0u;
    float normal;
    __builtin_memcpy(&normal, &bits, sizeof(normal));
    const float subnormal = (float)(h.bits & 0x3ffu) * 5.9604644775390625e-8f;
    const float magnitude = exponent == 0 ? subnormal : normal;
    uint32_t out_bits;
    __builtin_memcpy(&out_bits, &magnitude, sizeof(out_bits));
    out_bits |= (uint32_t)(h.bits & 0x8000u) << 16;
    float out;
    __builtin_memcpy(&out, &out_bits, sizeof(out));
    return out;
#endif
}

}  // namespace ngp
