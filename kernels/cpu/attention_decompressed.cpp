// MLA prefill with decompressed K/V (the fast precision's path for long chunks, as ik_llama.cpp's -mla 3 does):
// kv_b_proj expands each context position's latent into per-head keys and values once per call, then every
// head attends as ordinary multi-head attention. For a chunk of n new tokens that costs ctx * R * H * (nope + v)
// multiply-adds up front and saves n * ctx * H * (R - nope + R - v) in the attention itself (the absorbed path
// scores and sums over the R-wide latent per head), so it pays for long chunks and loses for decode; the choice
// (mla_prefill_decompressed) compares the two counts, weighted by the measured relative rates of the bodies.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "kernels/base/log.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/dtype.h"
#include "kernels/cpu/ops.h"
#include "kernels/cpu/thread_pool.h"

namespace latent::cpu {
namespace {

std::atomic<int> g_mode{-1};  // -1: LATENT_MLA_PREFILL not read yet; else MlaPrefill

MlaPrefill mode() {
  int v = g_mode.load(std::memory_order_relaxed);
  if (v < 0) {
    MlaPrefill m = MlaPrefill::kAuto;
    if (const char* e = std::getenv("LATENT_MLA_PREFILL"); e && *e) {
      if (auto p = parse_mla_prefill(e)) {
        m = *p;
      } else {
        LATENT_LOG_WARN("LATENT_MLA_PREFILL=%s: expected auto, absorbed or decompressed; using auto", e);
      }
    }
    int expected = -1;
    g_mode.compare_exchange_strong(expected, static_cast<int>(m));
    v = g_mode.load(std::memory_order_relaxed);
  }
  return static_cast<MlaPrefill>(v);
}

// Bytes of the per-head float32 keys and values at most (beyond it the absorbed path runs): 128 MiB.
constexpr double kMaxExpandedBytes = 128.0 * (1 << 20);

// Chunks of at most this many new tokens never decompress (decode, speculative verification): the absorbed
// path's own few-token body serves them, and K/V for the whole context would cost more than they attend.
constexpr int64_t kDecodeTokens = 4;

// Query rows per unit of work: two of the BF16 GEMM's 48-token blocks; the causal waste per row is below one.
constexpr int64_t kQueryBlock = 96;
// Context rows expanded per kv_b_proj GEMM (float32 slice [kSlice, H * (nope + v)] before the BF16 copies).
constexpr int64_t kSlice = 512;

}  // namespace

std::optional<MlaPrefill> parse_mla_prefill(std::string_view s) {
  if (s == "auto") return MlaPrefill::kAuto;
  if (s == "absorbed") return MlaPrefill::kAbsorbed;
  if (s == "decompressed") return MlaPrefill::kDecompressed;
  return std::nullopt;
}

const char* mla_prefill_name(MlaPrefill m) {
  switch (m) {
    case MlaPrefill::kAuto: return "auto";
    case MlaPrefill::kAbsorbed: return "absorbed";
    case MlaPrefill::kDecompressed: return "decompressed";
  }
  return "?";
}

void set_mla_prefill(MlaPrefill m) { g_mode.store(static_cast<int>(m), std::memory_order_relaxed); }
MlaPrefill mla_prefill() { return mode(); }

bool mla_prefill_decompressed(int64_t n, int64_t start_pos, int64_t n_heads, int64_t nope, int64_t v_dim, int64_t R,
                              int64_t P, DType cache_dtype) {
  if (n <= kDecodeTokens) return false;  // decode steps (and the few-token GEMV path) always absorb
  const MlaPrefill m = mode();
  if (m == MlaPrefill::kAbsorbed) return false;
  const double ctx = static_cast<double>(start_pos + n);
  if (ctx * static_cast<double>(n_heads * (nope + P + v_dim)) * 4 > kMaxExpandedBytes) return false;
  if (m == MlaPrefill::kDecompressed) return true;
  // Multiply-adds in units of the float32 GEMM's time; the BF16-activation GEMM runs at about twice its rate
  // (bench/README.md: 330-380 vs ~170-200 GFLOP/s per core on this project's Zen 5).
  constexpr double kBf16 = 0.5;
  const double H = static_cast<double>(n_heads), dn = static_cast<double>(n);
  const double pairs = dn * static_cast<double>(start_pos) + dn * (dn + 1) / 2;  // (query, key) pairs, causal
  const double score_rate = cache_dtype == DType::kBF16 ? kBf16 : 1.0;
  const double absorbed = dn * H * static_cast<double>(nope * R)         // W_UK into the query (float32 matmul)
                          + kBf16 * dn * H * static_cast<double>(v_dim * R)  // W_UV after (linear)
                          + score_rate * pairs * H * static_cast<double>(R + P)  // scores over the latent
                          + pairs * H * static_cast<double>(R);             // P . latent (float32 matmul)
  const double decompressed = kBf16 * ctx * static_cast<double>(R) * H * static_cast<double>(nope + v_dim)  // K, V
                              + (pairs + dn * kQueryBlock / 2) * H * static_cast<double>(nope + P + v_dim);  // scores, P.V
  return decompressed < absorbed;
}

void mla_attention_decompressed(const float* q, int64_t q_stride, int64_t n, const WeightView& kv_b, int64_t n_heads,
                                int64_t nope, int64_t v_dim, int64_t P, int64_t start_pos, const void* const* blocks,
                                DType cache_dtype, int64_t block_size, float scale, float* out, int64_t ld_out,
                                ThreadPool* pool) {
  const int64_t R = kv_b.cols, H = n_heads, qk = nope + P, dim = R + P, ctx = start_pos + n;
  ThreadPool& tp = pool ? *pool : ThreadPool::global();
  // Keys and values per head in BF16: k[h] [ctx, nope + P] = [W_UK_h latent | k_rope], v[h] [ctx, v_dim].
  // The calling thread's buffers (kept between calls), reached from the pool's jobs through these pointers.
  static thread_local std::vector<float> kbuf_tl, vbuf_tl;
  static thread_local std::vector<float> lat_tl, kv_tl;
  const int64_t kv_cols = H * (nope + v_dim);
  if (kbuf_tl.size() < static_cast<size_t>(H * ctx * qk)) kbuf_tl.resize(static_cast<size_t>(H * ctx * qk));
  if (vbuf_tl.size() < static_cast<size_t>(H * ctx * v_dim)) vbuf_tl.resize(static_cast<size_t>(H * ctx * v_dim));
  if (lat_tl.size() < static_cast<size_t>(kSlice * dim)) lat_tl.resize(static_cast<size_t>(kSlice * dim));
  if (kv_tl.size() < static_cast<size_t>(kSlice * kv_cols)) kv_tl.resize(static_cast<size_t>(kSlice * kv_cols));
  float* const kbuf = kbuf_tl.data();
  float* const vbuf = vbuf_tl.data();
  float* const lat = lat_tl.data();
  float* const kv = kv_tl.data();
  for (int64_t s0 = 0; s0 < ctx; s0 += kSlice) {
    const int64_t sn = std::min(kSlice, ctx - s0);
    for (int64_t t = 0; t < sn; ++t) {  // cache rows [latent | k_rope] of positions s0 + t, widened
      const int64_t pos = s0 + t;
      dequant_row(WeightView{blocks[pos / block_size], cache_dtype, block_size, dim}, pos % block_size,
                  lat + t * dim);
    }
    linear_strided(lat, dim, sn, kv_b, kv, kv_cols, &tp);  // [sn, H * (nope + v)]
    tp.parallel_for(H, 1, [&](int64_t h0, int64_t h1) {
      for (int64_t h = h0; h < h1; ++h) {
        for (int64_t t = 0; t < sn; ++t) {
          const float* src = kv + t * kv_cols + h * (nope + v_dim);
          float* kd = kbuf + (h * ctx + s0 + t) * qk;
          std::copy_n(src, nope, kd);
          std::copy_n(lat + t * dim + R, P, kd + nope);
          std::copy_n(src + nope, v_dim, vbuf + (h * ctx + s0 + t) * v_dim);
        }
      }
    });
  }
  // Units (head, block of query rows): scores against the keys up to the block's causal end, softmax, P . V.
  const int64_t nqb = (n + kQueryBlock - 1) / kQueryBlock;
  tp.parallel_for(H * nqb, 1, [&](int64_t u0, int64_t u1) {
    thread_local std::vector<float> scores;
    for (int64_t u = u0; u < u1; ++u) {
      const int64_t h = u / nqb, t0 = (u % nqb) * kQueryBlock, m = std::min(kQueryBlock, n - t0);
      const int64_t hi = start_pos + t0 + m;  // keys [0, hi) cover every row of the block
      if (scores.size() < static_cast<size_t>(m * hi)) scores.resize(static_cast<size_t>(m * hi));
      const WeightView k{kbuf + h * ctx * qk, DType::kF32, hi, qk};
      linear_strided(q + t0 * q_stride + h * qk, q_stride, m, k, scores.data(), hi, &tp);  // [m, hi], inline
      for (int64_t r = 0; r < m; ++r) {
        const int64_t n_ctx = start_pos + t0 + r + 1;
        float* sc = scores.data() + r * hi;
        for (int64_t t = 0; t < n_ctx; ++t) sc[t] *= scale;
        softmax(sc, n_ctx);
        std::fill(sc + n_ctx, sc + hi, 0.f);
      }
      const WeightView v{vbuf + h * ctx * v_dim, DType::kF32, ctx, v_dim};
      matmul(scores.data(), hi, m, hi, v, 0, v_dim, out + t0 * ld_out + h * v_dim, ld_out, false, &tp);  // [m, v]
    }
  });
}

}  // namespace latent::cpu
