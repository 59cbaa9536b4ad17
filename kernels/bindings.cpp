// Torch op registrations (namespace `ngp`) for the CPU launchers and, when built with NGP_WITH_CUDA, the CUDA ones.
// Each op checks its inputs, allocates outputs and hands raw pointers to ngp::cpu::* or ngp::cuda::*.
#include <torch/library.h>
#include <ATen/ATen.h>

#include "ngp/launchers.h"

#ifdef NGP_WITH_CUDA
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
// Custom ops get no automatic device guard: make the tensor's device current, so the kernel runs there and on that
// device's current stream (not device 0's), and report launch failures at the op that caused them.
#define NGP_LAUNCH(dev, fn, ...)                                                                              \
    do {                                                                                                      \
        if ((dev).is_cuda()) {                                                                                \
            const c10::cuda::CUDAGuard device_guard((dev).device());                                          \
            ngp::cuda::fn(__VA_ARGS__, (void*)c10::cuda::getCurrentCUDAStream().stream());                   \
            C10_CUDA_KERNEL_LAUNCH_CHECK();                                                                   \
        } else {                                                                                              \
            ngp::cpu::fn(__VA_ARGS__);                                                                        \
        }                                                                                                     \
    } while (0)
#else
#define NGP_LAUNCH(dev, fn, ...)                                                   \
    do {                                                                           \
        TORCH_CHECK(!(dev).is_cuda(), "ngp native ops were built without CUDA"); \
        ngp::cpu::fn(__VA_ARGS__);                                                 \
    } while (0)
#endif

