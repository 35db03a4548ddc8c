// AVX-512 bodies (AVX512F/BW/VL + FMA + F16C). Weights are widened to float32 in registers and multiplied in
// float32 (exact products, FMA accumulation), so results match float32 math for any weight dtype.
//
// linear, n <= 4 (decode): dot-product GEMV that streams each weight row once, R rows x n tokens per tile;
// BF16 with n = 1 (the decode step) goes row after row with 256-bit loads, one sequential stream per thread.
// linear, n > 4 (prefill): register-tiled GEMM. x is packed once into 48-token blocks [K][48] (transposed with
// 16x16 in-register transposes); each thread takes 8-row groups of W, widens an 8 x 512 slice into an L1
// panel and runs a micro-kernel that broadcasts one weight and FMAs it into 8 x 48 accumulators (24 zmm).
// GCC 12 flags _mm512_undefined_* inside its own intrinsic headers (a known false positive).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "kernels/cpu/ops_avx512_impl.h"
#include "kernels/cpu/ops_isa.h"
#include "kernels/cpu/scratch.h"
#include "kernels/cpu/thread_pool.h"

namespace latent::cpu {
namespace {

using namespace avx512;

// ---------------------------------------------------------------------------------------------------------
// GEMV: y[t, r] for R rows starting at r0 and T tokens; every row of the tile exists.
// Weight rows are a few KiB and the hardware prefetchers stop at 4 KiB pages, so each row would start with
// cold misses: the GEMVs prefetch the rows one tile (8 rows) ahead.
constexpr int kPrefetchRows = 8;

template <DType D, int R, int T>
LATENT_AVX512 void gemv_tile(const float* x, int64_t ldx, const WeightView& w, int64_t r0, float* y, int64_t ldy,
                             int64_t pf_end) {
  const int64_t cols = w.cols;
  const int64_t blk = D == DType::kF8E4M3 ? w.block : cols;
  const int64_t scale_cols = D == DType::kF8E4M3 ? (cols + blk - 1) / blk : 1;
  constexpr int64_t kLineElems = D == DType::kF32 ? 16 : D == DType::kF8E4M3 ? 64 : 32;  // weights per 64 B
  __m512 tot[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) tot[r][t] = _mm512_setzero_ps();
  for (int64_t c0 = 0; c0 < cols; c0 += blk) {
    const int64_t c1 = std::min(cols, c0 + blk);
    __m512 acc[R][T];
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_ps();
    int64_t c = c0;
    for (; c + 16 <= c1; c += 16) {
      __m512 xv[T];
      for (int t = 0; t < T; ++t) xv[t] = _mm512_loadu_ps(x + t * ldx + c);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        if (c % kLineElems == 0 && r0 + r + kPrefetchRows < pf_end) {  // per cache line, kPrefetchRows ahead
          _mm_prefetch(static_cast<const char*>(w.data) + ((r0 + r + kPrefetchRows) * cols + c) * dtype_size(D),
                       _MM_HINT_T0);
        }
        __m512 wv = load16<D>(w.data, (r0 + r) * cols + c);
        for (int t = 0; t < T; ++t) acc[r][t] = _mm512_fmadd_ps(wv, xv[t], acc[r][t]);
      }
    }
    if (c < c1) {
      __mmask16 m = static_cast<__mmask16>((1u << (c1 - c)) - 1);
      __m512 xv[T];
      for (int t = 0; t < T; ++t) xv[t] = _mm512_maskz_loadu_ps(m, x + t * ldx + c);
      for (int r = 0; r < R; ++r) {
        __m512 wv = load16_masked<D>(w.data, (r0 + r) * cols + c, m);
        for (int t = 0; t < T; ++t) acc[r][t] = _mm512_fmadd_ps(wv, xv[t], acc[r][t]);
      }
    }
    for (int r = 0; r < R; ++r) {
      if constexpr (D == DType::kF8E4M3) {
        __m512 s = _mm512_set1_ps(w.scale_inv[((r0 + r) / blk) * scale_cols + c0 / blk] * kFp8ViaF16Scale);
        for (int t = 0; t < T; ++t) tot[r][t] = _mm512_fmadd_ps(acc[r][t], s, tot[r][t]);
      } else {
        for (int t = 0; t < T; ++t) tot[r][t] = _mm512_add_ps(acc[r][t], tot[r][t]);
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) y[t * ldy + r0 + r] = _mm512_reduce_add_ps(tot[r][t]);
}

template <DType D, int T>
LATENT_AVX512 void gemv_rows(const float* x, int64_t ldx, const WeightView& w, float* y, int64_t ldy, int64_t r0,
                             int64_t r1) {
  constexpr int R = T == 1 ? 8 : 4;
  int64_t r = r0;
  for (; r + R <= r1; r += R) gemv_tile<D, R, T>(x, ldx, w, r, y, ldy, r1);
  for (; r < r1; ++r) gemv_tile<D, 1, T>(x, ldx, w, r, y, ldy, r1);
}

// BF16 GEMV with half the widening work: a 32-bit lane of weights holds the pair (w[2i], w[2i+1]); lane << 16
// is w[2i] as float32 and lane & 0xffff0000 is w[2i+1], so one 64-byte load feeds two FMAs against x split
// into even and odd elements beforehand (xp: per 32 columns, 16 even then 16 odd; zero past cols).
LATENT_AVX512 void split_even_odd(const float* x, int64_t ldx, int64_t n, int64_t cols, int64_t ldxp, float* xp) {
  const __m512i ie = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i io = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t c = 0; c < cols; c += 32) {
      const int64_t k0 = std::clamp<int64_t>(cols - c, 0, 16), k1 = std::clamp<int64_t>(cols - c - 16, 0, 16);
      __m512 a = _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << k0) - 1), x + t * ldx + c);
      __m512 b = _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << k1) - 1), x + t * ldx + c + 16);
      _mm512_store_ps(xp + t * ldxp + c, _mm512_permutex2var_ps(a, ie, b));
      _mm512_store_ps(xp + t * ldxp + c + 16, _mm512_permutex2var_ps(a, io, b));
    }
  }
}

