// Adam step of one parameter entry that leaves entries with an exactly-zero gradient untouched (Müller et al. 2022:
// rows of the hash table that no sample touched keep their parameters and moments). Two forms of bias correction:
// - the optimizer's global step (adam_update): with all gradients non-zero this is torch.optim.Adam's update,
//   operation by operation;
// - per-entry step counts (counted_adam_entry*), as tiny-cuda-nn counts steps per parameter: an entry first touched
//   at step 20,000 is corrected as a fresh one. The corrections come from a table indexed by the count (the count
//   saturates where both corrections round to 1 in float32), so the kernels need no pow().
#pragma once

#include <cstring>

#include "common.h"

namespace ngp {

struct AdamParams {
    float step_size;  // lr / (1 - beta1^t)
    float bc2_sqrt;   // sqrt(1 - beta2^t)
    float beta1, beta2, eps, weight_decay;
};

// The Adam update of one entry with gradient g and the given corrections (step_size = lr / (1 - beta1^t),
// bc2_sqrt = sqrt(1 - beta2^t)); decoupled from the zero test so SIMD loops can use it.
NGP_HD void adam_update(const AdamParams& a, float step_size, float bc2_sqrt, float& p, float& m, float& v, float g) {
    g += a.weight_decay * p;
    m += (1.0f - a.beta1) * (g - m);
    v = v * a.beta2 + (1.0f - a.beta2) * g * g;
    p -= step_size * (m / (sqrtf(v) / bc2_sqrt + a.eps));
}

NGP_HD void adam_update(const AdamParams& a, float& p, float& m, float& v, float g) {
    adam_update(a, a.step_size, a.bc2_sqrt, p, m, v, g);
}

NGP_HD void sparse_adam_entry(const AdamParams& a, float& p, float& m, float& v, float g) {
    if (g != 0.0f) adam_update(a, p, m, v, g);
}

// Bitwise select: a where mask bits are set, else b (lets compilers vectorize the loop, unlike a ternary).
NGP_HD float select_bits(uint32_t mask, float a, float b) {
    uint32_t ua, ub;
    memcpy(&ua, &a, 4);
    memcpy(&ub, &b, 4);
    const uint32_t r = (ua & mask) | (ub & ~mask);
    float f;
    memcpy(&f, &r, 4);
    return f;
}

// Branch-free form of sparse_adam_entry (same result) for SIMD loops: computes the update for every entry and keeps
// the old values where the gradient is zero.
NGP_HD void sparse_adam_entry_select(const AdamParams& a, float* p, float* m, float* v, float g) {
    float p2 = *p, m2 = *m, v2 = *v;
    adam_update(a, p2, m2, v2, g);
    const uint32_t live = 0u - (uint32_t)(g != 0.0f);
    *p = select_bits(live, p2, *p);
    *m = select_bits(live, m2, *m);
    *v = select_bits(live, v2, *v);
}

// Per-entry bias corrections: corrections[2c] = 1 / (1 - beta1^c), corrections[2c + 1] = sqrt(1 - beta2^c) for
// c = 0..max_count (row 0 is never used for an update); lr is the learning rate (AdamParams.step_size is unused).
struct CountedAdam {
    const float* corrections;
    int32_t max_count;
    float lr;
};

// One entry: a non-zero gradient bumps the entry's count (saturating at max_count) and updates it with that count's
// corrections; a zero gradient leaves parameter, moments and count as they are.
NGP_HD void counted_adam_entry(const AdamParams& a, const CountedAdam& ca, float& p, float& m, float& v,
                               int32_t& count, float g) {
    if (g == 0.0f) return;
    const int32_t c = count < ca.max_count ? count + 1 : ca.max_count;
    count = c;
    adam_update(a, ca.lr * ca.corrections[2 * c], ca.corrections[2 * c + 1], p, m, v, g);
}

// Branch-free form of counted_adam_entry (same result) for SIMD loops.
NGP_HD void counted_adam_entry_select(const AdamParams& a, const CountedAdam& ca, float* p, float* m, float* v,
                                      int32_t* count, float g) {
    const int32_t live = g != 0.0f;
    int32_t c = *count + live;
    c = c < ca.max_count ? c : ca.max_count;
    float p2 = *p, m2 = *m, v2 = *v;
    adam_update(a, ca.lr * ca.corrections[2 * c], ca.corrections[2 * c + 1], p2, m2, v2, g);
    const uint32_t mask = 0u - (uint32_t)live;
    *p = select_bits(mask, p2, *p);
    *m = select_bits(mask, m2, *m);
    *v = select_bits(mask, v2, *v);
    *count = c;  // unchanged where the gradient is zero (counts never exceed max_count)
}

}  // namespace ngp
