#pragma once
// ModelConfig: a DeepSeek-V2/V3 checkpoint's config.json, parsed once and validated, with the checkpoint's own
// field names (HF DeepseekV2Config / DeepseekV3Config). Unsupported values are errors naming the field, what
// was expected and what was found.
#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "kernels/base/result.h"

namespace latent {

enum class TopkMethod { kGreedy, kGroupLimitedGreedy, kNoauxTc };
enum class ScoringFunc { kSoftmax, kSigmoid };

const char* topk_method_name(TopkMethod m);    // "greedy", "group_limited_greedy", "noaux_tc"
const char* scoring_func_name(ScoringFunc f);  // "softmax", "sigmoid"

// rope_scaling {"type": "yarn", ...}; absent = plain RoPE.
struct RopeScaling {
  bool yarn = false;
  double factor = 1.0;
  int64_t original_max_position_embeddings = 4096;
  double beta_fast = 32.0;
  double beta_slow = 1.0;
  double mscale = 1.0;
  double mscale_all_dim = 0.0;
};

// quantization_config of the DeepSeek-V3 FP8 release: {"quant_method": "fp8", "fmt": "e4m3",
// "weight_block_size": [128, 128], "activation_scheme": "dynamic"}. Weights only: activations stay float32.
struct QuantizationConfig {
  bool fp8 = false;
  int64_t block_rows = 128;
  int64_t block_cols = 128;
};

// YaRN's attention-magnitude correction: 0.1 * mscale * ln(scale) + 1, and 1 when scale <= 1
// (yarn_get_mscale of the reference modeling_deepseek.py).
double yarn_get_mscale(double scale, double mscale);

struct ModelConfig {
  std::string architecture;  // "DeepseekV2ForCausalLM" or "DeepseekV3ForCausalLM"
  std::string model_type;    // "deepseek_v2" / "deepseek_v3" (informative)

  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;      // dense MLP layers
  int64_t moe_intermediate_size = 0;  // one routed expert; shared experts use n_shared_experts times this
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;
  int64_t max_position_embeddings = 0;

  // MLA
  std::optional<int64_t> q_lora_rank;  // null: q_proj; else q_a_proj -> q_a_layernorm -> q_b_proj
  int64_t kv_lora_rank = 0;
  int64_t qk_nope_head_dim = 0;
  int64_t qk_rope_head_dim = 0;
  int64_t v_head_dim = 0;

  // MoE
  int64_t n_routed_experts = 0;  // 0: every layer dense
  int64_t n_shared_experts = 0;
  int64_t num_experts_per_tok = 0;
  int64_t first_k_dense_replace = 0;
  int64_t moe_layer_freq = 1;
  TopkMethod topk_method = TopkMethod::kGreedy;
  ScoringFunc scoring_func = ScoringFunc::kSoftmax;
  int64_t n_group = 1;
  int64_t topk_group = 1;
  bool norm_topk_prob = false;
  double routed_scaling_factor = 1.0;

  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  double rms_norm_eps = 1e-6;
  bool tie_word_embeddings = false;
  int64_t num_nextn_predict_layers = 0;  // MTP modules, stored as layers num_hidden_layers..
  QuantizationConfig quantization_config;
  std::optional<int32_t> bos_token_id;
  std::optional<int32_t> eos_token_id;  // the first one when config.json holds a list

  // Parses and validates. `where` prefixes error messages (e.g. the file path).
  static Result<ModelConfig> from_json(const nlohmann::json& j, const std::string& where = "config.json");
  // Reads DIR/config.json (or the file itself when `path` is a file).
  static Result<ModelConfig> load(const std::string& path);

  bool is_v3() const { return architecture == "DeepseekV3ForCausalLM"; }
  // Layer i (main or MTP) uses MoE iff experts exist, i >= first_k_dense_replace and i % moe_layer_freq == 0.
  bool is_moe_layer(int64_t layer) const;
  int64_t qk_head_dim() const { return qk_nope_head_dim + qk_rope_head_dim; }
  // Floats one cached token takes per layer: the normalised latent and the rotated rope key.
  int64_t kv_cache_dim() const { return kv_lora_rank + qk_rope_head_dim; }
  // Layers that hold a KV cache: the decoder layers then the MTP layers.
  int64_t n_cache_layers() const { return num_hidden_layers + num_nextn_predict_layers; }
  // Attention softmax scale: qk_head_dim^-0.5, times yarn_get_mscale(factor, mscale_all_dim)^2 under YaRN.
  double softmax_scale() const;
  // Factor on RoPE's cos and sin (so on the rotated q_pe and k_pe) under YaRN:
  // yarn_get_mscale(factor, mscale) / yarn_get_mscale(factor, mscale_all_dim), as the reference
  // DeepseekV2YarnRotaryEmbedding (and vLLM's DeepseekScalingRotaryEmbedding) scale cos_cached / sin_cached.
  // 1 without YaRN and whenever mscale == mscale_all_dim (every released DeepSeek-V2/V3 config).
  double rope_mscale() const;
};

}  // namespace latent
