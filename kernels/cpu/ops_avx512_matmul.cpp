// AVX-512 matmul: C[m, n] (+)= A[m, k] · B[k, n] with B read from a weight matrix in its stored dtype. The
// same micro-kernel as linear's GEMM with the roles turned: B is packed (widened, never transposed) into
// 48-column blocks [k][48] and A's rows are the broadcast panel, so tiles land in C row-major.
#include <algorithm>

#include "kernels/cpu/ops_avx512_impl.h"
#include "kernels/cpu/ops_isa.h"
#include "kernels/cpu/scratch.h"
#include "kernels/cpu/thread_pool.h"

namespace latent::cpu {
namespace {

using namespace avx512;

// bp[kk][0..48) = B[b_row0 + kk][blk * 48 ...], zero past column n.
template <DType D>
LATENT_AVX512 void pack_b_block(const WeightView& b, int64_t b_row0, int64_t k, int64_t n, int64_t blk, float* bp) {
  const int64_t c0 = blk * kTB;
  const int64_t sb = b.block, scale_cols = D == DType::kF8E4M3 ? (b.cols + sb - 1) / sb : 1;
  for (int64_t kk = 0; kk < k; ++kk) {
    const int64_t row = b_row0 + kk;
    float* dst = bp + kk * kTB;
    for (int j = 0; j < kTB / 16; ++j) {
      const int64_t c = c0 + j * 16;
      if (c >= n) {
        _mm512_store_ps(dst + j * 16, _mm512_setzero_ps());
        continue;
      }
      const __mmask16 m = n - c >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << (n - c)) - 1);
      __m512 v;
      if constexpr (D == DType::kF8E4M3) {
        if (sb % 16 != 0) {  // a vector may straddle two scales: element by element
          alignas(64) float tmp[16] = {};
          for (int i = 0; i < 16 && c + i < n; ++i) tmp[i] = b.at(row, c + i);
          v = _mm512_load_ps(tmp);
        } else {
          v = _mm512_mul_ps(load16_masked<D>(b.data, row * b.cols + c, m),
                            _mm512_set1_ps(b.scale_inv[(row / sb) * scale_cols + c / sb] * kFp8ViaF16Scale));
        }
      } else {
        v = load16_masked<D>(b.data, row * b.cols + c, m);
      }
      _mm512_store_ps(dst + j * 16, v);
    }
  }
}

LATENT_AVX512 void pack_a_panel(const float* a, int64_t lda, int64_t m, int64_t row0, int64_t k0, int64_t kc,
                                float* panel) {
  for (int r = 0; r < kMR; ++r) {
    float* dst = panel + r * kKC;
    if (row0 + r >= m) {
      std::fill(dst, dst + kc, 0.f);
      continue;
    }
    std::copy(a + (row0 + r) * lda + k0, a + (row0 + r) * lda + k0 + kc, dst);
  }
}

// A few rows of A (decode: one token's W_UK absorption, [1, nope] x [nope, R]): no packing, B widened in
// registers, 128 columns of C per pass held in 8 accumulators. Rows of B are re-read per row of A (from cache).
constexpr int64_t kDirectMaxRows = 4;

template <DType D>
LATENT_AVX512 void matmul_direct(const float* a, int64_t lda, int64_t m, int64_t k, const WeightView& b, int64_t b_row0,
                                 int64_t c0, int64_t c1, float* c, int64_t ldc, bool accumulate) {
  constexpr int kV = 8;
  const int64_t sb = b.block, scale_cols = D == DType::kF8E4M3 ? (b.cols + sb - 1) / sb : 1;
  for (int64_t col = c0; col < c1; col += 16 * kV) {
    __mmask16 mask[kV];
    for (int v = 0; v < kV; ++v) {
      const int64_t left = c1 - (col + 16 * v);
      mask[v] = left >= 16 ? static_cast<__mmask16>(0xffff)
                           : left <= 0 ? static_cast<__mmask16>(0) : static_cast<__mmask16>((1u << left) - 1);
    }
    const int nv = static_cast<int>(std::min<int64_t>(kV, (c1 - col + 15) / 16));
    for (int64_t i = 0; i < m; ++i) {
      __m512 acc[kV];
      for (int v = 0; v < kV; ++v) acc[v] = _mm512_setzero_ps();
      for (int64_t kk = 0; kk < k; ++kk) {
        const __m512 av = _mm512_set1_ps(a[i * lda + kk]);
        const int64_t row = b_row0 + kk;
        for (int v = 0; v < kV; ++v) {
          if (v >= nv) break;
          __m512 w = load16_masked<D>(b.data, row * b.cols + col + 16 * v, mask[v]);
          if constexpr (D == DType::kF8E4M3) {
            w = _mm512_mul_ps(w, _mm512_set1_ps(b.scale_inv[(row / sb) * scale_cols + (col + 16 * v) / sb] *
                                                kFp8ViaF16Scale));
          }
          acc[v] = _mm512_fmadd_ps(av, w, acc[v]);
        }
      }
      float* ci = c + i * ldc + col;
      for (int v = 0; v < nv; ++v) {
        __m512 r = acc[v];
        if (accumulate) r = _mm512_add_ps(r, _mm512_maskz_loadu_ps(mask[v], ci + 16 * v));
        _mm512_mask_storeu_ps(ci + 16 * v, mask[v], r);
      }
    }
  }
}