namespace {

using at::Tensor;

void check(const Tensor& t, at::ScalarType dtype, const char* name) {
    TORCH_CHECK(t.scalar_type() == dtype, name, " has dtype ", t.scalar_type(), ", expected ", dtype);
    TORCH_CHECK(t.is_contiguous(), name, " must be contiguous");
}

// Every tensor of an op must live on the device the launch is chosen by (mixed devices would hand host pointers to
// a kernel or device pointers to the CPU).
void same_device(const Tensor& ref, std::initializer_list<const Tensor*> others) {
    for (const Tensor* t : others)
        if (t->defined())
            TORCH_CHECK(t->device() == ref.device(), "all inputs must be on ", ref.device(), ", got one on ",
                        t->device());
}

void check_rows(const Tensor& t, int64_t rows, int64_t cols, const char* name) {
    TORCH_CHECK(t.dim() == 2 && t.size(0) == rows && t.size(1) == cols, name, " must be (", rows, ", ", cols,
                "), got ", t.sizes());
}

ngp::GridParams grid_params(at::ArrayRef<double> scales, at::IntArrayRef res, at::IntArrayRef sizes,
                            at::IntArrayRef offsets, at::IntArrayRef hashed, int64_t n_features, int64_t hash_mask) {
    ngp::GridParams g{};
    const size_t L = scales.size();
    TORCH_CHECK(L <= (size_t)ngp::kMaxLevels && res.size() == L && sizes.size() == L && offsets.size() == L &&
                    hashed.size() == L, "bad grid geometry");
    g.n_levels = (int32_t)L;
    g.n_features = (int32_t)n_features;
    g.hash_mask = (uint32_t)hash_mask;
    for (size_t l = 0; l < L; ++l) {
        g.scale[l] = (float)scales[l];
        g.res[l] = (uint32_t)res[l];
        g.size[l] = (int32_t)sizes[l];
        g.offset[l] = offsets[l];
        g.hashed[l] = (uint8_t)(hashed[l] != 0);
    }
    return g;
}

// Hash tables are float32, or float16 (a rounded copy of float32 master parameters); gradients are float32.
void check_table(const Tensor& table) {
    TORCH_CHECK(table.scalar_type() == at::kFloat || table.scalar_type() == at::kHalf, "table has dtype ",
                table.scalar_type(), ", expected Float or Half");
    TORCH_CHECK(table.is_contiguous(), "table must be contiguous");
    TORCH_CHECK(table.dim() == 2, "table must be (n_rows, n_features)");
}

void check_rows(const Tensor& table, const ngp::GridParams& g) {
    const int L = g.n_levels;
    TORCH_CHECK(L > 0 && table.size(0) >= g.offset[L - 1] + g.size[L - 1], "table has too few rows for the grid");
}

const ngp::half16* half_data(const Tensor& t) { return reinterpret_cast<const ngp::half16*>(t.data_ptr<at::Half>()); }

Tensor hash_grid_fwd(const Tensor& x, const Tensor& table, at::ArrayRef<double> scales, at::IntArrayRef res,
                     at::IntArrayRef sizes, at::IntArrayRef offsets, at::IntArrayRef hashed, int64_t hash_mask) {
    check(x, at::kFloat, "x");
    check_table(table);
    check_rows(x, x.size(0), 3, "x");
    same_device(x, {&table});
    const auto g = grid_params(scales, res, sizes, offsets, hashed, table.size(1), hash_mask);
    check_rows(table, g);
    auto out = at::empty({x.size(0), (int64_t)g.n_levels * g.n_features}, x.options());
    if (x.size(0) == 0) return out;
    if (table.scalar_type() == at::kHalf)
        NGP_LAUNCH(x, hash_grid_fwd, x.data_ptr<float>(), half_data(table), out.data_ptr<float>(), x.size(0), g);
    else
        NGP_LAUNCH(x, hash_grid_fwd, x.data_ptr<float>(), table.data_ptr<float>(), out.data_ptr<float>(), x.size(0), g);
    return out;
}

std::tuple<Tensor, Tensor> hash_grid_bwd(const Tensor& grad_out, const Tensor& x, const Tensor& table,
                                         at::ArrayRef<double> scales, at::IntArrayRef res, at::IntArrayRef sizes,
                                         at::IntArrayRef offsets, at::IntArrayRef hashed, int64_t hash_mask,
                                         bool need_table, bool need_x, const std::optional<Tensor>& accumulate) {
    check(grad_out, at::kFloat, "grad_out");
    check(x, at::kFloat, "x");
    check_table(table);
    check_rows(x, x.size(0), 3, "x");
    same_device(x, {&table, &grad_out});
    const auto g = grid_params(scales, res, sizes, offsets, hashed, table.size(1), hash_mask);
    check_rows(table, g);
    check_rows(grad_out, x.size(0), (int64_t)g.n_levels * g.n_features, "grad_out");
    // The table gradient is added into `accumulate` when given (saves allocating and adding a table-sized tensor).
    if (accumulate.has_value()) {
        check(*accumulate, at::kFloat, "accumulate");
        same_device(x, {&*accumulate});
        TORCH_CHECK(accumulate->sizes() == table.sizes(), "accumulate must have the table's shape");
    }
    Tensor gt = !need_table ? Tensor()
                : accumulate.has_value() ? *accumulate
                                         : at::zeros(table.sizes(), table.options().dtype(at::kFloat));
    Tensor gx = need_x ? at::empty_like(x) : Tensor();
    if (x.size(0) > 0 && (need_table || need_x)) {
        float* gt_ptr = need_table ? gt.data_ptr<float>() : nullptr;
        float* gx_ptr = need_x ? gx.data_ptr<float>() : nullptr;
        if (table.scalar_type() == at::kHalf)
            NGP_LAUNCH(x, hash_grid_bwd, x.data_ptr<float>(), half_data(table), grad_out.data_ptr<float>(), gt_ptr,
                       gx_ptr, x.size(0), g);
        else
            NGP_LAUNCH(x, hash_grid_bwd, x.data_ptr<float>(), table.data_ptr<float>(), grad_out.data_ptr<float>(),
                       gt_ptr, gx_ptr, x.size(0), g);
    }
    // An output never aliases an input (the schema says so): with `accumulate` the table gradient is in it (the
    // input marked mutable, a!) and the first output is left undefined (None in Python).
    if (accumulate.has_value()) gt = Tensor();
    return {gt, gx};
}

void adam_step(Tensor param, const Tensor& grad, Tensor m, Tensor v, double step_size, double bc2_sqrt, double beta1,
               double beta2, double eps, double weight_decay, bool skip_zero_grad) {
    for (auto* t : {&param, &m, &v}) check(*t, at::kFloat, "adam state");
    check(grad, at::kFloat, "grad");
    same_device(param, {&grad, &m, &v});
    const int64_t n = param.numel();
    TORCH_CHECK(grad.numel() == n && m.numel() == n && v.numel() == n, "adam size mismatch");
    const ngp::AdamParams a{(float)step_size, (float)bc2_sqrt, (float)beta1, (float)beta2, (float)eps,
                            (float)weight_decay};
    if (n > 0)
        NGP_LAUNCH(param, adam_step, param.data_ptr<float>(), grad.data_ptr<float>(), m.data_ptr<float>(),
                   v.data_ptr<float>(), n, a, skip_zero_grad);
}

// Sparse Adam with per-entry step counts: counts (int32, one per entry) and corrections ((max_count + 1, 2) float32,
// 1 / (1 - beta1^c) and sqrt(1 - beta2^c) per count c) on the parameter's device.
void adam_step_counted(Tensor param, const Tensor& grad, Tensor m, Tensor v, Tensor counts, const Tensor& corrections,
                       double lr, double beta1, double beta2, double eps, double weight_decay) {
    for (auto* t : {&param, &m, &v}) check(*t, at::kFloat, "adam state");
    check(grad, at::kFloat, "grad");
    check(counts, at::kInt, "counts");
    check(corrections, at::kFloat, "corrections");
    same_device(param, {&grad, &m, &v, &counts, &corrections});
    const int64_t n = param.numel();
    TORCH_CHECK(grad.numel() == n && m.numel() == n && v.numel() == n && counts.numel() == n, "adam size mismatch");
    TORCH_CHECK(corrections.dim() == 2 && corrections.size(1) == 2 && corrections.size(0) >= 2,
                "corrections must be (max_count + 1, 2) with max_count >= 1");
    const ngp::AdamParams a{0.0f, 1.0f, (float)beta1, (float)beta2, (float)eps, (float)weight_decay};
    const ngp::CountedAdam ca{corrections.data_ptr<float>(), (int32_t)(corrections.size(0) - 1), (float)lr};
    if (n > 0)
        NGP_LAUNCH(param, adam_step_counted, param.data_ptr<float>(), grad.data_ptr<float>(), m.data_ptr<float>(),
                   v.data_ptr<float>(), counts.data_ptr<int32_t>(), n, a, ca);
}

// Packed samples: rgbs (n, 3), t and dt (n,), and at least one ray when there are samples.
void check_sample_shapes(int64_t n, int64_t n_rays, const Tensor& rgbs, const Tensor& t, const Tensor& dt) {
    TORCH_CHECK(rgbs.numel() == 3 * n && t.numel() == n && dt.numel() == n,
                "rgbs, t and dt must have one entry per sample (", n, ")");
    TORCH_CHECK(n == 0 || n_rays > 0, "samples without rays");
}

std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor> composite_fwd(const Tensor& sigmas, const Tensor& rgbs,
                                                                 const Tensor& t, const Tensor& dt,
                                                                 const Tensor& offsets, double threshold) {
    for (auto* p : {&sigmas, &rgbs, &t, &dt}) check(*p, at::kFloat, "composite input");
    check(offsets, at::kLong, "offsets");
    same_device(sigmas, {&rgbs, &t, &dt, &offsets});
    const int64_t n = sigmas.numel(), n_rays = offsets.numel();
    check_sample_shapes(n, n_rays, rgbs, t, dt);
    auto rgb = at::zeros({n_rays, 3}, sigmas.options());
    auto opacity = at::zeros({n_rays}, sigmas.options());
    auto depth = at::zeros({n_rays}, sigmas.options());
    auto weights = at::empty({n}, sigmas.options());
    auto trans = at::empty({n}, sigmas.options());
    if (n > 0) {  // check_sample_shapes: samples imply rays
        const ngp::CompositeOut out{rgb.data_ptr<float>(), opacity.data_ptr<float>(), depth.data_ptr<float>(),
                                    weights.data_ptr<float>(), trans.data_ptr<float>()};
        NGP_LAUNCH(sigmas, composite_fwd, sigmas.data_ptr<float>(), rgbs.data_ptr<float>(), t.data_ptr<float>(),
                   dt.data_ptr<float>(), offsets.data_ptr<int64_t>(), n_rays, n, (float)threshold, out);
    }
    return {rgb, opacity, depth, weights, trans};
}

std::tuple<Tensor, Tensor> composite_bwd(const Tensor& g_rgb, const Tensor& g_opacity, const Tensor& g_depth,
                                         const std::optional<Tensor>& g_weights, const std::optional<Tensor>& g_trans,
                                         const Tensor& sigmas, const Tensor& rgbs, const Tensor& t, const Tensor& dt,
                                         const Tensor& offsets, const Tensor& weights, const Tensor& trans,
                                         double threshold) {
    for (auto* p : {&g_rgb, &g_opacity, &g_depth, &sigmas, &rgbs, &t, &dt, &weights, &trans})
        check(*p, at::kFloat, "composite_bwd input");
    check(offsets, at::kLong, "offsets");
    same_device(sigmas, {&rgbs, &t, &dt, &offsets, &weights, &trans, &g_rgb, &g_opacity, &g_depth});
    const int64_t n = sigmas.numel(), n_rays = offsets.numel();
    check_sample_shapes(n, n_rays, rgbs, t, dt);
    TORCH_CHECK(weights.numel() == n && trans.numel() == n, "weights/transmittance must have one entry per sample");
    TORCH_CHECK(g_rgb.numel() == 3 * n_rays && g_opacity.numel() == n_rays && g_depth.numel() == n_rays,
                "output gradients must have one entry per ray");
    for (const auto* o : {&g_weights, &g_trans})
        if (o->has_value()) {
            check(**o, at::kFloat, "sample gradient");
            same_device(sigmas, {&**o});
            TORCH_CHECK((*o)->numel() == n, "sample gradients must have one entry per sample");
        }
    auto g_sigmas = at::zeros_like(sigmas);
    auto g_rgbs = at::zeros_like(rgbs);
    const float* gw = g_weights.has_value() ? g_weights->data_ptr<float>() : nullptr;
    const float* gT = g_trans.has_value() ? g_trans->data_ptr<float>() : nullptr;
    if (n > 0) {
        const ngp::CompositeGrad g{g_rgb.data_ptr<float>(), g_opacity.data_ptr<float>(), g_depth.data_ptr<float>(), gw,
                                   gT};
        NGP_LAUNCH(sigmas, composite_bwd, sigmas.data_ptr<float>(), rgbs.data_ptr<float>(), t.data_ptr<float>(),
                   dt.data_ptr<float>(), offsets.data_ptr<int64_t>(), n_rays, n, weights.data_ptr<float>(),
                   trans.data_ptr<float>(), (float)threshold, g, g_sigmas.data_ptr<float>(), g_rgbs.data_ptr<float>());
    }
    return {g_sigmas, g_rgbs};
}

// Rays (n, 3) float and the occupancy bytes of a march.
void check_march_inputs(const Tensor& rays_o, const Tensor& rays_d, const Tensor& occupied, int64_t n_cascades,
                        int64_t resolution) {
    check(rays_o, at::kFloat, "rays_o");
    check(rays_d, at::kFloat, "rays_d");
    check(occupied, at::kByte, "occupied");
    same_device(rays_o, {&rays_d, &occupied});
    check_rows(rays_o, rays_o.size(0), 3, "rays_o");
    check_rows(rays_d, rays_o.size(0), 3, "rays_d");
    TORCH_CHECK(occupied.numel() == n_cascades * resolution * resolution * resolution, "occupancy size mismatch");
}

// A march's span: the box (min xyz, max xyz) and the near distance, 7 values.
void check_span(at::ArrayRef<double> span) {
    TORCH_CHECK(span.size() == 7, "span must have 7 values (box min xyz, max xyz, near distance)");
    TORCH_CHECK(span[6] >= 0 && span[6] < ngp::kInf, "the near distance must be finite and >= 0");
}

// ... and the jitter (one entry per ray) and box of a training march.
void check_rays(const Tensor& rays_o, const Tensor& rays_d, const Tensor& jitter, const Tensor& occupied,
                at::ArrayRef<double> span, int64_t n_cascades, int64_t resolution) {
    check_march_inputs(rays_o, rays_d, occupied, n_cascades, resolution);
    check(jitter, at::kFloat, "jitter");
    same_device(rays_o, {&jitter});
    TORCH_CHECK(jitter.numel() == rays_o.size(0), "jitter must have one entry per ray");
    check_span(span);
}

ngp::MarchParams march_params(at::ArrayRef<double> span, double dt_min, double dt_max, double cone, int64_t max_steps,
                              int64_t n_cascades, int64_t resolution) {
    check_span(span);
    ngp::MarchParams p{};
    p.dt_min = (float)dt_min;
    p.dt_max = (float)dt_max;
    p.cone = (float)cone;
    p.ta = cone > 0 ? (float)(dt_min / cone) : 0.f;
    p.tb = cone > 0 ? (float)(dt_max / cone) : 0.f;
    p.growth = (float)std::log1p(cone);
    TORCH_CHECK(max_steps >= 1 && max_steps <= ((int64_t)1 << ngp::kCursorBits), "max_steps must be in [1, ",
                (int64_t)1 << ngp::kCursorBits, "]");
    p.max_steps = (int32_t)max_steps;
    p.n_cascades = (int32_t)n_cascades;
    p.resolution = (int32_t)resolution;
    for (int i = 0; i < 6; ++i) p.aabb[i] = (float)span[i];
    p.near = (float)span[6];
    return p;
}

// Rays taken in order while their samples fit in `capacity`: (fits, their counts (0 for the others), offsets).
std::tuple<Tensor, Tensor, Tensor> fit_counts(const Tensor& counts, int64_t capacity) {
    auto fits = at::cumsum(counts, 0) <= capacity;
    auto kept = at::where(fits, counts, at::zeros_like(counts));
    return {fits, kept, at::cumsum(kept, 0) - kept};
}

std::vector<Tensor> march_rays(const Tensor& rays_o, const Tensor& rays_d, const Tensor& jitter,
                               const Tensor& occupied, at::ArrayRef<double> span, double dt_min, double dt_max,
                               double cone, int64_t max_steps, int64_t n_cascades, int64_t resolution,
                               int64_t max_samples, const std::optional<Tensor>& cursor, int64_t max_per_ray) {
    check_rays(rays_o, rays_d, jitter, occupied, span, n_cascades, resolution);
    if (cursor.has_value()) {
        check(*cursor, at::kLong, "cursor");
        same_device(rays_o, {&*cursor});
        TORCH_CHECK(cursor->numel() == rays_o.size(0), "cursor must have one entry per ray");
    }
    TORCH_CHECK(max_per_ray < (int64_t)1 << 31, "max_per_ray too large");
    const ngp::MarchParams p = march_params(span, dt_min, dt_max, cone, max_steps, n_cascades, resolution);
    const int64_t n_rays = rays_o.size(0);
    auto counts32 = at::zeros({n_rays}, rays_o.options().dtype(at::kInt));
    // The cursor each ray's walk goes on from (incremental marching), -1 when it is over.
    auto resume = at::empty({n_rays}, rays_o.options().dtype(at::kLong));
    const ngp::MarchRange range{cursor.has_value() ? cursor->data_ptr<int64_t>() : nullptr,
                                max_per_ray > 0 ? (int32_t)max_per_ray : -1, resume.data_ptr<int64_t>()};
    const uint8_t* occ = occupied.data_ptr<uint8_t>();
    if (n_rays > 0)
        NGP_LAUNCH(rays_o, march_count, rays_o.data_ptr<float>(), rays_d.data_ptr<float>(), jitter.data_ptr<float>(),
                   occ, n_rays, p, range, counts32.data_ptr<int32_t>());
    auto counts = counts32.to(at::kLong);
    Tensor offsets;
    if (max_samples >= 0) {  // rays past the budget get no samples (and would resume where they began)
        auto [keep, kept, off] = fit_counts(counts, max_samples);
        counts = kept;
        offsets = off;
        resume = at::where(keep, resume, cursor.has_value() ? *cursor : at::zeros_like(resume));
    } else {
        offsets = at::cumsum(counts, 0) - counts;
    }
    const int64_t total = n_rays > 0 ? counts.sum().item<int64_t>() : 0;
    auto fopt = rays_o.options();
    auto positions = at::empty({total, 3}, fopt), dirs = at::empty({total, 3}, fopt);
    auto t = at::empty({total}, fopt), dt = at::empty({total}, fopt);
    auto ray_indices = at::empty({total}, fopt.dtype(at::kLong));
    if (total > 0) {
        const ngp::PackedOut out{positions.data_ptr<float>(), dirs.data_ptr<float>(), t.data_ptr<float>(),
                                 dt.data_ptr<float>(), ray_indices.data_ptr<int64_t>()};
        NGP_LAUNCH(rays_o, march_write, rays_o.data_ptr<float>(), rays_d.data_ptr<float>(), jitter.data_ptr<float>(),
                   occ, n_rays, p, range, offsets.data_ptr<int64_t>(), counts.data_ptr<int64_t>(), out);
    }
    return {positions, dirs, t, dt, ray_indices, offsets, counts, resume};
}

// Fixed-capacity sample buffers (ngp_app/render/batch.py): positions, dirs (capacity, 3), t, dt (capacity,) zeros and
// ray indices n_rays (the padding of the sentinel ray n_rays) until written.
std::vector<Tensor> sample_buffers(const at::TensorOptions& fopt, int64_t capacity, int64_t n_rays) {
    return {at::zeros({capacity, 3}, fopt), at::zeros({capacity, 3}, fopt), at::zeros({capacity}, fopt),
            at::zeros({capacity}, fopt), at::full({capacity}, n_rays, fopt.dtype(at::kLong))};
}

ngp::PackedOut packed_out(std::vector<Tensor>& b) {
    return {b[0].data_ptr<float>(), b[1].data_ptr<float>(), b[2].data_ptr<float>(), b[3].data_ptr<float>(),
            b[4].data_ptr<int64_t>()};
}

// Appends the per-ray arrays with the sentinel ray's entry, ray validity and the totals (all on the device).
void finish_buffers(std::vector<Tensor>& b, const Tensor& offsets, const Tensor& counts, const Tensor& valid,
                    const Tensor& requested, int64_t capacity) {
    auto total = counts.sum();
    b.push_back(at::cat({offsets, total.view({1})}));
    b.push_back(at::cat({counts, (capacity - total).view({1})}));
    b.push_back(valid);
    b.push_back(total);
    b.push_back(requested);
}

// March into buffers of `capacity` samples with no host read: count pass, device prefix sum, write pass. Returns the
// buffers, offsets and counts (n_rays + 1, the sentinel's last), valid (n_rays,) float (the ray's samples all fit),
// the total in the buffers and the total requested (0-dim int64).
std::vector<Tensor> march_rays_fixed(const Tensor& rays_o, const Tensor& rays_d, const Tensor& jitter,
                                     const Tensor& occupied, at::ArrayRef<double> span, double dt_min, double dt_max,
                                     double cone, int64_t max_steps, int64_t n_cascades, int64_t resolution,
                                     int64_t capacity) {
    check_rays(rays_o, rays_d, jitter, occupied, span, n_cascades, resolution);
    TORCH_CHECK(capacity >= 0, "capacity must be >= 0");
    const ngp::MarchParams p = march_params(span, dt_min, dt_max, cone, max_steps, n_cascades, resolution);
    const int64_t n_rays = rays_o.size(0);
    const ngp::MarchRange range{nullptr, -1, nullptr};
    const uint8_t* occ = occupied.data_ptr<uint8_t>();
    auto counts32 = at::zeros({n_rays}, rays_o.options().dtype(at::kInt));
    if (n_rays > 0)
        NGP_LAUNCH(rays_o, march_count, rays_o.data_ptr<float>(), rays_d.data_ptr<float>(), jitter.data_ptr<float>(),
                   occ, n_rays, p, range, counts32.data_ptr<int32_t>());
    auto all = counts32.to(at::kLong);
    auto [fits, counts, offsets] = fit_counts(all, capacity);
    auto b = sample_buffers(rays_o.options(), capacity, n_rays);
    if (n_rays > 0 && capacity > 0)
        NGP_LAUNCH(rays_o, march_write, rays_o.data_ptr<float>(), rays_d.data_ptr<float>(), jitter.data_ptr<float>(),
                   occ, n_rays, p, range, offsets.data_ptr<int64_t>(), counts.data_ptr<int64_t>(), packed_out(b));
    finish_buffers(b, offsets, counts, fits.to(at::kFloat), all.sum(), capacity);
    return b;
}

// Live-sample compaction of fixed buffers (layout of march_rays_fixed): the samples whose transmittance before them
// is >= threshold (a prefix of each ray) into buffers of `capacity`; rays whose live samples do not fit get none.
// Returns the same fields; valid is the input's times "fits", requested the live samples of all rays.
std::vector<Tensor> compact_samples(const Tensor& sigmas, const Tensor& positions, const Tensor& dirs,
                                    const Tensor& t, const Tensor& dt, const Tensor& offsets, const Tensor& counts,
                                    const Tensor& valid, double threshold, int64_t capacity) {
    for (auto* p : {&sigmas, &positions, &dirs, &t, &dt, &valid}) check(*p, at::kFloat, "compact input");
    check(offsets, at::kLong, "offsets");
    check(counts, at::kLong, "counts");
    same_device(sigmas, {&positions, &dirs, &t, &dt, &offsets, &counts, &valid});
    const int64_t n = sigmas.numel(), n_rays = offsets.numel() - 1;
    TORCH_CHECK(n_rays >= 0 && counts.numel() == n_rays + 1 && valid.numel() == n_rays,
                "offsets and counts need n_rays + 1 entries, valid n_rays");
    TORCH_CHECK(positions.numel() == 3 * n && dirs.numel() == 3 * n && t.numel() == n && dt.numel() == n,
                "sample arrays must have one entry per sample (", n, ")");
    TORCH_CHECK(capacity >= 0, "capacity must be >= 0");
    auto live32 = at::zeros({n_rays}, sigmas.options().dtype(at::kInt));
    if (n_rays > 0)
        NGP_LAUNCH(sigmas, live_counts, sigmas.data_ptr<float>(), dt.data_ptr<float>(), offsets.data_ptr<int64_t>(),
                   counts.data_ptr<int64_t>(), n_rays, (float)threshold, live32.data_ptr<int32_t>());
    auto live = live32.to(at::kLong);
    auto [fits, kept, kept_offsets] = fit_counts(live, capacity);
    auto b = sample_buffers(sigmas.options(), capacity, n_rays);
    if (n_rays > 0 && capacity > 0) {
        const ngp::SampleView src{positions.data_ptr<float>(), dirs.data_ptr<float>(), t.data_ptr<float>(),
                                  dt.data_ptr<float>()};
        NGP_LAUNCH(sigmas, compact_write, src, offsets.data_ptr<int64_t>(), kept_offsets.data_ptr<int64_t>(),
                   kept.data_ptr<int64_t>(), n_rays, packed_out(b));
    }
    finish_buffers(b, kept_offsets, kept, valid * fits.to(at::kFloat), live.sum(), capacity);
    return b;
}

// ---- whole-frame inference over sample slots (include/ngp/slots.h)

// Per-ray state of a frame: trans, depth (n,), rgb (n, 3) float and k (n,) int64, on the rays' device.
ngp::FrameState frame_state(const Tensor& trans, const Tensor& rgb, const Tensor& depth, const Tensor& k) {
    const int64_t n = trans.numel();
    check(trans, at::kFloat, "trans");
    check(rgb, at::kFloat, "rgb");
    check(depth, at::kFloat, "depth");
    check(k, at::kLong, "k");
    same_device(trans, {&rgb, &depth, &k});
    TORCH_CHECK(trans.numel() == n && depth.numel() == n && k.numel() == n && rgb.numel() == 3 * n,
                "frame state must have one entry per ray");
    return {trans.data_ptr<float>(), rgb.data_ptr<float>(), depth.data_ptr<float>(), k.data_ptr<int64_t>()};
}

void check_alive(const Tensor& alive, const Tensor& ref) {
    check(alive, at::kInt, "alive");
    same_device(ref, {&alive});
    TORCH_CHECK(alive.dim() == 1, "alive must be 1-d");
}

// k[r] = cursor of ray r's first sample (ngp::make_cursor(its lattice index, 0)), -1 when it has none.
void march_first(const Tensor& rays_o, const Tensor& rays_d, const Tensor& occupied, at::ArrayRef<double> span,
                 double dt_min, double dt_max, double cone, int64_t max_steps, int64_t n_cascades, int64_t resolution,
                 Tensor k) {
    check_march_inputs(rays_o, rays_d, occupied, n_cascades, resolution);
    check(k, at::kLong, "k");
    same_device(rays_o, {&k});
    TORCH_CHECK(k.numel() == rays_o.size(0), "k must have one entry per ray");
    const auto p = march_params(span, dt_min, dt_max, cone, max_steps, n_cascades, resolution);
    if (rays_o.size(0) > 0)
        NGP_LAUNCH(rays_o, march_first, rays_o.data_ptr<float>(), rays_d.data_ptr<float>(),
                   occupied.data_ptr<uint8_t>(), rays_o.size(0), p, k.data_ptr<int64_t>());
}

// The alive rays' next (up to) K samples each, in K slots per ray; the cursors k advance in place. A tuple, not Tensor[]: torch
// functionalizes (torch.compile, opcheck's AOT check) an op that mutates an input only when it returns plain Tensors.
std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor> march_slots(const Tensor& rays_o, const Tensor& rays_d,
                                                               const Tensor& occupied, at::ArrayRef<double> span,
                                                               double dt_min, double dt_max, double cone,
                                                               int64_t max_steps, int64_t n_cascades,
                                                               int64_t resolution, const Tensor& alive, Tensor k,
                                                               int64_t K) {
    check_march_inputs(rays_o, rays_d, occupied, n_cascades, resolution);
    check_alive(alive, rays_o);
    check(k, at::kLong, "k");
    same_device(rays_o, {&k});
    TORCH_CHECK(k.numel() == rays_o.size(0), "k must have one entry per ray");
    TORCH_CHECK(K > 0 && K < (int64_t)1 << 31, "K must be positive");
    const auto p = march_params(span, dt_min, dt_max, cone, max_steps, n_cascades, resolution);
    const int64_t n_alive = alive.numel(), n_slots = n_alive * K;
    auto fopt = rays_o.options();
    auto positions = at::empty({n_slots, 3}, fopt), dirs = at::empty({n_slots, 3}, fopt);
    auto t = at::empty({n_slots}, fopt), dt = at::empty({n_slots}, fopt);
    auto counts = at::empty({n_alive}, fopt.dtype(at::kInt));
    if (n_alive > 0) {
        const ngp::SlotBuffers out{positions.data_ptr<float>(), dirs.data_ptr<float>(), t.data_ptr<float>(),
                                   dt.data_ptr<float>(), counts.data_ptr<int32_t>()};
        NGP_LAUNCH(rays_o, march_slots, rays_o.data_ptr<float>(), rays_d.data_ptr<float>(),
                   occupied.data_ptr<uint8_t>(), alive.data_ptr<int32_t>(), n_alive, p, (int32_t)K,
                   k.data_ptr<int64_t>(), out);
    }
    return {positions, dirs, t, dt, counts};
}

// Composites one pass's slots into the frame state (in place) and finishes rays that became opaque.
void composite_slots(const Tensor& sigmas, const Tensor& rgbs, const Tensor& t, const Tensor& dt,
                     const Tensor& counts, const Tensor& alive, int64_t K, double threshold, Tensor trans, Tensor rgb,
                     Tensor depth, Tensor k) {
    for (auto* p : {&sigmas, &rgbs, &t, &dt}) check(*p, at::kFloat, "slot input");
    check(counts, at::kInt, "counts");
    check_alive(alive, sigmas);
    same_device(sigmas, {&rgbs, &t, &dt, &counts});
    const int64_t n_alive = alive.numel();
    TORCH_CHECK(K > 0 && counts.numel() == n_alive, "counts must have one entry per alive ray");
    check_sample_shapes(n_alive * K, n_alive, rgbs, t, dt);
    TORCH_CHECK(sigmas.numel() == n_alive * K, "sigmas must have K entries per alive ray");
    same_device(sigmas, {&trans});
    const auto s = frame_state(trans, rgb, depth, k);
    if (n_alive > 0)
        NGP_LAUNCH(sigmas, composite_slots, sigmas.data_ptr<float>(), rgbs.data_ptr<float>(), t.data_ptr<float>(),
                   dt.data_ptr<float>(), counts.data_ptr<int32_t>(), alive.data_ptr<int32_t>(), n_alive, (int32_t)K,
                   (float)threshold, s);
}

// out[:counter] = the entries r of alive with k[r] >= 0; counter (1,) int32 is written on the device.
void compact_rays(const Tensor& alive, const Tensor& k, Tensor out, Tensor counter) {
    check_alive(alive, k);
    check(k, at::kLong, "k");
    check(out, at::kInt, "out");
    check(counter, at::kInt, "counter");
    same_device(k, {&out, &counter});
    TORCH_CHECK(out.numel() >= alive.numel() && counter.numel() == 1, "out too small or counter not one int");
    NGP_LAUNCH(k, compact_rays, alive.data_ptr<int32_t>(), alive.numel(), k.data_ptr<int64_t>(),
               out.data_ptr<int32_t>(), counter.data_ptr<int32_t>());
}

// Frame output: out (n, 4) uint8 = colour over the background and alpha 1 - trans.
void rgba8(const Tensor& rgb, const Tensor& trans, const Tensor& background, Tensor out) {
    check(rgb, at::kFloat, "rgb");
    check(trans, at::kFloat, "trans");
    check(background, at::kFloat, "background");
    check(out, at::kByte, "out");
    same_device(rgb, {&trans, &background, &out});
    const int64_t n = trans.numel();
    TORCH_CHECK(rgb.numel() == 3 * n && out.numel() == 4 * n && background.numel() == 3,
                "rgb (n, 3), trans (n,), background (3,), out (n, 4)");
    if (n > 0)
        NGP_LAUNCH(rgb, rgba8, rgb.data_ptr<float>(), trans.data_ptr<float>(), background.data_ptr<float>(), n,
                   out.data_ptr<uint8_t>());
}

Tensor occupancy_cell_positions(const Tensor& indices, const Tensor& jitter, int64_t cascade, int64_t resolution) {
    check(indices, at::kLong, "indices");
    check(jitter, at::kFloat, "jitter");
    same_device(indices, {&jitter});
    TORCH_CHECK(jitter.numel() == 3 * indices.numel(), "jitter must be (n, 3)");
    auto pos = at::empty({indices.numel(), 3}, jitter.options());
    if (indices.numel() > 0)
        NGP_LAUNCH(indices, occupancy_cell_positions, indices.data_ptr<int64_t>(), jitter.data_ptr<float>(),
                   indices.numel(), (int)cascade, (int)resolution, pos.data_ptr<float>());
    return pos;
}

void occupancy_decay_max(Tensor density, const Tensor& fresh, double decay) {
    check(density, at::kFloat, "density");
    check(fresh, at::kFloat, "fresh");
    same_device(density, {&fresh});
    TORCH_CHECK(density.numel() == fresh.numel(), "size mismatch");
    if (density.numel() > 0)
        NGP_LAUNCH(density, occupancy_decay_max, density.data_ptr<float>(), fresh.data_ptr<float>(), density.numel(),
                   (float)decay);
}

// Spherical harmonics of unit directions: dirs (n, 3) -> (n, degree^2); backward gives the directions' gradient.
void check_sh(const Tensor& dirs, int64_t degree) {
    check(dirs, at::kFloat, "dirs");
    check_rows(dirs, dirs.size(0), 3, "dirs");
    TORCH_CHECK(degree >= 1 && degree <= ngp::kMaxShDegree, "SH degree must be in 1..4, got ", degree);
}

Tensor sh_encode_fwd(const Tensor& dirs, int64_t degree) {
    check_sh(dirs, degree);
    auto out = at::empty({dirs.size(0), degree * degree}, dirs.options());
    if (dirs.size(0) > 0)
        NGP_LAUNCH(dirs, sh_encode_fwd, dirs.data_ptr<float>(), out.data_ptr<float>(), dirs.size(0), (int)degree);
    return out;
}

Tensor sh_encode_bwd(const Tensor& grad_out, const Tensor& dirs, int64_t degree) {
    check_sh(dirs, degree);
    check(grad_out, at::kFloat, "grad_out");
    same_device(dirs, {&grad_out});
    check_rows(grad_out, dirs.size(0), degree * degree, "grad_out");
    auto grad_dirs = at::empty_like(dirs);
    if (dirs.size(0) > 0)
        NGP_LAUNCH(dirs, sh_encode_bwd, dirs.data_ptr<float>(), grad_out.data_ptr<float>(), grad_dirs.data_ptr<float>(),
                   dirs.size(0), (int)degree);
    return grad_dirs;
}

}  // namespace

