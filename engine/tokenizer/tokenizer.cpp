#include "engine/tokenizer/tokenizer.h"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <unordered_map>

#include "engine/tokenizer/byte_level.h"
#include "engine/tokenizer/json_loader.h"
#include "kernels/base/log.h"

namespace latent {
namespace {

Result<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorCode::kNotFound, "cannot open " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A token in tokenizer_config.json: "text", {"content": "text", ...} or null.
std::string config_token(const nlohmann::json& cfg, const char* key) {
  if (!cfg.contains(key)) return "";
  const auto& v = cfg[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content")) return v["content"].get<std::string>();
  return "";
}

}  // namespace

// piece -> ids, bounded: cleared when full (code repeats its identifiers, so the hit rate recovers at once).
struct Tokenizer::Cache {
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::mutex mu;
  size_t capacity = size_t{1} << 18;
  std::unordered_map<std::string, std::pair<uint32_t, uint32_t>, Hash, std::equal_to<>> map;
  std::vector<int32_t> ids;

  bool lookup(std::string_view piece, std::vector<int32_t>& out) const {
    auto it = map.find(piece);
    if (it == map.end()) return false;
    out.insert(out.end(), ids.begin() + it->second.first, ids.begin() + it->second.first + it->second.second);
    return true;
  }
  void insert(std::string_view piece, const int32_t* p, size_t n) {
    if (capacity == 0 || piece.size() > 256) return;
    if (map.size() >= capacity || ids.size() + n > capacity * 8) {
      map.clear();
      ids.clear();
    }
    map.emplace(std::string(piece), std::make_pair(static_cast<uint32_t>(ids.size()), static_cast<uint32_t>(n)));
    ids.insert(ids.end(), p, p + n);
  }
};

Tokenizer::Tokenizer() : cache_(std::make_unique<Cache>()) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Result<Tokenizer> Tokenizer::load(const std::string& dir) {
  std::string tj = dir + "/tokenizer.json";
  if (!std::filesystem::exists(tj))
    return make_error(ErrorCode::kNotFound, "expected " + tj + " (a Hugging Face tokenizer), found none");
  return load_file(tj, "");
}

Result<Tokenizer> Tokenizer::load_file(const std::string& tokenizer_json, const std::string& config_path) {
  LATENT_ASSIGN_OR_RETURN(std::string tj, read_file(tokenizer_json));
  std::filesystem::path dir = std::filesystem::path(tokenizer_json).parent_path();
  std::string cfg_path = config_path.empty() ? (dir / "tokenizer_config.json").string() : config_path;
  std::string cfg;
  if (!config_path.empty() || std::filesystem::exists(cfg_path)) {
    LATENT_ASSIGN_OR_RETURN(cfg, read_file(cfg_path));
  }
  auto t = from_json_text(tj, cfg);
  if (!t.ok()) return make_error(t.error().code, tokenizer_json + ": " + t.error().message);
  // Newer checkpoints keep the template beside the config: chat_template.jinja or chat_template.json.
  if (t->chat_template_.empty() && std::filesystem::exists(dir / "chat_template.jinja")) {
    LATENT_ASSIGN_OR_RETURN(t->chat_template_, read_file((dir / "chat_template.jinja").string()));
  }
  if (t->chat_template_.empty() && std::filesystem::exists(dir / "chat_template.json")) {
    LATENT_ASSIGN_OR_RETURN(std::string text, read_file((dir / "chat_template.json").string()));
    try {
      t->chat_template_ = nlohmann::json::parse(text).value("chat_template", std::string());
    } catch (const nlohmann::json::exception& e) {
      return make_error(ErrorCode::kInvalidArgument, (dir / "chat_template.json").string() + ": " + e.what());
    }
  }
  return t;
}

Result<Tokenizer> Tokenizer::from_json_text(std::string_view tokenizer_json, std::string_view config_json) {
  Tokenizer t;
  nlohmann::json cfg = nlohmann::json::object();
  auto t0 = std::chrono::steady_clock::now();
  auto ms_since = [](auto start) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  };
  LATENT_ASSIGN_OR_RETURN(tok::TokenizerJson parsed, tok::parse_tokenizer_json(tokenizer_json));
  const nlohmann::json& j = parsed.rest;
  try {
    if (!config_json.empty()) cfg = nlohmann::json::parse(config_json);
  } catch (const nlohmann::json::exception& e) {
    return make_error(ErrorCode::kInvalidArgument, std::string("tokenizer_config.json: not valid JSON: ") + e.what());
  }
  if (!j.contains("model") || !j["model"].is_object())
    return make_error(ErrorCode::kInvalidArgument, "expected a tokenizer.json object with a \"model\"");
  double parse_ms = ms_since(t0);
  LATENT_ASSIGN_OR_RETURN(t.normalizer_, tok::Normalizer::from_json(j.value("normalizer", nlohmann::json())));
  LATENT_ASSIGN_OR_RETURN(t.pre_tokenizer_,
                          tok::PreTokenizer::from_json(j.value("pre_tokenizer", nlohmann::json())));
  if (parsed.has_vocab || parsed.has_merges) {
    LATENT_ASSIGN_OR_RETURN(t.model_, tok::BpeModel::from_parts(j["model"], std::move(parsed.vocab),
                                                                std::move(parsed.merges),
                                                                t.pre_tokenizer_.byte_level()));
  } else {
    LATENT_ASSIGN_OR_RETURN(t.model_, tok::BpeModel::from_json(j["model"], t.pre_tokenizer_.byte_level()));
  }
  LATENT_ASSIGN_OR_RETURN(t.decoder_, tok::Decoder::from_json(j.value("decoder", nlohmann::json())));
  LATENT_ASSIGN_OR_RETURN(t.added_, tok::AddedVocabulary::from_json(j.value("added_tokens", nlohmann::json())));
  // post_processor: ByteLevel only trims offsets, which we do not report; TemplateProcessing (BOS/EOS) is
  // taken from tokenizer_config.json instead, as transformers' LlamaTokenizerFast rebuilds it from there.
  if (j.contains("post_processor") && !j["post_processor"].is_null()) {
    std::string pp = j["post_processor"].value("type", std::string());
    if (pp != "ByteLevel" && pp != "TemplateProcessing")
      LATENT_LOG_WARN("tokenizer post_processor '%s' is ignored (BOS/EOS come from tokenizer_config.json)",
                      pp.c_str());
  }

