#include "engine/moe.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace latent {

Result<MlpWeights> MlpWeights::load(const Weights& w, const std::string& prefix, int64_t d, int64_t inter) {
  MlpWeights m;
  LATENT_ASSIGN_OR_RETURN(m.gate_proj, w.matrix(prefix + ".gate_proj.weight", inter, d));
  LATENT_ASSIGN_OR_RETURN(m.up_proj, w.matrix(prefix + ".up_proj.weight", inter, d));
  LATENT_ASSIGN_OR_RETURN(m.down_proj, w.matrix(prefix + ".down_proj.weight", d, inter));
  return m;
}

Result<MoeWeights> MoeWeights::load(const Weights& w, const ModelConfig& c, const std::string& prefix) {
  MoeWeights m;
  const int64_t d = c.hidden_size, E = c.n_routed_experts;
  LATENT_ASSIGN_OR_RETURN(const TensorInfo* g, w.get(prefix + ".gate.weight", {DType::kF32, DType::kBF16, DType::kF16}, {E, d}));
  m.gate = cpu::WeightView{g->data, g->dtype, E, d};
  const std::string bias = prefix + ".gate.e_score_correction_bias";
  if (c.topk_method == TopkMethod::kNoauxTc) {
    LATENT_ASSIGN_OR_RETURN(m.e_score_correction_bias, w.vector(bias, E));
  } else if (w.has(bias)) {
    LATENT_ASSIGN_OR_RETURN(m.e_score_correction_bias, w.vector(bias, E));
  }
  m.experts.reserve(static_cast<size_t>(E));
  for (int64_t e = 0; e < E; ++e) {
    LATENT_ASSIGN_OR_RETURN(MlpWeights ex, MlpWeights::load(w, prefix + ".experts." + std::to_string(e), d,
                                                             c.moe_intermediate_size));
    m.experts.push_back(ex);
  }
  if (c.n_shared_experts > 0) {
    m.has_shared = true;
    LATENT_ASSIGN_OR_RETURN(m.shared_experts, MlpWeights::load(w, prefix + ".shared_experts", d,
                                                               c.moe_intermediate_size * c.n_shared_experts));
  }
  return m;
}

void route_token(const ModelConfig& c, const float* logits, const float* bias, int32_t* idx, float* weight) {
  const int64_t E = c.n_routed_experts, K = c.num_experts_per_tok;
  std::vector<float> s(logits, logits + E);
  if (c.scoring_func == ScoringFunc::kSoftmax) {
    cpu::softmax(s.data(), E);
  } else {
    for (auto& v : s) v = 1.f / (1.f + std::exp(-v));
  }
  // choice: the values experts are ranked by (biased under noaux_tc); s stays the unbiased score.
  std::vector<float> choice = s;
  if (c.topk_method == TopkMethod::kNoauxTc && bias) {
    for (int64_t e = 0; e < E; ++e) choice[static_cast<size_t>(e)] += bias[e];
  }
  if (c.topk_method != TopkMethod::kGreedy && c.n_group > 1) {
    const int64_t G = c.n_group, per = E / G;
    std::vector<float> group_score(static_cast<size_t>(G));
    for (int64_t g = 0; g < G; ++g) {
      std::vector<float> v(choice.begin() + g * per, choice.begin() + (g + 1) * per);
      std::sort(v.begin(), v.end(), std::greater<float>());
      group_score[static_cast<size_t>(g)] =
          c.topk_method == TopkMethod::kNoauxTc ? v[0] + v[1] : v[0];  // top-2 sum | max
    }
    std::vector<int64_t> order(static_cast<size_t>(G));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t a, int64_t b) { return group_score[a] > group_score[b]; });
    for (int64_t r = c.topk_group; r < G; ++r) {
      const int64_t g = order[static_cast<size_t>(r)];
      for (int64_t e = g * per; e < (g + 1) * per; ++e) choice[static_cast<size_t>(e)] = -INFINITY;
    }
  }
  std::vector<int32_t> order(static_cast<size_t>(E));
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + K, order.end(), [&](int32_t a, int32_t b) {
    return choice[a] > choice[b] || (choice[a] == choice[b] && a < b);
  });
  std::sort(order.begin(), order.begin() + K);
  double sum = 0;
  for (int64_t k = 0; k < K; ++k) {
    idx[k] = order[static_cast<size_t>(k)];
    weight[k] = s[static_cast<size_t>(idx[k])];
    sum += weight[k];
  }
  const bool norm = c.norm_topk_prob && K > 1;
  for (int64_t k = 0; k < K; ++k) {
    float w = norm ? static_cast<float>(weight[k] / (sum + 1e-20)) : weight[k];
    weight[k] = w * static_cast<float>(c.routed_scaling_factor);
  }
}