TORCH_LIBRARY(ngp, m) {
    const char* geo = "float[] scales, int[] res, int[] sizes, int[] offsets, int[] hashed, int hash_mask";
    m.def((std::string("hash_grid_fwd(Tensor x, Tensor table, ") + geo + ") -> Tensor").c_str());
    m.def((std::string("hash_grid_bwd(Tensor grad_out, Tensor x, Tensor table, ") + geo +
           ", bool need_table, bool need_x, Tensor(a!)? accumulate=None) -> (Tensor, Tensor)").c_str());
    m.def("adam_step(Tensor(a!) param, Tensor grad, Tensor(b!) m, Tensor(c!) v, float step_size, "
          "float bc2_sqrt, float beta1, float beta2, float eps, float weight_decay, bool skip_zero_grad) -> ()");
    m.def("adam_step_counted(Tensor(a!) param, Tensor grad, Tensor(b!) m, Tensor(c!) v, Tensor(d!) counts, "
          "Tensor corrections, float lr, float beta1, float beta2, float eps, float weight_decay) -> ()");
    m.def("composite_fwd(Tensor sigmas, Tensor rgbs, Tensor t, Tensor dt, Tensor offsets, float threshold) -> "
          "(Tensor, Tensor, Tensor, Tensor, Tensor)");
    m.def("composite_bwd(Tensor g_rgb, Tensor g_opacity, Tensor g_depth, Tensor? g_weights, Tensor? g_trans, "
          "Tensor sigmas, Tensor rgbs, Tensor t, Tensor dt, Tensor offsets, Tensor weights, Tensor trans, "
          "float threshold) -> (Tensor, Tensor)");
    m.def("march_rays(Tensor rays_o, Tensor rays_d, Tensor jitter, Tensor occupied, float[] span, float dt_min, "
          "float dt_max, float cone, int max_steps, int n_cascades, int resolution, int max_samples, "
          "Tensor? cursor=None, int max_per_ray=-1) -> Tensor[]");
    m.def("march_rays_fixed(Tensor rays_o, Tensor rays_d, Tensor jitter, Tensor occupied, float[] span, "
          "float dt_min, float dt_max, float cone, int max_steps, int n_cascades, int resolution, int capacity) -> "
          "Tensor[]");
    m.def("compact_samples(Tensor sigmas, Tensor positions, Tensor dirs, Tensor t, Tensor dt, Tensor offsets, "
          "Tensor counts, Tensor valid, float threshold, int capacity) -> Tensor[]");
    m.def("occupancy_cell_positions(Tensor indices, Tensor jitter, int cascade, int resolution) -> Tensor");
    m.def("occupancy_decay_max(Tensor(a!) density, Tensor fresh, float decay) -> ()");
    m.def("sh_encode_fwd(Tensor dirs, int degree) -> Tensor");
    m.def("sh_encode_bwd(Tensor grad_out, Tensor dirs, int degree) -> Tensor");
    const char* march = "float[] span, float dt_min, float dt_max, float cone, int max_steps, int n_cascades, "
                        "int resolution";
    m.def((std::string("march_first(Tensor rays_o, Tensor rays_d, Tensor occupied, ") + march +
           ", Tensor(a!) k) -> ()").c_str());
    m.def((std::string("march_slots(Tensor rays_o, Tensor rays_d, Tensor occupied, ") + march +
           ", Tensor alive, Tensor(a!) k, int K) -> (Tensor, Tensor, Tensor, Tensor, Tensor)").c_str());
    m.def("composite_slots(Tensor sigmas, Tensor rgbs, Tensor t, Tensor dt, Tensor counts, Tensor alive, int K, "
          "float threshold, Tensor(a!) trans, Tensor(b!) rgb, Tensor(c!) depth, Tensor(d!) k) -> ()");
    m.def("compact_rays(Tensor alive, Tensor k, Tensor(a!) out, Tensor(b!) counter) -> ()");
    m.def("rgba8(Tensor rgb, Tensor trans, Tensor background, Tensor(a!) out) -> ()");
}

