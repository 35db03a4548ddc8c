#pragma once
// DeepSeekMoE: routed experts chosen per token by a router (all DeepSeek-V2/V3 routing variants) plus shared
// experts applied to every token. A batch is grouped by expert so each expert's weights are read once; for a
// few tokens (decode) all experts' gate/up GEMVs run as one pool job and all downs as another (linear_group.h).
#include <cstdint>
#include <string>
#include <vector>

#include "engine/config.h"
#include "engine/shard.h"
#include "engine/weights.h"
#include "kernels/cpu/ops.h"

namespace latent {

// A SwiGLU MLP: down(silu(gate(x)) * up(x)). Dense layers, each routed expert and the shared experts.
struct MlpWeights {
  cpu::WeightView gate_proj;  // [inter, d]
  cpu::WeightView up_proj;    // [inter, d]
  cpu::WeightView down_proj;  // [d, inter]
  static Result<MlpWeights> load(const Weights& w, const std::string& prefix, int64_t d, int64_t inter);
  // This rank's part of the intermediate dimension: rows of gate and up, columns of down. The ranks' outputs
  // add up to the whole MLP's (one all-reduce).
  MlpWeights shard(const Shard& shard, ShardStore& store) const;
};

struct MoeWeights {
  cpu::WeightView gate;                   // router [n_routed_experts, d]
  cpu::WeightView e_score_correction_bias;  // [n_routed_experts]; data null when the checkpoint has none
  std::vector<MlpWeights> experts;       // [n_routed_experts]; an expert another rank holds has no data
  bool has_shared = false;
  MlpWeights shared_experts;              // inter = moe_intermediate_size * n_shared_experts
  static Result<MoeWeights> load(const Weights& w, const ModelConfig& c, const std::string& prefix);
  // This rank's part: the router whole (every rank routes identically); with expert_parallel the routed
  // experts [e0, e1) whole, else every expert split on its intermediate dimension; shared experts split.
  MoeWeights shard(const Shard& shard, bool expert_parallel, ShardStore& store) const;
  bool holds(int64_t e) const { return experts[static_cast<size_t>(e)].gate_proj.data != nullptr; }
};

// Routing of one token: router logits [n_routed_experts] -> top_k expert ids (ascending) and their
// multipliers. bias: e_score_correction_bias as float32 or null.
//   softmax|sigmoid scores s; greedy: top-k of s; group_limited_greedy: groups ranked by max s;
//   noaux_tc: choice = s + bias, groups ranked by the sum of their top-2 choices, top-k of choice in the
//   kept groups. Weights: s of the chosen, / their sum if norm_topk_prob (and top_k > 1), * routed_scaling_factor.
void route_token(const ModelConfig& c, const float* logits, const float* bias, int32_t* idx, float* weight);

// How a few tokens (decode, n <= 4) run the experts, process-wide; the result is the same bit for bit.
// kGrouped: every expert's gate and up as one pool job cut into 256 KiB row chunks, then every down as one.
// kWholeExperts: each expert whole (gate, up, swiglu, down) on the thread that claims it, the shared experts
//   as one more unit: one pool job per layer, whole matrices streamed. Prefill always runs experts whole.
// LATENT_MOE_DECODE=grouped|experts sets it at start-up (for A/B runs).
enum class MoeDecode { kGrouped, kWholeExperts };
MoeDecode moe_decode();
void set_moe_decode(MoeDecode m);
const char* moe_decode_name(MoeDecode m);  // "grouped" | "experts"

// y[n, d] = MoE(x[n, d]), over the experts held (a rank's partial sum when sharded). topk_idx/topk_weight ([n, top_k]) receive the routing when not null.
void moe_forward(const ModelConfig& c, const MoeWeights& w, const float* x, int64_t n, float* y,
                 cpu::ThreadPool* pool, int32_t* topk_idx = nullptr, float* topk_weight = nullptr);

// y[n, d] = MLP(x[n, d]).
void mlp_forward(const MlpWeights& w, const float* x, int64_t n, float* y, cpu::ThreadPool* pool);

}  // namespace latent
