#pragma once
// tokenizer.json's "pre_tokenizer": cuts normalized text into pieces that BPE encodes one by one.
// Supported: Sequence, Split (Regex or String pattern; Removed, Isolated, MergedWithPrevious, MergedWithNext,
// Contiguous; invert), ByteLevel (add_prefix_space, use_regex with GPT-2's regex), Digits, Whitespace,
// WhitespaceSplit, Punctuation. Anything else is a kUnsupported error naming it.
// Thread-safety: immutable after from_json(); run() may be called concurrently.
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/tokenizer/regex.h"
#include "kernels/base/result.h"

namespace latent::tok {

enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

Result<SplitBehavior> parse_split_behavior(const std::string& name);

// Receives one piece; the view is valid only during the call.
struct PieceSink {
  void (*fn)(void* ctx, std::string_view piece);
  void* ctx;
  void operator()(std::string_view piece) const { fn(ctx, piece); }
};

class PreTokenizer {
 public:
  // `config` is the "pre_tokenizer" value; null means the whole text is one piece.
  static Result<PreTokenizer> from_json(const nlohmann::json& config);

  // True when a ByteLevel step exists: BPE then works on raw bytes (GPT-2's byte alphabet).
  bool byte_level() const { return byte_level_; }

  // Emits the non-empty pieces of `text` in order.
  void run(std::string_view text, PieceSink sink) const;

  struct Span {
    size_t begin, end;
    bool match;
  };
  // One Split step on its own, for tests: the kept pieces of `text`.
  static std::vector<std::string> split_for_test(const Regex& re, SplitBehavior behavior, bool invert,
                                                 std::string_view text);

 private:
  struct Step {
    enum class Kind { kSplit, kPrefixSpace } kind = Kind::kSplit;
    Regex regex;
    SplitBehavior behavior = SplitBehavior::kIsolated;
    bool invert = false;
  };
  Status add(const nlohmann::json& config);
  void run_from(size_t step, std::string_view piece, std::vector<std::vector<Span>>& scratch,
                PieceSink sink) const;

  std::vector<Step> steps_;
  bool byte_level_ = false;
};

// The kept [begin, end) spans of one Split step over `text` (empty spans dropped), into `out`.
void split_spans(const Regex& re, SplitBehavior behavior, bool invert, std::string_view text,
                 std::vector<PreTokenizer::Span>& out);

}  // namespace latent::tok
