// MoE on the device against engine/moe.h: the router for every routing variant, and the selected experts
// against the CPU MLP of each chosen expert, weighted, for a few tokens and for many (grouped by expert).
#include "kernels/cuda/moe.h"

#include <gtest/gtest.h>

#include <memory>
#include <tuple>
#include <vector>

#include "engine/config.h"
#include "engine/moe.h"
#include "tests/cuda/cuda_test_util.h"

namespace latent::cuda {
namespace {

using testing::HostWeight;
using testing::random_floats;
using testing::rel_err;

RouterParams params_of(const ModelConfig& c) {
  RouterParams p;
  p.n_experts = c.n_routed_experts, p.top_k = c.num_experts_per_tok, p.n_group = c.n_group;
  p.topk_group = c.topk_group, p.sigmoid = c.scoring_func == ScoringFunc::kSigmoid;
  p.method = static_cast<RouterParams::Method>(static_cast<int>(c.topk_method));
  p.norm_topk_prob = c.norm_topk_prob, p.routed_scaling_factor = static_cast<float>(c.routed_scaling_factor);
  return p;
}

class CudaRouter : public ::testing::TestWithParam<int> {};

TEST_P(CudaRouter, MatchesRouteToken) {
  LATENT_REQUIRE_GPU();
  ModelConfig c;
  switch (GetParam()) {
    case 0:  // Coder-V2-Lite: softmax, greedy, 64 experts, top 6
      c.n_routed_experts = 64, c.num_experts_per_tok = 6, c.topk_method = TopkMethod::kGreedy;
      break;
    case 1:  // V2: softmax, group_limited_greedy
      c.n_routed_experts = 160, c.num_experts_per_tok = 6, c.topk_method = TopkMethod::kGroupLimitedGreedy;
      c.n_group = 8, c.topk_group = 3, c.routed_scaling_factor = 16.0;
      break;
    default:  // V3: sigmoid, noaux_tc with bias, normalized
      c.n_routed_experts = 256, c.num_experts_per_tok = 8, c.topk_method = TopkMethod::kNoauxTc;
      c.scoring_func = ScoringFunc::kSigmoid, c.n_group = 8, c.topk_group = 4, c.norm_topk_prob = true;
      c.routed_scaling_factor = 2.5;
  }
  const int64_t n = 37, E = c.n_routed_experts, K = c.num_experts_per_tok;
  const std::vector<float> logits = random_floats(n * E, 5, -3.f, 3.f), bias = random_floats(E, 6, -0.1f, 0.1f);
  const bool use_bias = c.topk_method == TopkMethod::kNoauxTc;
  std::vector<int32_t> want_idx(static_cast<size_t>(n * K));
  std::vector<float> want_w(static_cast<size_t>(n * K));
  for (int64_t t = 0; t < n; ++t) {
    route_token(c, logits.data() + t * E, use_bias ? bias.data() : nullptr, want_idx.data() + t * K, want_w.data() + t * K);
  }
  DeviceArray<float> dl(logits), db(bias), w(n * K);
  DeviceArray<int32_t> idx(n * K);
  ASSERT_TRUE(route(params_of(c), dl.data(), n, use_bias ? db.data() : nullptr, idx.data(), w.data(), nullptr).ok());
  EXPECT_EQ(idx.to_host(), want_idx);
  EXPECT_LT(rel_err(w.to_host(), want_w), 1e-5);
}

INSTANTIATE_TEST_SUITE_P(Variants, CudaRouter, ::testing::Values(0, 1, 2));

// E random experts [inter, d] / [d, inter] on the device and on the host.
struct Experts {
  std::vector<std::unique_ptr<HostWeight>> host;
  std::vector<MlpWeights> cpu;
  std::unique_ptr<DeviceArena> arena;
  ExpertTable table;
};
Result<Experts> make_experts(DType dt, int64_t E, int64_t d, int64_t inter) {
  Experts x;
  auto arena = DeviceArena::create(size_t{1} << 24);
  if (!arena.ok()) return arena.error();
  x.arena = std::make_unique<DeviceArena>(std::move(*arena));
  std::vector<DeviceWeight> gate, up, down;
  for (int64_t e = 0; e < E; ++e) {
    MlpWeights m;
    for (auto [view, dev, rows, cols] : {std::tuple{&m.gate_proj, &gate, inter, d}, std::tuple{&m.up_proj, &up, inter, d},
                                         std::tuple{&m.down_proj, &down, d, inter}}) {
      x.host.push_back(std::make_unique<HostWeight>(dt, rows, cols, static_cast<uint32_t>(100 + x.host.size())));
      *view = x.host.back()->view;
      LATENT_ASSIGN_OR_RETURN(DeviceWeight w, x.arena->upload(*view));
      dev->push_back(w);
    }
    x.cpu.push_back(m);
  }
  LATENT_ASSIGN_OR_RETURN(x.table, make_expert_table(*x.arena, gate, up, down));
  return x;
}

// y0 + Σ_k wt[t, k] · MLP_{idx[t, k]}(x_t) on the host.
std::vector<float> cpu_moe(const Experts& ex, const std::vector<float>& x, int64_t n, int64_t d, int64_t K,
                           const std::vector<int32_t>& idx, const std::vector<float>& wt, std::vector<float> y) {
  std::vector<float> tmp(static_cast<size_t>(d));
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t k = 0; k < K; ++k) {
      mlp_forward(ex.cpu[static_cast<size_t>(idx[t * K + k])], x.data() + t * d, 1, tmp.data(), nullptr);
      for (int64_t j = 0; j < d; ++j) y[t * d + j] += wt[t * K + k] * tmp[j];
    }
  }
  return y;
}

