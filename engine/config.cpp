#include "engine/config.h"

#include <cmath>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

namespace latent {
namespace {

using json = nlohmann::json;

// Upper bounds of config.json sizes (DeepSeek-V3: vocab 129280, hidden 7168, inner 18432, 61 layers, 128 heads,
// 256 experts, 163840 positions). With these, the largest product the engine forms (vocab x hidden, or
// positions x kv_cache_dim) stays below 2^42.
constexpr int64_t kMaxVocab = int64_t{1} << 24;
constexpr int64_t kMaxWidth = int64_t{1} << 17;   // hidden_size, LoRA ranks
constexpr int64_t kMaxInner = int64_t{1} << 20;   // MLP widths
constexpr int64_t kMaxHeadDim = int64_t{1} << 12;
constexpr int64_t kMaxHeads = int64_t{1} << 12;
constexpr int64_t kMaxLayers = int64_t{1} << 12;
constexpr int64_t kMaxExperts = int64_t{1} << 16;
constexpr int64_t kMaxPositions = int64_t{1} << 24;
constexpr int64_t kMaxMtpLayers = 64;

// Reads fields of one JSON object; the first error sticks and later reads become no-ops.
class Reader {
 public:
  Reader(const json& j, std::string where) : j_(j), where_(std::move(where)) {}

  bool ok() const { return !failed_; }
  const Error& error() const { return error_; }
  void fail(const std::string& field, const std::string& expected, const std::string& found,
            ErrorCode code = ErrorCode::kInvalidArgument) {
    if (failed_) return;
    failed_ = true;
    error_ = make_error(code, where_ + ": " + field + ": expected " + expected + ", found " + found);
  }
  static std::string show(const json& v) { return v.dump(); }

  bool present(const std::string& field) const { return j_.contains(field) && !j_[field].is_null(); }

  // An integer in [min_value, max_value]. The upper bounds keep every size product the engine forms (a weight
  // matrix, a cache row) far from int64 overflow; they are orders of magnitude above any released checkpoint.
  int64_t integer(const std::string& field, std::optional<int64_t> fallback, int64_t min_value, int64_t max_value) {
    if (failed_) return 0;
    if (!present(field)) {
      if (fallback) return *fallback;
      fail(field, "an integer", "nothing (field missing)");
      return 0;
    }
    const json& v = j_[field];
    const std::string range = "an integer in [" + std::to_string(min_value) + ", " + std::to_string(max_value) + "]";
    if (v.is_number_unsigned()) {  // every non-negative literal (0 too); above INT64_MAX, get<int64_t> would wrap
      const uint64_t u = v.get<uint64_t>();
      if (u > static_cast<uint64_t>(max_value) || (min_value > 0 && u < static_cast<uint64_t>(min_value))) {
        fail(field, range, show(v));
      }
      return failed_ ? 0 : static_cast<int64_t>(u);
    }
    if (v.is_number_float()) {
      // A float cast to int64_t is undefined outside its range: compare as double first.
      const double d = v.get<double>();
      if (std::floor(d) != d) {
        fail(field, "an integer", show(v));
        return 0;
      }
      if (d < static_cast<double>(min_value) || d > static_cast<double>(max_value)) {
        fail(field, range, show(v));
        return 0;
      }
      return static_cast<int64_t>(d);
    }
    if (!v.is_number_integer()) {
      fail(field, "an integer", show(v));
      return 0;
    }
    const int64_t x = v.get<int64_t>();
    if (x < min_value || x > max_value) fail(field, range, show(v));
    return failed_ ? 0 : x;
  }

  // A finite number; JSON cannot spell NaN, but 1e999 parses to infinity.
  double number(const std::string& field, std::optional<double> fallback) {
    if (failed_) return 0;
    if (!present(field)) {
      if (fallback) return *fallback;
      fail(field, "a number", "nothing (field missing)");
      return 0;
    }
    const json& v = j_[field];
    if (!v.is_number() || !std::isfinite(v.get<double>())) {
      fail(field, "a finite number", show(v));
      return 0;
    }
    return v.get<double>();
  }

  bool boolean(const std::string& field, bool fallback) {
    if (failed_ || !present(field)) return fallback;
    const json& v = j_[field];
    if (!v.is_boolean()) fail(field, "true or false", show(v));
    return v.is_boolean() ? v.get<bool>() : fallback;
  }

