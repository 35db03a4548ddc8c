// MLA attention core. Scores go through the linear op (a GEMM against each cache block, vectorized and
// threaded there); the softmax-weighted sum and the W_UK/W_UV products are axpy loops the compiler vectorizes.
// kv_b_proj rows are widened once per call and applied to every token of the batch, so a prefill reads them once.
#include "kernels/cpu/attention.h"

#include <array>

#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "kernels/cpu/thread_pool.h"

namespace latent::cpu {
namespace {

// Splits [0, n) over the pool when the job is big enough to pay for waking it (about 64K multiply-adds);
// small ones (tiny models, short contexts) run inline.
void parallel(ThreadPool* pool, int64_t n, int64_t grain, int64_t work,
              const std::function<void(int64_t, int64_t)>& fn) {
  if (work < (int64_t{1} << 16) || n <= 1) {
    fn(0, n);
    return;
  }
  (pool ? *pool : ThreadPool::global()).parallel_for(n, grain, fn);
}

const std::array<float, 256>& fp8_table() {
  static const std::array<float, 256> table = [] {
    std::array<float, 256> t{};
    for (int i = 0; i < 256; ++i) t[static_cast<size_t>(i)] = fp8e4m3_to_f32(static_cast<uint8_t>(i));
    return t;
  }();
  return table;
}

}  // namespace

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
      const auto& lut = fp8_table();
      const int64_t scale_cols = (w.cols + w.block - 1) / w.block;
      const float* s = w.scale_inv ? w.scale_inv + (r / w.block) * scale_cols : nullptr;
      for (int64_t c0b = 0; c0b < w.cols; c0b += w.block) {
        const float sc = s ? s[c0b / w.block] : 1.f;
        const int64_t end = std::min(w.cols, c0b + w.block);
        for (int64_t c = c0b; c < end; ++c) out[c] = lut[p[c]] * sc;
      }
      return;
    }
  }
}

void mla_absorb_q(const float* q, int64_t n, int64_t q_stride, const WeightView& kv_b, int64_t n_heads,
                  int64_t nope, int64_t rope, int64_t v_dim, float* q_lat, ThreadPool* pool) {
  const int64_t R = kv_b.cols;
  parallel(pool, n_heads, 1, n_heads * nope * R * n, [&](int64_t h0, int64_t h1) {
    std::vector<float> row(static_cast<size_t>(R));
    for (int64_t h = h0; h < h1; ++h) {
      for (int64_t t = 0; t < n; ++t) std::fill_n(q_lat + (t * n_heads + h) * R, R, 0.f);
      for (int64_t j = 0; j < nope; ++j) {
        dequant_row(kv_b, h * (nope + v_dim) + j, row.data());  // W_UK_h[j, :]
        for (int64_t t = 0; t < n; ++t) {
          const float qj = q[t * q_stride + h * (nope + rope) + j];
          float* dst = q_lat + (t * n_heads + h) * R;
          for (int64_t c = 0; c < R; ++c) dst[c] += qj * row[c];
        }
      }
    }
  });
}

void mla_attention(const float* q_lat, const float* q, int64_t q_stride, int64_t n, int64_t n_heads,
                   int64_t nope, int64_t R, int64_t P, int64_t start_pos, const float* const* blocks,
                   int64_t block_size, float scale, float* o_lat, ThreadPool* pool) {
  const int64_t dim = R + P, H = n_heads, ctx_max = start_pos + n;
  // Query tokens go in chunks so the score matrix [chunk * H, ctx] stays within ~64 MiB.
  constexpr int64_t kMaxScores = int64_t{16} << 20;
  const int64_t chunk = std::clamp<int64_t>(kMaxScores / std::max<int64_t>(1, H * ctx_max), 1, n);
  std::vector<float> qcat(static_cast<size_t>(chunk * H * dim));          // [chunk * H, R + P]
  std::vector<float> scores(static_cast<size_t>(chunk * H * ctx_max));    // [chunk * H, ctx]
  std::vector<float> part(static_cast<size_t>(chunk * H * block_size));  // [chunk * H, block_size]
  for (int64_t i0 = 0; i0 < n; i0 += chunk) {
    const int64_t m = std::min(chunk, n - i0), rows = m * H, ctx_hi = start_pos + i0 + m;
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t h = 0; h < H; ++h) {
        float* dst = qcat.data() + (i * H + h) * dim;
        std::copy_n(q_lat + ((i0 + i) * H + h) * R, R, dst);
        std::copy_n(q + (i0 + i) * q_stride + h * (nope + P) + nope, P, dst + R);
      }
    }
    // Scores against one cache block at a time: [rows, R + P] x [block_size, R + P]^T (slots past the
    // context hold stale values; they are never read back).
    for (int64_t b = 0; b * block_size < ctx_hi; ++b) {
      const WeightView kb{blocks[b], DType::kF32, block_size, dim};
      linear(qcat.data(), rows, kb, part.data(), pool);
      const int64_t n_slots = std::min(block_size, ctx_hi - b * block_size);
      for (int64_t r = 0; r < rows; ++r) {
        std::copy_n(part.data() + r * block_size, n_slots, scores.data() + r * ctx_max + b * block_size);
      }
    }
    parallel(pool, rows, 0, rows * ctx_hi * R, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t i = r / H, h = r % H;
        const int64_t n_ctx = start_pos + i0 + i + 1;  // causal
        float* sc = scores.data() + r * ctx_max;
        float mx = -INFINITY;
        for (int64_t t = 0; t < n_ctx; ++t) mx = std::max(mx, sc[t] *= scale);
        float sum = 0.f;
        for (int64_t t = 0; t < n_ctx; ++t) sum += (sc[t] = std::exp(sc[t] - mx));
        const float inv = 1.f / sum;
        float* o = o_lat + ((i0 + i) * H + h) * R;
        std::fill_n(o, R, 0.f);
        for (int64_t t = 0; t < n_ctx; ++t) {
          const float p = sc[t] * inv;
          const float* kv = blocks[t / block_size] + (t % block_size) * dim;
          for (int64_t c = 0; c < R; ++c) o[c] += p * kv[c];
        }
      }
    });
  }
}

void mla_apply_uv(const float* o_lat, int64_t n, const WeightView& kv_b, int64_t n_heads, int64_t nope,
                  int64_t v_dim, float* out, ThreadPool* pool) {
  const int64_t R = kv_b.cols;
  parallel(pool, n_heads, 1, n_heads * v_dim * R * n, [&](int64_t h0, int64_t h1) {
    std::vector<float> row(static_cast<size_t>(R)), wt(static_cast<size_t>(R * v_dim));  // W_UV_h^T [R, v]
    for (int64_t h = h0; h < h1; ++h) {
      for (int64_t j = 0; j < v_dim; ++j) {
        dequant_row(kv_b, h * (nope + v_dim) + nope + j, row.data());  // W_UV_h[j, :]
        for (int64_t c = 0; c < R; ++c) wt[c * v_dim + j] = row[c];
      }
      for (int64_t t = 0; t < n; ++t) {
        const float* ol = o_lat + (t * n_heads + h) * R;
        float* dst = out + t * n_heads * v_dim + h * v_dim;
        std::fill_n(dst, v_dim, 0.f);
        for (int64_t c = 0; c < R; ++c) {
          const float a = ol[c];
          const float* w = wt.data() + c * v_dim;
          for (int64_t j = 0; j < v_dim; ++j) dst[j] += a * w[j];
        }
      }
    }
  });
}

}  // namespace latent::cpu
