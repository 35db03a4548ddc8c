#pragma once
// GPT-2's byte-level alphabet: every byte 0..255 maps to one printable code point (printable Latin-1 bytes to
// themselves, the other 68 to U+0100..U+0143), so a byte-level BPE vocabulary stores token bytes as text.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace latent::tok {

// byte -> its code point, e.g. ' ' -> U+0120 'Ġ'.
const std::array<uint32_t, 256>& byte_to_codepoint();
// code point -> byte, or -1 when the code point is not in the alphabet.
int codepoint_to_byte(uint32_t cp);

// Appends the UTF-8 encoding of cp.
void append_utf8(std::string& out, uint32_t cp);
// Decodes the code point at s[i] (valid UTF-8 assumed) and advances i.
uint32_t next_codepoint(std::string_view s, size_t& i);
// Length of a UTF-8 sequence from its first byte (1 for invalid lead bytes).
inline size_t utf8_len(uint8_t lead) {
  return lead < 0x80 ? 1 : (lead >> 5) == 0x6 ? 2 : (lead >> 4) == 0xE ? 3 : (lead >> 3) == 0x1E ? 4 : 1;
}
// Bytes of a byte-level token text ("Ġhello" -> " hello"); false when a code point is outside the alphabet.
bool byte_level_decode(std::string_view token, std::string& out);
// Byte-level text of raw bytes (" hello" -> "Ġhello").
std::string byte_level_encode(std::string_view bytes);

// At s[i]: n > 0 = a valid sequence of n bytes; 0 = a valid start cut off by the end of s (more bytes may
// complete it); -k = invalid, and its maximal subpart (what one U+FFFD replaces) is k bytes.
int utf8_sequence_at(std::string_view s, size_t i);
// Length of the longest prefix of s that is valid, complete UTF-8 (stops before an invalid or cut sequence).
size_t valid_utf8_prefix(std::string_view s);
// s with every invalid sequence replaced by U+FFFD, one per maximal subpart (like Rust from_utf8_lossy and
// the WHATWG decoder).
std::string utf8_lossy(std::string_view s);

}  // namespace latent::tok
