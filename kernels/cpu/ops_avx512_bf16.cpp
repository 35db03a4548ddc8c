// The fast path for BF16 weights (LinearPrecision::kBf16Activations, the default): activations are rounded to
// BF16 (nearest even) and pairs of products are accumulated in float32 by vdpbf16ps (AVX512-BF16).
// GEMM (n > 4): twice the multiply rate of the exact path. Same blocking as the exact GEMM (ops_avx512.cpp),
// counted in k pairs: x is packed into 48-token blocks of BF16 pairs [K/2][48] (u32), W rows are copied as
// pairs into an 8-row panel and broadcast.
// GEMV (n <= 4, decode): 64 bytes of weights feed one vdpbf16ps per token, with no widening (the exact GEMV
// needs a shift, a mask and two FMAs per load), so a thread streams weights with a third of the instructions;
// rows are walked in order, one sequential stream per thread, read by 256-bit halves (see GemvLoad).
#include <algorithm>
#include <atomic>
#include <optional>
#include <cstdlib>
#include <cstring>
#include <string>

#include "kernels/base/log.h"
#include "kernels/cpu/ops_avx512_impl.h"
#include "kernels/cpu/ops_isa.h"
#include "kernels/cpu/scratch.h"
#include "kernels/cpu/thread_pool.h"

#define LATENT_AVX512BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,avx2,fma,f16c")))

namespace latent::cpu {
namespace {

using namespace avx512;

constexpr int64_t kKC2 = 512;  // k pairs per panel slice (8 x 512 x 4 bytes = 16 KiB)

// xp[b][k2][0..48) = (bf16 x[t][2 k2], bf16 x[t][2 k2 + 1]) for t = b*48 + j; k pairs [p0, p1).
LATENT_AVX512BF16 void pack_x_pairs(const float* x, int64_t ldx, int64_t n, int64_t K, int64_t b, int64_t p0,
                                    int64_t p1, uint32_t* xp) {
  const int64_t K2 = (K + 1) / 2;
  uint32_t* dst = xp + b * K2 * kTB;
  for (int j = 0; j < kTB / 16; ++j) {
    const int64_t t0 = b * kTB + j * 16;
    if (t0 >= n) break;
    for (int64_t p = p0; p < p1; p += 16) {
      const int64_t k = 2 * p;
      const int64_t klo = std::clamp<int64_t>(K - k, 0, 16), khi = std::clamp<int64_t>(K - k - 16, 0, 16);
      const __mmask16 mlo = static_cast<__mmask16>((1u << klo) - 1), mhi = static_cast<__mmask16>((1u << khi) - 1);
      __m512 v[16];
      for (int i = 0; i < 16; ++i) {
        if (t0 + i < n) {
          const float* row = x + (t0 + i) * ldx + k;
          __m512bh pairs = _mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(mhi, row + 16), _mm512_maskz_loadu_ps(mlo, row));
          v[i] = reinterpret_cast<__m512&>(pairs);
        } else {
          v[i] = _mm512_setzero_ps();
        }
      }
      transpose16(v);  // 32-bit lanes: row = k pair, column = token
      const int64_t pn = std::min<int64_t>(16, p1 - p);
      for (int64_t i = 0; i < pn; ++i) _mm512_store_ps(reinterpret_cast<float*>(dst + (p + i) * kTB + j * 16), v[i]);
    }
  }
}

// panel[r][0..pc) = BF16 pairs of W row (row0 + r), pairs [p0, p0 + pc); zero past the row's end.
LATENT_AVX512BF16 void pack_w_pairs(const WeightView& w, int64_t row0, int64_t p0, int64_t pc, uint32_t* panel) {
  const auto* base = static_cast<const uint16_t*>(w.data);
  for (int r = 0; r < kMR; ++r) {
    uint32_t* dst = panel + r * kKC2;
    const int64_t row = row0 + r;
    for (int64_t p = 0; p < pc; p += 16) {
      const int64_t k = 2 * (p0 + p);
      __m512i v = _mm512_setzero_si512();
      if (row < w.rows) {
        const int64_t kn = std::clamp<int64_t>(w.cols - k, 0, 32);
        const __mmask32 m = kn >= 32 ? 0xffffffffu : ((1u << kn) - 1);
        v = _mm512_maskz_loadu_epi16(m, base + row * w.cols + k);
      }
      _mm512_store_si512(dst + p, v);
    }
  }
}

// panel row r at panel + r * ldp (u32 pairs): the packed panel (ldp = kKC2) or the weight rows themselves
// (ldp = cols / 2), read in place.
template <int NV>
LATENT_AVX512BF16 void micro_kernel_bf16(const uint32_t* panel, int64_t ldp, const uint32_t* xp, int64_t pc,
                                         float* tile, bool first) {
  __m512 c[kMR][NV];
  for (int r = 0; r < kMR; ++r)
    for (int j = 0; j < NV; ++j) c[r][j] = first ? _mm512_setzero_ps() : _mm512_load_ps(tile + r * kTB + j * 16);
  for (int64_t p = 0; p < pc; ++p) {
    __m512bh xv[NV];
    for (int j = 0; j < NV; ++j) {
      __m512i t = _mm512_load_si512(xp + p * kTB + j * 16);
      xv[j] = reinterpret_cast<__m512bh&>(t);
    }
#pragma GCC unroll 8
    for (int r = 0; r < kMR; ++r) {
      uint32_t pair;
      std::memcpy(&pair, panel + r * ldp + p, 4);  // BF16 tensors may sit at 2-byte offsets in the file
      __m512i b = _mm512_set1_epi32(static_cast<int>(pair));
      for (int j = 0; j < NV; ++j) c[r][j] = _mm512_dpbf16_ps(c[r][j], xv[j], reinterpret_cast<__m512bh&>(b));
    }
  }
  for (int r = 0; r < kMR; ++r)
    for (int j = 0; j < NV; ++j) _mm512_store_ps(tile + r * kTB + j * 16, c[r][j]);
}

// Asks for the weights of a future 8-row slice (into L2) so that DRAM reads overlap the micro-kernels.
LATENT_AVX512BF16 void prefetch_pairs(const WeightView& w, int64_t row0, int64_t p0, int64_t pc) {
  const auto* base = static_cast<const char*>(w.data);
  const int64_t rn = std::min<int64_t>(kMR, w.rows - row0);
  for (int64_t r = 0; r < rn; ++r) {
    const char* p = base + ((row0 + r) * w.cols + 2 * p0) * 2;
    for (int64_t b = 0; b < pc * 4; b += 64) _mm_prefetch(p + b, _MM_HINT_T1);
  }
}

// y[t][r] = tile[r][t] for t < tn, r < rn (tile [kMR][kTB]): a full 8-row group as one 8-lane gather per token.
LATENT_AVX512BF16 void store_tile(const float* tile, int64_t tn, int64_t rn, float* y, int64_t ldy) {
  static_assert(kMR == 8, "one 8-lane gather per token");
  if (rn == kMR) {
    const __m256i rows = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(kTB));
    for (int64_t t = 0; t < tn; ++t) _mm256_storeu_ps(y + t * ldy, _mm256_i32gather_ps(tile + t, rows, 4));
    return;
  }
  for (int64_t t = 0; t < tn; ++t)
    for (int64_t r = 0; r < rn; ++r) y[t * ldy + r] = tile[r * kTB + t];
}

