// CUDA launchers of the hash-grid encoding: one thread per (point, level), all levels in one launch;
// the table gradient is accumulated with atomics.
#include "common.cuh"

namespace ngp {
namespace cuda {

// Thread tid handles point tid / n_levels on level tid % n_levels; false past the end.
__device__ __forceinline__ bool point_level(const GridParams& g, int64_t n, int64_t& i, int& l) {
    const int64_t tid = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    i = tid / g.n_levels;
    l = (int)(tid % g.n_levels);
    return i < n;
}

// FC: the feature count when known at compile time (unrolled loads and sums), 0 for g.n_features.
template <int FC, typename T>
__global__ void hash_grid_fwd_kernel(const float* __restrict__ x, const T* __restrict__ table,
                                     float* __restrict__ out, int64_t n, const GridParams g) {
    int64_t i;
    int l;
    if (!point_level(g, n, i, l)) return;
    Corners c;
    level_corners(g, l, x + 3 * i, c);
    encode_level<FC, T>(g, c, table, out + (i * g.n_levels + l) * g.n_features);
}

__global__ void hash_grid_bwd_table_kernel(const float* __restrict__ x, const float* __restrict__ grad_out,
                                           float* __restrict__ grad_table, int64_t n, const GridParams g) {
    int64_t i;
    int l;
    if (!point_level(g, n, i, l)) return;
    const int F = g.n_features;
    Corners c;
    level_corners(g, l, x + 3 * i, c);
    const float* go = grad_out + (i * g.n_levels + l) * F;
    for (int k = 0; k < 8; ++k)
        for (int f = 0; f < F; ++f) atomicAdd(grad_table + c.row[k] * F + f, c.w[k] * go[f]);
}

template <typename T>
__global__ void hash_grid_bwd_x_kernel(const float* __restrict__ x, const T* __restrict__ table,
                                       const float* __restrict__ grad_out, float* __restrict__ grad_x, int64_t n,
                                       const GridParams g) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float gx[3] = {0.f, 0.f, 0.f};
    Corners c;
    for (int l = 0; l < g.n_levels; ++l) {
        level_corners(g, l, x + 3 * i, c);
        encode_level_grad_x(g, l, c, table, grad_out + (i * g.n_levels + l) * g.n_features, gx);
    }
    for (int a = 0; a < 3; ++a) grad_x[3 * i + a] = gx[a];
}

template <typename T>
static void launch_fwd(const float* x, const T* table, float* out, int64_t n, const GridParams& g, void* stream) {
    const unsigned int blocks = blocks_for(n * g.n_levels);
    switch (g.n_features) {
        case 2: hash_grid_fwd_kernel<2, T><<<blocks, kThreads, 0, as_stream(stream)>>>(x, table, out, n, g); break;
        case 4: hash_grid_fwd_kernel<4, T><<<blocks, kThreads, 0, as_stream(stream)>>>(x, table, out, n, g); break;
        default: hash_grid_fwd_kernel<0, T><<<blocks, kThreads, 0, as_stream(stream)>>>(x, table, out, n, g); break;
    }
}

// The table gradient is float32 for both table types (atomics on float; half tables hold a rounded copy of the
// float32 master parameters, like tiny-cuda-nn's mixed precision).
template <typename T>
static void launch_bwd(const float* x, const T* table, const float* grad_out, float* grad_table, float* grad_x,
                       int64_t n, const GridParams& g, void* stream) {
    if (grad_table)
        hash_grid_bwd_table_kernel<<<blocks_for(n * g.n_levels), kThreads, 0, as_stream(stream)>>>(
            x, grad_out, grad_table, n, g);
    if (grad_x)
        hash_grid_bwd_x_kernel<T><<<blocks_for(n), kThreads, 0, as_stream(stream)>>>(x, table, grad_out, grad_x, n, g);
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
