// CUDA launchers of the hash-grid encoding. Forward and table gradient: one thread per (point, level) with the level
// on the grid's y dimension (blockIdx.y), so the threads of a block work on one level and share its part of the
// table in the caches; rows of 2 or 4 features are read with one vector load. The table gradient is accumulated
// with atomics: one float4/float2 atomic per corner on sm_90+ (vector atomics on global memory exist there), one
// float atomic per feature before; a (point, level) whose output gradient is all zero (dead samples, samples past
// the transmittance threshold) issues none.
#include <cstdint>

#include "common.cuh"

namespace ngp {
namespace cuda {

// Whether pointer p allows vector accesses of `bytes` (rows of 2 or 4 features are contiguous from p).
inline bool aligned(const void* p, int64_t bytes) { return reinterpret_cast<uintptr_t>(p) % (uintptr_t)bytes == 0; }

// Whether the feature count has a vector path (2 or 4) and every pointer is aligned for it.
inline bool vector_ok(int F, std::initializer_list<std::pair<const void*, int64_t>> ptrs) {
    if (F != 2 && F != 4) return false;
    for (const auto& p : ptrs)
        if (p.first && !aligned(p.first, p.second * F)) return false;
    return true;
}

template <int FC>
__device__ __forceinline__ void store_row(float* dst, const float* v, int F, bool vec) {
    if constexpr (FC == 4) {
        if (vec) {
            *reinterpret_cast<float4*>(dst) = make_float4(v[0], v[1], v[2], v[3]);
            return;
        }
    } else if constexpr (FC == 2) {
        if (vec) {
            *reinterpret_cast<float2*>(dst) = make_float2(v[0], v[1]);
            return;
        }
    }
    for (int f = 0; f < F; ++f) dst[f] = v[f];
}

// grad_table[row, :F] += w * go[:F]. sm_90+: one vector atomic (a reduction: the old value is not read back);
// older GPUs or unaligned buffers: one float atomic per feature.
template <int FC>
__device__ __forceinline__ void add_row(float* dst, float w, const float* go, int F, bool vec) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    if constexpr (FC == 4) {
        if (vec) {
            atomicAdd(reinterpret_cast<float4*>(dst), make_float4(w * go[0], w * go[1], w * go[2], w * go[3]));
            return;
        }
    } else if constexpr (FC == 2) {
        if (vec) {
            atomicAdd(reinterpret_cast<float2*>(dst), make_float2(w * go[0], w * go[1]));
            return;
        }
    }
#endif
    for (int f = 0; f < F; ++f) atomicAdd(dst + f, w * go[f]);
}

// FC: the feature count when known at compile time (unrolled loads and sums), 0 for g.n_features.
template <int FC, typename T>
__global__ void hash_grid_fwd_kernel(const float* __restrict__ x, const T* __restrict__ table,
                                     float* __restrict__ out, int64_t n, const GridParams g, bool vec) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    const int l = (int)blockIdx.y;
    if (i >= n) return;
    const int F = FC ? FC : g.n_features;
    float* dst = out + (i * g.n_levels + l) * F;
    Corners c;
    level_corners(g, l, x + 3 * i, c);
    if constexpr (FC == 0) {
        encode_level<0, T>(g, c, table, dst);
    } else {
        float v[FC];
        encode_level<FC, T>(g, c, table, v, vec);
        store_row<FC>(dst, v, F, vec);
    }
}

template <int FC>
__global__ void hash_grid_bwd_table_kernel(const float* __restrict__ x, const float* __restrict__ grad_out,
                                           float* __restrict__ grad_table, int64_t n, const GridParams g, bool vec) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    const int l = (int)blockIdx.y;
    if (i >= n) return;
    const int F = FC ? FC : g.n_features;
    const float* go_ptr = grad_out + (i * g.n_levels + l) * F;
    float go[FC ? FC : 1];
    const float* go_use = go_ptr;
    if constexpr (FC != 0) {
        load_row<FC, float>(go_ptr, F, vec, go);
        go_use = go;
    }
    if (!any_nonzero(go_use, F)) return;  // would add only zeros
    Corners c;
    level_corners(g, l, x + 3 * i, c);
    for (int k = 0; k < 8; ++k) {
        if (c.w[k] == 0.0f) continue;  // a point on a cell face: that corner gets nothing
        add_row<FC>(grad_table + c.row[k] * F, c.w[k], go_use, F, vec);
    }
}

