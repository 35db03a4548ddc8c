// Scalar bodies: the fallback on CPUs without AVX2 (and the LATENT_CPU=scalar level). Float accumulation,
// rows split over the pool.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/ops_isa.h"
#include "kernels/cpu/thread_pool.h"

namespace latent::cpu {
namespace {

template <DType D>
inline float load_w(const void* data, int64_t i) {
  if constexpr (D == DType::kF32) return static_cast<const float*>(data)[i];
  if constexpr (D == DType::kBF16) return bf16_to_f32(static_cast<const uint16_t*>(data)[i]);
  if constexpr (D == DType::kF16) return f16_to_f32(static_cast<const uint16_t*>(data)[i]);
  if constexpr (D == DType::kF8E4M3) return fp8e4m3_to_f32(static_cast<const uint8_t*>(data)[i]);
  return 0.f;
}

// y[t, r] for r in [r0, r1), all tokens.
template <DType D>
void linear_rows(const float* x, int64_t ldx, int64_t n, const WeightView& w, float* y, int64_t ldy, int64_t r0,
                 int64_t r1) {
  const int64_t cols = w.cols;
  const int64_t blk = D == DType::kF8E4M3 ? w.block : cols;
  const int64_t scale_cols = D == DType::kF8E4M3 ? (cols + blk - 1) / blk : 1;
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t row = r * cols;
    for (int64_t t = 0; t < n; ++t) {
      const float* xt = x + t * ldx;
      float total = 0.f;
      for (int64_t c0 = 0; c0 < cols; c0 += std::max<int64_t>(blk, 1)) {
        int64_t c1 = std::min(cols, c0 + blk);
        float acc = 0.f;
        for (int64_t c = c0; c < c1; ++c) acc += xt[c] * load_w<D>(w.data, row + c);
        if constexpr (D == DType::kF8E4M3) acc *= w.scale_inv[(r / blk) * scale_cols + c0 / blk];
        total += acc;
      }
      y[t * ldy + r] = total;
    }
  }
}

template <DType D>
void linear_typed(const float* x, int64_t ldx, int64_t n, const WeightView& w, float* y, int64_t ldy, ThreadPool& pool) {
  if (w.cols == 0) {
    for (int64_t t = 0; t < n; ++t) std::fill(y + t * ldy, y + t * ldy + w.rows, 0.f);
    return;
  }
  int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, w.cols * n));
  pool.parallel_for(w.rows, grain, [&](int64_t r0, int64_t r1) { linear_rows<D>(x, ldx, n, w, y, ldy, r0, r1); });
}

void do_linear(const float* x, int64_t ldx, int64_t n, const WeightView& w, float* y, int64_t ldy, ThreadPool& pool) {
  switch (w.dtype) {
    case DType::kF32: return linear_typed<DType::kF32>(x, ldx, n, w, y, ldy, pool);
    case DType::kBF16: return linear_typed<DType::kBF16>(x, ldx, n, w, y, ldy, pool);
    case DType::kF16: return linear_typed<DType::kF16>(x, ldx, n, w, y, ldy, pool);
    case DType::kF8E4M3: return linear_typed<DType::kF8E4M3>(x, ldx, n, w, y, ldy, pool);
  }
}

void do_rms_norm(const float* x, int64_t n, int64_t d, const void* gain, DType gain_dtype, float eps, float* y) {
  WeightView g{gain, gain_dtype, 1, d};
  for (int64_t t = 0; t < n; ++t) {
    const float* xt = x + t * d;
    float ss = 0.f;
    for (int64_t i = 0; i < d; ++i) ss += xt[i] * xt[i];
    float inv = 1.f / std::sqrt(ss / static_cast<float>(d) + eps);
    for (int64_t i = 0; i < d; ++i) y[t * d + i] = xt[i] * inv * g.at(0, i);
  }
}

void do_embedding_row(const WeightView& table, int64_t id, float* out) {
  for (int64_t c = 0; c < table.cols; ++c) out[c] = table.at(id, c);
}

void do_swiglu(const float* gate, const float* up, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = gate[i] / (1.f + std::exp(-gate[i])) * up[i];
}

void do_softmax(float* x, int64_t n) {
  float m = -INFINITY;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, x[i]);
  float s = 0.f;
  for (int64_t i = 0; i < n; ++i) s += (x[i] = std::exp(x[i] - m));
  float inv = 1.f / s;
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

}  // namespace

void matmul_scalar(const float* a, int64_t lda, int64_t m, int64_t k, const WeightView& b, int64_t b_row0, int64_t n,
                   float* c, int64_t ldc, bool accumulate, ThreadPool& pool) {
  // Row by row: c[i, :] (+)= sum_kk a[i, kk] * B[kk, :], B rows widened once per row block of A.
  pool.parallel_for(m, std::max<int64_t>(1, 4096 / std::max<int64_t>(1, k * n / 64 + 1)), [&](int64_t i0, int64_t i1) {
    std::vector<float> row(static_cast<size_t>(n));
    for (int64_t i = i0; i < i1; ++i) {
      float* ci = c + i * ldc;
      if (!accumulate) std::fill(ci, ci + n, 0.f);
    }
    for (int64_t kk = 0; kk < k; ++kk) {
      for (int64_t j = 0; j < n; ++j) row[j] = b.at(b_row0 + kk, j);
      for (int64_t i = i0; i < i1; ++i) {
        const float aik = a[i * lda + kk];
        float* ci = c + i * ldc;
        for (int64_t j = 0; j < n; ++j) ci[j] += aik * row[j];
      }
    }
  });
}

const OpTable& scalar_op_table() {
  static const OpTable t{&do_linear, &do_rms_norm, &do_embedding_row, &do_swiglu, &do_softmax, &matmul_scalar};
  return t;
}

}  // namespace latent::cpu