template <int R, int T>
LATENT_AVX512 void gemv_tile_bf16_pairs(const float* xp, int64_t ldxp, const WeightView& w, int64_t r0, float* y,
                                        int64_t ldy, int64_t pf_end) {
  const int64_t cols = w.cols;
  const auto* base = static_cast<const uint16_t*>(w.data);
  const __m512i hi_mask = _mm512_set1_epi32(static_cast<int>(0xffff0000u));
  __m512 acc[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_ps();
  for (int64_t c = 0; c < cols; c += 32) {
    const __mmask32 m = cols - c >= 32 ? 0xffffffffu : static_cast<__mmask32>((1u << (cols - c)) - 1);
    __m512 xe[T], xo[T];
    for (int t = 0; t < T; ++t) {
      xe[t] = _mm512_load_ps(xp + t * ldxp + c);
      xo[t] = _mm512_load_ps(xp + t * ldxp + c + 16);
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      if (r0 + r + kPrefetchRows < pf_end) {  // the same line kPrefetchRows rows ahead, inside this chunk
        _mm_prefetch(reinterpret_cast<const char*>(base + (r0 + r + kPrefetchRows) * cols + c), _MM_HINT_T0);
      }
      __m512i v = _mm512_maskz_loadu_epi16(m, base + (r0 + r) * cols + c);
      __m512 we = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
      __m512 wo = _mm512_castsi512_ps(_mm512_and_si512(v, hi_mask));
      for (int t = 0; t < T; ++t) {
        acc[r][t] = _mm512_fmadd_ps(we, xe[t], acc[r][t]);
        acc[r][t] = _mm512_fmadd_ps(wo, xo[t], acc[r][t]);
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) y[t * ldy + r0 + r] = _mm512_reduce_add_ps(acc[r][t]);
}

// n = 1: row after row, so the weights stream as one sequential run per thread (like a memcpy: the hardware
// prefetchers and DRAM pages see one stream, not 8 interleaved ones), with 256-bit loads and 4 FMA chains.
// On the Zen 5 vCPUs here this streams ~1.5x faster than the 512-bit tile. Same x layout as the tiles: per 32
// columns, 16 even | 16 odd.
// A software prefetch 4 KiB ahead of the stream (one 2048-column row): the hardware prefetchers stop at each
// 4 KiB page. Engine decode A/B (Lite-shaped 4 layers, 2 threads, ratio of weight GB/s to the probe run beside
// it, alternating binaries): 0.73-0.88 without, 0.91-0.97 with; 2 and 8 KiB ahead were in between, and 1 KiB
// ahead (an earlier try) was slower than none.
constexpr int64_t kSeqPrefetchBytes = 4096;
LATENT_AVX512 void gemv_rows_bf16_seq(const float* xp, const WeightView& w, float* y, int64_t r0, int64_t r1) {
  const int64_t cols = w.cols;
  const auto* base = static_cast<const uint16_t*>(w.data);
  const __m256i hi_mask = _mm256_set1_epi32(static_cast<int>(0xffff0000u));
  for (int64_t r = r0; r < r1; ++r) {
    const uint16_t* row = base + r * cols;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    int64_t c = 0;
    for (; c + 32 <= cols; c += 32) {
      _mm_prefetch(reinterpret_cast<const char*>(row + c) + kSeqPrefetchBytes, _MM_HINT_T0);
      const __m256i v0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + c));
      const __m256i v1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + c + 16));
      a0 = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(v0, 16)), _mm256_load_ps(xp + c), a0);
      a1 = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_and_si256(v0, hi_mask)), _mm256_load_ps(xp + c + 16), a1);
      a2 = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(v1, 16)), _mm256_load_ps(xp + c + 8), a2);
      a3 = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_and_si256(v1, hi_mask)), _mm256_load_ps(xp + c + 24), a3);
    }
    if (c < cols) {  // masked tail (xp is zero past cols)
      const int64_t k0 = std::min<int64_t>(16, cols - c), k1 = std::max<int64_t>(0, cols - c - 16);
      const __m256i v0 = _mm256_maskz_loadu_epi16(static_cast<__mmask16>((1u << k0) - 1), row + c);
      const __m256i v1 = _mm256_maskz_loadu_epi16(static_cast<__mmask16>((1u << k1) - 1), row + c + 16);
      a0 = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(v0, 16)), _mm256_load_ps(xp + c), a0);
      a1 = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_and_si256(v0, hi_mask)), _mm256_load_ps(xp + c + 16), a1);
      a2 = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(v1, 16)), _mm256_load_ps(xp + c + 8), a2);
      a3 = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_and_si256(v1, hi_mask)), _mm256_load_ps(xp + c + 24), a3);
    }
    const __m256 s = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
    const __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    const __m128 q = _mm_add_ps(h, _mm_movehl_ps(h, h));
    y[r] = _mm_cvtss_f32(_mm_add_ss(q, _mm_shuffle_ps(q, q, 1)));
  }
}

