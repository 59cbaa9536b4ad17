// Adam step of one parameter entry that leaves entries with an exactly-zero gradient untouched (Müller et al.).
// Each entry counts its own steps, so bias correction matches dense Adam for entries updated every step.
#pragma once

#include "common.h"

namespace ngp {

struct AdamParams {
    float lr, beta1, beta2, eps, weight_decay;
};

NGP_HD void sparse_adam_entry(const AdamParams& a, float& p, float& m, float& v, int32_t& step, float g) {
    if (g == 0.0f) return;
    g += a.weight_decay * p;
    const int32_t t = ++step;
    m += (1.0f - a.beta1) * (g - m);
    v = v * a.beta2 + (1.0f - a.beta2) * g * g;
    const float bc1 = 1.0f - powf(a.beta1, (float)t);
    const float bc2_sqrt = sqrtf(1.0f - powf(a.beta2, (float)t));
    const float denom = sqrtf(v) / bc2_sqrt + a.eps;
    p -= (a.lr / bc1) * m / denom;
}

}  // namespace ngp
