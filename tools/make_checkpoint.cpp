// make_checkpoint: a random DeepSeek checkpoint with the real shapes of a released model, for benchmarks and
// load tests where the real weights are too large (or absent).
//
//   make_checkpoint --preset coder-v2-lite|v2-lite|deepseek-v3 --layers 4 --dtype bf16|fp8|f32 --out DIR
//                   [--seed S] [--mtp 0|1] [--config-only]
//
// --config-only writes DIR/config.json and nothing else (for GPU benchmarks that generate the weights on the
// device: scripts/gpu-check).
// Writes DIR/config.json (the model's published config with num_hidden_layers overridden) and
// DIR/model.safetensors, streamed tensor by tensor (a 4-layer Lite in BF16 is about 4.4 GB: put it in /tmp).
// Values: linear weights ~ N(0, 0.02) (sum of four uniforms: cheap, bounded at 3.5 sigma), RMSNorm gains
// 1 + N(0, 0.05), V3 router bias N(0, 0.01) in F32. --dtype fp8 stores every attention/MLP/expert projection as
// F8_E4M3 with a float32 `weight_scale_inv` per 128x128 block (amax / 448), like DeepSeek-V3's release;
// embeddings, lm_head, norms, the router and eh_proj stay BF16.
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "kernels/cpu/dtype.h"

