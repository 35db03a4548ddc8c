// MLA attention for a few new tokens (decode, speculative verification) on AVX-512, split over the context
// (flash-decoding): each work unit is one token and a 256-position slice of its context, and reads every
// cache row of the slice once for all heads (the query group): scores for 4 heads x 4 rows per register tile,
// an online softmax per head, then P.V into per-head accumulators, 4 heads x 64 latent columns per tile. The
// slices' partial results (max, sum, accumulator) are merged per head at the end. Float32 math throughout; a
// BF16 cache's rows are widened as they are loaded (half the bytes read per position).
// The generic path (attention.cpp) instead runs per head group and reads each cache block once per 4 query
// rows for the scores and once more, packed, for P.V.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/attention_isa.h"
#include "kernels/cpu/ops_avx512_impl.h"
#include "kernels/cpu/thread_pool.h"

namespace latent::cpu {
namespace {

using namespace avx512;

constexpr int64_t kSlice = 256;  // context positions per work unit
constexpr int kHT = 4;           // heads per register tile
constexpr int kRT = 4;           // cache rows per score tile

// 16 cache values from position k of a row, widened to float32.
template <bool kBf16>
LATENT_AVX512 inline __m512 load_row16(const void* row, int64_t k) {
  if constexpr (kBf16) {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(static_cast<const uint16_t*>(row) + k));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  } else {
    return _mm512_loadu_ps(static_cast<const float*>(row) + k);
  }
}

template <bool kBf16>
inline const void* row_at(const void* rows, int64_t j, int64_t dim) {
  if constexpr (kBf16) return static_cast<const uint16_t*>(rows) + j * dim;
  return static_cast<const float*>(rows) + j * dim;
}

struct Shape {
  int64_t H, Hp, R, dim, bs;
  float scale;
};

// s[h][j] = scale * qc[h] . row_j for h < Hp, j < cnt (rows at `rows`, `dim` floats apart).
template <bool kBf16>
LATENT_AVX512 void scores(const Shape& sh, const float* qc, const void* rows, int64_t cnt, float* s, int64_t lds) {
  for (int64_t h0 = 0; h0 < sh.Hp; h0 += kHT) {
    for (int64_t j0 = 0; j0 < cnt; j0 += kRT) {
      const void* r[kRT];
      for (int j = 0; j < kRT; ++j) r[j] = row_at<kBf16>(rows, std::min(j0 + j, cnt - 1), sh.dim);  // past cnt: a repeat, unused
      __m512 acc[kHT][kRT];
      for (int h = 0; h < kHT; ++h)
        for (int j = 0; j < kRT; ++j) acc[h][j] = _mm512_setzero_ps();
      for (int64_t k = 0; k < sh.dim; k += 16) {
        __m512 rv[kRT];
        for (int j = 0; j < kRT; ++j) rv[j] = load_row16<kBf16>(r[j], k);
        for (int h = 0; h < kHT; ++h) {
          const __m512 qv = _mm512_load_ps(qc + (h0 + h) * sh.dim + k);
          for (int j = 0; j < kRT; ++j) acc[h][j] = _mm512_fmadd_ps(qv, rv[j], acc[h][j]);
        }
      }
      const int64_t jn = std::min<int64_t>(kRT, cnt - j0);
      for (int h = 0; h < kHT; ++h)
        for (int64_t j = 0; j < jn; ++j) s[(h0 + h) * lds + j0 + j] = sh.scale * _mm512_reduce_add_ps(acc[h][j]);
    }
  }
}

// Online softmax over one piece of scores: per head, the running max m and sum l are updated, acc rescaled,
// and s[h][0..cnt) replaced by exp(s - m_new).
LATENT_AVX512 void softmax_step(const Shape& sh, float* s, int64_t lds, int64_t cnt, float* m, float* l, float* acc) {
  for (int64_t h = 0; h < sh.H; ++h) {
    float* sc = s + h * lds;
    float bm = -INFINITY;
    for (int64_t j = 0; j < cnt; ++j) bm = std::max(bm, sc[j]);
    const float nm = std::max(m[h], bm);
    if (nm > m[h] && l[h] > 0) {
      const float corr = std::exp(m[h] - nm);
      l[h] *= corr;
      const __m512 c = _mm512_set1_ps(corr);
      float* a = acc + h * sh.R;
      for (int64_t k = 0; k < sh.R; k += 16) _mm512_store_ps(a + k, _mm512_mul_ps(_mm512_load_ps(a + k), c));
    }
    m[h] = nm;
    const __m512 mv = _mm512_set1_ps(nm);
    __m512 sum = _mm512_setzero_ps();
    for (int64_t j = 0; j < cnt; j += 16) {
      const __mmask16 mk = cnt - j >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << (cnt - j)) - 1);
      const __m512 e = _mm512_maskz_mov_ps(mk, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(mk, sc + j), mv)));
      _mm512_mask_storeu_ps(sc + j, mk, e);
      sum = _mm512_add_ps(sum, e);
    }
    l[h] += _mm512_reduce_add_ps(sum);
  }
}

