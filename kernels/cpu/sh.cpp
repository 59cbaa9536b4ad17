// CPU launchers of the spherical-harmonics encoding: OpenMP over directions, the degree a template argument so the
// per-direction code is straight-line.
#include "ngp/launchers.h"

namespace ngp {
namespace cpu {

// Directions per call below which one thread does it all (~10 ns per direction and pass; a parallel region costs
// more than it saves on small calls, and much more on a loaded machine). torch's elementwise grain is the same.
constexpr int64_t kShGrain = 32768;

template <int D>
static void sh_fwd_impl(const float* dirs, float* out, int64_t n) {
#pragma omp parallel for schedule(static) if (n > kShGrain)
    for (int64_t i = 0; i < n; ++i) sh_encode_dir<D>(dirs + 3 * i, out + D * D * i);
}

template <int D>
static void sh_bwd_impl(const float* dirs, const float* grad_out, float* grad_dirs, int64_t n) {
#pragma omp parallel for schedule(static) if (n > kShGrain)
    for (int64_t i = 0; i < n; ++i) sh_encode_dir_grad<D>(dirs + 3 * i, grad_out + D * D * i, grad_dirs + 3 * i);
}

void sh_encode_fwd(const float* dirs, float* out, int64_t n, int degree) {
    switch (degree) {
        case 1: return sh_fwd_impl<1>(dirs, out, n);
        case 2: return sh_fwd_impl<2>(dirs, out, n);
        case 3: return sh_fwd_impl<3>(dirs, out, n);
        default: return sh_fwd_impl<4>(dirs, out, n);  // the bindings check 1 <= degree <= 4
    }
}

void sh_encode_bwd(const float* dirs, const float* grad_out, float* grad_dirs, int64_t n, int degree) {
    switch (degree) {
        case 1: return sh_bwd_impl<1>(dirs, grad_out, grad_dirs, n);
        case 2: return sh_bwd_impl<2>(dirs, grad_out, grad_dirs, n);
        case 3: return sh_bwd_impl<3>(dirs, grad_out, grad_dirs, n);
        default: return sh_bwd_impl<4>(dirs, grad_out, grad_dirs, n);
    }
}

}  // namespace cpu
}  // namespace ngp
