// Per-ray logic of ray marching: slab test, occupancy cascade lookup, the t lattice and the DDA jump over empty
// cells. Mirrors ngp_app/render/raymarch.py and occupancy.py operation by operation in float32; products feeding a
// sum go through mul_rn, so nvcc's FMA contraction cannot move a sample across a cell border.
#pragma once

#include "common.h"

namespace ngp {

struct MarchParams {
    float dt_min, dt_max, cone;
    float ta, tb, growth;  // dt_min / cone, dt_max / cone, log1p(cone): computed in double, rounded to float
    int32_t max_steps;     // samples per ray (1 .. 2^kCursorBits); the empty space skipped costs none
    int32_t n_cascades, resolution;
    float aabb[6];  // min xyz, max xyz
    float near;     // rays start this far from their origin (instant-ngp's near_distance; 0: at the origin)
};

// A walk cursor: where a ray's walk goes on, as its lattice index k and the samples it has taken so far, packed as
// (k << kCursorBits) | taken; -1 once the walk is over. A fresh walk starts at cursor 0.
constexpr int kCursorBits = 16;  // taken < max_steps <= 2^16

NGP_HD int64_t make_cursor(int64_t k, int32_t taken) { return (k << kCursorBits) | (int64_t)taken; }
NGP_HD int64_t cursor_k(int64_t cursor) { return cursor >> kCursorBits; }
NGP_HD int32_t cursor_taken(int64_t cursor) { return (int32_t)(cursor & (((int64_t)1 << kCursorBits) - 1)); }

// Lattice indices stop here whatever the box (k converts to float exactly below it); real walks end far sooner.
constexpr int64_t kLatticeEnd = (int64_t)1 << 24;

// Slab test; a ray misses the box when t_near >= t_far. NaN slabs (parallel ray on a face) do not constrain.
NGP_HD void ray_aabb(const float* o, const float* d, const float* aabb, float& t_near, float& t_far) {
    float tn = -kInf, tf = kInf;
    for (int a = 0; a < 3; ++a) {
        const float inv = 1.0f / d[a];
        const float t0 = (aabb[a] - o[a]) * inv, t1 = (aabb[3 + a] - o[a]) * inv;
        const bool nan = t0 != t0 || t1 != t1;
        tn = maxf(tn, nan ? -kInf : minf(t0, t1));
        tf = minf(tf, nan ? kInf : maxf(t0, t1));
    }
    t_near = maxf(tn, 0.0f);
    t_far = tf;
}

NGP_HD float step_dt(float t, const MarchParams& p) {
    return p.cone <= 0.0f ? p.dt_min : clampf(t * p.cone, p.dt_min, p.dt_max);
}

// Finest cascade containing pos.
NGP_HD int mip_from_pos(const float* pos, int n_cascades) {
    const float m = maxf(maxf(fabsf(pos[0] - 0.5f), fabsf(pos[1] - 0.5f)), fabsf(pos[2] - 0.5f));
    if (m == 0.0f) return 0;  // frexp(0) has exponent 0: the exact centre is in cascade 0 (as the reference)
    const int mip = frexp_exponent(m) + 1;
    return mip < 0 ? 0 : (mip > n_cascades - 1 ? n_cascades - 1 : mip);
}

// Coarsest cascade whose cells are no smaller than the step dt.
NGP_HD int mip_from_dt(float dt, int resolution, int n_cascades) {
    const int mip = frexp_exponent(dt * (float)resolution);
    return mip < 0 ? 0 : (mip > n_cascades - 1 ? n_cascades - 1 : mip);
}

// Integer cell coordinates of pos in cascade mip (truncation toward zero, clamped to the grid).
NGP_HD void cell_coords(const float* pos, int mip, int resolution, int32_t* ijk) {
    const float scale = ldexpf(1.0f, -mip);
    for (int a = 0; a < 3; ++a) {
        const float p = mul_rn(pos[a] - 0.5f, scale) + 0.5f;
        int32_t i = (int32_t)(p * (float)resolution);
        ijk[a] = i < 0 ? 0 : (i > resolution - 1 ? resolution - 1 : i);
    }
}

NGP_HD int64_t cell_index(const int32_t* ijk, int resolution) {
    return (int64_t)ijk[0] + (int64_t)ijk[1] * resolution + (int64_t)ijk[2] * resolution * resolution;
}

// Ray parameter where the ray leaves cell ijk of cascade mip.
NGP_HD float cell_exit_t(const float* o, const float* d, const int32_t* ijk, int mip, int resolution) {
    const float size = ldexpf(1.0f, mip);
    float t = kInf;
    for (int a = 0; a < 3; ++a) {
        if (d[a] == 0.0f) continue;
        const float lo = mul_rn((float)ijk[a] / (float)resolution - 0.5f, size) + 0.5f;
        const float hi = mul_rn((float)(ijk[a] + 1) / (float)resolution - 0.5f, size) + 0.5f;
        t = minf(t, ((d[a] > 0.0f ? hi : lo) - o[a]) / d[a]);
    }
    return t;
}

// The per-ray t lattice (closed form of raymarch.lattice_t): dt_min steps, exponential cone steps, dt_max steps.
struct Lattice {
    float t0, ka, kb, t_a, t_b;
    bool cone;