template <int T>
LATENT_AVX512 void gemv_rows_bf16_pairs(const float* xp, int64_t ldxp, const WeightView& w, float* y, int64_t ldy,
                                        int64_t r0, int64_t r1) {
  if constexpr (T == 1) {
    return gemv_rows_bf16_seq(xp, w, y, r0, r1);
  }
  constexpr int R = 4;
  int64_t r = r0;
  for (; r + R <= r1; r += R) gemv_tile_bf16_pairs<R, T>(xp, ldxp, w, r, y, ldy, r1);
  for (; r < r1; ++r) gemv_tile_bf16_pairs<1, T>(xp, ldxp, w, r, y, ldy, r1);
}

template <DType D>
void gemv(const float* x, int64_t ldx, int64_t n, const WeightView& w, float* y, int64_t ldy, ThreadPool& pool) {
  const float* xp = nullptr;
  int64_t ldxp = 0;
  if constexpr (D == DType::kBF16) {
    ldxp = (w.cols + 31) / 32 * 32;
    float* buf = thread_scratch(ScratchSlot::kPackedX, static_cast<size_t>(n * ldxp));
    split_even_odd(x, ldx, n, w.cols, ldxp, buf);
    xp = buf;
  }
  auto body = [&](int64_t r0, int64_t r1) {
    if constexpr (D == DType::kBF16) {
      switch (n) {
        case 1: return gemv_rows_bf16_pairs<1>(xp, ldxp, w, y, ldy, r0, r1);
        case 2: return gemv_rows_bf16_pairs<2>(xp, ldxp, w, y, ldy, r0, r1);
        case 3: return gemv_rows_bf16_pairs<3>(xp, ldxp, w, y, ldy, r0, r1);
        default: return gemv_rows_bf16_pairs<4>(xp, ldxp, w, y, ldy, r0, r1);
      }
    }
    switch (n) {
      case 1: return gemv_rows<D, 1>(x, ldx, w, y, ldy, r0, r1);
      case 2: return gemv_rows<D, 2>(x, ldx, w, y, ldy, r0, r1);
      case 3: return gemv_rows<D, 3>(x, ldx, w, y, ldy, r0, r1);
      default: return gemv_rows<D, 4>(x, ldx, w, y, ldy, r0, r1);
    }
  };
  // Chunks of >= 64 KiB of weights (and a multiple of 8 rows), about 4 per thread for balance; small
  // matrices run on the calling thread alone (waking a worker costs more than it saves).
  const int64_t row_bytes = std::max<int64_t>(1, w.cols * dtype_size(w.dtype));
  const int64_t total = row_bytes * w.rows;
  if (total < (128 << 10) || pool.size() == 1) return body(0, w.rows);
  int64_t grain = std::max<int64_t>((64 << 10) / row_bytes, w.rows / (pool.size() * 4));
  grain = std::max<int64_t>(8, (grain + 7) / 8 * 8);
  pool.parallel_for(w.rows, grain, body);
}