namespace {

using json = nlohmann::ordered_json;
using latent::DType;

json coder_v2_lite_config() {
  return json::parse(R"({
  "architectures": ["DeepseekV2ForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
  "aux_loss_alpha": 0.001, "bos_token_id": 100000, "eos_token_id": 100001, "first_k_dense_replace": 1,
  "hidden_act": "silu", "hidden_size": 2048, "initializer_range": 0.02, "intermediate_size": 10944,
  "kv_lora_rank": 512, "max_position_embeddings": 163840, "model_type": "deepseek_v2",
  "moe_intermediate_size": 1408, "moe_layer_freq": 1, "n_group": 1, "n_routed_experts": 64,
  "n_shared_experts": 2, "norm_topk_prob": false, "num_attention_heads": 16, "num_experts_per_tok": 6,
  "num_hidden_layers": 27, "num_key_value_heads": 16, "pretraining_tp": 1, "q_lora_rank": null,
  "qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "rms_norm_eps": 1e-06,
  "rope_scaling": {"beta_fast": 32, "beta_slow": 1, "factor": 40, "mscale": 0.707, "mscale_all_dim": 0.707,
                   "original_max_position_embeddings": 4096, "type": "yarn"},
  "rope_theta": 10000, "routed_scaling_factor": 1.0, "scoring_func": "softmax", "seq_aux": true,
  "tie_word_embeddings": false, "topk_group": 1, "topk_method": "greedy", "torch_dtype": "bfloat16",
  "use_cache": true, "v_head_dim": 128, "vocab_size": 102400})");
}

json deepseek_v3_config() {
  return json::parse(R"({
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
}

enum class Init { kLinear, kNorm, kBias };

struct TensorSpec {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  Init init;
  std::string seed_name;  // values are a function of (seed, seed_name): MTP's copies share the main ones'
  bool is_scale = false;  // the weight_scale_inv of the tensor before it
  int64_t bytes() const {
    int64_t n = 1;
    for (int64_t s : shape) n *= s;
    return n * (is_scale ? 4 : latent::dtype_size(dtype));
  }
};

// xoshiro256+ seeded by splitmix64: fast and good enough for weights.
class Rng {
 public:
  explicit Rng(uint64_t seed) {
    for (auto& s : s_) {
      seed += 0x9e3779b97f4a7c15ull;
      uint64_t z = seed;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
      s = z ^ (z >> 31);
    }
  }
  uint64_t next() {
    uint64_t r = s_[0] + s_[3], t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = (s_[3] << 45) | (s_[3] >> 19);
    return r;
  }
  // ~N(0, 1): the sum of four 16-bit uniforms, standardized.
  float normal() {
    uint64_t u = next();
    double s = static_cast<double>((u & 0xffff) + ((u >> 16) & 0xffff) + ((u >> 32) & 0xffff) + (u >> 48));
    return static_cast<float>((s - 131070.0) * (1.0 / 37837.23));
  }

 private:
  uint64_t s_[4];
};

uint64_t hash_name(const std::string& s, uint64_t seed) {
  uint64_t h = 1469598103934665603ull ^ seed;
  for (char c : s) h = (h ^ static_cast<uint8_t>(c)) * 1099511628211ull;
  return h;
}

std::vector<TensorSpec> tensor_list(const json& cfg, int64_t layers, bool mtp, DType dtype) {
  const int64_t d = cfg["hidden_size"], vocab = cfg["vocab_size"], heads = cfg["num_attention_heads"];
  const int64_t nope = cfg["qk_nope_head_dim"], rope = cfg["qk_rope_head_dim"], vdim = cfg["v_head_dim"];
  const int64_t kv_rank = cfg["kv_lora_rank"], inter = cfg["intermediate_size"];
  const int64_t moe_inter = cfg["moe_intermediate_size"], n_exp = cfg["n_routed_experts"];
  const int64_t n_shared = cfg["n_shared_experts"], first_dense = cfg["first_k_dense_replace"];
  const bool v3 = cfg["topk_method"] == "noaux_tc";
  const DType plain = dtype == DType::kF32 ? DType::kF32 : DType::kBF16;  // non-projection tensors
  std::vector<TensorSpec> out;
  auto add = [&](const std::string& name, DType dt, std::vector<int64_t> shape, Init init,
                 const std::string& seed_name = "") {
    out.push_back({name, dt, shape, init, seed_name.empty() ? name : seed_name});
  };
  auto proj = [&](const std::string& name, int64_t rows, int64_t cols) {
    add(name, dtype, {rows, cols}, Init::kLinear);
    if (dtype == DType::kF8E4M3) {
      std::string scale = name.substr(0, name.size() - std::strlen("weight")) + "weight_scale_inv";
      out.push_back({scale, DType::kF32, {(rows + 127) / 128, (cols + 127) / 128}, Init::kLinear, name, true});
    }
  };
  auto mlp = [&](const std::string& p, int64_t width) {
    proj(p + ".gate_proj.weight", width, d);
    proj(p + ".up_proj.weight", width, d);
    proj(p + ".down_proj.weight", d, width);
  };
  auto layer = [&](int64_t i) {
    const std::string p = "model.layers." + std::to_string(i);
    add(p + ".input_layernorm.weight", plain, {d}, Init::kNorm);
    if (cfg["q_lora_rank"].is_null()) {
      proj(p + ".self_attn.q_proj.weight", heads * (nope + rope), d);
    } else {
      const int64_t q_rank = cfg["q_lora_rank"];
      proj(p + ".self_attn.q_a_proj.weight", q_rank, d);
      add(p + ".self_attn.q_a_layernorm.weight", plain, {q_rank}, Init::kNorm);
      proj(p + ".self_attn.q_b_proj.weight", heads * (nope + rope), q_rank);
    }
    proj(p + ".self_attn.kv_a_proj_with_mqa.weight", kv_rank + rope, d);
    add(p + ".self_attn.kv_a_layernorm.weight", plain, {kv_rank}, Init::kNorm);
    proj(p + ".self_attn.kv_b_proj.weight", heads * (nope + vdim), kv_rank);
    proj(p + ".self_attn.o_proj.weight", d, heads * vdim);
    add(p + ".post_attention_layernorm.weight", plain, {d}, Init::kNorm);
    if (i < first_dense || n_exp == 0) {
      mlp(p + ".mlp", inter);
      return;
    }
    add(p + ".mlp.gate.weight", plain, {n_exp, d}, Init::kLinear);
    if (v3) add(p + ".mlp.gate.e_score_correction_bias", DType::kF32, {n_exp}, Init::kBias);
    for (int64_t e = 0; e < n_exp; ++e) mlp(p + ".mlp.experts." + std::to_string(e), moe_inter);
    if (n_shared > 0) mlp(p + ".mlp.shared_experts", moe_inter * n_shared);
  };
  add("model.embed_tokens.weight", plain, {vocab, d}, Init::kLinear);
  for (int64_t i = 0; i < layers; ++i) layer(i);
  add("model.norm.weight", plain, {d}, Init::kNorm);
  add("lm_head.weight", plain, {vocab, d}, Init::kLinear);
  if (mtp) {
    const std::string p = "model.layers." + std::to_string(layers);
    add(p + ".embed_tokens.weight", plain, {vocab, d}, Init::kLinear, "model.embed_tokens.weight");
    add(p + ".enorm.weight", plain, {d}, Init::kNorm);
    add(p + ".hnorm.weight", plain, {d}, Init::kNorm);
    add(p + ".eh_proj.weight", plain, {d, 2 * d}, Init::kLinear);
    add(p + ".shared_head.norm.weight", plain, {d}, Init::kNorm);
    add(p + ".shared_head.head.weight", plain, {vocab, d}, Init::kLinear, "lm_head.weight");
    layer(layers);
  }
  return out;
}

class Writer {
 public:
  explicit Writer(FILE* f) : f_(f) { buf_.reserve(kCap); }
  bool put(const void* p, size_t n) {
    const char* c = static_cast<const char*>(p);
    buf_.insert(buf_.end(), c, c + n);
    return buf_.size() < kCap || flush();
  }
  bool flush() {
    bool ok = buf_.empty() || std::fwrite(buf_.data(), 1, buf_.size(), f_) == buf_.size();
    buf_.clear();
    return ok;
  }

 private:
  static constexpr size_t kCap = 8 << 20;
  FILE* f_;
  std::vector<char> buf_;
};

// Streams one tensor. FP8 projections leave their block scales in `scales` for the scale tensor after them.
bool write_tensor(const TensorSpec& t, uint64_t seed, Writer& w, std::map<std::string, std::vector<float>>& scales) {
  if (t.is_scale) {
    auto it = scales.find(t.seed_name);
    if (it == scales.end()) return false;
    bool ok = w.put(it->second.data(), it->second.size() * 4);
    scales.erase(it);
    return ok;
  }
  Rng rng(hash_name(t.seed_name, seed));
  const int64_t cols = t.shape.back();
  const int64_t rows = t.shape.size() == 2 ? t.shape[0] : 1;
  auto value = [&]() {
    switch (t.init) {
      case Init::kLinear: return 0.02f * rng.normal();
      case Init::kNorm: return 1.f + 0.05f * rng.normal();
      case Init::kBias: return 0.01f * rng.normal();
    }
    return 0.f;
  };
  std::vector<float> block;       // up to 128 rows of float32 values
  std::vector<uint8_t> bytes;
  std::vector<float>* scale_out = nullptr;
  const int64_t scale_cols = (cols + 127) / 128;
  if (t.dtype == DType::kF8E4M3) scale_out = &scales[t.name];
  for (int64_t r0 = 0; r0 < rows; r0 += 128) {
    const int64_t rn = std::min<int64_t>(128, rows - r0);
    block.resize(static_cast<size_t>(rn * cols));
    for (float& v : block) v = value();
    const int64_t n = rn * cols;
    switch (t.dtype) {
      case DType::kF32:
        if (!w.put(block.data(), n * 4)) return false;
        break;
      case DType::kF16:
        return false;  // not offered by --dtype
      case DType::kBF16: {
        bytes.resize(static_cast<size_t>(n * 2));
        auto* h = reinterpret_cast<uint16_t*>(bytes.data());
        for (int64_t i = 0; i < n; ++i) h[i] = latent::f32_to_bf16(block[i]);
        if (!w.put(bytes.data(), n * 2)) return false;
        break;
      }
      case DType::kF8E4M3: {
        std::vector<float> s(static_cast<size_t>(scale_cols), 0.f);
        for (int64_t r = 0; r < rn; ++r)
          for (int64_t c = 0; c < cols; ++c) s[c / 128] = std::max(s[c / 128], std::fabs(block[r * cols + c]));
        for (float& v : s) v = v > 0 ? v / 448.f : 1.f;
        bytes.resize(static_cast<size_t>(n));
        for (int64_t r = 0; r < rn; ++r)
          for (int64_t c = 0; c < cols; ++c) bytes[r * cols + c] = latent::f32_to_fp8e4m3(block[r * cols + c] / s[c / 128]);
        scale_out->insert(scale_out->end(), s.begin(), s.end());
        if (!w.put(bytes.data(), n)) return false;
        break;
      }
    }
  }
  return true;
}

int usage(const char* msg) {
  std::fprintf(stderr,
               "%s\nusage: make_checkpoint --preset coder-v2-lite|v2-lite|deepseek-v3 --layers N "
               "--dtype bf16|fp8|f32 --out DIR [--seed S] [--mtp 0|1] [--config-only]\n",
               msg);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string preset, dtype_arg = "bf16", out;
  bool config_only = false;
  int64_t layers = -1, mtp_arg = -1;
  uint64_t seed = 1;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") return usage("make_checkpoint: a random DeepSeek checkpoint with real shapes"), 0;
    if (a == "--config-only") {
      config_only = true;
      continue;
    }
    if (i + 1 >= argc) return usage(("expected a value after " + a).c_str());
    std::string v = argv[++i];
    if (a == "--preset") preset = v;
    else if (a == "--layers") layers = std::stoll(v);
    else if (a == "--dtype") dtype_arg = v;
    else if (a == "--out") out = v;
    else if (a == "--seed") seed = std::stoull(v);
    else if (a == "--mtp") mtp_arg = std::stoll(v);
    else return usage(("unknown option " + a).c_str());
  }
  json cfg;
  if (preset == "coder-v2-lite" || preset == "v2-lite") cfg = coder_v2_lite_config();
  else if (preset == "deepseek-v3") cfg = deepseek_v3_config();
  else return usage(("--preset: expected coder-v2-lite, v2-lite or deepseek-v3, found '" + preset + "'").c_str());
  if (out.empty()) return usage("--out: expected a directory, found none");
  DType dtype;
  if (dtype_arg == "bf16") dtype = DType::kBF16;
  else if (dtype_arg == "fp8") dtype = DType::kF8E4M3;
  else if (dtype_arg == "f32") dtype = DType::kF32;
  else return usage(("--dtype: expected bf16, fp8 or f32, found '" + dtype_arg + "'").c_str());
  if (layers < 0) layers = cfg["num_hidden_layers"];
  if (layers < 1) return usage("--layers: expected at least 1");
  cfg["num_hidden_layers"] = layers;
  const bool mtp = mtp_arg < 0 ? cfg.value("num_nextn_predict_layers", 0) > 0 : mtp_arg > 0;
  if (cfg.contains("num_nextn_predict_layers") || mtp) cfg["num_nextn_predict_layers"] = mtp ? 1 : 0;
  cfg["torch_dtype"] = dtype == DType::kF32 ? "float32" : "bfloat16";
  if (dtype == DType::kF8E4M3) {
    cfg["quantization_config"] = {{"activation_scheme", "dynamic"}, {"fmt", "e4m3"}, {"quant_method", "fp8"},
                                  {"weight_block_size", {128, 128}}};
  } else {
    cfg.erase("quantization_config");
  }

  std::error_code ec;
  std::filesystem::create_directories(out, ec);
  if (ec) return std::fprintf(stderr, "cannot create %s: %s\n", out.c_str(), ec.message().c_str()), 1;
  {
    FILE* f = std::fopen((out + "/config.json").c_str(), "w");
    if (!f) return std::fprintf(stderr, "cannot write %s/config.json: %s\n", out.c_str(), std::strerror(errno)), 1;
    std::string s = cfg.dump(2) + "\n";
    std::fwrite(s.data(), 1, s.size(), f);
    std::fclose(f);
  }
  if (config_only) {
    std::fprintf(stderr, "wrote %s/config.json (--config-only: no weights)\n", out.c_str());
    return 0;
  }

  std::vector<TensorSpec> tensors = tensor_list(cfg, layers, mtp, dtype);
  json header = json::object();
  header["__metadata__"] = {{"format", "pt"}, {"generator", "latent make_checkpoint"}, {"preset", preset},
                            {"seed", std::to_string(seed)}};
  int64_t offset = 0;
  for (const TensorSpec& t : tensors) {
    header[t.name] = {{"dtype", t.is_scale ? "F32" : latent::dtype_name(t.dtype)}, {"shape", t.shape},
                      {"data_offsets", {offset, offset + t.bytes()}}};
    offset += t.bytes();
  }
  std::string h = header.dump();
  while (h.size() % 8 != 0) h += ' ';
  const std::string path = out + "/model.safetensors";
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return std::fprintf(stderr, "cannot write %s: %s\n", path.c_str(), std::strerror(errno)), 1;
  uint64_t hlen = h.size();
  Writer w(f);
  bool ok = w.put(&hlen, 8) && w.put(h.data(), h.size());
  auto t0 = std::chrono::steady_clock::now();
  std::map<std::string, std::vector<float>> scales;
  for (size_t i = 0; ok && i < tensors.size(); ++i) ok = write_tensor(tensors[i], seed, w, scales);
  ok = ok && w.flush();
  ok = (std::fclose(f) == 0) && ok;
  if (!ok) return std::fprintf(stderr, "writing %s failed: %s\n", path.c_str(), std::strerror(errno)), 1;
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::fprintf(stderr, "wrote %s: %zu tensors, %.2f GB in %.1f s\n", path.c_str(), tensors.size(),
               static_cast<double>(offset) / 1e9, secs);
  return 0;
}
