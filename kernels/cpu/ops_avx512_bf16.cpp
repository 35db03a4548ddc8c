// Opt-in fast GEMM for BF16 weights (LinearPrecision::kBf16Activations): activations are rounded to BF16 and
// pairs of products are accumulated in float32 by vdpbf16ps (AVX512-BF16), twice the multiply rate of the
// exact path. Same blocking as the exact GEMM (ops_avx512.cpp), counted in k pairs: x is packed into 48-token
// blocks of BF16 pairs [K/2][48] (u32), W rows are copied as pairs into an 8-row panel and broadcast.
#include <algorithm>

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

template <int NV>
LATENT_AVX512BF16 void micro_kernel_bf16(const uint32_t* panel, const uint32_t* xp, int64_t pc, float* tile,
                                         bool first) {
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
      __m512i b = _mm512_set1_epi32(static_cast<int>(panel[r * kKC2 + p]));
      for (int j = 0; j < NV; ++j) c[r][j] = _mm512_dpbf16_ps(c[r][j], xv[j], reinterpret_cast<__m512bh&>(b));
    }
  }
  for (int r = 0; r < kMR; ++r)
    for (int j = 0; j < NV; ++j) _mm512_store_ps(tile + r * kTB + j * 16, c[r][j]);
}

void gemm_groups_bf16(const uint32_t* xp, int64_t n, const WeightView& w, float* y, int64_t ldy, int64_t g0,
                      int64_t g1) {
  constexpr int kSuper = 4;
  const int64_t K2 = (w.cols + 1) / 2;
  const int64_t nblk = (n + kTB - 1) / kTB;
  auto* panel = reinterpret_cast<uint32_t*>(thread_scratch(ScratchSlot::kPackedW, kMR * kKC2));
  float* tiles = thread_scratch(ScratchSlot::kTiles, kSuper * kMR * kTB);
  for (int64_t sb0 = 0; sb0 < nblk; sb0 += kSuper) {
    const int64_t sb1 = std::min<int64_t>(nblk, sb0 + kSuper);
    for (int64_t g = g0; g < g1; ++g) {
      for (int64_t p0 = 0; p0 < K2; p0 += kKC2) {
        const int64_t pc = std::min(kKC2, K2 - p0);
        pack_w_pairs(w, g * kMR, p0, pc, panel);
        for (int64_t b = sb0; b < sb1; ++b) {
          const uint32_t* xb = xp + b * K2 * kTB + p0 * kTB;
          float* tile = tiles + (b - sb0) * kMR * kTB;
          const int64_t rem = std::min<int64_t>(kTB, n - b * kTB);
          switch ((rem + 15) / 16) {
            case 1: micro_kernel_bf16<1>(panel, xb, pc, tile, p0 == 0); break;
            case 2: micro_kernel_bf16<2>(panel, xb, pc, tile, p0 == 0); break;
            default: micro_kernel_bf16<3>(panel, xb, pc, tile, p0 == 0); break;
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

}  // namespace

void linear_bf16_activations_avx512(const float* x, int64_t ldx, int64_t n, const WeightView& w, float* y,
                                    int64_t ldy, ThreadPool& pool) {
  const int64_t K = w.cols, K2 = (K + 1) / 2;
  const int64_t nblk = (n + kTB - 1) / kTB;
  auto* xp = reinterpret_cast<uint32_t*>(thread_scratch(ScratchSlot::kPackedX, static_cast<size_t>(nblk * K2 * kTB)));
  const int64_t slices = (K2 + 127) / 128;
  pool.parallel_for(nblk * slices, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t b = i / slices, p0 = (i % slices) * 128;
      pack_x_pairs(x, ldx, n, K, b, p0, std::min(K2, p0 + 128), xp);
    }
  });
  const int64_t groups = (w.rows + kMR - 1) / kMR;
  pool.parallel_for(groups, std::max<int64_t>(1, groups / (pool.size() * 6)),
                    [&](int64_t g0, int64_t g1) { gemm_groups_bf16(xp, n, w, y, ldy, g0, g1); });
}

}  // namespace latent::cpu