void mlp_forward(const MlpWeights& w, const float* x, int64_t n, float* y, cpu::ThreadPool* pool) {
  const int64_t inter = w.gate_proj.rows;
  std::vector<float> g(static_cast<size_t>(n * inter)), u(static_cast<size_t>(n * inter));
  cpu::linear(x, n, w.gate_proj, g.data(), pool);  // [n, inter]
  cpu::linear(x, n, w.up_proj, u.data(), pool);    // [n, inter]
  cpu::swiglu(g.data(), u.data(), n * inter, g.data());
  cpu::linear(g.data(), n, w.down_proj, y, pool);  // [n, d]
}

void moe_forward(const ModelConfig& c, const MoeWeights& w, const float* x, int64_t n, float* y,
                 cpu::ThreadPool* pool, int32_t* topk_idx, float* topk_weight) {
  const int64_t d = c.hidden_size, E = c.n_routed_experts, K = c.num_experts_per_tok;
  // Router: logits [n, E] in float32, then per-token top-k.
  std::vector<float> logits(static_cast<size_t>(n * E));
  cpu::linear(x, n, w.gate, logits.data(), pool);
  std::vector<float> bias;
  if (w.e_score_correction_bias.data) {
    bias.resize(static_cast<size_t>(E));
    for (int64_t e = 0; e < E; ++e) bias[static_cast<size_t>(e)] = w.e_score_correction_bias.at(0, e);
  }
  std::vector<int32_t> idx(static_cast<size_t>(n * K));
  std::vector<float> wt(static_cast<size_t>(n * K));
  for (int64_t t = 0; t < n; ++t) {
    route_token(c, logits.data() + t * E, bias.empty() ? nullptr : bias.data(), idx.data() + t * K,
                wt.data() + t * K);
  }
  if (topk_idx) std::copy(idx.begin(), idx.end(), topk_idx);
  if (topk_weight) std::copy(wt.begin(), wt.end(), topk_weight);

  // Group (token, weight) pairs by expert: each expert runs once over all its tokens.
  std::vector<std::vector<std::pair<int64_t, float>>> by_expert(static_cast<size_t>(E));
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t k = 0; k < K; ++k) by_expert[static_cast<size_t>(idx[t * K + k])].push_back({t, wt[t * K + k]});
  }
  std::fill(y, y + n * d, 0.f);
  std::vector<float> xs, ys;
  for (int64_t e = 0; e < E; ++e) {
    const auto& toks = by_expert[static_cast<size_t>(e)];
    if (toks.empty()) continue;
    const int64_t m = static_cast<int64_t>(toks.size());
    xs.resize(static_cast<size_t>(m * d));
    ys.resize(static_cast<size_t>(m * d));
    for (int64_t i = 0; i < m; ++i) std::copy(x + toks[i].first * d, x + (toks[i].first + 1) * d, xs.begin() + i * d);
    mlp_forward(w.experts[static_cast<size_t>(e)], xs.data(), m, ys.data(), pool);  // [m, d]
    for (int64_t i = 0; i < m; ++i) {
      float* dst = y + toks[i].first * d;
      const float* src = ys.data() + i * d;
      for (int64_t j = 0; j < d; ++j) dst[j] += toks[i].second * src[j];
    }
  }
  if (w.has_shared) {
    std::vector<float> z(static_cast<size_t>(n * d));
    mlp_forward(w.shared_experts, x, n, z.data(), pool);  // [n, d]
    for (int64_t i = 0; i < n * d; ++i) y[i] += z[static_cast<size_t>(i)];
  }
}

}  // namespace latent
