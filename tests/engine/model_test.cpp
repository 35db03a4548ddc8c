// Unit tests of the model's parts against plain references: YaRN inv_freq and interleaved RoPE, every
// routing variant, absorbed MLA attention vs the naive form, the KvCache allocator, and batching.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <complex>
#include <numeric>
#include <random>

#include "engine/moe.h"
#include "engine/rope.h"
#include "kernels/cpu/attention.h"
#include "tests/engine/model_test_util.h"

namespace latent {
namespace {

// ---- RoPE / YaRN

TEST(Rope, YarnInvFreqMatchesTheReadmeFormulaInDouble) {
  for (auto [dim, theta, factor, orig, bf, bs] : {std::tuple{16, 1e4, 40.0, 4096, 32.0, 1.0},
                                                  std::tuple{64, 1e4, 40.0, 4096, 32.0, 1.0},
                                                  std::tuple{64, 5e5, 8.0, 8192, 16.0, 2.0}}) {
    auto D = [&](double n) { return dim * std::log(orig / (2 * M_PI * n)) / (2 * std::log(theta)); };
    double low = std::max(std::floor(D(bf)), 0.0), high = std::min(std::ceil(D(bs)), dim - 1.0);
    if (low == high) high += 0.001;
    std::vector<float> got = yarn_inv_freq(dim, theta, factor, orig, bf, bs);
    ASSERT_EQ(got.size(), static_cast<size_t>(dim / 2));
    for (int i = 0; i < dim / 2; ++i) {
      double f = std::pow(theta, -2.0 * i / dim);
      double r = std::clamp((i - low) / (high - low), 0.0, 1.0);
      double want = f / factor * r + f * (1 - r);
      EXPECT_NEAR(got[i], want, 1e-6 * want) << "dim " << dim << " i " << i;
    }
    EXPECT_NEAR(got[0], 1.0, 1e-7);                           // fastest dim untouched
    EXPECT_NEAR(got[dim / 2 - 1], std::pow(theta, -(dim - 2.0) / dim) / factor, 1e-6 * got[dim / 2 - 1]);  // slowest / factor
  }
}

TEST(Rope, RotatesInterleavedPairsLikeComplexMultiplication) {
  std::vector<float> inv = rope_inv_freq(8, 1e4);
  std::vector<float> x = {1, 2, 3, 4, 5, 6, 7, 8}, cs(8);
  const int64_t pos = 37;
  rope_cos_sin(inv, pos, cs.data());
  std::vector<float> y = x;
  rope_rotate(y.data(), 8, cs.data());
  for (int i = 0; i < 4; ++i) {
    std::complex<double> z(x[2 * i], x[2 * i + 1]);
    z *= std::polar(1.0, pos * std::pow(1e4, -2.0 * i / 8));
    EXPECT_NEAR(y[2 * i], z.real(), 1e-4);
    EXPECT_NEAR(y[2 * i + 1], z.imag(), 1e-4);
  }
}

// ---- routing

ModelConfig router_config(TopkMethod m, ScoringFunc f, int64_t E, int64_t K, int64_t groups, int64_t topk_group,
                          bool norm, double scale) {
  ModelConfig c;
  c.n_routed_experts = E;
  c.num_experts_per_tok = K;
  c.topk_method = m;
  c.scoring_func = f;
  c.n_group = groups;
  c.topk_group = topk_group;
  c.norm_topk_prob = norm;
  c.routed_scaling_factor = scale;
  return c;
}

// Plain reference: scores, masked group selection, then K rounds of argmax.
void reference_route(const ModelConfig& c, const std::vector<float>& logits, const std::vector<float>& bias,
                     std::vector<int32_t>* idx, std::vector<float>* w) {
  const int64_t E = c.n_routed_experts, G = c.n_group, per = E / G;
  std::vector<double> s(E);
  if (c.scoring_func == ScoringFunc::kSoftmax) {
    double m = *std::max_element(logits.begin(), logits.end()), z = 0;
    for (int64_t e = 0; e < E; ++e) z += std::exp(logits[e] - m);
    for (int64_t e = 0; e < E; ++e) s[e] = std::exp(logits[e] - m) / z;
  } else {
    for (int64_t e = 0; e < E; ++e) s[e] = 1 / (1 + std::exp(-static_cast<double>(logits[e])));
  }
  std::vector<double> choice = s;
  if (c.topk_method == TopkMethod::kNoauxTc) for (int64_t e = 0; e < E; ++e) choice[e] += bias[e];
  std::vector<bool> allowed(E, true);
  if (c.topk_method != TopkMethod::kGreedy) {
    std::vector<double> gs(G);
    for (int64_t g = 0; g < G; ++g) {
      std::vector<double> v(choice.begin() + g * per, choice.begin() + (g + 1) * per);
      std::sort(v.rbegin(), v.rend());
      gs[g] = c.topk_method == TopkMethod::kNoauxTc ? v[0] + v[1] : v[0];
    }
    std::vector<bool> keep(G, false);
    for (int64_t r = 0; r < c.topk_group; ++r) {
      int64_t best = -1;
      for (int64_t g = 0; g < G; ++g) if (!keep[g] && (best < 0 || gs[g] > gs[best])) best = g;
      keep[best] = true;
    }
    for (int64_t e = 0; e < E; ++e) allowed[e] = keep[e / per];
  }
  idx->clear();
  for (int64_t k = 0; k < c.num_experts_per_tok; ++k) {
    int64_t best = -1;
    for (int64_t e = 0; e < E; ++e) {
      if (allowed[e] && std::find(idx->begin(), idx->end(), e) == idx->end() && (best < 0 || choice[e] > choice[best])) best = e;
    }
    idx->push_back(static_cast<int32_t>(best));
  }
  std::sort(idx->begin(), idx->end());
  double sum = 0;
  for (auto e : *idx) sum += s[e];
  w->clear();
  for (auto e : *idx) w->push_back(static_cast<float>((c.norm_topk_prob ? s[e] / sum : s[e]) * c.routed_scaling_factor));
}

TEST(Routing, EveryVariantMatchesThePlainReference) {
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.f, 1.f);
  const std::vector<ModelConfig> configs = {
      router_config(TopkMethod::kGreedy, ScoringFunc::kSoftmax, 8, 2, 1, 1, false, 1.0),        // V2-Lite
      router_config(TopkMethod::kGreedy, ScoringFunc::kSoftmax, 16, 6, 1, 1, true, 1.0),
      router_config(TopkMethod::kGroupLimitedGreedy, ScoringFunc::kSoftmax, 32, 6, 8, 3, false, 16.0),  // V2
      router_config(TopkMethod::kNoauxTc, ScoringFunc::kSigmoid, 16, 4, 4, 2, true, 2.5),        // V3-tiny
      router_config(TopkMethod::kNoauxTc, ScoringFunc::kSigmoid, 256, 8, 8, 4, true, 2.5),       // V3
  };
  for (const ModelConfig& c : configs) {
    const int64_t E = c.n_routed_experts, K = c.num_experts_per_tok;
    for (int trial = 0; trial < 50; ++trial) {
      std::vector<float> logits(E), bias(E);
      for (auto& v : logits) v = nd(rng);
      for (auto& v : bias) v = 0.3f * nd(rng);
      std::vector<int32_t> idx(K), want_idx;
      std::vector<float> w(K), want_w;
      route_token(c, logits.data(), c.topk_method == TopkMethod::kNoauxTc ? bias.data() : nullptr, idx.data(), w.data());
      reference_route(c, logits, bias, &want_idx, &want_w);
      ASSERT_EQ(idx, want_idx) << topk_method_name(c.topk_method) << " E=" << E << " trial " << trial;
      for (int64_t k = 0; k < K; ++k) EXPECT_NEAR(w[k], want_w[k], 1e-5 * std::max(1.f, want_w[k]));
    }
  }
}

TEST(Routing, NoauxTcHandExample) {
  // 8 experts in 4 groups of 2, keep 2 groups, pick 2. Logits 0 -> sigmoid 0.5 everywhere; the bias decides.
  ModelConfig c = router_config(TopkMethod::kNoauxTc, ScoringFunc::kSigmoid, 8, 2, 4, 2, true, 2.0);
  std::vector<float> logits(8, 0.f);
  // Group scores (sum of the two biased choices): g0 = 0.9 + 0.5, g1 = 0.5 + 0.5, g2 = 1.0 + 0.5,
  // g3 = 0.8 + 0.5: groups g2 and g0 are kept; experts 4 (1.0) and 0 (0.9) win over 6 (0.8, group g3).
  std::vector<float> bias = {0.4f, 0.f, 0.f, 0.f, 0.5f, 0.f, 0.3f, 0.f};
  int32_t idx[2];
  float w[2];
  route_token(c, logits.data(), bias.data(), idx, w);
  EXPECT_EQ(idx[0], 0);
  EXPECT_EQ(idx[1], 4);
  EXPECT_FLOAT_EQ(w[0], 1.0f);  // unbiased 0.5 / (0.5 + 0.5) * 2.0
  EXPECT_FLOAT_EQ(w[1], 1.0f);
}

// ---- MLA: absorbed attention over the latent vs naive per-head attention

TEST(MlaAttention, AbsorbedEqualsNaive) {
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.f, 0.5f);
  const int64_t H = 3, nope = 8, P = 4, vd = 6, R = 10, start = 70, n = 5, B = 64;
  const int64_t qs = H * (nope + P);
  std::vector<float> kvb(H * (nope + vd) * R), q(n * qs), cache(2 * B * (R + P));
  for (auto* v : {&kvb, &q, &cache}) for (auto& x : *v) x = nd(rng);
  // Each dtype's stored values and the float32 values both paths must agree on.
  std::vector<uint16_t> kvb16(kvb.size());
  std::vector<uint8_t> kvb8(kvb.size());
  std::vector<float> f32 = kvb, from16(kvb.size()), from8(kvb.size());
  float amax = 0;
  for (float v : kvb) amax = std::max(amax, std::fabs(v));
  const float s8 = amax / 448.f;
  for (size_t i = 0; i < kvb.size(); ++i) {
    kvb16[i] = f32_to_bf16(kvb[i]);
    from16[i] = bf16_to_f32(kvb16[i]);
    kvb8[i] = f32_to_fp8e4m3(kvb[i] / s8);
    from8[i] = fp8e4m3_to_f32(kvb8[i]) * s8;
  }
  const float scale = 0.3f;
  for (DType dt : {DType::kF32, DType::kBF16, DType::kF8E4M3}) {
    cpu::WeightView w{dt == DType::kF32 ? static_cast<const void*>(f32.data())
                      : dt == DType::kBF16 ? static_cast<const void*>(kvb16.data()) : kvb8.data(),
                      dt, H * (nope + vd), R};
    if (dt == DType::kF8E4M3) w.scale_inv = &s8;
    kvb = dt == DType::kF32 ? f32 : dt == DType::kBF16 ? from16 : from8;
    std::vector<float> q_lat(n * H * R), o_lat(n * H * R), out(n * H * vd);
    const void* blocks[2] = {cache.data(), cache.data() + B * (R + P)};
    cpu::mla_absorb_q(q.data(), n, qs, w, H, nope, P, vd, q_lat.data());
    cpu::mla_attention(q_lat.data(), q.data(), qs, n, H, nope, R, P, start, blocks, DType::kF32, B, scale, o_lat.data());
    cpu::mla_apply_uv(o_lat.data(), n, w, H, nope, vd, out.data());
    // naive: k_nope = W_UK latent, v = W_UV latent per position and head
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t h = 0; h < H; ++h) {
        std::vector<double> sc(start + i + 1);
        for (int64_t t = 0; t <= start + i; ++t) {
          const float* lat = cache.data() + t * (R + P);
          double s = 0;
          for (int64_t j = 0; j < nope; ++j) {
            double k = 0;
            for (int64_t c = 0; c < R; ++c) k += kvb[(h * (nope + vd) + j) * R + c] * lat[c];
            s += q[i * qs + h * (nope + P) + j] * k;
          }
          for (int64_t j = 0; j < P; ++j) s += q[i * qs + h * (nope + P) + nope + j] * lat[R + j];
          sc[t] = s * scale;
        }
        double m = *std::max_element(sc.begin(), sc.end()), z = 0;
        for (auto& v : sc) z += (v = std::exp(v - m));
        for (int64_t j = 0; j < vd; ++j) {
          double o = 0;
          for (int64_t t = 0; t <= start + i; ++t) {
            double v = 0;
            for (int64_t c = 0; c < R; ++c) v += kvb[(h * (nope + vd) + nope + j) * R + c] * cache[t * (R + P) + c];
            o += sc[t] / z * v;
          }
          EXPECT_NEAR(out[i * H * vd + h * vd + j], o, 1e-5) << dtype_name(dt) << " token " << i << " head " << h;
        }
      }
    }
  }
}

