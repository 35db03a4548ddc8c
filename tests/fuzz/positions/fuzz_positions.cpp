// UTF-16/UTF-8/UTF-32 position mapping (lsp/positions.h) on arbitrary bytes (malformed UTF-8 included).
// Invariants: offset_of stays inside the text; position_of(offset_of(p)) maps back to the same offset; offsets
// grow with the character on a line.
#include <cstdlib>

#include "lsp/positions.h"
#include "tests/fuzz/fuzz_input.h"

using namespace latent::lsp;

#define FUZZ_CHECK(c) \
  if (!(c)) std::abort()

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  latent::fuzz::Input in(data, size);
  const PositionEncoding enc = static_cast<PositionEncoding>(in.byte() % 3);
  // Two reads in sequence (operands of + are evaluated in an unspecified order: g++ and clang differ, and the
  // g++ replay must see the text the clang fuzzer saw).
  std::string text = in.bytes(255);
  text += in.bytes(255);
  while (!in.empty()) {
    Position p{in.byte() % 8u, in.byte() % 64u};
    if (p.character == 63) p.character = in.u32();  // sometimes huge
    const size_t o = offset_of(text, p, enc);
    FUZZ_CHECK(o <= text.size());
    const Position back = position_of(text, o, enc);
    FUZZ_CHECK(offset_of(text, back, enc) == o);
    Position next = p;
    if (next.character < UINT32_MAX) ++next.character;
    FUZZ_CHECK(offset_of(text, next, enc) >= o);
    const size_t raw = in.u32() % (text.size() + 2);
    const Position q = position_of(text, raw, enc);
    FUZZ_CHECK(offset_of(text, q, enc) <= text.size());
  }
  return 0;
}