void gemm_groups_bf16(const uint32_t* xp, int64_t n, const WeightView& w, float* y, int64_t ldy, int64_t g0,
                      int64_t g1) {
  constexpr int kSuper = 4;
  const int64_t K2 = (w.cols + 1) / 2;
  const int64_t nblk = (n + kTB - 1) / kTB;
  auto* panel = reinterpret_cast<uint32_t*>(thread_scratch(ScratchSlot::kPackedW, kMR * kKC2));
  float* tiles = thread_scratch(ScratchSlot::kTiles, kSuper * kMR * kTB);
  // With an even row length the pairs are read from the weight rows in place (no copy); a group that runs past
  // the last row, or odd rows (a pair would straddle two rows), go through the zero-padded packed panel.
  const bool even = w.cols % 2 == 0;
  for (int64_t sb0 = 0; sb0 < nblk; sb0 += kSuper) {
    const int64_t sb1 = std::min<int64_t>(nblk, sb0 + kSuper);
    for (int64_t g = g0; g < g1; ++g) {
      const bool direct = even && (g + 1) * kMR <= w.rows;
      for (int64_t p0 = 0; p0 < K2; p0 += kKC2) {
        const int64_t pc = std::min(kKC2, K2 - p0);
        const uint32_t* pan = panel;
        int64_t ldp = kKC2;
        if (direct) {
          pan = reinterpret_cast<const uint32_t*>(static_cast<const uint16_t*>(w.data) + g * kMR * w.cols) + p0;
          ldp = K2;
        } else {
          pack_w_pairs(w, g * kMR, p0, pc, panel);
        }
        if (sb0 == 0) {  // the first pass over these rows reads them from DRAM: ask for the next slice early
          if (p0 + kKC2 < K2) {
            prefetch_pairs(w, g * kMR, p0 + kKC2, std::min(kKC2, K2 - p0 - kKC2));
          } else if (g + 1 < g1) {
            prefetch_pairs(w, (g + 1) * kMR, 0, std::min(kKC2, K2));
          }
        }
        for (int64_t b = sb0; b < sb1; ++b) {
          const uint32_t* xb = xp + b * K2 * kTB + p0 * kTB;
          float* tile = tiles + (b - sb0) * kMR * kTB;
          const int64_t rem = std::min<int64_t>(kTB, n - b * kTB);
          switch ((rem + 15) / 16) {
            case 1: micro_kernel_bf16<1>(pan, ldp, xb, pc, tile, p0 == 0); break;
            case 2: micro_kernel_bf16<2>(pan, ldp, xb, pc, tile, p0 == 0); break;
            default: micro_kernel_bf16<3>(pan, ldp, xb, pc, tile, p0 == 0); break;
          }
        }
      }
      const int64_t rn = std::min<int64_t>(kMR, w.rows - g * kMR);
      for (int64_t b = sb0; b < sb1; ++b) {
        const float* tile = tiles + (b - sb0) * kMR * kTB;
        const int64_t tn = std::min<int64_t>(kTB, n - b * kTB);
        store_tile(tile, tn, rn, y + b * kTB * ldy + g * kMR, ldy);
      }
    }
  }
}