  t.byte_level_decoding_ = t.decoder_.pure_byte_level();
  t.token_bytes_.resize(t.vocab_size());
  for (size_t id = 0; id < t.model_.size(); ++id) {
    const std::string& s = t.model_.id_to_token(static_cast<int32_t>(id));
    if (!t.byte_level_decoding_ || !tok::byte_level_decode(s, t.token_bytes_[id])) t.token_bytes_[id] = s;
  }
  for (const auto& a : t.added_.tokens()) t.token_bytes_[a.id] = a.content;

  try {
    t.bos_token_ = config_token(cfg, "bos_token");
    t.eos_token_ = config_token(cfg, "eos_token");
    std::string pad = config_token(cfg, "pad_token");
    t.add_bos_ = cfg.value("add_bos_token", false);
    t.add_eos_ = cfg.value("add_eos_token", false);
    if (cfg.contains("chat_template")) {
      const auto& ct = cfg["chat_template"];
      if (ct.is_string()) {
        t.chat_template_ = ct.get<std::string>();
      } else if (ct.is_array() && !ct.empty()) {  // [{"name": "default", "template": "..."}, ...]
        t.chat_template_ = ct[0].value("template", std::string());
        for (const auto& e : ct)
          if (e.value("name", std::string()) == "default") t.chat_template_ = e.value("template", std::string());
      }
    }
    t.bos_id_ = t.bos_token_.empty() ? -1 : t.token_to_id(t.bos_token_);
    t.eos_id_ = t.eos_token_.empty() ? -1 : t.token_to_id(t.eos_token_);
    t.pad_id_ = pad.empty() ? -1 : t.token_to_id(pad);
  } catch (const nlohmann::json::exception& e) {
    return make_error(ErrorCode::kInvalidArgument, std::string("tokenizer_config.json: ") + e.what());
  }
  if (!t.bos_token_.empty() && t.bos_id_ < 0)
    return make_error(ErrorCode::kInvalidArgument, "tokenizer_config.json: bos_token '" + t.bos_token_ +
                                                       "' is not in the vocabulary");
  if (!t.eos_token_.empty() && t.eos_id_ < 0)
    return make_error(ErrorCode::kInvalidArgument, "tokenizer_config.json: eos_token '" + t.eos_token_ +
                                                       "' is not in the vocabulary");
  if (t.add_bos_ && t.bos_id_ < 0)
    return make_error(ErrorCode::kInvalidArgument, "tokenizer_config.json: add_bos_token is true but no bos_token");
  LATENT_LOG_DEBUG("tokenizer: %zu tokens, JSON parsed in %.0f ms, built in %.0f ms", t.vocab_size(), parse_ms,
                   ms_since(t0) - parse_ms);
  return t;
}

size_t Tokenizer::vocab_size() const {
  size_t n = model_.size();
  for (const auto& a : added_.tokens()) n = std::max(n, static_cast<size_t>(a.id) + 1);
  return n;
}

int32_t Tokenizer::token_to_id(std::string_view token) const {
  if (const auto* a = added_.by_content(token)) return a->id;
  return model_.token_to_id(token);
}

std::string Tokenizer::id_to_token(int32_t id) const {
  if (const auto* a = added_.by_id(id)) return a->content;
  return model_.id_to_token(id);
}

bool Tokenizer::is_special(int32_t id) const {
  const auto* a = added_.by_id(id);
  return a && a->special;
}

bool Tokenizer::is_added(int32_t id) const { return added_.by_id(id) != nullptr; }

const std::string& Tokenizer::token_bytes(int32_t id) const {
  static const std::string kEmpty;
  return id >= 0 && static_cast<size_t>(id) < token_bytes_.size() ? token_bytes_[id] : kEmpty;
}

bool Tokenizer::byte_level_decoding() const { return byte_level_decoding_; }

void Tokenizer::set_cache_capacity(size_t entries) {
  std::lock_guard<std::mutex> lock(cache_->mu);
  cache_->capacity = entries;
  cache_->map.clear();
  cache_->ids.clear();
}

void Tokenizer::encode_segment(std::string_view text, std::vector<int32_t>& out, Cache* cache) const {
  struct Ctx {
    const Tokenizer* self;
    std::vector<int32_t>* out;
    Cache* cache;
  } ctx{this, &out, cache};
  tok::PieceSink sink{[](void* p, std::string_view piece) {
                        auto* c = static_cast<Ctx*>(p);
                        if (c->cache && c->cache->lookup(piece, *c->out)) return;
                        size_t before = c->out->size();
                        c->self->model_.encode_piece(piece, *c->out);
                        if (c->cache) c->cache->insert(piece, c->out->data() + before, c->out->size() - before);
                      },
                      &ctx};
  pre_tokenizer_.run(text, sink);
}

void Tokenizer::encode_into(std::string_view text, bool match_added_tokens, std::vector<int32_t>& out) const {
  std::string lossy;
  if (tok::valid_utf8_prefix(text) != text.size()) {
    lossy = tok::utf8_lossy(text);
    text = lossy;
  }
  std::unique_lock<std::mutex> lock(cache_->mu, std::try_to_lock);
  Cache* cache = lock.owns_lock() && cache_->capacity > 0 ? cache_.get() : nullptr;

  auto on_token = [&](int32_t id) { out.push_back(id); };
  // Text between raw-matched tokens: normalize, then match the normalized added tokens, then pre-tokenize.
  auto on_raw_text = [&](std::string_view seg) {
    std::string norm;
    if (!normalizer_.identity()) {
      norm = normalizer_.normalize(seg);
      seg = norm;
    }
    if (!match_added_tokens) {
      encode_segment(seg, out, cache);
      return;
    }
    added_.split(seg, /*normalized=*/true, /*skip_special=*/false,
                 [&](std::string_view s) { encode_segment(s, out, cache); }, on_token);
  };
  if (!match_added_tokens) {
    on_raw_text(text);
    return;
  }
  added_.split(text, /*normalized=*/false, /*skip_special=*/false, on_raw_text, on_token);
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, const EncodeOptions& options) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 2);
  if (options.add_special_tokens && add_bos_) ids.push_back(bos_id_);
  encode_into(text, options.match_added_tokens, ids);
  if (options.add_special_tokens && add_eos_ && eos_id_ >= 0) ids.push_back(eos_id_);
  return ids;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  EncodeOptions o;
  o.add_special_tokens = add_special_tokens;
  return encode(text, o);
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  if (byte_level_decoding_) {
    std::string bytes;
    for (int32_t id : ids) {
      if (skip_special_tokens && is_special(id)) continue;
      bytes += token_bytes(id);
    }
    return tok::utf8_lossy(bytes);
  }
  // As the tokenizers crate: model tokens go through the decoder in runs, added tokens are copied as they are.
  std::string out;
  std::vector<std::string> chunk;
  auto flush = [&] {
    if (!chunk.empty()) out += decoder_.decode(std::move(chunk));
    chunk.clear();
  };
  for (int32_t id : ids) {
    if (const auto* a = added_.by_id(id)) {
      if (skip_special_tokens && a->special) continue;
      flush();
      if (decoder_.none() && !out.empty()) out += ' ';
      out += a->content;
    } else if (id >= 0 && static_cast<size_t>(id) < model_.size() && !model_.id_to_token(id).empty()) {
      chunk.push_back(model_.id_to_token(id));
    }
  }
  flush();
  return out;
}

}  // namespace latent