    NGP_HD Lattice(float t0_, const MarchParams& p) : t0(t0_), ka(0.f), kb(0.f), t_a(t0_), t_b(t0_), cone(p.cone > 0.f) {
        if (!cone) return;
        ka = ceilf(maxf((p.ta - t0) / p.dt_min, 0.0f));
        t_a = t0 + mul_rn(ka, p.dt_min);
        kb = ceilf(maxf(logf(p.tb / maxf(t_a, 1e-30f)) / p.growth, 0.0f));
        t_b = t_a * expf(kb * p.growth);
    }

    NGP_HD float t(int64_t k, const MarchParams& p) const {
        const float kf = (float)k;
        if (!cone || kf <= ka) return t0 + mul_rn(kf, p.dt_min);
        if (kf <= ka + kb) return t_a * expf((kf - ka) * p.growth);
        return t_b + mul_rn((kf - ka) - kb, p.dt_max);
    }

    // Smallest k in (k_cur, k_end] whose t is >= target (k_end when none is).
    NGP_HD int64_t first_at_least(float target, int64_t k_cur, int64_t k_end, const MarchParams& p) const {
        float guess;
        if (!cone || target <= t_a) guess = ceilf((target - t0) / p.dt_min);
        else if (target <= t_b) guess = ka + ceilf(logf(target / t_a) / p.growth);
        else guess = ka + kb + ceilf((target - t_b) / p.dt_max);
        int64_t k = k_cur + 1;
        if (guess == guess && guess > (float)k) k = guess >= (float)k_end ? k_end : (int64_t)guess;
        while (k > k_cur + 1 && t(k - 1, p) >= target) --k;
        while (k < k_end && t(k, p) < target) ++k;
        return k;
    }
};

// Marches one ray over the lattice, calling emit(j, t, dt, k) for its j-th sample of this call (k: its lattice
// index), and returns the number of samples of this call.
// A lattice point is a sample when t < t_far, its position is inside the box and its cell is occupied at cascade
// max(mip_from_pos, mip_from_dt); from a point in an empty cell the walk jumps to the first lattice point at or
// past the cell's exit (or past the next change of mip_from_dt), which skips only points of that empty cell.
// The walk ends at the box exit (t_far) or once the ray has taken p.max_steps samples: the budget counts samples
// only, so empty space costs nothing (instant-ngp's NERF_STEPS). A ray that misses the box, or whose exit is not
// finite (a zero or NaN direction), takes none. The walk starts at p.near from the ray's origin when that is past
// the box entry, so a camera inside the box never samples its own lens.
// Incremental marching (inference): the walk goes on from `cursor` (make_cursor; 0: from the start) and stops
// after max_count samples (max_count < 0: no limit); *resume (when given) receives the cursor to go on from, or -1
// once the walk is over. The cursor carries the samples taken before, so the max_steps cap holds for the whole walk
// and resuming gives exactly the samples of an uninterrupted walk.
template <class Emit>
NGP_HD int32_t march_ray(const float* o, const float* d, float jitter, const uint8_t* occupied,
                         const MarchParams& p, Emit&& emit, int64_t cursor = 0, int32_t max_count = -1,
                         int64_t* resume = nullptr) {
    if (resume) *resume = -1;
    float t_near, t_far;
    ray_aabb(o, d, p.aabb, t_near, t_far);
    t_near = maxf(t_near, p.near);
    if (!(t_near < t_far) || !(t_far < kInf) || cursor < 0) return 0;
    const Lattice lat(t_near + mul_rn(jitter, step_dt(t_near, p)), p);
    const int64_t k_end = lat.first_at_least(t_far, -1, kLatticeEnd, p);  // first lattice point at or past t_far
    const int64_t n_cells = (int64_t)p.resolution * p.resolution * p.resolution;
    const int32_t taken = cursor_taken(cursor);
    int32_t count = 0;
    int64_t k = cursor_k(cursor);
    while (k < k_end) {
        if (taken + count >= p.max_steps) break;  // the ray has all its samples
        if (count == max_count) {                 // budget of this call used up: the walk goes on from k next time
            if (resume) *resume = make_cursor(k, taken + count);
            break;
        }
        const float t = lat.t(k, p);
        if (!(t < t_far)) break;
        float pos[3];
        bool inside = true;
        for (int a = 0; a < 3; ++a) {
            pos[a] = o[a] + mul_rn(t, d[a]);
            inside = inside && pos[a] >= p.aabb[a] && pos[a] <= p.aabb[3 + a];
        }
        if (!inside) {
            ++k;
            continue;
        }
        const float dt = step_dt(t, p);
        const int mip_dt = mip_from_dt(dt, p.resolution, p.n_cascades);
        const int mip_pos = mip_from_pos(pos, p.n_cascades);
        const int mip = mip_pos > mip_dt ? mip_pos : mip_dt;
        int32_t ijk[3];
        cell_coords(pos, mip, p.resolution, ijk);
        if (occupied[mip * n_cells + cell_index(ijk, p.resolution)]) {
            emit(count, t, dt, k);
            ++count;
            ++k;
            continue;
        }
        float target = cell_exit_t(o, d, ijk, mip, p.resolution);
        if (p.cone > 0.0f && mip_dt < p.n_cascades - 1) {
            // mip_from_dt grows once dt * resolution reaches the next power of two.
            const int e = frexp_exponent(dt * (float)p.resolution);
            target = minf(target, ldexpf(1.0f, e) / ((float)p.resolution * p.cone));
        }
        target -= mul_rn(1e-6f, fabsf(target)) + 1e-7f;  // land on or just before the boundary, never past it
        k = lat.first_at_least(target, k, k_end, p);
    }
    return count;
}

// Output arrays of the write pass.
struct PackedOut {
    float* positions;  // (n, 3)
    float* dirs;       // (n, 3)
    float* t;          // (n,)
    float* dt;         // (n,)
    int64_t* ray_indices;
};

// Where marching starts and how far it goes in one call: per-ray walk cursors (null: 0, the start) and a per-ray
// sample count for this call (< 0: none). The count pass also stores each ray's cursor to resume from (null: not
// wanted).
struct MarchRange {
    const int64_t* cursor;
    int32_t max_count;
    int64_t* resume;
};

NGP_HD int64_t range_begin(const MarchRange& range, int64_t r) { return range.cursor ? range.cursor[r] : 0; }

// Count pass of ray r.
NGP_HD int32_t march_count_ray(int64_t r, const float* rays_o, const float* rays_d, const float* jitter,
                               const uint8_t* occupied, const MarchParams& p, const MarchRange& range) {
    return march_ray(rays_o + 3 * r, rays_d + 3 * r, jitter[r], occupied, p, [](int32_t, float, float, int64_t) {},
                     range_begin(range, r), range.max_count, range.resume ? range.resume + r : nullptr);
}

// Write pass of ray r: re-walks the ray and stores its samples from offsets[r] on.
NGP_HD void march_write_ray(int64_t r, const float* rays_o, const float* rays_d, const float* jitter,
                            const uint8_t* occupied, const MarchParams& p, const int64_t* offsets,
                            const PackedOut& out, const MarchRange& range) {
    const float* o = rays_o + 3 * r;
    const float* d = rays_d + 3 * r;
    const int64_t base = offsets[r];
    march_ray(o, d, jitter[r], occupied, p, [&](int32_t j, float tj, float dtj, int64_t) {
        const int64_t s = base + j;
        for (int a = 0; a < 3; ++a) {
            out.positions[3 * s + a] = o[a] + mul_rn(tj, d[a]);
            out.dirs[3 * s + a] = d[a];
        }
        out.t[s] = tj;
        out.dt[s] = dtj;
        out.ray_indices[s] = r;
    }, range_begin(range, r), range.max_count);
}

}  // namespace ngp