// xb[t][0..cols32) = bf16(x[t][c]), zero past cols (cols32 = cols rounded up to 32).
LATENT_AVX512BF16 void round_x_bf16(const float* x, int64_t ldx, int64_t n, int64_t cols, int64_t cols32,
                                    uint16_t* xb) {
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t c = 0; c < cols32; c += 32) {
      const int64_t klo = std::clamp<int64_t>(cols - c, 0, 16), khi = std::clamp<int64_t>(cols - c - 16, 0, 16);
      const __mmask16 mlo = static_cast<__mmask16>((1u << klo) - 1), mhi = static_cast<__mmask16>((1u << khi) - 1);
      const float* row = x + t * ldx + c;
      __m512bh v = _mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(mhi, row + 16), _mm512_maskz_loadu_ps(mlo, row));
      _mm512_store_si512(xb + t * cols32 + c, reinterpret_cast<__m512i&>(v));
    }
  }
}

LATENT_AVX512BF16 inline __m512bh as_bh(__m512i v) { return reinterpret_cast<__m512bh&>(v); }

constexpr int64_t kGemvPrefetchBytes = 2048;

// How a GEMV body reads the weight stream.
// kHalves (the default): each 64 bytes as two 32-byte loads joined into one zmm, no software prefetch.
//   Measured on this project's Zen 5 (bench/README.md, "decode GEMV loads"): a stream read by 256-bit loads
//   runs 15-30 % faster from DRAM than the same stream read by 512-bit loads (a plain sum as well as the
//   GEMV), while the vdpbf16ps count per byte stays that of the zmm body.
// kWhole (LATENT_GEMV=zmm, for A/B): 64-byte loads, both lines 2 KiB ahead prefetched (the previous body).
// kWholeTile (LATENT_GEMV=rows2): 64-byte loads, one line of the next tile's row prefetched (the one before).
enum class GemvLoad { kHalves, kWhole, kWholeTile };

LATENT_AVX512BF16 inline __m512i load_w64(const uint16_t* p, GemvLoad how) {
  if (how == GemvLoad::kHalves) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))),
                              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 16)), 1);
  }
  return _mm512_loadu_si512(p);
}

