#pragma once
// Degenerate model output: repetition loops and runaway docstrings. Small models fall into them often
// ("the list of the list of ...", the same two lines again and again); big ones sometimes. Protocol-free and
// language-light: only triple-quoted strings are language-specific (Python).
#include <cstddef>
#include <string>
#include <string_view>

namespace latent::lsp {

struct DegenerationOptions {
  size_t max_block_lines = 4;       // a run of up to this many lines repeated right after itself is a loop
  size_t max_line_repeats = 2;      // the same line (with code on it) a third time is a loop
  size_t ngram = 3;                 // word n-grams ...
  size_t max_ngram_repeats = 2;     // ... seen a third time are a loop ("the list of the list of the list of")
  size_t max_docstring_lines = 8;   // a docstring opened by the completion and still open after this many lines
  bool triple_quotes = false;       // the language has """ / ''' strings (Python)
};

struct Degeneration {
  static constexpr size_t npos = std::string_view::npos;
  size_t cut = npos;  // keep text[0, cut): a line start, or within the first line
  std::string rule;   // "repeated_lines", "repeated_line", "repeated_ngram", "runaway_docstring"; empty: none
  std::string detail; // for explainContext: "line 5 repeats lines 3-4"
  // runaway_docstring: the docstring is cut after its first line and needs closing.
  bool found() const { return cut != npos; }
};

// The earliest point where `text` (a completion, starting at the cursor) degenerates. `final`: the text is
// complete, so its last line (without a newline) counts as a whole line too.
Degeneration find_degeneration(std::string_view text, bool final, const DegenerationOptions& options);

}  // namespace latent::lsp
