// CPU launchers of the sparse Adam step and the occupancy-grid helpers.
#include "ngp/launchers.h"

namespace ngp {
namespace cpu {

void sparse_adam(float* param, const float* grad, float* m, float* v, int32_t* step, int64_t n, const AdamParams& a) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) sparse_adam_entry(a, param[i], m[i], v[i], step[i], grad[i]);
}

void occupancy_cell_positions(const int64_t* indices, const float* jitter, int64_t n, int cascade, int resolution,
                              float* pos) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) occupancy_cell_position(indices[i], jitter + 3 * i, cascade, resolution, pos + 3 * i);
}

void occupancy_decay_max(float* density, const float* fresh, int64_t n, float decay) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) density[i] = maxf(density[i] * decay, fresh[i]);
}

void pack_bits(const uint8_t* occupied, int64_t n_bytes, uint8_t* packed) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n_bytes; ++i) packed[i] = pack_byte(occupied + 8 * i);
}

}  // namespace cpu
}  // namespace ngp