// ---- KvCache

TEST(KvCache, AllocatorRefCountsAndCapacity) {
  KvCache c(2, 4, 2, 3);
  EXPECT_EQ(c.capacity(), 3);
  EXPECT_EQ(c.free_count(), 3);
  auto a = c.allocate(2);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(c.free_count(), 1);
  EXPECT_EQ(c.ref_count((*a)[0]), 1);
  auto too_many = c.allocate(2);
  ASSERT_FALSE(too_many.ok());
  EXPECT_EQ(too_many.error().code, ErrorCode::kResourceExhausted);
  EXPECT_EQ(c.free_count(), 1);  // all or nothing
  ASSERT_TRUE(c.ref((*a)[0]).ok());
  EXPECT_EQ(c.ref_count((*a)[0]), 2);
  ASSERT_TRUE(c.unref((*a)[0]).ok());
  EXPECT_EQ(c.free_count(), 1);
  ASSERT_TRUE(c.unref((*a)[0]).ok());
  EXPECT_EQ(c.free_count(), 2);
  EXPECT_FALSE(c.unref((*a)[0]).ok());  // already free
  EXPECT_FALSE(c.ref(99).ok());
  auto b = c.allocate();
  ASSERT_TRUE(b.ok());
  auto d = c.allocate();
  ASSERT_TRUE(d.ok());
  EXPECT_FALSE(c.allocate().ok());
  c.token(1, *b, 5)[3] = 42.f;
  ASSERT_TRUE(c.copy_block(*b, *d, 6).ok());
  EXPECT_EQ(c.token(1, *d, 5)[3], 42.f);
  EXPECT_EQ(c.token_dim(), 6);
  EXPECT_EQ(KvCache::blocks_needed(64), 1);
  EXPECT_EQ(KvCache::blocks_needed(65), 2);
}

