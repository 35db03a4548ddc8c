// Plain scalar references for the CPU ops (double accumulation, one element at a time): what tests compare
// every fast body against. Not used on the hot path.
#include <algorithm>
#include <cmath>

#include "kernels/cpu/ops.h"

namespace latent::cpu {

float WeightView::at(int64_t r, int64_t c) const {
  if (layout == WeightLayout::kBf16Tiles) {  // packed_weights.h: [block][pair][64] u32 of BF16 pairs
    const int64_t pairs = (cols + 1) / 2;
    const int64_t i = ((r / 64 * pairs + c / 2) * 64 + r % 64) * 2 + c % 2;
    return bf16_to_f32(static_cast<const uint16_t*>(data)[i]);
  }
  int64_t i = r * cols + c;
  switch (dtype) {
    case DType::kF32: return static_cast<const float*>(data)[i];
    case DType::kBF16: return bf16_to_f32(static_cast<const uint16_t*>(data)[i]);
    case DType::kF16: return f16_to_f32(static_cast<const uint16_t*>(data)[i]);
    case DType::kF8E4M3: {
      int64_t scale_cols = (cols + block - 1) / block;
      float s = scale_inv ? scale_inv[(r / block) * scale_cols + c / block] : 1.f;
      return fp8e4m3_to_f32(static_cast<const uint8_t*>(data)[i]) * s;
    }
  }
  return 0.f;
}

namespace ref {

void linear(const float* x, int64_t n, const WeightView& w, float* y) {
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t r = 0; r < w.rows; ++r) {
      double acc = 0;
      for (int64_t c = 0; c < w.cols; ++c) acc += static_cast<double>(x[t * w.cols + c]) * w.at(r, c);
      y[t * w.rows + r] = static_cast<float>(acc);
    }
  }
}

void rms_norm(const float* x, int64_t n, int64_t d, const void* gain, DType gain_dtype, float eps, float* y) {
  WeightView g{gain, gain_dtype, 1, d};
  for (int64_t t = 0; t < n; ++t) {
    double ss = 0;
    for (int64_t i = 0; i < d; ++i) ss += static_cast<double>(x[t * d + i]) * x[t * d + i];
    float inv = static_cast<float>(1.0 / std::sqrt(ss / d + eps));
    for (int64_t i = 0; i < d; ++i) y[t * d + i] = x[t * d + i] * inv * g.at(0, i);
  }
}

void embedding_row(const WeightView& table, int64_t id, float* out) {
  for (int64_t c = 0; c < table.cols; ++c) out[c] = table.at(id, c);
}

void swiglu(const float* gate, const float* up, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    double g = gate[i];
    out[i] = static_cast<float>(g / (1.0 + std::exp(-g)) * up[i]);
  }
}

void softmax(float* x, int64_t n) {
  double m = -INFINITY;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, static_cast<double>(x[i]));
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += std::exp(x[i] - m);
  for (int64_t i = 0; i < n; ++i) x[i] = static_cast<float>(std::exp(x[i] - m) / s);
}

void matmul(const float* a, int64_t lda, int64_t m, int64_t k, const WeightView& b, int64_t b_row0, int64_t n,
            float* c, int64_t ldc, bool accumulate) {
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double acc = accumulate ? c[i * ldc + j] : 0.0;
      for (int64_t kk = 0; kk < k; ++kk) acc += static_cast<double>(a[i * lda + kk]) * b.at(b_row0 + kk, j);
      c[i * ldc + j] = static_cast<float>(acc);
    }
  }
}

}  // namespace ref

}  // namespace latent::cpu