TEST(CudaMoe, SelectedExpertsMatchCpuMlps) {
  LATENT_REQUIRE_GPU();
  for (DType dt : {DType::kBF16, DType::kF8E4M3}) {
    const int64_t E = 6, d = 256, inter = 136, n = 3, K = 2;
    auto ex = make_experts(dt, E, d, inter);
    ASSERT_TRUE(ex.ok()) << ex.error().to_string();
    const std::vector<float> x = random_floats(n * d, 7), y0 = random_floats(n * d, 8);
    const std::vector<int32_t> idx = {0, 5, 2, 3, 1, 5};
    const std::vector<float> wt = {0.7f, 0.3f, 1.5f, -0.2f, 0.4f, 0.6f};
    const std::vector<float> want = cpu_moe(*ex, x, n, d, K, idx, wt, y0);
    DeviceArray<float> dx(x), dy(y0), dw(wt), h(n * K * inter);
    DeviceArray<int32_t> di(idx);
    ASSERT_TRUE(moe_experts(ex->table, dx.data(), n, K, di.data(), dw.data(), h.data(), dy.data(), true, nullptr).ok());
    EXPECT_LT(rel_err(dy.to_host(), want), 1e-5) << dtype_name(dt);
  }
}

// Many tokens take the grouped path (tokens sorted by expert, each expert's rows read once per tile of its
// tokens): the result matches the CPU and, bit for bit, each token run alone (the per-token path).
TEST(CudaMoe, TokensGroupedByExpertEqualEachTokenAlone) {
  LATENT_REQUIRE_GPU();
  for (DType dt : {DType::kBF16, DType::kF8E4M3}) {
    const int64_t E = 6, d = 256, inter = 136, n = 29, K = 3;  // 87 entries: several tiles per expert
    auto ex = make_experts(dt, E, d, inter);
    ASSERT_TRUE(ex.ok()) << ex.error().to_string();
    const std::vector<float> x = random_floats(n * d, 17), y0 = random_floats(n * d, 18);
    const std::vector<float> wt = random_floats(n * K, 19, -1.f, 1.f);
    std::vector<int32_t> idx(static_cast<size_t>(n * K));
    for (int64_t t = 0; t < n; ++t) {
      for (int64_t k = 0; k < K; ++k) idx[t * K + k] = static_cast<int32_t>((t * 5 + k * 2 + t / 7) % E);
    }
    const std::vector<float> want = cpu_moe(*ex, x, n, d, K, idx, wt, y0);
    DeviceArray<float> dx(x), dy(y0), dw(wt), h(n * K * inter);
    DeviceArray<int32_t> di(idx);
    ASSERT_TRUE(moe_experts(ex->table, dx.data(), n, K, di.data(), dw.data(), h.data(), dy.data(), true, nullptr).ok());
    const std::vector<float> got = dy.to_host();
    EXPECT_LT(rel_err(got, want), 1e-5) << dtype_name(dt);
    for (int64_t t = 0; t < n; ++t) {
      DeviceArray<float> x1(std::vector<float>(x.begin() + t * d, x.begin() + (t + 1) * d));
      DeviceArray<float> y1(std::vector<float>(y0.begin() + t * d, y0.begin() + (t + 1) * d));
      DeviceArray<float> w1(std::vector<float>(wt.begin() + t * K, wt.begin() + (t + 1) * K)), h1(K * inter);
      DeviceArray<int32_t> i1(std::vector<int32_t>(idx.begin() + t * K, idx.begin() + (t + 1) * K));
      ASSERT_TRUE(moe_experts(ex->table, x1.data(), 1, K, i1.data(), w1.data(), h1.data(), y1.data(), true, nullptr).ok());
      ASSERT_EQ(y1.to_host(), std::vector<float>(got.begin() + t * d, got.begin() + (t + 1) * d)) << "token " << t;
    }
  }
}

}  // namespace
}  // namespace latent::cuda