// ---- the model: batching and input errors (v3-tiny)

TEST(DeepseekModel, BatchOfSequencesEqualsEachAlone) {
  auto model = test::load_model(test::golden_dir("v3-tiny"));
  ASSERT_TRUE(model);
  const int64_t V = model->config().vocab_size;
  auto cache = KvCache::for_model(model->config(), 8);
  ASSERT_TRUE(cache.ok());
  std::vector<int32_t> a = {5, 17, 300, 42, 7, 99, 128}, b = {400, 3, 3, 250}, b_more = {11, 12};
  // Alone: a (all logits), b then b_more (last logit).
  std::vector<float> a_alone, b_alone;
  {
    test::SequenceRunner ra(*model, *cache, 16), rb(*model, *cache, 16);
    a_alone = ra.feed(a).logits;
    rb.feed(b);
    b_alone = rb.feed(b_more, false).logits;
  }
  // Together: b's first part cached alone, then one batch with a (prefill) and b_more (continuation).
  auto ba = cache->allocate(1), bb = cache->allocate(1);
  ASSERT_TRUE(ba.ok() && bb.ok());
  SequenceInput first{b, 0, *bb, false};
  ASSERT_TRUE(model->forward(std::span<const SequenceInput>(&first, 1), *cache).ok());
  std::vector<SequenceInput> batch = {{a, 0, *ba, true}, {b_more, 4, *bb, false}};
  auto r = model->forward(batch, *cache);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  ASSERT_EQ(r->logit_offset, (std::vector<int64_t>{0, 7, 8}));
  ASSERT_EQ(r->logits.size(), static_cast<size_t>(8 * V));
  test::expect_close(r->logits.data(), a_alone.data(), 7 * V, 1e-5, 0, "batched a");
  test::expect_close(r->logits_row(7), b_alone.data(), V, 1e-5, 0, "batched b");
}

