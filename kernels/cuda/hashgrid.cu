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

__global__ void hash_grid_fwd_kernel(const float* __restrict__ x, const float* __restrict__ table,
                                     float* __restrict__ out, int64_t n, const GridParams g) {
    int64_t i;
    int l;
    if (!point_level(g, n, i, l)) return;
    Corners c;
    level_corners(g, l, x + 3 * i, c);
    encode_level(g, c, table, out + (i * g.n_levels + l) * g.n_features);
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

__global__ void hash_grid_bwd_x_kernel(const float* __restrict__ x, const float* __restrict__ table,
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

void hash_grid_fwd(const float* x, const float* table, float* out, int64_t n, const GridParams& g, void* stream) {
    hash_grid_fwd_kernel<<<blocks_for(n * g.n_levels), kThreads, 0, as_stream(stream)>>>(x, table, out, n, g);
}

void hash_grid_bwd(const float* x, const float* table, const float* grad_out, float* grad_table, float* grad_x,
                   int64_t n, const GridParams& g, void* stream) {
    if (grad_table)
        hash_grid_bwd_table_kernel<<<blocks_for(n * g.n_levels), kThreads, 0, as_stream(stream)>>>(
            x, grad_out, grad_table, n, g);
    if (grad_x)
        hash_grid_bwd_x_kernel<<<blocks_for(n), kThreads, 0, as_stream(stream)>>>(x, table, grad_out, grad_x, n, g);
}

}  // namespace cuda
}  // namespace ngp