template <DType D>
void matmul_typed(const float* a, int64_t lda, int64_t m, int64_t k, const WeightView& b, int64_t b_row0, int64_t n,
                  float* c, int64_t ldc, bool accumulate, ThreadPool& pool) {
  if (m == 0 || n == 0) return;
  if (k == 0) {
    if (!accumulate)
      for (int64_t i = 0; i < m; ++i) std::fill(c + i * ldc, c + i * ldc + n, 0.f);
    return;
  }
  if (m <= kDirectMaxRows && (D != DType::kF8E4M3 || b.block % 16 == 0)) {
    // Column chunks of 128 across the pool (inline when nested, as in the per-head absorption).
    const int64_t chunks = (n + 127) / 128;
    pool.parallel_for(chunks, std::max<int64_t>(1, chunks / (pool.size() * 2)), [&](int64_t j0, int64_t j1) {
      matmul_direct<D>(a, lda, m, k, b, b_row0, j0 * 128, std::min(n, j1 * 128), c, ldc, accumulate);
    });
    return;
  }
  const int64_t nblk = (n + kTB - 1) / kTB;
  float* bp = thread_scratch(ScratchSlot::kPackedX, static_cast<size_t>(nblk * k * kTB));
  pool.parallel_for(nblk, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t blk = b0; blk < b1; ++blk) pack_b_block<D>(b, b_row0, k, n, blk, bp + blk * k * kTB);
  });
  const int64_t groups = (m + kMR - 1) / kMR;
  pool.parallel_for(groups, std::max<int64_t>(1, groups / (pool.size() * 4)), [&](int64_t g0, int64_t g1) {
    float* panel = thread_scratch(ScratchSlot::kPackedW, kMR * kKC);
    float* tiles = thread_scratch(ScratchSlot::kTiles, static_cast<size_t>(nblk * kMR * kTB));
    for (int64_t g = g0; g < g1; ++g) {
      for (int64_t k0 = 0; k0 < k; k0 += kKC) {
        const int64_t kc = std::min(kKC, k - k0);
        pack_a_panel(a, lda, m, g * kMR, k0, kc, panel);
        for (int64_t blk = 0; blk < nblk; ++blk) {
          const float* xb = bp + blk * k * kTB + k0 * kTB;
          float* tile = tiles + blk * kMR * kTB;
          const int64_t cols = std::min<int64_t>(kTB, n - blk * kTB);
          switch ((cols + 15) / 16) {
            case 1: micro_kernel<1>(panel, xb, kc, tile, k0 == 0); break;
            case 2: micro_kernel<2>(panel, xb, kc, tile, k0 == 0); break;
            default: micro_kernel<3>(panel, xb, kc, tile, k0 == 0); break;
          }
        }
      }
      const int64_t rn = std::min<int64_t>(kMR, m - g * kMR);
      for (int64_t r = 0; r < rn; ++r) {
        float* ci = c + (g * kMR + r) * ldc;
        for (int64_t blk = 0; blk < nblk; ++blk) {
          const float* t = tiles + blk * kMR * kTB + r * kTB;
          const int64_t cols = std::min<int64_t>(kTB, n - blk * kTB);
          float* dst = ci + blk * kTB;
          if (accumulate) {
            for (int64_t j = 0; j < cols; ++j) dst[j] += t[j];
          } else {
            std::copy(t, t + cols, dst);
          }
        }
      }
    }
  });
}

}  // namespace

void matmul_avx512(const float* a, int64_t lda, int64_t m, int64_t k, const WeightView& b, int64_t b_row0, int64_t n,
                   float* c, int64_t ldc, bool accumulate, ThreadPool& pool) {
  switch (b.dtype) {
    case DType::kF32: return matmul_typed<DType::kF32>(a, lda, m, k, b, b_row0, n, c, ldc, accumulate, pool);
    case DType::kBF16: return matmul_typed<DType::kBF16>(a, lda, m, k, b, b_row0, n, c, ldc, accumulate, pool);
    case DType::kF16: return matmul_typed<DType::kF16>(a, lda, m, k, b, b_row0, n, c, ldc, accumulate, pool);
    case DType::kF8E4M3: return matmul_typed<DType::kF8E4M3>(a, lda, m, k, b, b_row0, n, c, ldc, accumulate, pool);
  }
}

}  // namespace latent::cpu
