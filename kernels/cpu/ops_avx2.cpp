// AVX2 + FMA + F16C bodies, for x86-64 machines without AVX-512. Weights are widened to float32 in registers;
// linear is a dot-product kernel (4 rows x up to 4 tokens per tile, 8 lanes) for every n: simpler than the
// AVX-512 GEMM, still exact float32 math.
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "kernels/cpu/ops_isa.h"
#include "kernels/cpu/thread_pool.h"

#define LATENT_AVX2 __attribute__((target("avx2,fma,f16c,bmi,bmi2")))

namespace latent::cpu {
namespace {

LATENT_AVX2 inline __m256 fp8_bytes_to_ps_div256(__m128i b8) {
  __m128i h = _mm_cvtepu8_epi16(b8);
  __m128i em = _mm_slli_epi16(_mm_and_si128(h, _mm_set1_epi16(0x7f)), 7);
  __m128i s = _mm_slli_epi16(_mm_and_si128(h, _mm_set1_epi16(0x80)), 8);
  return _mm256_cvtph_ps(_mm_or_si128(em, s));
}

// 8 weights from element i, widened (FP8: divided by 256, unscaled; see ops_avx512_impl.h).
template <DType D>
LATENT_AVX2 inline __m256 load8(const void* base, int64_t i) {
  if constexpr (D == DType::kF32) {
    return _mm256_loadu_ps(static_cast<const float*>(base) + i);
  } else if constexpr (D == DType::kBF16) {
    __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(base) + i));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  } else if constexpr (D == DType::kF16) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(base) + i)));
  } else {
    return fp8_bytes_to_ps_div256(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(static_cast<const uint8_t*>(base) + i)));
  }
}

template <DType D>
inline float load1(const void* base, int64_t i) {
  if constexpr (D == DType::kF32) return static_cast<const float*>(base)[i];
  if constexpr (D == DType::kBF16) return bf16_to_f32(static_cast<const uint16_t*>(base)[i]);
  if constexpr (D == DType::kF16) return f16_to_f32(static_cast<const uint16_t*>(base)[i]);
  if constexpr (D == DType::kF8E4M3) return fp8e4m3_to_f32(static_cast<const uint8_t*>(base)[i]) / 256.f;
  return 0.f;
}

LATENT_AVX2 inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

template <DType D, int R, int T>
LATENT_AVX2 void dot_tile(const float* x, int64_t x_stride, const WeightView& w, int64_t r0, float* y, int64_t ldy) {
  const int64_t cols = w.cols;
  const int64_t blk = D == DType::kF8E4M3 ? w.block : cols;
  const int64_t scale_cols = D == DType::kF8E4M3 ? (cols + blk - 1) / blk : 1;
  float tot[R][T] = {};
  for (int64_t c0 = 0; c0 < cols; c0 += blk) {
    const int64_t c1 = std::min(cols, c0 + blk);
    __m256 acc[R][T];
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps();
    int64_t c = c0;
    for (; c + 8 <= c1; c += 8) {
      __m256 xv[T];
      for (int t = 0; t < T; ++t) xv[t] = _mm256_loadu_ps(x + t * x_stride + c);
      for (int r = 0; r < R; ++r) {
        __m256 wv = load8<D>(w.data, (r0 + r) * cols + c);
        for (int t = 0; t < T; ++t) acc[r][t] = _mm256_fmadd_ps(wv, xv[t], acc[r][t]);
      }
    }
    for (int r = 0; r < R; ++r) {
      float s = 1.f;
      if constexpr (D == DType::kF8E4M3) s = w.scale_inv[((r0 + r) / blk) * scale_cols + c0 / blk] * 256.f;
      for (int t = 0; t < T; ++t) {
        float part = hsum(acc[r][t]);
        for (int64_t cc = c; cc < c1; ++cc) part += load1<D>(w.data, (r0 + r) * cols + cc) * x[t * x_stride + cc];
        tot[r][t] += part * s;
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) y[t * ldy + r0 + r] = tot[r][t];
}

template <DType D, int T>
void dot_rows(const float* x, int64_t ldx, const WeightView& w, float* y, int64_t ldy, int64_t r0, int64_t r1) {
  int64_t r = r0;
  for (; r + 4 <= r1; r += 4) dot_tile<D, 4, T>(x, ldx, w, r, y, ldy);
  for (; r < r1; ++r) dot_tile<D, 1, T>(x, ldx, w, r, y, ldy);
}

template <DType D>
void linear_typed(const float* x, int64_t ldx, int64_t n, const WeightView& w, float* y, int64_t ldy, ThreadPool& pool) {
  if (n == 0 || w.rows == 0) return;
  if (w.cols == 0) {
    for (int64_t t = 0; t < n; ++t) std::fill(y + t * ldy, y + t * ldy + w.rows, 0.f);
    return;
  }
  auto body = [&](int64_t r0, int64_t r1) {
    for (int64_t t = 0; t < n; t += 4) {
      const float* xt = x + t * ldx;
      float* yt = y + t * ldy;
      switch (std::min<int64_t>(4, n - t)) {
        case 1: dot_rows<D, 1>(xt, ldx, w, yt, ldy, r0, r1); break;
        case 2: dot_rows<D, 2>(xt, ldx, w, yt, ldy, r0, r1); break;
        case 3: dot_rows<D, 3>(xt, ldx, w, yt, ldy, r0, r1); break;
        default: dot_rows<D, 4>(xt, ldx, w, yt, ldy, r0, r1); break;
      }
    }
  };
  const int64_t row_work = std::max<int64_t>(1, w.cols * n);
  if (row_work * w.rows < (64 << 10) || pool.size() == 1) return body(0, w.rows);
  int64_t grain = std::max<int64_t>((32 << 10) / row_work, w.rows / (pool.size() * 4));
  grain = std::max<int64_t>(4, (grain + 3) / 4 * 4);
  pool.parallel_for(w.rows, grain, body);
}

void do_linear(const float* x, int64_t ldx, int64_t n, const WeightView& w, float* y, int64_t ldy, ThreadPool& pool) {
  switch (w.dtype) {
    case DType::kF32: return linear_typed<DType::kF32>(x, ldx, n, w, y, ldy, pool);
    case DType::kBF16: return linear_typed<DType::kBF16>(x, ldx, n, w, y, ldy, pool);
    case DType::kF16: return linear_typed<DType::kF16>(x, ldx, n, w, y, ldy, pool);
    case DType::kF8E4M3: return linear_typed<DType::kF8E4M3>(x, ldx, n, w, y, ldy, pool);
  }
}

// exp(x) for x in [-87.3, 88.7] (clamped), about 1 ulp.
LATENT_AVX2 inline __m256 exp8(__m256 x) {
  x = _mm256_max_ps(_mm256_min_ps(x, _mm256_set1_ps(88.3762626647949f)), _mm256_set1_ps(-87.3365478515625f));
  __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                             _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.f)));
  // 2^n with n in [-126, 128]: n = 128 only at the clamp's top, where p < 1 keeps the product finite.
  __m256i e = _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(126));
  __m256 pow2 = _mm256_castsi256_ps(_mm256_slli_epi32(e, 23));
  return _mm256_mul_ps(_mm256_mul_ps(p, pow2), _mm256_set1_ps(2.f));
}