// y[t][r] for rows [r0, r1): RT rows at a time, each row's 32-column steps in order, T tokens.
template <int T, int RT, GemvLoad kHow>
LATENT_AVX512BF16 void gemv_dp_rows(const uint16_t* xb, int64_t cols32, const WeightView& w, float* y, int64_t ldy,
                                    int64_t r0, int64_t r1) {
  const int64_t cols = w.cols;
  const auto* base = static_cast<const uint16_t*>(w.data);
  const int64_t full = cols / 32 * 32;
  const __mmask32 tail = static_cast<__mmask32>((uint64_t{1} << (cols - full)) - 1);
  int64_t r = r0;
  for (; r + RT <= r1; r += RT) {
    __m512 acc[RT][T][2];
    for (int i = 0; i < RT; ++i)
      for (int t = 0; t < T; ++t) acc[i][t][0] = acc[i][t][1] = _mm512_setzero_ps();
    const uint16_t* row = base + r * cols;
    int64_t c = 0;
    for (; c + 64 <= full; c += 64) {
      for (int i = 0; i < RT; ++i) {
        const uint16_t* p = row + i * cols + c;
        if constexpr (kHow == GemvLoad::kWhole) {
          // Both cache lines of the 128 bytes 2 KiB ahead in this row's stream (which runs on into the next
          // rows: they are contiguous).
          const char* ahead = reinterpret_cast<const char*>(p) + kGemvPrefetchBytes;
          _mm_prefetch(ahead, _MM_HINT_T0);
          _mm_prefetch(ahead + 64, _MM_HINT_T0);
        } else if constexpr (kHow == GemvLoad::kWholeTile) {
          _mm_prefetch(reinterpret_cast<const char*>(p + RT * cols), _MM_HINT_T0);
        }
        const __m512i w0 = load_w64(p, kHow), w1 = load_w64(p + 32, kHow);
        for (int t = 0; t < T; ++t) {
          acc[i][t][0] = _mm512_dpbf16_ps(acc[i][t][0], as_bh(w0), as_bh(_mm512_load_si512(xb + t * cols32 + c)));
          acc[i][t][1] = _mm512_dpbf16_ps(acc[i][t][1], as_bh(w1), as_bh(_mm512_load_si512(xb + t * cols32 + c + 32)));
        }
      }
    }
    for (; c < cols; c += 32) {  // the last 32 columns when cols % 64 >= 32, then the masked tail
      const __mmask32 m = c + 32 <= full ? ~__mmask32{0} : tail;
      for (int i = 0; i < RT; ++i) {
        const __m512i w0 = _mm512_maskz_loadu_epi16(m, row + i * cols + c);
        for (int t = 0; t < T; ++t) {
          acc[i][t][0] = _mm512_dpbf16_ps(acc[i][t][0], as_bh(w0), as_bh(_mm512_load_si512(xb + t * cols32 + c)));
        }
      }
    }
    for (int i = 0; i < RT; ++i)
      for (int t = 0; t < T; ++t) y[t * ldy + r + i] = _mm512_reduce_add_ps(_mm512_add_ps(acc[i][t][0], acc[i][t][1]));
  }
  if constexpr (RT > 1) {
    if (r < r1) gemv_dp_rows<T, 1, kHow>(xb, cols32, w, y, ldy, r, r1);
  }
}

constexpr const char* kGemvLoadNames[] = {"halves", "zmm", "rows2"};

std::optional<GemvLoad> parse_gemv_load(const char* name) {
  for (int i = 0; i < 3; ++i) {
    if (std::strcmp(name, kGemvLoadNames[i]) == 0) return static_cast<GemvLoad>(i);
  }
  return std::nullopt;
}

std::atomic<int> g_gemv_load{-1};  // -1: LATENT_GEMV not read yet

GemvLoad gemv_load() {
  int v = g_gemv_load.load(std::memory_order_relaxed);
  if (v < 0) {
    GemvLoad how = GemvLoad::kHalves;
    if (const char* e = std::getenv("LATENT_GEMV"); e && *e) {
      if (auto parsed = parse_gemv_load(e)) {
        how = *parsed;
      } else {
        LATENT_LOG_WARN("LATENT_GEMV=%s: expected halves, zmm or rows2; using halves", e);
      }
    }
    int expected = -1;
    g_gemv_load.compare_exchange_strong(expected, static_cast<int>(how));
    v = g_gemv_load.load(std::memory_order_relaxed);
  }
  return static_cast<GemvLoad>(v);
}

template <int T>
void gemv_dp(const uint16_t* xb, int64_t cols32, const WeightView& w, float* y, int64_t ldy, int64_t r0, int64_t r1) {
  // One row at a time: one sequential stream per thread (two rows at a time, two streams, measured 0.53-0.79
  // of the read probe on one thread against 0.94-0.96 for one stream; 2 accumulator chains per token are
  // plenty for a memory-bound loop).
  switch (gemv_load()) {
    case GemvLoad::kHalves: return gemv_dp_rows<T, 1, GemvLoad::kHalves>(xb, cols32, w, y, ldy, r0, r1);
    case GemvLoad::kWhole: return gemv_dp_rows<T, 1, GemvLoad::kWhole>(xb, cols32, w, y, ldy, r0, r1);
    case GemvLoad::kWholeTile:
      if constexpr (T == 1) return gemv_dp_rows<1, 2, GemvLoad::kWholeTile>(xb, cols32, w, y, ldy, r0, r1);
      return gemv_dp_rows<T, 1, GemvLoad::kWholeTile>(xb, cols32, w, y, ldy, r0, r1);
  }
}

}  // namespace

bool set_gemv_body(const char* name) {
  const auto how = parse_gemv_load(name);
  if (how) g_gemv_load.store(static_cast<int>(*how), std::memory_order_relaxed);
  return how.has_value();
}

