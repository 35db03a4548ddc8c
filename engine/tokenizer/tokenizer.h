#pragma once
// Tokenizer: a Hugging Face tokenizer.json (+ tokenizer_config.json) for DeepSeek-V2, DeepSeek-Coder(-V2) and
// DeepSeek-V3, encoding to the same ids as the tokenizers library.
//
//   auto tok = Tokenizer::load("/models/DeepSeek-V3");           // tokenizer.json + tokenizer_config.json
//   std::vector<int32_t> ids = tok->encode("def f():", /*add_special_tokens=*/true);   // BOS first
//   std::string text = tok->decode(ids, /*skip_special_tokens=*/true);
//
// encode(): added tokens are matched first (leftmost-longest), the rest is normalized, pre-tokenized (PCRE2
// JIT regexes) and BPE-encoded piece by piece through a cache of piece -> ids. add_special_tokens adds BOS
// (EOS) when tokenizer_config.json's add_bos_token (add_eos_token) is true, as transformers'
// LlamaTokenizerFast does. Input that is not valid UTF-8 is encoded as its lossy conversion (U+FFFD).
//
// Thread-safety: a loaded Tokenizer is immutable except its cache, which is locked; encode/decode may be
// called from any number of threads (a call that finds the cache busy runs without it).
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/tokenizer/added_vocab.h"
#include "engine/tokenizer/bpe.h"
#include "engine/tokenizer/decoder.h"
#include "engine/tokenizer/normalizer.h"
#include "engine/tokenizer/pre_tokenizer.h"
#include "kernels/base/result.h"

namespace latent {

struct EncodeOptions {
  bool add_special_tokens = false;  // BOS/EOS per tokenizer_config.json
  bool match_added_tokens = true;   // false: "<｜fim▁hole｜>" in the text is plain text, not the token
};

class Tokenizer {
 public:
  // `dir` holds tokenizer.json and, optionally, tokenizer_config.json (and chat_template.jinja or .json).
  static Result<Tokenizer> load(const std::string& dir);
  // A tokenizer.json file; the config is read from `config_path`, or when empty from tokenizer_config.json
  // next to it when that exists.
  static Result<Tokenizer> load_file(const std::string& tokenizer_json, const std::string& config_path = "");
  // From the texts of the two files (config may be empty).
  static Result<Tokenizer> from_json_text(std::string_view tokenizer_json, std::string_view config_json);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens = false) const;
  std::vector<int32_t> encode(std::string_view text, const EncodeOptions& options) const;
  // Appends to `out` (no BOS/EOS).
  void encode_into(std::string_view text, bool match_added_tokens, std::vector<int32_t>& out) const;

  // Text of `ids`; invalid UTF-8 (a cut multi-byte character) becomes U+FFFD. Unknown ids are skipped.
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens = false) const;

  // Vocabulary.
  size_t vocab_size() const;  // one past the largest id (model and added tokens)
  int32_t token_to_id(std::string_view token) const;  // -1 when absent; added tokens first
  std::string id_to_token(int32_t id) const;          // "" when absent
  bool is_special(int32_t id) const;                  // an added token marked special
  bool is_added(int32_t id) const;
  // The bytes a token decodes to when the decoder is ByteLevel (an added token: its content); else the
  // token string. Empty for unknown ids.
  const std::string& token_bytes(int32_t id) const;
  // True when decode() is concatenation of token_bytes() (then streaming decodes byte-exactly).
  bool byte_level_decoding() const;

  // tokenizer_config.json.
  int32_t bos_id() const { return bos_id_; }  // -1 when none
  int32_t eos_id() const { return eos_id_; }
  int32_t pad_id() const { return pad_id_; }
  const std::string& bos_token() const { return bos_token_; }
  const std::string& eos_token() const { return eos_token_; }
  bool add_bos() const { return add_bos_; }
  bool add_eos() const { return add_eos_; }
  const std::string& chat_template() const { return chat_template_; }

  // The piece cache (entries); 0 disables it. Default 1 << 18.
  void set_cache_capacity(size_t entries);

 private:
  Tokenizer();
  struct Cache;
  void encode_segment(std::string_view text, std::vector<int32_t>& out, Cache* cache) const;

  tok::Normalizer normalizer_;
  tok::PreTokenizer pre_tokenizer_;
  tok::BpeModel model_;
  tok::Decoder decoder_;
  tok::AddedVocabulary added_;
  std::vector<std::string> token_bytes_;  // id -> decoded bytes (see token_bytes())
  bool byte_level_decoding_ = false;
  int32_t bos_id_ = -1, eos_id_ = -1, pad_id_ = -1;
  std::string bos_token_, eos_token_;
  bool add_bos_ = false, add_eos_ = false;
  std::string chat_template_;
  std::unique_ptr<Cache> cache_;
};

}  // namespace latent