// ---------------------------------------------------------------------------------------------------------
// GEMM.
constexpr int kSuper = 4;  // token blocks sharing one widened panel (W is re-read n / 192 times)

// xp[b][k][0..48) = x[b*48 + j][k]; columns past n are left unset (never read: see nv_of).
LATENT_AVX512 void pack_x_block(const float* x, int64_t ldx, int64_t n, int64_t K, int64_t b, int64_t k0,
                                int64_t k1, float* xp) {
  float* dst = xp + b * K * kTB;
  for (int j = 0; j < kTB / 16; ++j) {
    const int64_t t0 = b * kTB + j * 16;
    if (t0 >= n) break;
    for (int64_t k = k0; k < k1; k += 16) {
      const int64_t kn = std::min<int64_t>(16, k1 - k);
      const __mmask16 km = static_cast<__mmask16>((1u << kn) - 1);
      __m512 v[16];
      for (int i = 0; i < 16; ++i) {
        v[i] = t0 + i < n ? _mm512_maskz_loadu_ps(km, x + (t0 + i) * ldx + k) : _mm512_setzero_ps();
      }
      transpose16(v);
      for (int64_t i = 0; i < kn; ++i) _mm512_store_ps(dst + (k + i) * kTB + j * 16, v[i]);
    }
  }
}

