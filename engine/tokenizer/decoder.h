#pragma once
// tokenizer.json's "decoder": token strings -> text. Supported: ByteLevel, Sequence, Replace, Fuse, Strip,
// ByteFallback, Metaspace; null joins tokens with spaces (as the tokenizers crate does without a decoder).
// Thread-safety: immutable after from_json().
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/tokenizer/regex.h"
#include "kernels/base/result.h"

namespace latent::tok {

class Decoder {
 public:
  static Result<Decoder> from_json(const nlohmann::json& config);

  std::string decode(std::vector<std::string> tokens) const;
  // True when the decoder is exactly ByteLevel: decoding is concatenating token bytes.
  bool pure_byte_level() const { return steps_.size() == 1 && steps_[0].kind == Step::Kind::kByteLevel; }
  bool none() const { return steps_.empty(); }

 private:
  struct Step {
    enum class Kind { kByteLevel, kReplace, kFuse, kStrip, kByteFallback, kMetaspace } kind;
    Regex regex;          // Replace
    std::string content;  // Replace: replacement; Strip: the character; Metaspace: the replacement
    int start = 0, stop = 0;  // Strip
    bool prepend = true;      // Metaspace: a leading replacement of the first token was added, drop it
  };
  Status add(const nlohmann::json& c);
  std::vector<Step> steps_;
};

}  // namespace latent::tok
