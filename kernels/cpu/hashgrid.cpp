// CPU launchers of the hash-grid encoding (OpenMP over points; the table gradient is race-free by level).
#include "ngp/launchers.h"

namespace ngp {
namespace cpu {

void hash_grid_fwd(const float* x, const float* table, float* out, int64_t n, const GridParams& g) {
    const int L = g.n_levels, F = g.n_features;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) {
        Corners c;
        for (int l = 0; l < L; ++l) {
            level_corners(g, l, x + 3 * i, c);
            encode_level(g, c, table, out + (i * L + l) * F);
        }
    }
}

void hash_grid_bwd(const float* x, const float* table, const float* grad_out, float* grad_table, float* grad_x,
                   int64_t n, const GridParams& g) {
    const int L = g.n_levels, F = g.n_features;
    if (grad_table) {
        // Levels own disjoint table rows, so one thread per level accumulates without races.
#pragma omp parallel for schedule(dynamic, 1)
        for (int l = 0; l < L; ++l) {
            Corners c;
            for (int64_t i = 0; i < n; ++i) {
                level_corners(g, l, x + 3 * i, c);
                const float* go = grad_out + (i * L + l) * F;
                for (int k = 0; k < 8; ++k) {
                    float* row = grad_table + c.row[k] * F;
                    for (int f = 0; f < F; ++f) row[f] += c.w[k] * go[f];
                }
            }
        }
    }
    if (grad_x) {
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < n; ++i) {
            Corners c;
            float gx[3] = {0.f, 0.f, 0.f};
            for (int l = 0; l < L; ++l) {
                level_corners(g, l, x + 3 * i, c);
                encode_level_grad_x(g, l, c, table, grad_out + (i * L + l) * F, gx);
            }
            for (int a = 0; a < 3; ++a) grad_x[3 * i + a] = gx[a];
        }
    }
}

}  // namespace cpu
}  // namespace ngp