// panel[r][0..kc) = W[row0 + r][k0 .. k0+kc) as float32 (scaled for FP8); rows past the end are zero.
template <DType D>
LATENT_AVX512 void pack_w_panel(const WeightView& w, int64_t row0, int64_t k0, int64_t kc, float* panel) {
  const int64_t cols = w.cols;
  const int64_t blk = w.block;
  const int64_t scale_cols = D == DType::kF8E4M3 ? (cols + blk - 1) / blk : 1;
  for (int r = 0; r < kMR; ++r) {
    float* dst = panel + r * kKC;
    const int64_t row = row0 + r;
    if (row >= w.rows) {
      for (int64_t k = 0; k < kc; k += 16) _mm512_store_ps(dst + k, _mm512_setzero_ps());
      continue;
    }
    if constexpr (D == DType::kF8E4M3) {
      if (blk % 16 != 0) {  // unusual block size: a vector may straddle two scales
        for (int64_t k = 0; k < kc; ++k) dst[k] = w.at(row, k0 + k);
        continue;
      }
    }
    int64_t k = 0;
    for (; k + 16 <= kc; k += 16) {
      __m512 v = load16<D>(w.data, row * cols + k0 + k);
      if constexpr (D == DType::kF8E4M3) {
        v = _mm512_mul_ps(v, _mm512_set1_ps(w.scale_inv[(row / blk) * scale_cols + (k0 + k) / blk] *
                                            kFp8ViaF16Scale));
      }
      _mm512_store_ps(dst + k, v);
    }
    if (k < kc) {
      __mmask16 m = static_cast<__mmask16>((1u << (kc - k)) - 1);
      __m512 v = load16_masked<D>(w.data, row * cols + k0 + k, m);
      if constexpr (D == DType::kF8E4M3) {
        v = _mm512_mul_ps(v, _mm512_set1_ps(w.scale_inv[(row / blk) * scale_cols + (k0 + k) / blk] *
                                            kFp8ViaF16Scale));
      }
      _mm512_store_ps(dst + k, v);
    }
  }
}

// Asks for the weights of a future panel (into L2) so that DRAM reads overlap the micro-kernels: with ~48
// tokens per expert the GEMM streams weights at a third of the machine's bandwidth.
LATENT_AVX512 void prefetch_w_panel(const WeightView& w, int64_t row0, int64_t k0, int64_t kc) {
  const int64_t esz = dtype_size(w.dtype);
  const int64_t rn = std::min<int64_t>(kMR, w.rows - row0);
  for (int64_t r = 0; r < rn; ++r) {
    const char* p = static_cast<const char*>(w.data) + ((row0 + r) * w.cols + k0) * esz;
    for (int64_t b = 0; b < kc * esz; b += 64) _mm_prefetch(p + b, _MM_HINT_T1);
  }
}

inline int nv_of(int64_t n, int64_t b) {
  int64_t rem = std::min<int64_t>(kTB, n - b * kTB);
  return static_cast<int>((rem + 15) / 16);
}

template <DType D>
void gemm_groups(const float* xp, int64_t n, const WeightView& w, float* y, int64_t ldy, int64_t g0, int64_t g1) {
  const int64_t K = w.cols;
  const int64_t nblk = (n + kTB - 1) / kTB;
  float* panel = thread_scratch(ScratchSlot::kPackedW, kMR * kKC);
  float* tiles = thread_scratch(ScratchSlot::kTiles, kSuper * kMR * kTB);
  for (int64_t sb0 = 0; sb0 < nblk; sb0 += kSuper) {
    const int64_t sb1 = std::min(nblk, sb0 + kSuper);
    for (int64_t g = g0; g < g1; ++g) {
      for (int64_t k0 = 0; k0 < K; k0 += kKC) {
        const int64_t kc = std::min(kKC, K - k0);
        pack_w_panel<D>(w, g * kMR, k0, kc, panel);
        if (k0 + kKC < K) {
          prefetch_w_panel(w, g * kMR, k0 + kKC, std::min(kKC, K - k0 - kKC));
        } else if (g + 1 < g1) {
          prefetch_w_panel(w, (g + 1) * kMR, 0, std::min(kKC, K));
        }
        for (int64_t b = sb0; b < sb1; ++b) {
          const float* xb = xp + b * K * kTB + k0 * kTB;
          float* tile = tiles + (b - sb0) * kMR * kTB;
          switch (nv_of(n, b)) {
            case 1: micro_kernel<1>(panel, xb, kc, tile, k0 == 0); break;
            case 2: micro_kernel<2>(panel, xb, kc, tile, k0 == 0); break;
            default: micro_kernel<3>(panel, xb, kc, tile, k0 == 0); break;
          }
        }
      }
      const int64_t rn = std::min<int64_t>(kMR, w.rows - g * kMR);
      for (int64_t b = sb0; b < sb1; ++b) {
        const float* tile = tiles + (b - sb0) * kMR * kTB;
        const int64_t tn = std::min<int64_t>(kTB, n - b * kTB);
        for (int64_t t = 0; t < tn; ++t) {
          float* yt = y + (b * kTB + t) * ldy + g * kMR;
          for (int64_t r = 0; r < rn; ++r) yt[r] = tile[r * kTB + t];
        }
      }
    }
  }
}

