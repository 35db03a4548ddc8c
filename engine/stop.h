#pragma once
// When to stop generating, and which text to show so far.
//
// StopChecker sees each accepted token once, in order. Token stops (stop ids, max_tokens) need no text;
// text stops (stop strings, the end of the enclosing block, reaching the suffix after the cursor) need a
// TokenTextSource. Text that might still turn into a stop string is held back until it cannot, so a client
// never sees text that is later retracted; a stop cuts the text before the match.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/request.h"

namespace latent {

// Incremental detokenizer for one stream: push an id, get the text it completes (maybe empty while a UTF-8
// sequence or a merge is pending); finish() returns whatever is still buffered.
class TextDecoder {
 public:
  virtual ~TextDecoder() = default;
  virtual std::string push(int32_t id) = 0;
  virtual std::string finish() = 0;
};

// Something that can turn ids into text: the tokenizer (adapter in engine/stop_tokenizer.h) or a test map.
class TokenTextSource {
 public:
  virtual ~TokenTextSource() = default;
  virtual std::unique_ptr<TextDecoder> new_decoder() const = 0;
};

class StopChecker {
 public:
  StopChecker(const StopParams& params, const TokenTextSource* text);

  struct Outcome {
    bool emit_token = true;              // false for a stop id (not part of the output)
    std::string text;                    // text delta to show now
    std::optional<FinishReason> finish;  // set when generation must end after this token
  };
  Outcome push(int32_t token);

  // Remaining held-back text when generation ends for a reason other than a text stop.
  std::string flush();

  int generated() const { return generated_; }
  const std::string& text() const { return text_; }  // everything shown so far

 private:
  struct TextStop {
    std::string needle;
    FinishReason reason;
  };
  // Earliest stop in pending_ (from scan_from_), as {position, reason}.
  std::optional<std::pair<size_t, FinishReason>> find_text_stop();
  size_t holdback() const;  // pending_ suffix length that may still grow into a needle

  StopParams params_;
  std::unique_ptr<TextDecoder> decoder_;
  std::vector<TextStop> stops_;
  std::string pending_;     // decoded but not yet shown
  std::string text_;        // shown
  size_t scanned_ = 0;      // bracket scan position within pending_
  int depth_ = 0;           // bracket depth of text seen so far
  int generated_ = 0;
  bool done_ = false;
};

}  // namespace latent
