#pragma once
// LSP positions: {line, character} where `character` counts UTF-16 code units by default, or UTF-8 bytes /
// UTF-32 code points when negotiated (general.positionEncodings). Text is stored as UTF-8.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace latent::lsp {

enum class PositionEncoding { kUtf16, kUtf8, kUtf32 };
const char* position_encoding_name(PositionEncoding enc);  // "utf-16", "utf-8", "utf-32"

struct Position {
  uint32_t line = 0;
  uint32_t character = 0;
  bool operator==(const Position&) const = default;
};

struct Range {
  Position start;
  Position end;
};

// Byte offset of `pos` in `text`. Past the end of a line clamps to the line's end (before its newline), past
// the last line clamps to the end of the text, as LSP asks; a position inside a UTF-16 surrogate pair or a
// UTF-8 sequence rounds down to the code point's start.
size_t offset_of(std::string_view text, Position pos, PositionEncoding enc);
// The position of byte `offset` (clamped to the text's size).
Position position_of(std::string_view text, size_t offset, PositionEncoding enc);

// Byte length of the UTF-8 sequence starting with `lead` (1 for invalid bytes, so that scanning advances).
int utf8_sequence_length(unsigned char lead);

}  // namespace latent::lsp
