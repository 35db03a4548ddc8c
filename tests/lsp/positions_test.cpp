#include "lsp/positions.h"

#include <gtest/gtest.h>

namespace latent::lsp {
namespace {

// "é" is 2 UTF-8 bytes / 1 UTF-16 unit; "😀" is 4 bytes / 2 units (a surrogate pair); "中" 3 bytes / 1 unit.
const std::string kText = "aé😀b\n中x\n\nlast";

TEST(Positions, Utf16OffsetsCountCodeUnits) {
  auto u16 = PositionEncoding::kUtf16;
  EXPECT_EQ(offset_of(kText, {0, 0}, u16), 0u);
  EXPECT_EQ(offset_of(kText, {0, 1}, u16), 1u);   // after 'a'
  EXPECT_EQ(offset_of(kText, {0, 2}, u16), 3u);   // after 'é'
  EXPECT_EQ(offset_of(kText, {0, 3}, u16), 3u);   // inside the surrogate pair: rounds down
  EXPECT_EQ(offset_of(kText, {0, 4}, u16), 7u);   // after '😀'
  EXPECT_EQ(offset_of(kText, {0, 5}, u16), 8u);   // after 'b'
  EXPECT_EQ(offset_of(kText, {1, 1}, u16), 12u);  // after '中'
  EXPECT_EQ(offset_of(kText, {1, 2}, u16), 13u);
}

TEST(Positions, Utf8AndUtf32) {
  EXPECT_EQ(offset_of(kText, {0, 7}, PositionEncoding::kUtf8), 7u);
  EXPECT_EQ(offset_of(kText, {0, 3}, PositionEncoding::kUtf32), 7u);
  EXPECT_EQ(offset_of(kText, {1, 1}, PositionEncoding::kUtf32), 12u);
}

TEST(Positions, ClampsPastLineAndTextEnd) {
  auto u16 = PositionEncoding::kUtf16;
  EXPECT_EQ(offset_of(kText, {0, 100}, u16), 8u);  // before the newline
  EXPECT_EQ(offset_of(kText, {2, 5}, u16), 14u);   // empty line
  EXPECT_EQ(offset_of(kText, {9, 0}, u16), kText.size());
  EXPECT_EQ(offset_of("a\r\nb", {0, 9}, u16), 1u);  // before \r\n
}

TEST(Positions, RoundTrip) {
  for (auto enc : {PositionEncoding::kUtf16, PositionEncoding::kUtf8, PositionEncoding::kUtf32}) {
    for (size_t off : {0u, 1u, 3u, 7u, 8u, 9u, 12u, 13u, 15u, 16u}) {
      Position p = position_of(kText, off, enc);
      EXPECT_EQ(offset_of(kText, p, enc), off) << position_encoding_name(enc) << " offset " << off;
    }
  }
  EXPECT_EQ(position_of(kText, 7, PositionEncoding::kUtf16), (Position{0, 4}));
  EXPECT_EQ(position_of(kText, 12, PositionEncoding::kUtf16), (Position{1, 1}));
}

}  // namespace
// Malformed UTF-8 cut by the end of a line (or by a "\r\n"): position_of walks the line as offset_of does, so
// every offset offset_of returns maps back to itself (found by reading the fuzz target's invariant).
TEST(Positions, RoundTripWithSequencesCutByTheLineEnd) {
  for (std::string text : {std::string("a\xF0" "b"), std::string("\xC3\r\nx"), std::string("\xE2\x82\n\xF0"),
                           std::string("ok\xC3"), std::string("a\r\nb\r"), std::string("\r")}) {
    for (auto enc : {PositionEncoding::kUtf16, PositionEncoding::kUtf8, PositionEncoding::kUtf32}) {
      for (uint32_t line = 0; line < 3; ++line) {
        for (uint32_t ch = 0; ch < 6; ++ch) {
          const size_t o = offset_of(text, {line, ch}, enc);
          EXPECT_EQ(offset_of(text, position_of(text, o, enc), enc), o) << line << ":" << ch << " in " << text.size();
        }
      }
    }
  }
}

// Found by fuzz_positions (tests/fuzz/positions/crashes/crash-53c2...): a '\r' that ends the text is a line end
// (offset_of leaves it out of the line), so the text's end is the next line's start, not a column past the '\r'.
TEST(Positions, ACarriageReturnEndingTheTextEndsTheLine) {
  const std::string text = "a\r\nb\r";
  for (auto enc : {PositionEncoding::kUtf16, PositionEncoding::kUtf8, PositionEncoding::kUtf32}) {
    EXPECT_EQ(position_of(text, text.size(), enc), (Position{2, 0}));
    EXPECT_EQ(offset_of(text, {2, 0}, enc), text.size());
    EXPECT_EQ(position_of(text, text.size() - 1, enc), (Position{1, 1}));
    EXPECT_EQ(offset_of(text, {1, 9}, enc), text.size() - 1);
  }
}

}  // namespace latent::lsp