TEST(DeepseekModel, LongSequenceAcrossScatteredBlocksPrefillEqualsChunksAndDecode) {
  auto model = test::load_model(test::golden_dir("v2lite-tiny"));
  ASSERT_TRUE(model);
  const int64_t V = model->config().vocab_size, N = 150;
  std::mt19937 rng(5);
  std::vector<int32_t> ids(N);
  for (auto& t : ids) t = static_cast<int32_t>(rng() % V);
  auto cache = KvCache::for_model(model->config(), 12);
  ASSERT_TRUE(cache.ok());
  // Sequence A: blocks 0..2 in order, one prefill.
  auto a = cache->allocate(3);
  ASSERT_TRUE(a.ok());
  SequenceInput whole{ids, 0, *a, true};
  auto ra = model->forward(std::span<const SequenceInput>(&whole, 1), *cache);
  ASSERT_TRUE(ra.ok());
  // Sequence B: a scattered block table, chunks of 37 then single-token decode for the last 10.
  auto pool = cache->allocate(6);
  ASSERT_TRUE(pool.ok());
  std::vector<BlockId> table = {(*pool)[4], (*pool)[1], (*pool)[5]};
  std::vector<float> logits;
  int64_t at = 0;
  while (at < N) {
    const int64_t len = at < N - 10 ? std::min<int64_t>(37, N - 10 - at) : 1;
    std::vector<int32_t> chunk(ids.begin() + at, ids.begin() + at + len);
    SequenceInput in{chunk, at, table, true};
    auto r = model->forward(std::span<const SequenceInput>(&in, 1), *cache);
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    logits.insert(logits.end(), r->logits.begin(), r->logits.end());
    at += len;
  }
  ASSERT_EQ(logits.size(), ra->logits.size());
  test::expect_close(logits.data(), ra->logits.data(), logits.size(), 1e-5, 0, "150 tokens over 3 blocks");
}

