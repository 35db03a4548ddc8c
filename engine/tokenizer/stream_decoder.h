#pragma once
// StreamDecoder: token ids in, text out, one step at a time, emitting only complete UTF-8 characters (a
// character split across tokens comes out with the token that completes it). The concatenation of every
// push() and the final flush() equals Tokenizer::decode() of all the ids.
//
//   StreamDecoder sd(tok);
//   for (int32_t id : generated) send(sd.push(id));
//   send(sd.flush());
//
// Thread-safety: one StreamDecoder per sequence; it keeps a reference to the Tokenizer.
#include <cstdint>
#include <string>
#include <vector>

#include "engine/tokenizer/tokenizer.h"

namespace latent {

class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tokenizer, bool skip_special_tokens = false)
      : tok_(tokenizer), skip_special_(skip_special_tokens) {}

  // Text completed by this token (possibly empty).
  std::string push(int32_t id);
  // Whatever is still held back (an unfinished character becomes U+FFFD); resets the decoder.
  std::string flush();

 private:
  const Tokenizer& tok_;
  bool skip_special_;
  std::string pending_;  // byte-level path: bytes of an unfinished UTF-8 sequence
  // Other decoders: transformers' DecodeStream (decode a short window of ids, emit what grew).
  std::vector<int32_t> ids_;
  std::string prefix_;
  size_t prefix_index_ = 0;
};

}  // namespace latent
