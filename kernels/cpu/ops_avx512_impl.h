#pragma once
// Building blocks of the AVX-512 bodies: widening loads per weight dtype, a 16x16 transpose and a vector exp.
// Include only from translation units whose functions all carry LATENT_AVX512 (ops_avx512*.cpp).
// GCC 12 flags _mm512_undefined_* inside its own intrinsic headers (a known false positive).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cstdint>

#include "kernels/cpu/dtype.h"

#define LATENT_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c,bmi,bmi2")))

namespace latent::cpu::avx512 {

// FP8-E4M3 bits (s eeee mmm) moved into F16 bits (s 0eeee mmm0000000) are the same number divided by 2^8:
// both formats place the exponent right above the mantissa and the biases differ by 8 (15 - 7), subnormals
// included. So fp8 = cvtph(bits) * 256; callers fold the 256 into the block scale.
constexpr float kFp8ViaF16Scale = 256.f;

LATENT_AVX512 inline __m512 fp8_bytes_to_ps_div256(__m128i b) {
  // (b << 7) puts exponent and mantissa in place and the sign at bit 14; adding bit 14 to itself moves it to 15.
  __m256i h = _mm256_slli_epi16(_mm256_cvtepu8_epi16(b), 7);
  return _mm512_cvtph_ps(_mm256_add_epi16(h, _mm256_and_si256(h, _mm256_set1_epi16(0x4000))));
}

// 16 weights starting at element i of `base`, widened to float32 (FP8: divided by 256, unscaled).
template <DType D>
LATENT_AVX512 inline __m512 load16(const void* base, int64_t i) {
  if constexpr (D == DType::kF32) {
    return _mm512_loadu_ps(static_cast<const float*>(base) + i);
  } else if constexpr (D == DType::kBF16) {
    __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(static_cast<const uint16_t*>(base) + i));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  } else if constexpr (D == DType::kF16) {
    return _mm512_cvtph_ps(
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(static_cast<const uint16_t*>(base) + i)));
  } else {
    return fp8_bytes_to_ps_div256(
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint8_t*>(base) + i)));
  }
}

// The same for the lanes in m (others 0); reads no memory outside m.
template <DType D>
LATENT_AVX512 inline __m512 load16_masked(const void* base, int64_t i, __mmask16 m) {
  if constexpr (D == DType::kF32) {
    return _mm512_maskz_loadu_ps(m, static_cast<const float*>(base) + i);
  } else if constexpr (D == DType::kBF16) {
    __m256i h = _mm256_maskz_loadu_epi16(m, static_cast<const uint16_t*>(base) + i);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  } else if constexpr (D == DType::kF16) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, static_cast<const uint16_t*>(base) + i));
  } else {
    return fp8_bytes_to_ps_div256(_mm_maskz_loadu_epi8(m, static_cast<const uint8_t*>(base) + i));
  }
}

// In place: v[i][j] becomes v[j][i].
LATENT_AVX512 inline void transpose16(__m512 v[16]) {
  __m512 t[16], u[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(v[2 * i], v[2 * i + 1]);      // a0 b0 a1 b1 | a4 b4 a5 b5 | ...
    t[2 * i + 1] = _mm512_unpackhi_ps(v[2 * i], v[2 * i + 1]);  // a2 b2 a3 b3 | a6 b6 a7 b7 | ...
  }
  for (int q = 0; q < 4; ++q) {  // rows 4q..4q+3
    __m512 a = t[4 * q], b = t[4 * q + 1], c = t[4 * q + 2], d = t[4 * q + 3];
    u[4 * q + 0] = _mm512_shuffle_ps(a, c, 0x44);  // col 0 (+4, 8, 12 in the other 128-bit lanes)
    u[4 * q + 1] = _mm512_shuffle_ps(a, c, 0xEE);  // col 1
    u[4 * q + 2] = _mm512_shuffle_ps(b, d, 0x44);  // col 2
    u[4 * q + 3] = _mm512_shuffle_ps(b, d, 0xEE);  // col 3
  }
  // u[4q + i] lane l holds rows 4q..4q+3 of column i + 4l.
  for (int i = 0; i < 4; ++i) {
    __m512 lo0 = _mm512_shuffle_f32x4(u[i], u[4 + i], 0x88);       // cols i, i+8 of rows 0..7
    __m512 hi0 = _mm512_shuffle_f32x4(u[i], u[4 + i], 0xDD);       // cols i+4, i+12 of rows 0..7
    __m512 lo1 = _mm512_shuffle_f32x4(u[8 + i], u[12 + i], 0x88);  // cols i, i+8 of rows 8..15
    __m512 hi1 = _mm512_shuffle_f32x4(u[8 + i], u[12 + i], 0xDD);  // cols i+4, i+12 of rows 8..15
    v[i] = _mm512_shuffle_f32x4(lo0, lo1, 0x88);
    v[i + 8] = _mm512_shuffle_f32x4(lo0, lo1, 0xDD);
    v[i + 4] = _mm512_shuffle_f32x4(hi0, hi1, 0x88);
    v[i + 12] = _mm512_shuffle_f32x4(hi0, hi1, 0xDD);
  }
}

// exp(x), about 1 ulp (Cephes expf polynomial); exp(-inf) = 0, large x saturates to +inf.
LATENT_AVX512 inline __m512 exp16(__m512 x) {
  x = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(88.8f)), _mm512_set1_ps(-110.f));
  __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                  _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.f)));
  return _mm512_scalef_ps(p, n);
}

// The GEMM micro-kernel shared by linear (ops_avx512.cpp) and matmul (ops_avx512_matmul.cpp).
constexpr int kTB = 48;       // columns ("tokens") per packed block: 3 zmm
constexpr int kMR = 8;        // panel rows per micro-tile
constexpr int64_t kKC = 512;  // k slice per panel (8 x 512 floats = 16 KiB, stays in L1)

// tile[r][t] (+)= sum_k panel[r][k] * xp[k][t], 8 rows x NV*16 tokens.
template <int NV>
LATENT_AVX512 inline void micro_kernel(const float* panel, const float* xp, int64_t kc, float* tile, bool first) {
  __m512 c[kMR][NV];
  for (int r = 0; r < kMR; ++r)
    for (int j = 0; j < NV; ++j) c[r][j] = first ? _mm512_setzero_ps() : _mm512_load_ps(tile + r * kTB + j * 16);
  for (int64_t k = 0; k < kc; ++k) {
    __m512 xv[NV];
    for (int j = 0; j < NV; ++j) xv[j] = _mm512_load_ps(xp + k * kTB + j * 16);
#pragma GCC unroll 8
    for (int r = 0; r < kMR; ++r) {
      __m512 b = _mm512_set1_ps(panel[r * kKC + k]);
      for (int j = 0; j < NV; ++j) c[r][j] = _mm512_fmadd_ps(b, xv[j], c[r][j]);
    }
  }
  for (int r = 0; r < kMR; ++r)
    for (int j = 0; j < NV; ++j) _mm512_store_ps(tile + r * kTB + j * 16, c[r][j]);
}

}  // namespace latent::cpu::avx512
