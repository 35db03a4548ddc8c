#pragma once
// Cleaning a raw completion before it is shown: stop at the end of the block the cursor is in, never repeat
// the text after the cursor, and keep brackets balanced.
#include <cstddef>
#include <string>
#include <string_view>

namespace latent::lsp {

struct PostprocessResult {
  std::string text;
  bool complete = false;  // the block ended: more engine output would be cut anyway (stop decoding)
};

// `line_prefix`: the cursor's line up to the cursor; `suffix`: the text after the cursor. `final`: the
// engine is done; only then are brackets opened and left unclosed by a multi-line completion trimmed away
// (while streaming, the rest may still come).
PostprocessResult postprocess_completion(std::string_view raw, std::string_view line_prefix,
                                         std::string_view suffix, bool final = true);

// Width of a line's indentation: its leading spaces and tabs (each counts 1).
size_t indent_of(std::string_view line);

}  // namespace latent::lsp