template <int FC, typename T>
__global__ void hash_grid_bwd_x_kernel(const float* __restrict__ x, const T* __restrict__ table,
                                       const float* __restrict__ grad_out, float* __restrict__ grad_x, int64_t n,
                                       const GridParams g, bool vec) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const int F = FC ? FC : g.n_features;
    float gx[3] = {0.f, 0.f, 0.f};
    Corners c;
    for (int l = 0; l < g.n_levels; ++l) {
        const float* go = grad_out + (i * g.n_levels + l) * F;
        if (!any_nonzero(go, F)) continue;
        level_corners(g, l, x + 3 * i, c);
        encode_level_grad_x<FC, T>(g, l, c, table, go, gx, vec);
    }
    for (int a = 0; a < 3; ++a) grad_x[3 * i + a] = gx[a];
}

inline dim3 point_level_grid(int64_t n, const GridParams& g) { return dim3(blocks_for(n), (unsigned)g.n_levels); }

template <typename T>
static void launch_fwd(const float* x, const T* table, float* out, int64_t n, const GridParams& g, void* stream) {
    const dim3 blocks = point_level_grid(n, g);
    const bool vec = vector_ok(g.n_features, {{table, (int64_t)sizeof(T)}, {out, 4}});
    const cudaStream_t s = as_stream(stream);
    switch (g.n_features) {
        case 2: hash_grid_fwd_kernel<2, T><<<blocks, kThreads, 0, s>>>(x, table, out, n, g, vec); break;
        case 4: hash_grid_fwd_kernel<4, T><<<blocks, kThreads, 0, s>>>(x, table, out, n, g, vec); break;
        default: hash_grid_fwd_kernel<0, T><<<blocks, kThreads, 0, s>>>(x, table, out, n, g, false); break;
    }
}

// The table gradient is float32 for both table types (half tables hold a rounded copy of the float32 master
// parameters, like tiny-cuda-nn's mixed precision).
template <typename T>
static void launch_bwd(const float* x, const T* table, const float* grad_out, float* grad_table, float* grad_x,
                       int64_t n, const GridParams& g, void* stream) {
    const cudaStream_t s = as_stream(stream);
    if (grad_table) {
        const dim3 blocks = point_level_grid(n, g);
        const bool vec = vector_ok(g.n_features, {{grad_out, 4}, {grad_table, 4}});
        switch (g.n_features) {
            case 2: hash_grid_bwd_table_kernel<2><<<blocks, kThreads, 0, s>>>(x, grad_out, grad_table, n, g, vec); break;
            case 4: hash_grid_bwd_table_kernel<4><<<blocks, kThreads, 0, s>>>(x, grad_out, grad_table, n, g, vec); break;
            default: hash_grid_bwd_table_kernel<0><<<blocks, kThreads, 0, s>>>(x, grad_out, grad_table, n, g, false); break;
        }
    }
    if (grad_x) {
        const unsigned blocks = blocks_for(n);
        const bool vec = vector_ok(g.n_features, {{table, (int64_t)sizeof(T)}});
        switch (g.n_features) {
            case 2: hash_grid_bwd_x_kernel<2, T><<<blocks, kThreads, 0, s>>>(x, table, grad_out, grad_x, n, g, vec); break;
            case 4: hash_grid_bwd_x_kernel<4, T><<<blocks, kThreads, 0, s>>>(x, table, grad_out, grad_x, n, g, vec); break;
            default: hash_grid_bwd_x_kernel<0, T><<<blocks, kThreads, 0, s>>>(x, table, grad_out, grad_x, n, g, false); break;
        }
    }
}

void hash_grid_fwd(const float* x, const float* table, float* out, int64_t n, const GridParams& g, void* stream) {
    launch_fwd(x, table, out, n, g, stream);
}

void hash_grid_fwd(const float* x, const half16* table, float* out, int64_t n, const GridParams& g, void* stream) {
    launch_fwd(x, table, out, n, g, stream);
}

void hash_grid_bwd(const float* x, const float* table, const float* grad_out, float* grad_table, float* grad_x,
                   int64_t n, const GridParams& g, void* stream) {
    launch_bwd(x, table, grad_out, grad_table, grad_x, n, g, stream);
}

void hash_grid_bwd(const float* x, const half16* table, const float* grad_out, float* grad_table, float* grad_x,
                   int64_t n, const GridParams& g, void* stream) {
    launch_bwd(x, table, grad_out, grad_table, grad_x, n, g, stream);
}

}  // namespace cuda
}  // namespace ngp
