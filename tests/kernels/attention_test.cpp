// mla_attention against a double-precision reference: the AVX-512 few-token path (n <= 4, split over the
// context in 256-position slices) and the generic path (n > 4), over contexts that cross cache blocks and
// slices at odd offsets, head counts that are not a multiple of the 4-head tile, and the pool or none.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/dtype.h"
#include "kernels/cpu/ops.h"
#include "kernels/cpu/thread_pool.h"

namespace latent::cpu {
namespace {

struct Case {
  int64_t n, H, nope, R, P, start_pos;
};

// o[i][h] = softmax_t(scale * (q_lat[i,h] . lat[t] + q_rope[i,h] . rope[t])) . lat[t], t <= start_pos + i.
std::vector<double> reference(const Case& c, const std::vector<float>& q_lat, const std::vector<float>& q,
                              int64_t q_stride, const std::vector<float>& cache, float scale) {
  const int64_t dim = c.R + c.P;
  std::vector<double> o(static_cast<size_t>(c.n * c.H * c.R), 0.0);
  for (int64_t i = 0; i < c.n; ++i) {
    for (int64_t h = 0; h < c.H; ++h) {
      const int64_t ctx = c.start_pos + i + 1;
      std::vector<double> s(static_cast<size_t>(ctx));
      double mx = -INFINITY;
      for (int64_t t = 0; t < ctx; ++t) {
        double d = 0;
        for (int64_t k = 0; k < c.R; ++k) d += double(q_lat[(i * c.H + h) * c.R + k]) * cache[t * dim + k];
        for (int64_t k = 0; k < c.P; ++k) d += double(q[i * q_stride + h * (c.nope + c.P) + c.nope + k]) * cache[t * dim + c.R + k];
        s[t] = d * scale;
        mx = std::max(mx, s[t]);
      }
      double sum = 0;
      for (double& v : s) sum += (v = std::exp(v - mx));
      for (int64_t t = 0; t < ctx; ++t)
        for (int64_t k = 0; k < c.R; ++k) o[(i * c.H + h) * c.R + k] += s[t] / sum * cache[t * dim + k];
    }
  }
  return o;
}

// dtype: the cache's (a BF16 cache holds the values rounded; the reference uses the rounded values too).
// tol: relative and absolute tolerance (float32 math: 2e-5; the fast precision rounds q to BF16 for the scores).
void check(const Case& c, ThreadPool* pool, DType dtype = DType::kF32, double tol = 2e-5) {
  constexpr int64_t bs = 64;
  const int64_t dim = c.R + c.P, q_stride = c.H * (c.nope + c.P) + 3, ctx = c.start_pos + c.n;
  const int64_t nb = (ctx + bs - 1) / bs;
  std::mt19937 rng(static_cast<uint32_t>(c.n * 131 + c.H * 7 + c.start_pos));
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> q_lat(static_cast<size_t>(c.n * c.H * c.R)), q(static_cast<size_t>(c.n * q_stride));
  std::vector<float> cache(static_cast<size_t>(nb * bs * dim), NAN);  // slots past the context stay NaN
  for (float& v : q_lat) v = nd(rng) * 0.3f;
  for (float& v : q) v = nd(rng) * 0.3f;
  for (int64_t t = 0; t < ctx * dim; ++t) cache[static_cast<size_t>(t)] = nd(rng);
  std::vector<uint16_t> cache16(cache.size());
  if (dtype == DType::kBF16) {
    for (size_t t = 0; t < cache.size(); ++t) {
      cache16[t] = f32_to_bf16(cache[t]);  // NaN past the context stays NaN
      if (static_cast<int64_t>(t) < ctx * dim) cache[t] = bf16_to_f32(cache16[t]);
    }
  }
  std::vector<const void*> blocks;
  for (int64_t b = 0; b < nb; ++b) {
    blocks.push_back(dtype == DType::kBF16 ? static_cast<const void*>(cache16.data() + b * bs * dim)
                                           : static_cast<const void*>(cache.data() + b * bs * dim));
  }
  const float scale = 1.f / std::sqrt(static_cast<float>(c.nope + c.P));
  std::vector<float> o(q_lat.size(), NAN);
  mla_attention(q_lat.data(), q.data(), q_stride, c.n, c.H, c.nope, c.R, c.P, c.start_pos, blocks.data(), dtype, bs, scale,
                o.data(), pool);
  std::vector<double> ref = reference(c, q_lat, q, q_stride, cache, scale);
  int bad = 0;
  for (size_t k = 0; k < ref.size(); ++k) {
    if (!(std::fabs(o[k] - ref[k]) <= tol + tol * std::fabs(ref[k])) && bad++ < 5) {
      ADD_FAILURE() << dtype_name(dtype) << " n=" << c.n << " H=" << c.H << " R=" << c.R << " start=" << c.start_pos << " at " << k
                    << ": expected " << ref[k] << ", found " << o[k];
    }
  }
  EXPECT_EQ(bad, 0);
}

TEST(MlaAttention, MatchesReferenceFewAndManyTokens) {
  ThreadPool pool(2);
  const std::vector<Case> cases = {
      {1, 16, 128, 512, 64, 0},   {1, 16, 128, 512, 64, 700}, {4, 16, 128, 512, 64, 511}, {2, 5, 32, 32, 16, 300},
      {3, 4, 32, 48, 16, 0},      {1, 3, 8, 16, 16, 1100},    {4, 2, 32, 32, 16, 257},    {9, 4, 32, 32, 16, 70},
      {2, 4, 32, 40, 24, 90},  // R, P not multiples of 16: the generic path
  };
  for (const Case& c : cases) {
    check(c, &pool);
    check(c, nullptr);
  }
}

// A BF16 cache (the fast precision's): the same attention over the rounded values. With exact linears the
// result is float32 math on those values; with BF16 activations the scores also round q (about 2^-9 of each
// product), which the tolerance allows for.
TEST(MlaAttention, Bf16CacheMatchesReferenceOnRoundedValues) {
  ThreadPool pool(2);
  const LinearPrecision before = linear_precision();
  const std::vector<Case> cases = {{1, 16, 128, 512, 64, 0}, {1, 16, 128, 512, 64, 700}, {4, 16, 128, 512, 64, 511},
                                   {9, 4, 32, 32, 16, 70},   {40, 16, 128, 512, 64, 100}, {2, 4, 32, 40, 24, 90}};
  set_linear_precision(LinearPrecision::kExact);
  for (const Case& c : cases) check(c, &pool, DType::kBF16, 2e-5);
  if (bf16_activations_available()) {
    set_linear_precision(LinearPrecision::kBf16Activations);
    for (const Case& c : cases) check(c, &pool, DType::kBF16, 2e-2);
  }
  set_linear_precision(before);
}


// Decompressed K/V (long prefill chunks): out[i, h * v + j] = Σ_t softmax_t(scale * (q_nope · W_UK_h lat[t] +
// q_rope · rope[t])) (W_UV_h lat[t])[j] against a double-precision reference on the same values, kv_b_proj in
// BF16. Exact precision: float32 math (K/V from an exact linear); fast precision: the latent rounded to BF16
// for the K/V GEMM and q for the scores (about 2^-9 of each product), within 2e-2.
void check_decompressed(const Case& c, int64_t v_dim, ThreadPool* pool, DType dtype, double tol) {
  constexpr int64_t bs = 64;
  const int64_t dim = c.R + c.P, qk = c.nope + c.P, q_stride = c.H * qk + 5, ctx = c.start_pos + c.n;
  const int64_t nb = (ctx + bs - 1) / bs, ld_out = c.H * v_dim + 3;
  std::mt19937 rng(static_cast<uint32_t>(c.n * 31 + c.H * 7 + c.start_pos + v_dim));
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> q(static_cast<size_t>(c.n * q_stride));
  for (float& x : q) x = nd(rng) * 0.5f;
  std::vector<float> cache(static_cast<size_t>(nb * bs * dim), NAN);  // slots past the context stay NaN
  for (int64_t t = 0; t < ctx * dim; ++t) cache[static_cast<size_t>(t)] = nd(rng);
  std::vector<uint16_t> cache16(cache.size());
  if (dtype == DType::kBF16) {
    for (size_t t = 0; t < cache.size(); ++t) {
      cache16[t] = f32_to_bf16(cache[t]);
      if (static_cast<int64_t>(t) < ctx * dim) cache[t] = bf16_to_f32(cache16[t]);
    }
  }
  std::vector<const void*> blocks;
  for (int64_t b = 0; b < nb; ++b) {
    blocks.push_back(dtype == DType::kBF16 ? static_cast<const void*>(cache16.data() + b * bs * dim)
                                           : static_cast<const void*>(cache.data() + b * bs * dim));
  }
  const int64_t kv_rows = c.H * (c.nope + v_dim);
  std::vector<uint16_t> kv_b(static_cast<size_t>(kv_rows * c.R));
  for (auto& w : kv_b) w = f32_to_bf16(nd(rng) * 0.2f);
  const WeightView kvb{kv_b.data(), DType::kBF16, kv_rows, c.R};
  const float scale = 1.f / std::sqrt(static_cast<float>(qk));
  std::vector<float> out(static_cast<size_t>(c.n * ld_out), NAN);
  mla_attention_decompressed(q.data(), q_stride, c.n, kvb, c.H, c.nope, v_dim, c.P, c.start_pos, blocks.data(), dtype, bs,
                             scale, out.data(), ld_out, pool);
  // K_h and V_h of every context position in double: [H][ctx][nope], [H][ctx][v].
  std::vector<double> kr(static_cast<size_t>(c.H * ctx * c.nope)), vr(static_cast<size_t>(c.H * ctx * v_dim));
  for (int64_t h = 0; h < c.H; ++h) {
    for (int64_t t = 0; t < ctx; ++t) {
      for (int64_t j = 0; j < c.nope + v_dim; ++j) {
        double acc = 0;
        for (int64_t r = 0; r < c.R; ++r) acc += double(kvb.at(h * (c.nope + v_dim) + j, r)) * cache[t * dim + r];
        if (j < c.nope) kr[static_cast<size_t>((h * ctx + t) * c.nope + j)] = acc;
        else vr[static_cast<size_t>((h * ctx + t) * v_dim + j - c.nope)] = acc;
      }
    }
  }
  int bad = 0;
  for (int64_t i = 0; i < c.n; ++i) {
    for (int64_t h = 0; h < c.H; ++h) {
      const int64_t n_ctx = c.start_pos + i + 1;
      std::vector<double> s(static_cast<size_t>(n_ctx)), o(static_cast<size_t>(v_dim), 0.0);
      double mx = -INFINITY;
      for (int64_t t = 0; t < n_ctx; ++t) {
        double d = 0;
        for (int64_t j = 0; j < c.nope; ++j) d += double(q[i * q_stride + h * qk + j]) * kr[static_cast<size_t>((h * ctx + t) * c.nope + j)];
        for (int64_t j = 0; j < c.P; ++j) d += double(q[i * q_stride + h * qk + c.nope + j]) * cache[t * dim + c.R + j];
        s[t] = d * scale;
        mx = std::max(mx, s[t]);
      }
      double sum = 0;
      for (double& x : s) sum += (x = std::exp(x - mx));
      for (int64_t t = 0; t < n_ctx; ++t) {
        for (int64_t j = 0; j < v_dim; ++j) o[j] += s[t] / sum * vr[static_cast<size_t>((h * ctx + t) * v_dim + j)];
      }
      for (int64_t j = 0; j < v_dim; ++j) {
        const double got = out[i * ld_out + h * v_dim + j], want = o[j];
        if (!(std::fabs(got - want) <= tol + tol * std::fabs(want)) && bad++ < 5) {
          ADD_FAILURE() << dtype_name(dtype) << " n=" << c.n << " H=" << c.H << " start=" << c.start_pos << " row " << i
                        << " head " << h << " col " << j << ": expected " << want << ", found " << got;
        }
      }
    }
  }
  EXPECT_EQ(bad, 0);
  // Padding columns between rows of out are not written.
  for (int64_t i = 0; i < c.n; ++i) EXPECT_TRUE(std::isnan(out[i * ld_out + c.H * v_dim])) << "row " << i;
}

TEST(MlaAttentionDecompressed, MatchesReferenceExactAndFast) {
  ThreadPool pool(2);
  const LinearPrecision before = linear_precision();
  // n spans one and several 96-row query blocks; start_pos 0, inside and past a 64-slot cache block; H not a
  // multiple of anything; R + P past 512 (the K/V GEMM's context slices) via ctx 600.
  const std::vector<Case> cases = {{5, 3, 16, 32, 8, 0}, {40, 2, 16, 32, 8, 70}, {130, 3, 32, 48, 16, 0},
                                   {200, 2, 16, 32, 16, 400}, {97, 1, 8, 16, 8, 64}};
  for (DType dt : {DType::kF32, DType::kBF16}) {
    set_linear_precision(LinearPrecision::kExact);
    for (const Case& c : cases) check_decompressed(c, 24, &pool, dt, 2e-4);
    check_decompressed(cases[1], 16, nullptr, dt, 2e-4);
    if (bf16_activations_available()) {
      set_linear_precision(LinearPrecision::kBf16Activations);
      for (const Case& c : cases) check_decompressed(c, 24, &pool, dt, 2e-2);
    }
  }
  set_linear_precision(before);
}

// The choice: decode steps and short chunks absorb, long chunks of a Coder-V2-Lite-shaped layer decompress,
// and the forced modes do what they say (never for decode steps, never past the memory bound).
TEST(MlaAttentionDecompressed, ChoosesByCost) {
  const MlaPrefill before = mla_prefill();
  set_mla_prefill(MlaPrefill::kAuto);
  // Coder-V2-Lite: H 16, nope 128, v 128, R 512, P 64.
  EXPECT_FALSE(mla_prefill_decompressed(1, 0, 16, 128, 128, 512, 64, DType::kF32));
  EXPECT_FALSE(mla_prefill_decompressed(1, 2048, 16, 128, 128, 512, 64, DType::kF32));
  EXPECT_FALSE(mla_prefill_decompressed(16, 2048, 16, 128, 128, 512, 64, DType::kF32));
  EXPECT_TRUE(mla_prefill_decompressed(512, 0, 16, 128, 128, 512, 64, DType::kF32));
  EXPECT_TRUE(mla_prefill_decompressed(512, 2048, 16, 128, 128, 512, 64, DType::kF32));
  EXPECT_FALSE(mla_prefill_decompressed(512, 100000, 16, 128, 128, 512, 64, DType::kF32));  // past 128 MiB
  set_mla_prefill(MlaPrefill::kDecompressed);
  EXPECT_TRUE(mla_prefill_decompressed(16, 2048, 16, 128, 128, 512, 64, DType::kF32));
  EXPECT_FALSE(mla_prefill_decompressed(4, 0, 16, 128, 128, 512, 64, DType::kF32));
  set_mla_prefill(MlaPrefill::kAbsorbed);
  EXPECT_FALSE(mla_prefill_decompressed(512, 0, 16, 128, 128, 512, 64, DType::kF32));
  EXPECT_EQ(parse_mla_prefill("decompressed"), MlaPrefill::kDecompressed);
  EXPECT_FALSE(parse_mla_prefill("absorb").has_value());
  set_mla_prefill(before);
}

}  // namespace
}  // namespace latent::cpu
