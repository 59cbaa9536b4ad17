// Shared definitions for the native kernels: the host+device qualifier and small math helpers.
// Everything under include/ngp is plain C++ that compiles both with g++ (CPU launchers) and nvcc (CUDA launchers).
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define NGP_HD __host__ __device__ __forceinline__
#else
#define NGP_HD inline
#endif

namespace ngp {

constexpr int kMaxLevels = 32;
constexpr float kInf = INFINITY;

NGP_HD float minf(float a, float b) { return a < b ? a : b; }
NGP_HD float maxf(float a, float b) { return a > b ? a : b; }
NGP_HD float clampf(float v, float lo, float hi) { return minf(maxf(v, lo), hi); }

// Exponent e of frexp (v = f * 2^e, f in [0.5, 1)); 0 for v == 0, as torch.frexp returns.
NGP_HD int frexp_exponent(float v) {
    int e = 0;
    frexpf(v, &e);
    return e;
}

}  // namespace ngp
