// tokenizer.json and text to encode. Mode 0: the bytes are a tokenizer.json (then a text to encode with it);
// mode 1: the bytes are text encoded with the demo model's real DeepSeek tokenizer (byte-level BPE): every id is
// in the vocabulary and, for valid UTF-8, decode(encode(text)) == text.
#include <cstdlib>
#include <memory>
#include <string>

#include "engine/tokenizer/tokenizer.h"
#include "tests/fuzz/fuzz_input.h"
#include "tests/test_paths.h"

#define FUZZ_CHECK(c) \
  if (!(c)) std::abort()

namespace {

bool valid_utf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    uint32_t cp = n == 1 ? c : n == 2 ? (c & 0x1F) : n == 3 ? (c & 0x0F) : (c & 0x07);
    for (size_t k = 1; k < n; ++k) {
      const unsigned char d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += n;
  }
  return true;
}

const latent::Tokenizer* demo() {
  static std::unique_ptr<latent::Tokenizer> tok = [] {
    auto t = latent::Tokenizer::load(std::string(LATENT_SOURCE_DIR) + "/models/demo");
    if (!t.ok()) std::abort();  // the fuzzer's own setup, not an input
    return std::make_unique<latent::Tokenizer>(std::move(*t));
  }();
  return tok.get();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  latent::fuzz::Input in(data, size);
  if (in.byte() % 2 == 0) {
    const std::string config = in.bytes(64);
    const std::string text = in.bytes(64);
    const std::string json = in.rest();
    auto t = latent::Tokenizer::from_json_text(json, config);
    if (!t.ok()) return 0;
    for (int32_t id : t->encode(text, true)) FUZZ_CHECK(id >= 0 && static_cast<size_t>(id) < t->vocab_size());
    (void)t->decode(t->encode(text, false));
    return 0;
  }
  const std::string text = in.rest();
  const latent::Tokenizer* tok = demo();
  const auto ids = tok->encode(text, false);
  for (int32_t id : ids) FUZZ_CHECK(id >= 0 && static_cast<size_t>(id) < tok->vocab_size());
  const std::string back = tok->decode(ids);
  if (valid_utf8(text) && tok->byte_level_decoding()) FUZZ_CHECK(back == text);
  return 0;
}