TEST(DeepseekModel, BadInputsAreErrors) {
  auto model = test::load_model(test::golden_dir("v2lite-tiny"));
  ASSERT_TRUE(model);
  auto cache = KvCache::for_model(model->config(), 2);
  ASSERT_TRUE(cache.ok());
  auto blk = cache->allocate(1);
  ASSERT_TRUE(blk.ok());
  std::vector<int32_t> ok = {1, 2}, bad = {1, 512}, many(65, 3);
  auto run = [&](const std::vector<int32_t>& t, std::span<const BlockId> blocks) {
    SequenceInput in{t, 0, blocks, false};
    return model->forward(std::span<const SequenceInput>(&in, 1), *cache);
  };
  auto r = run(bad, *blk);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("token id 512 out of range [0, 512)"), std::string::npos) << r.error().message;
  r = run(many, *blk);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("expected a block table of at least 2 blocks for 65 tokens, found 1"), std::string::npos)
      << r.error().message;
  std::vector<BlockId> freed = {1};
  r = run(ok, freed);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("expected an allocated block"), std::string::npos) << r.error().message;
  KvCache wrong(3, 32, 16, 1);
  auto wb = wrong.allocate();
  SequenceInput in{ok, 0, std::span<const BlockId>(&*wb, 1), false};
  r = model->forward(std::span<const SequenceInput>(&in, 1), wrong);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("KvCache: expected 4 layers"), std::string::npos) << r.error().message;
  MtpSequenceInput m{ok, nullptr, 0, *blk, false};
  auto rm = model->forward_mtp(std::span<const MtpSequenceInput>(&m, 1), *cache);
  ASSERT_FALSE(rm.ok());
  EXPECT_EQ(rm.error().code, ErrorCode::kUnsupported);
}

}  // namespace
}  // namespace latent