LATENT_AVX2 void do_rms_norm(const float* x, int64_t n, int64_t d, const void* gain, DType gain_dtype, float eps,
                          float* y) {
  WeightView g{gain, gain_dtype, 1, d};
  for (int64_t t = 0; t < n; ++t) {
    const float* xt = x + t * d;
    __m256 s = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= d; i += 8) {
      __m256 a = _mm256_loadu_ps(xt + i);
      s = _mm256_fmadd_ps(a, a, s);
    }
    float ss = hsum(s);
    for (; i < d; ++i) ss += xt[i] * xt[i];
    const float inv = 1.f / std::sqrt(ss / static_cast<float>(d) + eps);
    const __m256 iv = _mm256_set1_ps(inv);
    i = 0;
    if (gain_dtype == DType::kF32 || gain_dtype == DType::kBF16) {
      for (; i + 8 <= d; i += 8) {
        __m256 gv = gain_dtype == DType::kF32 ? load8<DType::kF32>(gain, i) : load8<DType::kBF16>(gain, i);
        _mm256_storeu_ps(y + t * d + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(xt + i), iv), gv));
      }
    }
    for (; i < d; ++i) y[t * d + i] = xt[i] * inv * g.at(0, i);
  }
}

void do_embedding_row(const WeightView& table, int64_t id, float* out) {
  for (int64_t c = 0; c < table.cols; ++c) out[c] = table.at(id, c);
}

LATENT_AVX2 void do_swiglu(const float* gate, const float* up, int64_t n, float* out) {
  int64_t i = 0;
  const __m256 one = _mm256_set1_ps(1.f);
  for (; i + 8 <= n; i += 8) {
    __m256 g = _mm256_loadu_ps(gate + i), u = _mm256_loadu_ps(up + i);
    __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), g));
    _mm256_storeu_ps(out + i, _mm256_div_ps(_mm256_mul_ps(g, u), _mm256_add_ps(one, e)));
  }
  for (; i < n; ++i) out[i] = gate[i] / (1.f + std::exp(-gate[i])) * up[i];
}

LATENT_AVX2 void do_softmax(float* x, int64_t n) {
  if (n <= 0) return;
  float m = -INFINITY;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, x[i]);
  const __m256 mv = _mm256_set1_ps(m);
  __m256 s = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), mv));
    _mm256_storeu_ps(x + i, e);
    s = _mm256_add_ps(s, e);
  }
  float sum = hsum(s);
  for (; i < n; ++i) sum += (x[i] = std::exp(x[i] - m));
  const float inv = 1.f / sum;
  for (i = 0; i < n; ++i) x[i] *= inv;
}

}  // namespace

const OpTable& avx2_op_table() {
  static const OpTable t{&do_linear, &do_rms_norm, &do_embedding_row, &do_swiglu, &do_softmax, &matmul_scalar};
  return t;
}

}  // namespace latent::cpu
