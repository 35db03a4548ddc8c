#include "lsp/positions.h"

namespace latent::lsp {

const char* position_encoding_name(PositionEncoding enc) {
  switch (enc) {
    case PositionEncoding::kUtf8: return "utf-8";
    case PositionEncoding::kUtf32: return "utf-32";
    default: return "utf-16";
  }
}

int utf8_sequence_length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if ((lead & 0xE0) == 0xC0) return 2;
  if ((lead & 0xF0) == 0xE0) return 3;
  if ((lead & 0xF8) == 0xF0) return 4;
  return 1;
}

namespace {

// Units one code point occupies in `enc`.
uint32_t units_of(int seq_len, PositionEncoding enc) {
  switch (enc) {
    case PositionEncoding::kUtf8: return static_cast<uint32_t>(seq_len);
    case PositionEncoding::kUtf32: return 1;
    default: return seq_len == 4 ? 2 : 1;
  }
}

size_t line_start(std::string_view text, uint32_t line, bool* found) {
  size_t pos = 0;
  for (uint32_t l = 0; l < line; ++l) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) {
      *found = false;
      return text.size();
    }
    pos = nl + 1;
  }
  *found = true;
  return pos;
}

}  // namespace

size_t offset_of(std::string_view text, Position pos, PositionEncoding enc) {
  bool found = false;
  size_t start = line_start(text, pos.line, &found);
  if (!found) return text.size();
  size_t end = text.find('\n', start);
  if (end == std::string_view::npos) end = text.size();
  if (end > start && text[end - 1] == '\r') --end;
  size_t i = start;
  uint32_t units = 0;
  while (i < end) {
    int len = utf8_sequence_length(static_cast<unsigned char>(text[i]));
    if (i + static_cast<size_t>(len) > end) len = 1;
    uint32_t u = units_of(len, enc);
    if (units + u > pos.character) break;
    units += u;
    i += static_cast<size_t>(len);
  }
  return i;
}

Position position_of(std::string_view text, size_t offset, PositionEncoding enc) {
  if (offset > text.size()) offset = text.size();
  Position p;
  size_t start = 0;
  for (size_t i = 0; i < offset; ++i) {
    if (text[i] == '\n') {
      ++p.line;
      start = i + 1;
    }
  }
  // Walk the line exactly as offset_of does (a sequence cut by the line's end counts as one byte), so that
  // offset_of(position_of(o)) == o for every offset offset_of can return.
  size_t end = text.find('\n', start);
  if (end == std::string_view::npos) end = text.size();
  if (end > start && text[end - 1] == '\r') --end;
  // Past the '\r' that ends the text without a '\n' (offset_of drops it from the line as a line end): the
  // text's end is the start of the next line, which offset_of maps back to the text's end.
  if (offset == text.size() && end < offset && text[end] == '\r') return Position{p.line + 1, 0};
  size_t i = start;
  while (i < offset) {
    int len = utf8_sequence_length(static_cast<unsigned char>(text[i]));
    if (i + static_cast<size_t>(len) > end) len = 1;
    if (i + static_cast<size_t>(len) > offset) break;
    p.character += units_of(len, enc);
    i += static_cast<size_t>(len);
  }
  return p;
}

}  // namespace latent::lsp
