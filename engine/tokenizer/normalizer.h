#pragma once
// tokenizer.json's "normalizer". DeepSeek-V2, DeepSeek-Coder(-V2) and DeepSeek-V3 ship an empty Sequence (the
// identity). Supported: null, Sequence, Prepend, Replace (String or Regex pattern), Strip. Unicode
// normalization forms (NFC, NFKC, NFD, NFKD), Lowercase, BertNormalizer, Precompiled are a kUnsupported error.
// Thread-safety: immutable after from_json().
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/tokenizer/regex.h"
#include "kernels/base/result.h"

namespace latent::tok {

class Normalizer {
 public:
  static Result<Normalizer> from_json(const nlohmann::json& config);
  bool identity() const { return steps_.empty(); }
  std::string normalize(std::string_view text) const;

 private:
  struct Step {
    enum class Kind { kPrepend, kReplace, kStrip } kind;
    std::string text;  // Prepend: prefix; Replace: replacement
    Regex regex;       // Replace
    bool left = false, right = false;  // Strip
  };
  Status add(const nlohmann::json& c);
  std::vector<Step> steps_;
};

// Unicode White_Space (Rust's char::is_whitespace, Oniguruma's \s).
bool is_white_space(uint32_t cp);

}  // namespace latent::tok
