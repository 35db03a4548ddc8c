// Scalar MLA attention core. Simple loops; the weight rows of kv_b_proj are widened once per call and then
// applied to every token of the batch, so a prefill reads them once.
#include "kernels/cpu/attention.h"

#include <cmath>
#include <vector>

namespace latent::cpu {

void dequant_row(const WeightView& w, int64_t r, float* out) {
  const int64_t c0 = r * w.cols;
  switch (w.dtype) {
    case DType::kF32: {
      const float* p = static_cast<const float*>(w.data) + c0;
      for (int64_t c = 0; c < w.cols; ++c) out[c] = p[c];
      return;
    }
    case DType::kBF16: {
      const uint16_t* p = static_cast<const uint16_t*>(w.data) + c0;
      for (int64_t c = 0; c < w.cols; ++c) out[c] = bf16_to_f32(p[c]);
      return;
    }
    case DType::kF16: {
      const uint16_t* p = static_cast<const uint16_t*>(w.data) + c0;
      for (int64_t c = 0; c < w.cols; ++c) out[c] = f16_to_f32(p[c]);
      return;
    }
    case DType::kF8E4M3: {
      const uint8_t* p = static_cast<const uint8_t*>(w.data) + c0;
      const int64_t scale_cols = (w.cols + w.block - 1) / w.block;
      const float* s = w.scale_inv ? w.scale_inv + (r / w.block) * scale_cols : nullptr;
      for (int64_t c = 0; c < w.cols; ++c) out[c] = fp8e4m3_to_f32(p[c]) * (s ? s[c / w.block] : 1.f);
      return;
    }
  }
}

void mla_absorb_q(const float* q, int64_t n, int64_t q_stride, const WeightView& kv_b, int64_t n_heads,
                  int64_t nope, int64_t rope, int64_t v_dim, float* q_lat) {
  const int64_t R = kv_b.cols;
  std::vector<float> row(static_cast<size_t>(R));
  for (int64_t i = 0; i < n * n_heads * R; ++i) q_lat[i] = 0.f;
  for (int64_t h = 0; h < n_heads; ++h) {
    for (int64_t j = 0; j < nope; ++j) {
      dequant_row(kv_b, h * (nope + v_dim) + j, row.data());  // W_UK_h[j, :]
      for (int64_t t = 0; t < n; ++t) {
        const float qj = q[t * q_stride + h * (nope + rope) + j];
        float* dst = q_lat + (t * n_heads + h) * R;
        for (int64_t c = 0; c < R; ++c) dst[c] += qj * row[c];
      }
    }
  }
}

void mla_attention(const float* q_lat, const float* q, int64_t q_stride, int64_t n, int64_t n_heads,
                   int64_t nope, int64_t R, int64_t P, int64_t start_pos, const float* const* blocks,
                   int64_t block_size, float scale, float* o_lat) {
  const int64_t dim = R + P;
  std::vector<float> scores(static_cast<size_t>(start_pos + n));
  for (int64_t i = 0; i < n; ++i) {
    const int64_t n_ctx = start_pos + i + 1;
    for (int64_t h = 0; h < n_heads; ++h) {
      const float* ql = q_lat + (i * n_heads + h) * R;
      const float* qr = q + i * q_stride + h * (nope + P) + nope;
      float m = -INFINITY;
      for (int64_t t = 0; t < n_ctx; ++t) {
        const float* kv = blocks[t / block_size] + (t % block_size) * dim;
        float s = 0.f;
        for (int64_t c = 0; c < R; ++c) s += ql[c] * kv[c];
        for (int64_t c = 0; c < P; ++c) s += qr[c] * kv[R + c];
        s *= scale;
        scores[static_cast<size_t>(t)] = s;
        m = std::max(m, s);
      }
      float sum = 0.f;
      for (int64_t t = 0; t < n_ctx; ++t) sum += (scores[static_cast<size_t>(t)] = std::exp(scores[static_cast<size_t>(t)] - m));
      const float inv = 1.f / sum;
      float* o = o_lat + (i * n_heads + h) * R;
      for (int64_t c = 0; c < R; ++c) o[c] = 0.f;
      for (int64_t t = 0; t < n_ctx; ++t) {
        const float p = scores[static_cast<size_t>(t)] * inv;
        const float* kv = blocks[t / block_size] + (t % block_size) * dim;
        for (int64_t c = 0; c < R; ++c) o[c] += p * kv[c];
      }
    }
  }
}

void mla_apply_uv(const float* o_lat, int64_t n, const WeightView& kv_b, int64_t n_heads, int64_t nope,
                  int64_t v_dim, float* out) {
  const int64_t R = kv_b.cols;
  std::vector<float> row(static_cast<size_t>(R));
  for (int64_t h = 0; h < n_heads; ++h) {
    for (int64_t j = 0; j < v_dim; ++j) {
      dequant_row(kv_b, h * (nope + v_dim) + nope + j, row.data());  // W_UV_h[j, :]
      for (int64_t t = 0; t < n; ++t) {
        const float* ol = o_lat + (t * n_heads + h) * R;
        float s = 0.f;
        for (int64_t c = 0; c < R; ++c) s += ol[c] * row[c];
        out[t * n_heads * v_dim + h * v_dim + j] = s;
      }
    }
  }
}

}  // namespace latent::cpu