  std::string string(const std::string& field, std::optional<std::string> fallback) {
    if (failed_) return {};
    if (!present(field)) {
      if (fallback) return *fallback;
      fail(field, "a string", "nothing (field missing)");
      return {};
    }
    const json& v = j_[field];
    if (!v.is_string()) {
      fail(field, "a string", show(v));
      return {};
    }
    return v.get<std::string>();
  }

  std::optional<int32_t> token_id(const std::string& field, int64_t vocab_size) {
    if (failed_ || !present(field)) return std::nullopt;
    json v = j_[field];
    if (v.is_array() && !v.empty()) v = v[0];
    // is_number_integer covers both signed and unsigned JSON integers; above INT64_MAX get<int64_t> is negative.
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= vocab_size) {
      fail(field, "a token id below vocab_size " + std::to_string(vocab_size) + " (or a list of them)",
           show(j_[field]));
      return std::nullopt;
    }
    return static_cast<int32_t>(v.get<int64_t>());
  }

 private:
  const json& j_;
  std::string where_;
  bool failed_ = false;
  Error error_;
};

}  // namespace

const char* topk_method_name(TopkMethod m) {
  switch (m) {
    case TopkMethod::kGreedy: return "greedy";
    case TopkMethod::kGroupLimitedGreedy: return "group_limited_greedy";
    case TopkMethod::kNoauxTc: return "noaux_tc";
  }
  return "?";
}

const char* scoring_func_name(ScoringFunc f) { return f == ScoringFunc::kSoftmax ? "softmax" : "sigmoid"; }