const char* gemv_body() { return kGemvLoadNames[static_cast<int>(gemv_load())]; }

void gemv_bf16_activations_avx512(const float* x, int64_t ldx, int64_t n, const WeightView& w, float* y,
                                  int64_t ldy, ThreadPool& pool) {
  const int64_t cols32 = (w.cols + 31) / 32 * 32;
  auto* xb = reinterpret_cast<uint16_t*>(thread_scratch(ScratchSlot::kPackedX, static_cast<size_t>(n * cols32 / 2 + 16)));
  round_x_bf16(x, ldx, n, w.cols, cols32, xb);
  auto body = [&](int64_t r0, int64_t r1) {
    switch (n) {
      case 1: return gemv_dp<1>(xb, cols32, w, y, ldy, r0, r1);
      case 2: return gemv_dp<2>(xb, cols32, w, y, ldy, r0, r1);
      case 3: return gemv_dp<3>(xb, cols32, w, y, ldy, r0, r1);
      default: return gemv_dp<4>(xb, cols32, w, y, ldy, r0, r1);
    }
  };
  // Chunks of >= 64 KiB (a multiple of 8 rows), about 4 per thread, at most 2 MiB: a thread that finishes
  // early waits for at most one 2 MiB chunk of the other's (the lm_head's 420 MB were 8 chunks of 52 MB);
  // small matrices inline.
  const int64_t row_bytes = std::max<int64_t>(1, w.cols * 2);
  const int64_t total = row_bytes * w.rows;
  if (total < (128 << 10) || pool.size() == 1) return body(0, w.rows);
  int64_t grain = std::max<int64_t>((64 << 10) / row_bytes,
                                    std::min<int64_t>(w.rows / (pool.size() * 4), (2 << 20) / row_bytes));
  grain = std::max<int64_t>(8, (grain + 7) / 8 * 8);
  pool.parallel_for(w.rows, grain, body);
}

namespace {

// x packed once into BF16 pairs for the GEMM: [nblk][K2][kTB] u32.
uint32_t* pack_x_for_gemm(const float* x, int64_t ldx, int64_t n, int64_t K, ThreadPool& pool) {
  const int64_t K2 = (K + 1) / 2;
  const int64_t nblk = (n + kTB - 1) / kTB;
  auto* xp = reinterpret_cast<uint32_t*>(thread_scratch(ScratchSlot::kPackedX, static_cast<size_t>(nblk * K2 * kTB)));
  const int64_t slices = (K2 + 127) / 128;
  pool.parallel_for(nblk * slices, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t b = i / slices, p0 = (i % slices) * 128;
      pack_x_pairs(x, ldx, n, K, b, p0, std::min(K2, p0 + 128), xp);
    }
  });
  return xp;
}

}  // namespace

void linear_bf16_activations_avx512(const float* x, int64_t ldx, int64_t n, const WeightView& w, float* y,
                                    int64_t ldy, ThreadPool& pool) {
  const uint32_t* xp = pack_x_for_gemm(x, ldx, n, w.cols, pool);
  const int64_t groups = (w.rows + kMR - 1) / kMR;
  pool.parallel_for(groups, std::max<int64_t>(1, groups / (pool.size() * 6)),
                    [&](int64_t g0, int64_t g1) { gemm_groups_bf16(xp, n, w, y, ldy, g0, g1); });
}

void linear_pair_bf16_activations_avx512(const float* x, int64_t ldx, int64_t n, const WeightView& wa, float* ya,
                                         int64_t ldya, const WeightView& wb, float* yb, int64_t ldyb,
                                         ThreadPool& pool) {
  const uint32_t* xp = pack_x_for_gemm(x, ldx, n, wa.cols, pool);
  const int64_t ga = (wa.rows + kMR - 1) / kMR, gb = (wb.rows + kMR - 1) / kMR;
  // One job over both matrices' row groups: a chunk never spans the two (it is cut at ga).
  const int64_t grain = std::max<int64_t>(1, (ga + gb) / (pool.size() * 6));
  const int64_t ca = (ga + grain - 1) / grain, cb = (gb + grain - 1) / grain;
  pool.parallel_for(ca + cb, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      if (c < ca) {
        gemm_groups_bf16(xp, n, wa, ya, ldya, c * grain, std::min(ga, (c + 1) * grain));
      } else {
        gemm_groups_bf16(xp, n, wb, yb, ldyb, (c - ca) * grain, std::min(gb, (c - ca + 1) * grain));
      }
    }
  });
}

}  // namespace latent::cpu
