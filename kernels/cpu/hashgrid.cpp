// CPU launchers of the hash-grid encoding (OpenMP over points; the table gradient is race-free by level).
#include "ngp/launchers.h"

namespace ngp {
namespace cpu {

// Table reads are random and mostly miss the cache: compute the corners of all levels of a point first and prefetch
// their rows, so the misses overlap instead of serialising.
static inline void corners_all_levels(const GridParams& g, const float* x, Corners* c) {
    for (int l = 0; l < g.n_levels; ++l) level_corners(g, l, x, c[l]);
}

static inline void prefetch_rows(const GridParams& g, const Corners* c, const float* base, int rw) {
    for (int l = 0; l < g.n_levels; ++l)
        for (int k = 0; k < 8; k += 2) __builtin_prefetch(base + c[l].row[k] * g.n_features, rw, 0);
}

void hash_grid_fwd(const float* x, const float* table, float* out, int64_t n, const GridParams& g) {
    const int L = g.n_levels, F = g.n_features;
#pragma omp parallel
    {
        // Software pipeline: the rows of point i + 1 are prefetched while point i is interpolated.
        Corners c[2][kMaxLevels];
        bool primed = false;
#pragma omp for schedule(static)
        for (int64_t i = 0; i < n; ++i) {
            Corners* cur = c[i & 1];
            if (!primed) {
                corners_all_levels(g, x + 3 * i, cur);
                primed = true;
            }
            if (i + 1 < n) {
                corners_all_levels(g, x + 3 * (i + 1), c[(i + 1) & 1]);
                prefetch_rows(g, c[(i + 1) & 1], table, 0);
            }
            for (int l = 0; l < L; ++l) encode_level(g, cur[l], table, out + (i * L + l) * F);
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