// acc[h][0..R) += sum_j p[h][j] * row_j[0..R) for h < Hp (padded heads have p = 0 and are never read back).
template <bool kBf16>
LATENT_AVX512 void apply_pv(const Shape& sh, const float* p, int64_t lds, const void* rows, int64_t cnt, float* acc) {
  for (int64_t h0 = 0; h0 < sh.Hp; h0 += kHT) {
    for (int64_t c0 = 0; c0 < sh.R; c0 += 64) {
      const int nv = static_cast<int>(std::min<int64_t>(4, (sh.R - c0) / 16));
      __m512 a[kHT][4];
      for (int h = 0; h < kHT; ++h)
        for (int v = 0; v < 4; ++v) a[h][v] = v < nv ? _mm512_load_ps(acc + (h0 + h) * sh.R + c0 + v * 16) : _mm512_setzero_ps();
      for (int64_t j = 0; j < cnt; ++j) {
        const void* row = row_at<kBf16>(rows, j, sh.dim);
        __m512 rv[4];
        for (int v = 0; v < 4; ++v) rv[v] = v < nv ? load_row16<kBf16>(row, c0 + v * 16) : _mm512_setzero_ps();
        for (int h = 0; h < kHT; ++h) {
          const __m512 pb = _mm512_set1_ps(p[(h0 + h) * lds + j]);
          for (int v = 0; v < 4; ++v) a[h][v] = _mm512_fmadd_ps(pb, rv[v], a[h][v]);
        }
      }
      for (int h = 0; h < kHT; ++h)
        for (int v = 0; v < nv; ++v) _mm512_store_ps(acc + (h0 + h) * sh.R + c0 + v * 16, a[h][v]);
    }
  }
}

}  // namespace

bool mla_attention_few_avx512_supports(int64_t R, int64_t P) { return R % 16 == 0 && P % 16 == 0 && R > 0; }

