// CUDA launchers of the sparse Adam steps (global or per-entry step counts) and the occupancy-grid helpers (one thread per element).
#include "common.cuh"

namespace ngp {
namespace cuda {

__global__ void adam_kernel(float* param, const float* grad, float* m, float* v, int64_t n, const AdamParams a,
                            bool skip_zero_grad) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    if (skip_zero_grad) sparse_adam_entry(a, param[i], m[i], v[i], grad[i]);
    else adam_update(a, param[i], m[i], v[i], grad[i]);
}

__global__ void adam_counted_kernel(float* param, const float* grad, float* m, float* v, int32_t* counts, int64_t n,
                                    const AdamParams a, const CountedAdam ca) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) counted_adam_entry(a, ca, param[i], m[i], v[i], counts[i], grad[i]);
}

__global__ void cell_positions_kernel(const int64_t* indices, const float* jitter, int64_t n, int cascade,
                                      int resolution, float* pos) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) occupancy_cell_position(indices[i], jitter + 3 * i, cascade, resolution, pos + 3 * i);
}

__global__ void decay_max_kernel(float* density, const float* fresh, int64_t n, float decay) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) density[i] = occupancy_decay_max_cell(density[i], fresh[i], decay);
}

void adam_step(float* param, const float* grad, float* m, float* v, int64_t n, const AdamParams& a, bool skip_zero_grad,
               void* stream) {
    adam_kernel<<<blocks_for(n), kThreads, 0, as_stream(stream)>>>(param, grad, m, v, n, a, skip_zero_grad);
}

void adam_step_counted(float* param, const float* grad, float* m, float* v, int32_t* counts, int64_t n,
                       const AdamParams& a, const CountedAdam& ca, void* stream) {
    adam_counted_kernel<<<blocks_for(n), kThreads, 0, as_stream(stream)>>>(param, grad, m, v, counts, n, a, ca);
}

void occupancy_cell_positions(const int64_t* indices, const float* jitter, int64_t n, int cascade, int resolution,
                              float* pos, void* stream) {
    cell_positions_kernel<<<blocks_for(n), kThreads, 0, as_stream(stream)>>>(indices, jitter, n, cascade, resolution,
                                                                            pos);
}

void occupancy_decay_max(float* density, const float* fresh, int64_t n, float decay, void* stream) {
    decay_max_kernel<<<blocks_for(n), kThreads, 0, as_stream(stream)>>>(density, fresh, n, decay);
}

}  // namespace cuda
}  // namespace ngp
