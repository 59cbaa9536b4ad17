// Adam step of one parameter entry that leaves entries with an exactly-zero gradient untouched (Müller et al. 2022:
// rows of the hash table that no sample touched keep their parameters and moments). The bias corrections use the
// optimizer's global step, so with all gradients non-zero this is torch.optim.Adam's update, operation by operation.
#pragma once

#include <cstring>

#include "common.h"

namespace ngp {

struct AdamParams {
    float step_size;  // lr / (1 - beta1^t)
    float bc2_sqrt;   // sqrt(1 - beta2^t)
    float beta1, beta2, eps, weight_decay;
};

// The Adam update of one entry with gradient g (decoupled from the zero test so SIMD loops can use it).
NGP_HD void adam_update(const AdamParams& a, float& p, float& m, float& v, float g) {
    g += a.weight_decay * p;
    m += (1.0f - a.beta1) * (g - m);
    v = v * a.beta2 + (1.0f - a.beta2) * g * g;
    p -= a.step_size * (m / (sqrtf(v) / a.bc2_sqrt + a.eps));
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

}  // namespace ngp
