// ModelConfig from the checkpoints' own config.json fields, and errors that name field, expected, found.
#include "engine/config.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/engine/model_test_util.h"

namespace latent {
namespace {

nlohmann::json golden_config(const std::string& model) {
  std::ifstream in(test::golden_dir(model) + "/config.json");
  return nlohmann::json::parse(in);
}

TEST(ModelConfig, ParsesV2Lite) {
  auto c = ModelConfig::load(test::golden_dir("v2lite-tiny"));
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  EXPECT_EQ(c->architecture, "DeepseekV2ForCausalLM");
  EXPECT_FALSE(c->is_v3());
  EXPECT_FALSE(c->q_lora_rank.has_value());
  EXPECT_EQ(c->kv_lora_rank, 32);
  EXPECT_EQ(c->qk_nope_head_dim, 32);
  EXPECT_EQ(c->qk_rope_head_dim, 16);
  EXPECT_EQ(c->v_head_dim, 32);
  EXPECT_EQ(c->n_routed_experts, 8);
  EXPECT_EQ(c->n_shared_experts, 2);
  EXPECT_EQ(c->num_experts_per_tok, 2);
  EXPECT_EQ(c->topk_method, TopkMethod::kGreedy);
  EXPECT_EQ(c->scoring_func, ScoringFunc::kSoftmax);
  EXPECT_FALSE(c->norm_topk_prob);
  EXPECT_EQ(c->num_nextn_predict_layers, 0);
  EXPECT_EQ(c->n_cache_layers(), 4);
  EXPECT_TRUE(c->rope_scaling.yarn);
  EXPECT_DOUBLE_EQ(c->rope_scaling.mscale_all_dim, 0.707);
  EXPECT_EQ(c->rope_scaling.original_max_position_embeddings, 4096);
  EXPECT_FALSE(c->is_moe_layer(0));
  EXPECT_TRUE(c->is_moe_layer(1));
  EXPECT_EQ(c->bos_token_id, 0);
  EXPECT_EQ(c->eos_token_id, 1);
  EXPECT_FALSE(c->quantization_config.fp8);
  // (nope + rope)^-0.5 * (0.1 * mscale_all_dim * ln(factor) + 1)^2
  double m = 0.1 * 0.707 * std::log(40.0) + 1.0;
  EXPECT_NEAR(c->softmax_scale(), m * m / std::sqrt(48.0), 1e-12);
}

TEST(ModelConfig, ParsesV3WithMtpAndFp8) {
  nlohmann::json j = golden_config("v3-tiny");
  j["quantization_config"] = {{"quant_method", "fp8"}, {"fmt", "e4m3"}, {"weight_block_size", {128, 128}},
                              {"activation_scheme", "dynamic"}};
  j["eos_token_id"] = {1, 7};
  auto c = ModelConfig::from_json(j);
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  EXPECT_TRUE(c->is_v3());
  EXPECT_EQ(c->q_lora_rank, 48);
  EXPECT_EQ(c->topk_method, TopkMethod::kNoauxTc);
  EXPECT_EQ(c->scoring_func, ScoringFunc::kSigmoid);
  EXPECT_EQ(c->n_group, 4);
  EXPECT_EQ(c->topk_group, 2);
  EXPECT_TRUE(c->norm_topk_prob);
  EXPECT_DOUBLE_EQ(c->routed_scaling_factor, 2.5);
  EXPECT_EQ(c->num_nextn_predict_layers, 1);
  EXPECT_EQ(c->n_cache_layers(), 4);
  EXPECT_EQ(c->kv_cache_dim(), 48);
  EXPECT_TRUE(c->is_moe_layer(3));  // the MTP layer
  EXPECT_TRUE(c->quantization_config.fp8);
  EXPECT_EQ(c->eos_token_id, 1);
}

TEST(ModelConfig, ParsesTheReleasedDeepSeekV3Config) {
  // config.json of deepseek-ai/DeepSeek-V3 (FP8 release).
  auto j = nlohmann::json::parse(R"({
  "architectures": ["DeepseekV3ForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
  "aux_loss_alpha": 0.001, "bos_token_id": 0, "eos_token_id": 1, "ep_size": 1, "first_k_dense_replace": 3,
  "hidden_act": "silu", "hidden_size": 7168, "initializer_range": 0.02, "intermediate_size": 18432,
  "kv_lora_rank": 512, "max_position_embeddings": 163840, "model_type": "deepseek_v3",
  "moe_intermediate_size": 2048, "moe_layer_freq": 1, "n_group": 8, "n_routed_experts": 256,
  "n_shared_experts": 1, "norm_topk_prob": true, "num_attention_heads": 128, "num_experts_per_tok": 8,
  "num_hidden_layers": 61, "num_key_value_heads": 128, "num_nextn_predict_layers": 1, "pretraining_tp": 1,
  "q_lora_rank": 1536, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64,
  "quantization_config": {"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8",
                          "weight_block_size": [128, 128]},
  "rms_norm_eps": 1e-06,
  "rope_scaling": {"beta_fast": 32, "beta_slow": 1, "factor": 40, "mscale": 1.0, "mscale_all_dim": 1.0,
                   "original_max_position_embeddings": 4096, "type": "yarn"},
  "rope_theta": 10000, "routed_scaling_factor": 2.5, "scoring_func": "sigmoid", "seq_aux": true,
  "tie_word_embeddings": false, "topk_group": 4, "topk_method": "noaux_tc", "torch_dtype": "bfloat16",
  "use_cache": true, "v_head_dim": 128, "vocab_size": 129280})");
  auto c = ModelConfig::from_json(j);
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  EXPECT_EQ(c->n_cache_layers(), 62);
  EXPECT_EQ(c->kv_cache_dim(), 576);
  EXPECT_FALSE(c->is_moe_layer(2));
  EXPECT_TRUE(c->is_moe_layer(3));
  EXPECT_TRUE(c->is_moe_layer(61));
  EXPECT_TRUE(c->quantization_config.fp8);
  // 62 layers x 576 floats per token: a 64-token block is 9 MiB; 1 GiB holds 113 blocks.
  EXPECT_EQ(KvCache::blocks_for_bytes(*c, size_t{1} << 30), (size_t{1} << 30) / (62 * 64 * 576 * 4));
  double m = 0.1 * std::log(40.0) + 1.0;
  EXPECT_NEAR(c->softmax_scale(), m * m / std::sqrt(192.0), 1e-12);
}

struct BadValue {
  std::string field;
  nlohmann::json value;
  std::string message;  // expected substring
};

class ModelConfigBad : public ::testing::TestWithParam<BadValue> {};

TEST_P(ModelConfigBad, NamesFieldExpectedAndFound) {
  nlohmann::json j = golden_config("v3-tiny");
  if (GetParam().value.is_discarded()) {
    j.erase(GetParam().field);
  } else {
    j[GetParam().field] = GetParam().value;
  }
  auto c = ModelConfig::from_json(j, "cfg");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find(GetParam().message), std::string::npos) << c.error().message;
}

INSTANTIATE_TEST_SUITE_P(
    Fields, ModelConfigBad,
    ::testing::Values(
        BadValue{"topk_method", "best", "cfg: topk_method: expected greedy, group_limited_greedy or noaux_tc, found \"best\""},
        BadValue{"scoring_func", "relu", "scoring_func: expected softmax or sigmoid, found \"relu\""},
        BadValue{"architectures", {"LlamaForCausalLM"}, "architectures: expected DeepseekV2ForCausalLM or DeepseekV3ForCausalLM, found \"LlamaForCausalLM\""},
        BadValue{"kv_lora_rank", "big", "kv_lora_rank: expected an integer, found \"big\""},
        BadValue{"kv_lora_rank", nlohmann::json::value_t::discarded, "kv_lora_rank: expected an integer, found nothing (field missing)"},
        BadValue{"hidden_size", 0, "hidden_size: expected an integer in [1, 131072], found 0"},
        // A 0 read from JSON text is an unsigned number (nlohmann): the lower bound holds for it too (the
        // safetensors fuzz target found n_group 0 accepted, then a division by zero).
        BadValue{"n_group", nlohmann::json::parse("0"), "n_group: expected an integer in [1, 65536], found 0"},
        BadValue{"hidden_size", nlohmann::json::parse("0"), "hidden_size: expected an integer in [1, 131072], found 0"},
        BadValue{"num_attention_heads", uint64_t{0}, "num_attention_heads: expected an integer in [1, 4096], found 0"},
        // Upper bounds: sizes whose products would overflow int64 (or exhaust memory) are refused up front.
        BadValue{"hidden_size", int64_t{1} << 40, "hidden_size: expected an integer in [1, 131072], found 1099511627776"},
        BadValue{"vocab_size", uint64_t{18446744073709551615ull}, "vocab_size: expected an integer in [1, 16777216], found 18446744073709551615"},
        BadValue{"num_hidden_layers", 1e300, "num_hidden_layers: expected an integer in [1, 4096], found 1e+300"},
        BadValue{"max_position_embeddings", 9223372036854775807LL, "max_position_embeddings: expected an integer in [1, 16777216]"},
        BadValue{"n_routed_experts", 1 << 20, "n_routed_experts: expected an integer in [0, 65536], found 1048576"},
        BadValue{"num_nextn_predict_layers", 100000, "num_nextn_predict_layers: expected an integer in [0, 64]"},
        BadValue{"eos_token_id", 4294967296LL, "eos_token_id: expected a token id below vocab_size 512"},
        BadValue{"bos_token_id", 512, "bos_token_id: expected a token id below vocab_size 512"},
        BadValue{"rms_norm_eps", -1.0, "rms_norm_eps: expected a number >= 0"},
        BadValue{"qk_rope_head_dim", 15, "qk_rope_head_dim: expected an even number"},
        BadValue{"n_group", 3, "n_group: expected a divisor of n_routed_experts (16), found 3"},
        BadValue{"topk_group", 5, "topk_group: expected at most n_group (4), found 5"},
        BadValue{"num_experts_per_tok", 17, "num_experts_per_tok: expected at most n_routed_experts (16), found 17"},
        BadValue{"hidden_act", "gelu", "hidden_act: expected \"silu\", found \"gelu\""},
        BadValue{"rope_scaling", {{"type", "linear"}, {"factor", 2}}, "rope_scaling: type: expected \"yarn\", found \"linear\""},
        BadValue{"quantization_config", {{"quant_method", "awq"}}, "quantization_config: quant_method: expected \"fp8\", found \"awq\""},
        BadValue{"quantization_config", {{"quant_method", "fp8"}, {"weight_block_size", {64, 64}}},
                 "weight_block_size: expected [128, 128], found [64,64]"},
        BadValue{"norm_topk_prob", "yes", "norm_topk_prob: expected true or false, found \"yes\""}));

TEST(ModelConfig, MissingFileAndBadJson) {
  auto c = ModelConfig::load("/nonexistent/model");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code, ErrorCode::kNotFound);
  test::TempDir d("badjson");
  std::ofstream(d / "config.json") << "{ not json";
  c = ModelConfig::load(d.path());
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("expected valid JSON"), std::string::npos);
}

}  // namespace
}  // namespace latent
