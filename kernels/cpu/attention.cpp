// MLA attention core. The cache blocks are F32 or BF16 weight views: with BF16 (the fast precision's cache) the
// scores take the BF16-activation GEMM and P·V widens the rows. Everything runs through the linear/matmul ops: W_UK absorption as a per-head matmul
// (row-by-row axpy for a few tokens), scores as a linear against each cache block, P·V as a matmul with the
// block as an F32 view, W_UV as a per-head linear on its rows of kv_b_proj (no copy, no transpose). Work is
// split once over heads or query-row groups; the ops called inside a job run inline on that thread.
#include "kernels/cpu/attention.h"

#include <array>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>
#include <functional>
#include <vector>

#include "kernels/cpu/attention_isa.h"
#include "kernels/cpu/ops_isa.h"
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
    for (int64_t h = h0; h < h1; ++h) {
      // q_lat[:, h] = q_nope[:, h] · W_UK_h  ([n, nope] x [nope, R]); inline when nested. The matmul op's
      // AVX-512 body takes few rows (decode) unpacked, many rows through its packed GEMM.
      matmul(q + h * (nope + rope), q_stride, n, nope, kv_b, h * (nope + v_dim), R, q_lat + h * R, n_heads * R,
             false, pool);
    }
  });
}

void mla_attention(const float* q_lat, const float* q, int64_t q_stride, int64_t n, int64_t n_heads,
                   int64_t nope, int64_t R, int64_t P, int64_t start_pos, const void* const* blocks, DType cache_dtype,
                   int64_t block_size, float scale, float* o_lat, ThreadPool* pool) {
  const int64_t dim = R + P, H = n_heads, rows = n * H, bs = block_size;
  // LATENT_MLA_ATTENTION=generic keeps few-token steps on the generic path below (for A/B benchmarks).
  static const bool few_ok = [] {
    const char* e = std::getenv("LATENT_MLA_ATTENTION");
    return !(e && std::string(e) == "generic");
  }();
  if (n <= 4 && few_ok && best_isa() == Isa::kAvx512 && mla_attention_few_avx512_supports(R, P)) {
    return mla_attention_few_avx512(q_lat, q, q_stride, n, n_heads, nope, R, P, start_pos, blocks, cache_dtype, block_size,
                                    scale, o_lat, pool ? *pool : ThreadPool::global());
  }
  // Query rows (token i, head h) -> row i * H + h, split into groups; a group attends causally up to its last
  // token, one cache block at a time: scores by linear (GEMV for <= 4 rows, else GEMM), P·V by matmul.
  // 48 rows fill the GEMM's token blocks; 8 (decode) keeps both threads busy on one token's heads.
  const int64_t G = rows >= 8 * 48 ? 48 : 8;
  const int64_t n_groups = (rows + G - 1) / G;
  const int64_t ctx_max = start_pos + n;
  parallel(pool, n_groups, 1, rows * ctx_max * dim * 2, [&](int64_t g0, int64_t g1) {
    thread_local std::vector<float> qcat, scores;
    for (int64_t g = g0; g < g1; ++g) {
      const int64_t r0 = g * G, m = std::min(G, rows - r0);
      const int64_t ctx_hi = start_pos + (r0 + m - 1) / H + 1;  // causal limit of the group's last token
      const int64_t nb = (ctx_hi + bs - 1) / bs, lds = nb * bs;
      qcat.resize(static_cast<size_t>(m * dim));   // [m, R + P]: [q_lat | q_rope]
      scores.resize(static_cast<size_t>(m * lds));  // [m, nb * bs]
      for (int64_t r = 0; r < m; ++r) {
        const int64_t i = (r0 + r) / H, h = (r0 + r) % H;
        float* dst = qcat.data() + r * dim;
        std::copy_n(q_lat + (r0 + r) * R, R, dst);
        std::copy_n(q + i * q_stride + h * (nope + P) + nope, P, dst + R);
      }
      // Scores against each cache block: [m, R + P] x [bs, R + P]^T (slots past a row's context are masked).
      for (int64_t b = 0; b < nb; ++b) {
        const WeightView kb{blocks[b], cache_dtype, bs, dim};
        const int64_t step = m <= 8 ? 4 : m;  // GEMV tiles for the few rows of a decode step
        for (int64_t s0 = 0; s0 < m; s0 += step) {
          linear_strided(qcat.data() + s0 * dim, dim, std::min(step, m - s0), kb, scores.data() + s0 * lds + b * bs,
                         lds, pool);
        }
      }
      for (int64_t r = 0; r < m; ++r) {
        const int64_t n_ctx = start_pos + (r0 + r) / H + 1;
        float* sc = scores.data() + r * lds;
        for (int64_t t = 0; t < n_ctx; ++t) sc[t] *= scale;
        softmax(sc, n_ctx);
        std::fill(sc + n_ctx, sc + lds, 0.f);
      }
      // o_lat[m, R] = P[m, ctx] · latent[ctx, R], block by block.
      for (int64_t b = 0; b < nb; ++b) {
        const WeightView kb{blocks[b], cache_dtype, bs, dim};
        matmul(scores.data() + b * bs, lds, m, std::min(bs, ctx_hi - b * bs), kb, 0, R, o_lat + r0 * R, R, b > 0,
               pool);
      }
    }
  });
}

void mla_apply_uv(const float* o_lat, int64_t n, const WeightView& kv_b, int64_t n_heads, int64_t nope,
                  int64_t v_dim, float* out, ThreadPool* pool) {
  const int64_t R = kv_b.cols;
  const size_t esize = dtype_size(kv_b.dtype);
  parallel(pool, n_heads, 1, n_heads * v_dim * R * n, [&](int64_t h0, int64_t h1) {
    for (int64_t h = h0; h < h1; ++h) {
      // W_UV_h: rows h * (nope + v) + nope .. + v of kv_b_proj, as its own [v, R] view (FP8: scale rows follow).
      WeightView w = kv_b;
      const int64_t row0 = h * (nope + v_dim) + nope;
      if (kv_b.dtype == DType::kF8E4M3 && row0 % kv_b.block != 0) {
        // Block scales are indexed from the view's first row: fall back to widening rows for unaligned heads.
        thread_local std::vector<float> wt;
        wt.resize(static_cast<size_t>(v_dim * R));
        for (int64_t j = 0; j < v_dim; ++j) dequant_row(kv_b, row0 + j, wt.data() + j * R);
        linear_strided(o_lat + h * R, n_heads * R, n, WeightView{wt.data(), DType::kF32, v_dim, R}, out + h * v_dim,
                       n_heads * v_dim, pool);
        continue;
      }
      w.data = static_cast<const uint8_t*>(kv_b.data) + static_cast<size_t>(row0 * R) * esize;
      w.rows = v_dim;
      if (kv_b.dtype == DType::kF8E4M3) w.scale_inv = kv_b.scale_inv + (row0 / kv_b.block) * ((R + kv_b.block - 1) / kv_b.block);
      linear_strided(o_lat + h * R, n_heads * R, n, w, out + h * v_dim, n_heads * v_dim, pool);
    }
  });
}

}  // namespace latent::cpu