template <DType D>
void gemm(const float* x, int64_t ldx, int64_t n, const WeightView& w, float* y, int64_t ldy, ThreadPool& pool) {
  const int64_t K = w.cols;
  const int64_t nblk = (n + kTB - 1) / kTB;
  float* xp = thread_scratch(ScratchSlot::kPackedX, static_cast<size_t>(nblk * K * kTB));
  // Pack x: tasks of (block, 256-wide k slice).
  const int64_t kslices = (K + 255) / 256;
  pool.parallel_for(nblk * kslices, std::max<int64_t>(1, nblk * kslices / (pool.size() * 2)),
                    [&](int64_t i0, int64_t i1) {
                      for (int64_t i = i0; i < i1; ++i) {
                        int64_t b = i / kslices, k0 = (i % kslices) * 256;
                        pack_x_block(x, ldx, n, K, b, k0, std::min(K, k0 + 256), xp);
                      }
                    });
  const int64_t groups = (w.rows + kMR - 1) / kMR;
  const int64_t grain = std::max<int64_t>(1, groups / (pool.size() * 6));
  pool.parallel_for(groups, grain, [&](int64_t g0, int64_t g1) { gemm_groups<D>(xp, n, w, y, ldy, g0, g1); });
}

template <DType D>
void linear_typed(const float* x, int64_t ldx, int64_t n, const WeightView& w, float* y, int64_t ldy, ThreadPool& pool) {
  if (n == 0 || w.rows == 0) return;
  if (w.cols == 0) {
    for (int64_t t = 0; t < n; ++t) std::fill(y + t * ldy, y + t * ldy + w.rows, 0.f);
    return;
  }
  if (n <= 4) return gemv<D>(x, ldx, n, w, y, ldy, pool);
  gemm<D>(x, ldx, n, w, y, ldy, pool);
}

void do_linear(const float* x, int64_t ldx, int64_t n, const WeightView& w, float* y, int64_t ldy, ThreadPool& pool) {
  switch (w.dtype) {
    case DType::kF32: return linear_typed<DType::kF32>(x, ldx, n, w, y, ldy, pool);
    case DType::kBF16: return linear_typed<DType::kBF16>(x, ldx, n, w, y, ldy, pool);
    case DType::kF16: return linear_typed<DType::kF16>(x, ldx, n, w, y, ldy, pool);
    case DType::kF8E4M3: return linear_typed<DType::kF8E4M3>(x, ldx, n, w, y, ldy, pool);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Elementwise ops.
template <DType D>
LATENT_AVX512 void rms_norm_typed(const float* x, int64_t n, int64_t d, const void* gain, float eps, float* y) {
  for (int64_t t = 0; t < n; ++t) {
    const float* xt = x + t * d;
    float* yt = y + t * d;
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= d; i += 32) {
      __m512 a = _mm512_loadu_ps(xt + i), b = _mm512_loadu_ps(xt + i + 16);
      s0 = _mm512_fmadd_ps(a, a, s0);
      s1 = _mm512_fmadd_ps(b, b, s1);
    }
    for (; i < d; i += 16) {
      __mmask16 m = d - i >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << (d - i)) - 1);
      __m512 a = _mm512_maskz_loadu_ps(m, xt + i);
      s0 = _mm512_fmadd_ps(a, a, s0);
    }
    const float ss = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
    const __m512 inv = _mm512_set1_ps(1.f / std::sqrt(ss / static_cast<float>(d) + eps));
    for (i = 0; i < d; i += 16) {
      __mmask16 m = d - i >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << (d - i)) - 1);
      __m512 g = load16_masked<D>(gain, i, m);
      _mm512_mask_storeu_ps(yt + i, m, _mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, xt + i), inv), g));
    }
  }
}