Result<ModelConfig> ModelConfig::from_json(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object()) {
    return make_error(ErrorCode::kInvalidArgument, where + ": expected a JSON object, found " + j.dump());
  }
  Reader r(j, where);
  ModelConfig c;

  // architectures: ["DeepseekV2ForCausalLM"] or ["DeepseekV3ForCausalLM"]
  if (!j.contains("architectures") || !j["architectures"].is_array() || j["architectures"].empty() ||
      !j["architectures"][0].is_string()) {
    r.fail("architectures", "[\"DeepseekV2ForCausalLM\"] or [\"DeepseekV3ForCausalLM\"]",
           j.contains("architectures") ? j["architectures"].dump() : "nothing (field missing)");
  } else {
    c.architecture = j["architectures"][0].get<std::string>();
    if (c.architecture != "DeepseekV2ForCausalLM" && c.architecture != "DeepseekV3ForCausalLM") {
      r.fail("architectures", "DeepseekV2ForCausalLM or DeepseekV3ForCausalLM", "\"" + c.architecture + "\"",
             ErrorCode::kUnsupported);
    }
  }
  c.model_type = r.string("model_type", std::string());

  c.vocab_size = r.integer("vocab_size", std::nullopt, 1, kMaxVocab);
  c.hidden_size = r.integer("hidden_size", std::nullopt, 1, kMaxWidth);
  c.intermediate_size = r.integer("intermediate_size", std::nullopt, 1, kMaxInner);
  c.num_hidden_layers = r.integer("num_hidden_layers", std::nullopt, 1, kMaxLayers);
  c.num_attention_heads = r.integer("num_attention_heads", std::nullopt, 1, kMaxHeads);
  c.num_key_value_heads = r.integer("num_key_value_heads", c.num_attention_heads, 1, kMaxHeads);
  c.max_position_embeddings = r.integer("max_position_embeddings", int64_t{163840}, 1, kMaxPositions);

  if (r.present("q_lora_rank")) c.q_lora_rank = r.integer("q_lora_rank", std::nullopt, 1, kMaxWidth);
  c.kv_lora_rank = r.integer("kv_lora_rank", std::nullopt, 1, kMaxWidth);
  c.qk_nope_head_dim = r.integer("qk_nope_head_dim", std::nullopt, 1, kMaxHeadDim);
  c.qk_rope_head_dim = r.integer("qk_rope_head_dim", std::nullopt, 2, kMaxHeadDim);
  c.v_head_dim = r.integer("v_head_dim", std::nullopt, 1, kMaxHeadDim);
  if (r.ok() && c.qk_rope_head_dim % 2 != 0) {
    r.fail("qk_rope_head_dim", "an even number (RoPE rotates pairs)", std::to_string(c.qk_rope_head_dim));
  }

  c.n_routed_experts = r.integer("n_routed_experts", int64_t{0}, 0, kMaxExperts);
  c.n_shared_experts = r.integer("n_shared_experts", int64_t{0}, 0, kMaxExperts);
  c.first_k_dense_replace = r.integer("first_k_dense_replace", int64_t{0}, 0, kMaxLayers);
  c.moe_layer_freq = r.integer("moe_layer_freq", int64_t{1}, 1, kMaxLayers);
  if (c.n_routed_experts > 0) {
    c.moe_intermediate_size = r.integer("moe_intermediate_size", std::nullopt, 1, kMaxInner);
    c.num_experts_per_tok = r.integer("num_experts_per_tok", std::nullopt, 1, kMaxExperts);
    if (r.ok() && c.num_experts_per_tok > c.n_routed_experts) {
      r.fail("num_experts_per_tok", "at most n_routed_experts (" + std::to_string(c.n_routed_experts) + ")",
             std::to_string(c.num_experts_per_tok));
    }
  } else {
    c.moe_intermediate_size = r.integer("moe_intermediate_size", int64_t{0}, 0, kMaxInner);
    c.num_experts_per_tok = r.integer("num_experts_per_tok", int64_t{0}, 0, kMaxExperts);
  }

  std::string topk = r.string("topk_method", std::string("greedy"));
  if (topk == "greedy") c.topk_method = TopkMethod::kGreedy;
  else if (topk == "group_limited_greedy") c.topk_method = TopkMethod::kGroupLimitedGreedy;
  else if (topk == "noaux_tc") c.topk_method = TopkMethod::kNoauxTc;
  else if (r.ok()) r.fail("topk_method", "greedy, group_limited_greedy or noaux_tc", "\"" + topk + "\"",
                          ErrorCode::kUnsupported);
  std::string scoring = r.string("scoring_func", std::string("softmax"));
  if (scoring == "softmax") c.scoring_func = ScoringFunc::kSoftmax;
  else if (scoring == "sigmoid") c.scoring_func = ScoringFunc::kSigmoid;
  else if (r.ok()) r.fail("scoring_func", "softmax or sigmoid", "\"" + scoring + "\"", ErrorCode::kUnsupported);

  c.n_group = r.integer("n_group", int64_t{1}, 1, kMaxExperts);
  c.topk_group = r.integer("topk_group", int64_t{1}, 1, kMaxExperts);
  c.norm_topk_prob = r.boolean("norm_topk_prob", false);
  c.routed_scaling_factor = r.number("routed_scaling_factor", 1.0);
  if (r.ok() && c.n_routed_experts > 0 && c.topk_method != TopkMethod::kGreedy) {
    if (c.n_routed_experts % c.n_group != 0) {
      r.fail("n_group", "a divisor of n_routed_experts (" + std::to_string(c.n_routed_experts) + ")",
             std::to_string(c.n_group));
    } else if (c.topk_group > c.n_group) {
      r.fail("topk_group", "at most n_group (" + std::to_string(c.n_group) + ")", std::to_string(c.topk_group));
    } else if (c.topk_method == TopkMethod::kNoauxTc && c.n_routed_experts / c.n_group < 2) {
      r.fail("n_group", "at least 2 experts per group for noaux_tc (group score = sum of the top 2)",
             std::to_string(c.n_group) + " groups of " + std::to_string(c.n_routed_experts / c.n_group));
    }
  }

  c.rope_theta = r.number("rope_theta", 10000.0);
  if (r.ok() && c.rope_theta <= 1.0) r.fail("rope_theta", "a number > 1", std::to_string(c.rope_theta));
  if (r.ok() && r.present("rope_scaling")) {
    const json& rs = j["rope_scaling"];
    if (!rs.is_object()) {
      r.fail("rope_scaling", "an object or null", rs.dump());
    } else {
      Reader s(rs, where + ": rope_scaling");
      std::string type = s.present("type") ? s.string("type", std::nullopt) : s.string("rope_type", std::string());
      if (s.ok() && type != "yarn") {
        s.fail("type", "\"yarn\"", "\"" + type + "\"", ErrorCode::kUnsupported);
      }
      c.rope_scaling.yarn = true;
      c.rope_scaling.factor = s.number("factor", std::nullopt);
      c.rope_scaling.original_max_position_embeddings = s.integer("original_max_position_embeddings", std::nullopt, 1, kMaxPositions);
      c.rope_scaling.beta_fast = s.number("beta_fast", 32.0);
      c.rope_scaling.beta_slow = s.number("beta_slow", 1.0);
      c.rope_scaling.mscale = s.number("mscale", 1.0);
      c.rope_scaling.mscale_all_dim = s.number("mscale_all_dim", 0.0);
      if (s.ok() && c.rope_scaling.factor < 1.0) s.fail("factor", "a number >= 1", rs["factor"].dump());
      // Negative values could zero yarn_get_mscale's 0.1 * m * ln(factor) + 1, a division by zero in rope_mscale.
      if (s.ok() && c.rope_scaling.mscale < 0) s.fail("mscale", "a number >= 0", rs["mscale"].dump());
      if (s.ok() && c.rope_scaling.mscale_all_dim < 0) {
        s.fail("mscale_all_dim", "a number >= 0", rs["mscale_all_dim"].dump());
      }
      if (!s.ok()) return s.error();
    }
  }
  c.rms_norm_eps = r.number("rms_norm_eps", 1e-6);
  if (r.ok() && c.rms_norm_eps < 0) r.fail("rms_norm_eps", "a number >= 0", std::to_string(c.rms_norm_eps));
  c.tie_word_embeddings = r.boolean("tie_word_embeddings", false);
  c.num_nextn_predict_layers = r.integer("num_nextn_predict_layers", int64_t{0}, 0, kMaxMtpLayers);

  if (r.ok() && r.present("quantization_config")) {
    const json& q = j["quantization_config"];
    Reader s(q, where + ": quantization_config");
    std::string method = q.is_object() ? s.string("quant_method", std::nullopt) : std::string();
    if (!q.is_object()) {
      r.fail("quantization_config", "an object", q.dump());
    } else if (s.ok() && method != "fp8") {
      s.fail("quant_method", "\"fp8\"", "\"" + method + "\"", ErrorCode::kUnsupported);
    } else if (s.ok()) {
      std::string fmt = s.string("fmt", std::string("e4m3"));
      if (s.ok() && fmt != "e4m3") s.fail("fmt", "\"e4m3\"", "\"" + fmt + "\"", ErrorCode::kUnsupported);
      c.quantization_config.fp8 = true;
      if (s.ok() && s.present("weight_block_size")) {
        const json& b = q["weight_block_size"];
        if (!b.is_array() || b.size() != 2 || b[0] != 128 || b[1] != 128) {
          s.fail("weight_block_size", "[128, 128]", b.dump(), ErrorCode::kUnsupported);
        }
      }
    }
    if (!s.ok()) return s.error();
  }
  c.bos_token_id = r.token_id("bos_token_id", c.vocab_size);
  c.eos_token_id = r.token_id("eos_token_id", c.vocab_size);

  std::string act = r.string("hidden_act", std::string("silu"));
  if (r.ok() && act != "silu") r.fail("hidden_act", "\"silu\"", "\"" + act + "\"", ErrorCode::kUnsupported);
  if (r.ok() && r.boolean("attention_bias", false)) r.fail("attention_bias", "false", "true", ErrorCode::kUnsupported);
  if (r.ok() && c.num_key_value_heads != c.num_attention_heads) {
    r.fail("num_key_value_heads", "num_attention_heads (" + std::to_string(c.num_attention_heads) + ", MLA)",
           std::to_string(c.num_key_value_heads), ErrorCode::kUnsupported);
  }
  if (!r.ok()) return r.error();
  return c;
}

