#include "engine/moe.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <numeric>

#include "engine/linear_group.h"
#include "kernels/base/log.h"
#include "kernels/cpu/thread_pool.h"

namespace latent {

// Up to this many tokens the linears are GEMVs and are grouped into few pool jobs (linear_group).
constexpr int64_t kGroupedMaxTokens = 4;

namespace {
std::atomic<int> g_moe_decode{-1};  // -1: LATENT_MOE_DECODE not read yet
}  // namespace

MoeDecode moe_decode() {
  int v = g_moe_decode.load(std::memory_order_relaxed);
  if (v < 0) {
    MoeDecode m = MoeDecode::kGrouped;
    if (const char* e = std::getenv("LATENT_MOE_DECODE"); e && *e) {
      if (std::strcmp(e, "experts") == 0) {
        m = MoeDecode::kWholeExperts;
      } else if (std::strcmp(e, "grouped") != 0) {
        LATENT_LOG_WARN("LATENT_MOE_DECODE=%s: expected grouped or experts; using grouped", e);
      }
    }
    int expected = -1;
    g_moe_decode.compare_exchange_strong(expected, static_cast<int>(m));
    v = g_moe_decode.load(std::memory_order_relaxed);
  }
  return static_cast<MoeDecode>(v);
}

void set_moe_decode(MoeDecode m) { g_moe_decode.store(static_cast<int>(m), std::memory_order_relaxed); }

const char* moe_decode_name(MoeDecode m) { return m == MoeDecode::kWholeExperts ? "experts" : "grouped"; }

Result<MlpWeights> MlpWeights::load(const Weights& w, const std::string& prefix, int64_t d, int64_t inter) {
  MlpWeights m;
  LATENT_ASSIGN_OR_RETURN(m.gate_proj, w.matrix(prefix + ".gate_proj.weight", inter, d));
  LATENT_ASSIGN_OR_RETURN(m.up_proj, w.matrix(prefix + ".up_proj.weight", inter, d));
  LATENT_ASSIGN_OR_RETURN(m.down_proj, w.matrix(prefix + ".down_proj.weight", d, inter));
  return m;
}

MlpWeights MlpWeights::shard(const Shard& shard, ShardStore& store) const {
  const auto [i0, i1] = shard.range(gate_proj.rows);
  MlpWeights m;
  m.gate_proj = store.rows(gate_proj, i0, i1);  // [inter', d]
  m.up_proj = store.rows(up_proj, i0, i1);      // [inter', d]
  m.down_proj = store.cols(down_proj, i0, i1);  // [d, inter']
  return m;
}

MoeWeights MoeWeights::shard(const Shard& shard, bool expert_parallel, ShardStore& store) const {
  MoeWeights m = *this;
  m.gate = store.whole(gate);
  if (e_score_correction_bias.data) m.e_score_correction_bias = store.whole(e_score_correction_bias);
  const auto [e0, e1] = shard.range(static_cast<int64_t>(experts.size()));
  for (size_t e = 0; e < experts.size(); ++e) {
    const bool mine = static_cast<int64_t>(e) >= e0 && static_cast<int64_t>(e) < e1;
    if (!expert_parallel) {
      m.experts[e] = experts[e].shard(shard, store);
    } else if (mine) {
      const MlpWeights& x = experts[e];
      m.experts[e] = MlpWeights{store.whole(x.gate_proj), store.whole(x.up_proj), store.whole(x.down_proj)};
    } else {
      m.experts[e] = MlpWeights{};
    }
  }
  if (has_shared) m.shared_experts = shared_experts.shard(shard, store);
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
  thread_local std::vector<float> g_tl, u_tl;
  std::vector<float>& g = g_tl;
  std::vector<float>& u = u_tl;
  // Grow-only (resize zero-fills what it grows by, and expert sizes vary call to call): indexed by n, not size().
  if (g.size() < static_cast<size_t>(n * inter)) g.resize(static_cast<size_t>(n * inter));
  if (u.size() < static_cast<size_t>(n * inter)) u.resize(static_cast<size_t>(n * inter));
  if (n <= kGroupedMaxTokens) {  // GEMVs: gate and up as one job
    const LinearJob gu[2] = {{x, w.gate_proj.cols, n, w.gate_proj, g.data(), inter},
                             {x, w.up_proj.cols, n, w.up_proj, u.data(), inter}};
    linear_group(gu, pool);  // [n, inter] x 2
  } else {
    cpu::linear_pair(x, n, w.gate_proj, g.data(), w.up_proj, u.data(), pool);  // [n, inter] x 2, x packed once
  }
  cpu::swiglu(g.data(), u.data(), n * inter, g.data());
  cpu::linear(g.data(), n, w.down_proj, y, pool);  // [n, d]
}

namespace {

// Per-thread buffers kept between forwards (no page faults or munmap per token).
struct MoeScratch {
  std::vector<float> logits, bias, wt, xs, gu, ys;
  std::vector<int32_t> idx;
  std::vector<std::vector<std::pair<int64_t, float>>> by_expert;
  std::vector<LinearJob> jobs;
  std::vector<int64_t> used;  // experts with tokens, ascending
  // Prefill: xs row of each used expert's first token (+ the end); each token's xs rows (K per token, in
  // ascending expert order) and their count; the routing weight of each xs row.
  std::vector<int64_t> first_row, tok_rows, tok_count;
  std::vector<float> row_wt;
};

// Grow-only buffers: indexed by the call's sizes, never by size() (no zero-fill of what a smaller call left).
void grow(std::vector<float>& v, int64_t n) {
  if (v.size() < static_cast<size_t>(n)) v.resize(static_cast<size_t>(n));
}

}  // namespace

void moe_forward(const ModelConfig& c, const MoeWeights& w, const float* x, int64_t n, float* y,
                 cpu::ThreadPool* pool, int32_t* topk_idx, float* topk_weight) {
  const int64_t d = c.hidden_size, E = c.n_routed_experts, K = c.num_experts_per_tok;
  thread_local MoeScratch scratch;
  MoeScratch& S = scratch;
  // Router: logits [n, E] in float32, then per-token top-k.
  S.logits.resize(static_cast<size_t>(n * E));
  cpu::linear(x, n, w.gate, S.logits.data(), pool);
  S.bias.clear();
  if (w.e_score_correction_bias.data) {
    S.bias.resize(static_cast<size_t>(E));
    for (int64_t e = 0; e < E; ++e) S.bias[static_cast<size_t>(e)] = w.e_score_correction_bias.at(0, e);
  }
  S.idx.resize(static_cast<size_t>(n * K));
  S.wt.resize(static_cast<size_t>(n * K));
  for (int64_t t = 0; t < n; ++t) {
    route_token(c, S.logits.data() + t * E, S.bias.empty() ? nullptr : S.bias.data(), S.idx.data() + t * K,
                S.wt.data() + t * K);
  }
  if (topk_idx) std::copy(S.idx.begin(), S.idx.end(), topk_idx);
  if (topk_weight) std::copy(S.wt.begin(), S.wt.end(), topk_weight);

  // Group (token, weight) pairs by expert: each expert runs once over all its tokens.
  S.by_expert.resize(static_cast<size_t>(E));
  for (auto& v : S.by_expert) v.clear();
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t k = 0; k < K; ++k) {
      const int32_t e = S.idx[t * K + k];
      if (w.holds(e)) S.by_expert[static_cast<size_t>(e)].push_back({t, S.wt[t * K + k]});
    }
  }
  S.used.clear();
  int64_t rows = 0;  // sum over used experts of their token counts
  for (int64_t e = 0; e < E; ++e) {
    if (S.by_expert[static_cast<size_t>(e)].empty()) continue;
    S.used.push_back(e);
    rows += static_cast<int64_t>(S.by_expert[static_cast<size_t>(e)].size());
  }
  std::fill(y, y + n * d, 0.f);
  if (n > kGroupedMaxTokens || moe_decode() == MoeDecode::kWholeExperts) {
    // Tokens grouped by expert, xs [rows, d] (each used expert's tokens in turn), and each expert run whole
    // (gate, up, swiglu, down) on the thread that claims it, so a layer pays one pool job instead of one per
    // op, and no thread waits at the end of each small GEMM. Nested linears run inline on the claiming thread.
    // The per-token sums then add the experts in ascending order (route_token sorts each token's experts), as
    // the per-expert loop did: the result does not depend on the threads.
    // Decode (MoeDecode::kWholeExperts): the shared experts are one more unit of the same job, claimed first
    // (the largest: n_shared_experts routed experts' bytes), so each thread streams whole matrices.
    const bool shared_inside = w.has_shared && n <= kGroupedMaxTokens;
    grow(S.xs, rows * d);
    grow(S.ys, (rows + (shared_inside ? n : 0)) * d);
    S.first_row.resize(S.used.size() + 1);
    S.tok_rows.assign(static_cast<size_t>(n * K), -1);
    S.tok_count.assign(static_cast<size_t>(n), 0);
    S.row_wt.resize(static_cast<size_t>(rows));
    int64_t row = 0;
    for (size_t u = 0; u < S.used.size(); ++u) {
      S.first_row[u] = row;
      for (const auto& [t, wgt] : S.by_expert[static_cast<size_t>(S.used[u])]) {
        std::copy(x + t * d, x + (t + 1) * d, S.xs.begin() + row * d);
        S.row_wt[static_cast<size_t>(row)] = wgt;
        S.tok_rows[static_cast<size_t>(t * K + S.tok_count[static_cast<size_t>(t)]++)] = row++;
      }
    }
    S.first_row[S.used.size()] = row;
    cpu::ThreadPool& P = pool ? *pool : cpu::ThreadPool::global();
    const int64_t units = static_cast<int64_t>(S.used.size()) + (shared_inside ? 1 : 0);
    P.parallel_for(units, 1, [&](int64_t u0, int64_t u1) {
      for (int64_t v = u0; v < u1; ++v) {
        if (shared_inside && v == 0) {
          mlp_forward(w.shared_experts, x, n, S.ys.data() + rows * d, &P);  // [n, d]
          continue;
        }
        const int64_t u = v - (shared_inside ? 1 : 0);
        const int64_t r0 = S.first_row[static_cast<size_t>(u)], m = S.first_row[static_cast<size_t>(u) + 1] - r0;
        mlp_forward(w.experts[static_cast<size_t>(S.used[static_cast<size_t>(u)])], S.xs.data() + r0 * d, m,
                    S.ys.data() + r0 * d, &P);  // [m, d]
      }
    });
    P.parallel_for(n, 16, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        float* dst = y + t * d;
        for (int64_t k = 0; k < S.tok_count[static_cast<size_t>(t)]; ++k) {
          const int64_t r = S.tok_rows[static_cast<size_t>(t * K + k)];
          const float* src = S.ys.data() + r * d;
          const float wgt = S.row_wt[static_cast<size_t>(r)];
          for (int64_t j = 0; j < d; ++j) dst[j] += wgt * src[j];
        }
      }
    });
    if (shared_inside) {
      for (int64_t i = 0; i < n * d; ++i) y[i] += S.ys[static_cast<size_t>(rows * d + i)];
    } else if (w.has_shared) {
      grow(S.ys, n * d);
      mlp_forward(w.shared_experts, x, n, S.ys.data(), pool);  // [n, d]
      for (int64_t i = 0; i < n * d; ++i) y[i] += S.ys[static_cast<size_t>(i)];
    }
    return;
  }

  // Decode (a few tokens, MoeDecode::kGrouped): every expert's gate and up as one job, then every down as one job.
  // xs [rows, d]: the tokens of each used expert in turn; gu [rows (+ n), 2 * inter]: gate | up per row.
  // inter: moe_intermediate_size, or this rank's share of it when experts are split on it.
  const int64_t inter = S.used.empty() ? c.moe_intermediate_size : w.experts[static_cast<size_t>(S.used[0])].gate_proj.rows;
  const int64_t sh_inter = w.has_shared ? w.shared_experts.gate_proj.rows : 0;
  grow(S.xs, rows * d);
  grow(S.gu, rows * 2 * inter + n * 2 * sh_inter);
  grow(S.ys, (rows + n) * d);
  S.jobs.clear();
  int64_t row = 0;
  for (int64_t e : S.used) {
    const auto& toks = S.by_expert[static_cast<size_t>(e)];
    const int64_t m = static_cast<int64_t>(toks.size());
    const MlpWeights& ex = w.experts[static_cast<size_t>(e)];
    for (int64_t i = 0; i < m; ++i) std::copy(x + toks[i].first * d, x + (toks[i].first + 1) * d, S.xs.begin() + (row + i) * d);
    float* gu = S.gu.data() + row * 2 * inter;
    S.jobs.push_back({S.xs.data() + row * d, d, m, ex.gate_proj, gu, 2 * inter});
    S.jobs.push_back({S.xs.data() + row * d, d, m, ex.up_proj, gu + inter, 2 * inter});
    row += m;
  }
  float* sh_gu = S.gu.data() + rows * 2 * inter;  // [n, 2 * sh_inter]
  if (w.has_shared) {
    S.jobs.push_back({x, d, n, w.shared_experts.gate_proj, sh_gu, 2 * sh_inter});
    S.jobs.push_back({x, d, n, w.shared_experts.up_proj, sh_gu + sh_inter, 2 * sh_inter});
  }
  linear_group(S.jobs, pool);
  for (int64_t r = 0; r < rows; ++r) {
    float* gu = S.gu.data() + r * 2 * inter;
    cpu::swiglu(gu, gu + inter, inter, gu);
  }
  for (int64_t t = 0; t < n; ++t) {
    float* gu = sh_gu + t * 2 * sh_inter;
    cpu::swiglu(gu, gu + sh_inter, sh_inter, gu);
  }
  S.jobs.clear();
  row = 0;
  for (int64_t e : S.used) {
    const int64_t m = static_cast<int64_t>(S.by_expert[static_cast<size_t>(e)].size());
    S.jobs.push_back({S.gu.data() + row * 2 * inter, 2 * inter, m, w.experts[static_cast<size_t>(e)].down_proj,
                      S.ys.data() + row * d, d});
    row += m;
  }
  if (w.has_shared) S.jobs.push_back({sh_gu, 2 * sh_inter, n, w.shared_experts.down_proj, S.ys.data() + rows * d, d});
  linear_group(S.jobs, pool);  // ys [rows + n, d]
  // Sum in the same order as the per-expert path: routed experts ascending, then the shared experts.
  row = 0;
  for (int64_t e : S.used) {
    const auto& toks = S.by_expert[static_cast<size_t>(e)];
    for (size_t i = 0; i < toks.size(); ++i, ++row) {
      float* dst = y + toks[i].first * d;
      const float* src = S.ys.data() + row * d;
      const float wgt = toks[i].second;
      for (int64_t j = 0; j < d; ++j) dst[j] += wgt * src[j];
    }
  }
  if (w.has_shared) {
    for (int64_t i = 0; i < n * d; ++i) y[i] += S.ys[static_cast<size_t>(rows * d + i)];
  }
}

}  // namespace latent