void do_rms_norm(const float* x, int64_t n, int64_t d, const void* gain, DType gain_dtype, float eps, float* y) {
  switch (gain_dtype) {
    case DType::kF32: return rms_norm_typed<DType::kF32>(x, n, d, gain, eps, y);
    case DType::kBF16: return rms_norm_typed<DType::kBF16>(x, n, d, gain, eps, y);
    case DType::kF16: return rms_norm_typed<DType::kF16>(x, n, d, gain, eps, y);
    case DType::kF8E4M3: return scalar_op_table().rms_norm(x, n, d, gain, gain_dtype, eps, y);  // unscaled FP8
  }
}

template <DType D>
LATENT_AVX512 void embedding_typed(const WeightView& table, int64_t id, float* out) {
  const int64_t cols = table.cols;
  const int64_t blk = table.block;
  const int64_t scale_cols = (cols + blk - 1) / blk;
  for (int64_t c = 0; c < cols; c += 16) {
    __mmask16 m = cols - c >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << (cols - c)) - 1);
    __m512 v = load16_masked<D>(table.data, id * cols + c, m);
    if constexpr (D == DType::kF8E4M3) {
      v = _mm512_mul_ps(v, _mm512_set1_ps(table.scale_inv[(id / blk) * scale_cols + c / blk] * kFp8ViaF16Scale));
    }
    _mm512_mask_storeu_ps(out + c, m, v);
  }
}

void do_embedding_row(const WeightView& table, int64_t id, float* out) {
  switch (table.dtype) {
    case DType::kF32: return embedding_typed<DType::kF32>(table, id, out);
    case DType::kBF16: return embedding_typed<DType::kBF16>(table, id, out);
    case DType::kF16: return embedding_typed<DType::kF16>(table, id, out);
    case DType::kF8E4M3:
      if (table.scale_inv && table.block % 16 == 0) return embedding_typed<DType::kF8E4M3>(table, id, out);
      return scalar_op_table().embedding_row(table, id, out);
  }
}

LATENT_AVX512 void do_swiglu(const float* gate, const float* up, int64_t n, float* out) {
  const __m512 one = _mm512_set1_ps(1.f);
  for (int64_t i = 0; i < n; i += 16) {
    __mmask16 m = n - i >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << (n - i)) - 1);
    __m512 g = _mm512_maskz_loadu_ps(m, gate + i);
    __m512 u = _mm512_maskz_loadu_ps(m, up + i);
    __m512 e = exp16(_mm512_sub_ps(_mm512_setzero_ps(), g));
    _mm512_mask_storeu_ps(out + i, m, _mm512_div_ps(_mm512_mul_ps(g, u), _mm512_add_ps(one, e)));
  }
}

LATENT_AVX512 void do_softmax(float* x, int64_t n) {
  if (n <= 0) return;
  __m512 mx = _mm512_set1_ps(-INFINITY);
  for (int64_t i = 0; i < n; i += 16) {
    __mmask16 m = n - i >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << (n - i)) - 1);
    mx = _mm512_mask_max_ps(mx, m, mx, _mm512_maskz_loadu_ps(m, x + i));
  }
  const __m512 mv = _mm512_set1_ps(_mm512_reduce_max_ps(mx));
  __m512 s = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) {
    __mmask16 m = n - i >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << (n - i)) - 1);
    __m512 e = exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), mv));
    _mm512_mask_storeu_ps(x + i, m, e);
    s = _mm512_mask_add_ps(s, m, s, e);
  }
  const __m512 inv = _mm512_set1_ps(1.f / _mm512_reduce_add_ps(s));
  for (int64_t i = 0; i < n; i += 16) {
    __mmask16 m = n - i >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << (n - i)) - 1);
    _mm512_mask_storeu_ps(x + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), inv));
  }
}

}  // namespace

const OpTable& avx512_op_table() {
  static const OpTable t{&do_linear, &do_rms_norm, &do_embedding_row, &do_swiglu, &do_softmax, &matmul_avx512};
  return t;
}

}  // namespace latent::cpu