#define NGP_IMPLS(m)                                                    \
    m.impl("hash_grid_fwd", &hash_grid_fwd);                            \
    m.impl("hash_grid_bwd", &hash_grid_bwd);                            \
    m.impl("adam_step", &adam_step);                                    \
    m.impl("adam_step_counted", &adam_step_counted);                    \
    m.impl("composite_fwd", &composite_fwd);                            \
    m.impl("composite_bwd", &composite_bwd);                            \
    m.impl("march_rays", &march_rays);                                  \
    m.impl("march_rays_fixed", &march_rays_fixed);                      \
    m.impl("compact_samples", &compact_samples);                        \
    m.impl("occupancy_cell_positions", &occupancy_cell_positions);      \
    m.impl("occupancy_decay_max", &occupancy_decay_max);                \
    m.impl("sh_encode_fwd", &sh_encode_fwd);                            \
    m.impl("sh_encode_bwd", &sh_encode_bwd);                            \
    m.impl("march_first", &march_first);                                \
    m.impl("march_slots", &march_slots);                                \
    m.impl("composite_slots", &composite_slots);                        \
    m.impl("compact_rays", &compact_rays);                              \
    m.impl("rgba8", &rgba8);

TORCH_LIBRARY_IMPL(ngp, CPU, m) { NGP_IMPLS(m) }

#ifdef NGP_WITH_CUDA
TORCH_LIBRARY_IMPL(ngp, CUDA, m) { NGP_IMPLS(m) }
#endif
