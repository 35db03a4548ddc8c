#pragma once
// Weights of one Multi-head Latent Attention block, looked up with their expected shapes.
#include <string>

#include "engine/config.h"
#include "engine/shard.h"
#include "engine/weights.h"
#include "kernels/cpu/ops.h"

namespace latent {

struct MlaWeights {
  bool q_lora = false;                 // q_lora_rank set: q_a_proj -> q_a_layernorm -> q_b_proj
  cpu::WeightView q_proj;              // [H * (nope + rope), d]            (no q_lora)
  cpu::WeightView q_a_proj;            // [q_lora_rank, d]
  cpu::WeightView q_a_layernorm;       // [q_lora_rank]
  cpu::WeightView q_b_proj;            // [H * (nope + rope), q_lora_rank]
  cpu::WeightView kv_a_proj_with_mqa;  // [kv_lora_rank + rope, d]
  cpu::WeightView kv_a_layernorm;      // [kv_lora_rank]
  cpu::WeightView kv_b_proj;           // [H * (nope + v), kv_lora_rank]
  cpu::WeightView o_proj;              // [d, H * v]
  int64_t n_heads = 0;                 // H: the heads held (all, or this rank's share)

  // prefix: "model.layers.<i>.self_attn"
  static Result<MlaWeights> load(const Weights& w, const ModelConfig& c, const std::string& prefix);
  // This rank's heads [h0, h1): their rows of q_proj|q_b_proj and kv_b_proj, their columns of o_proj; the
  // low-rank down projections (q_a, kv_a) and norms stay whole. num_attention_heads % shard.size == 0.
  MlaWeights shard(const ModelConfig& c, const Shard& shard, ShardStore& store) const;
};

}  // namespace latent