void mla_attention_few_avx512(const float* q_lat, const float* q, int64_t q_stride, int64_t n, int64_t n_heads,
                              int64_t nope, int64_t R, int64_t P, int64_t start_pos, const void* const* blocks, DType cache_dtype,
                              int64_t block_size, float scale, float* o_lat, ThreadPool& pool) {
  Shape sh{n_heads, (n_heads + kHT - 1) / kHT * kHT, R, R + P, block_size, scale};
  const bool bf16 = cache_dtype == DType::kBF16;
  // qc[i][h][0..dim) = [q_lat | q_rope] of token i, heads padded to Hp with zeros (64-byte aligned rows).
  std::vector<float> qc_buf(static_cast<size_t>(n * sh.Hp * sh.dim + 16), 0.f);
  float* qc = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(qc_buf.data()) + 63) & ~uintptr_t{63});
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t h = 0; h < n_heads; ++h) {
      float* dst = qc + (i * sh.Hp + h) * sh.dim;
      std::copy_n(q_lat + (i * n_heads + h) * R, R, dst);
      std::copy_n(q + i * q_stride + h * (nope + P) + nope, P, dst + R);
    }
  }
  const int64_t slices = (start_pos + n + kSlice - 1) / kSlice;  // of the longest context (the last token's)
  // Partial results per (token, slice): acc[Hp][R], m[Hp], l[Hp] (padded to 64 bytes); a slice past a token's
  // context stays empty (l = 0).
  const int64_t part = (sh.Hp * R + 2 * sh.Hp + 15) / 16 * 16;
  std::vector<float> parts_buf(static_cast<size_t>(n * slices * part + 16));
  float* parts = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(parts_buf.data()) + 63) & ~uintptr_t{63});
  auto unit = [&](int64_t u0, int64_t u1) {
    thread_local std::vector<float> s_buf;
    const int64_t lds = (block_size + 15) / 16 * 16;
    s_buf.resize(static_cast<size_t>(sh.Hp * lds));
    for (int64_t u = u0; u < u1; ++u) {
      const int64_t i = u / slices, c = u % slices;
      float* acc = parts + u * part;  // 64-byte aligned: part is a multiple of 16 floats
      float* m = acc + sh.Hp * R;
      float* l = m + sh.Hp;
      std::fill(m, m + sh.Hp, -INFINITY);
      std::fill(l, l + sh.Hp, 0.f);
      std::fill(acc, acc + sh.Hp * R, 0.f);
      const int64_t ctx = start_pos + i + 1;
      const int64_t p0 = c * kSlice, p1 = std::min(ctx, p0 + kSlice);
      for (int64_t pos = p0; pos < p1;) {
        const int64_t b = pos / block_size, off = pos % block_size;
        const int64_t cnt = std::min(block_size - off, p1 - pos);
        if (bf16) {
          const void* rows = row_at<true>(blocks[b], off, sh.dim);
          scores<true>(sh, qc + i * sh.Hp * sh.dim, rows, cnt, s_buf.data(), lds);
          softmax_step(sh, s_buf.data(), lds, cnt, m, l, acc);
          apply_pv<true>(sh, s_buf.data(), lds, rows, cnt, acc);
        } else {
          const void* rows = row_at<false>(blocks[b], off, sh.dim);
          scores<false>(sh, qc + i * sh.Hp * sh.dim, rows, cnt, s_buf.data(), lds);
          softmax_step(sh, s_buf.data(), lds, cnt, m, l, acc);
          apply_pv<false>(sh, s_buf.data(), lds, rows, cnt, acc);
        }
        pos += cnt;
      }
    }
  };
  const int64_t units = n * slices;
  if (units == 1 || pool.size() == 1) {
    unit(0, units);
  } else {
    pool.parallel_for(units, 1, unit);
  }
  // Merge the slices per (token, head).
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t h = 0; h < n_heads; ++h) {
      float M = -INFINITY;
      for (int64_t c = 0; c < slices; ++c) M = std::max(M, parts[(i * slices + c) * part + sh.Hp * R + h]);
      float L = 0;
      float* out = o_lat + (i * n_heads + h) * R;
      std::fill(out, out + R, 0.f);
      for (int64_t c = 0; c < slices; ++c) {
        const float* a = parts + (i * slices + c) * part;
        const float* pm = a + sh.Hp * R;
        if (pm[sh.Hp + h] == 0.f) continue;  // empty slice
        const float w = std::exp(pm[h] - M);
        L += w * pm[sh.Hp + h];
        a += h * R;
        for (int64_t k = 0; k < R; ++k) out[k] += w * a[k];
      }
      const float inv = 1.f / L;
      for (int64_t k = 0; k < R; ++k) out[k] *= inv;
    }
  }
}

}  // namespace latent::cpu