Result<ModelConfig> ModelConfig::load(const std::string& path) {
  namespace fs = std::filesystem;
  std::string file = fs::is_directory(path) ? (fs::path(path) / "config.json").string() : path;
  std::ifstream in(file);
  if (!in) return make_error(ErrorCode::kNotFound, file + ": cannot open (expected a model config.json)");
  nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return make_error(ErrorCode::kCorrupt, file + ": expected valid JSON, found a parse error");
  return from_json(j, file);
}

bool ModelConfig::is_moe_layer(int64_t layer) const {
  return n_routed_experts > 0 && layer >= first_k_dense_replace && layer % moe_layer_freq == 0;
}

double yarn_get_mscale(double scale, double mscale) {
  return scale <= 1.0 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0;
}

double ModelConfig::softmax_scale() const {
  double scale = 1.0 / std::sqrt(static_cast<double>(qk_head_dim()));
  if (rope_scaling.yarn && rope_scaling.mscale_all_dim != 0.0) {
    const double m = yarn_get_mscale(rope_scaling.factor, rope_scaling.mscale_all_dim);
    scale *= m * m;
  }
  return scale;
}

double ModelConfig::rope_mscale() const {
  if (!rope_scaling.yarn) return 1.0;
  return yarn_get_mscale(rope_scaling.factor, rope_scaling.mscale) /
         yarn_get_mscale(rope_scaling.factor, rope_scaling.mscale_all_dim);
}

}  // namespace latent
