#pragma once
// Syntax-aware completion: a candidate is parsed with tree-sitter in its real surroundings (prefix +
// completion + suffix) and shown only as far as the file parses no worse than without it. Protocol-free.
//
//   errors(x)  = ERROR + MISSING nodes of prefix + x + suffix (Python: + empty blocks near the cursor) (incremental: the prefix + suffix tree is
//                edited by the insertion and re-parsed, so unchanged subtrees are reused)
//   candidates = the completion cut at each line end (and where it degenerates: see degeneration.h), each
//                also with its open string / docstring / brackets closed ("closer") when it has any
//   acceptable = no error in the completion or in the statement at the cursor (from the line of the last code
//                before it), and no error elsewhere that prefix + suffix did not have (a window of a file, or a
//                file the user is editing elsewhere, keeps its own errors)
//   verdict    = the acceptable candidate with the fewest errors, then the longest; empty (refused) when none
//                is acceptable: an empty suggestion beats a broken one
//
// Thread-safety: a SyntaxChecker is used by one thread at a time. SyntaxStats is thread-safe.
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "lsp/degeneration.h"
#include "lsp/languages.h"

struct TSParser;
struct TSTree;

namespace latent::lsp {

// off: shown as post-processed; trim: cut back / refuse / stop loops; rank: trim, over several candidates.
enum class SyntaxMode { kOff, kTrim, kRank };
const char* syntax_mode_name(SyntaxMode m);
bool parse_syntax_mode(std::string_view s, SyntaxMode* out);

enum class SyntaxAction { kKept, kCut, kRefused, kUnchecked };
const char* syntax_action_name(SyntaxAction a);

struct SyntaxVerdict {
  SyntaxAction action = SyntaxAction::kUnchecked;
  std::string text;                 // what to show: a prefix of the completion, plus `closer`
  std::string closer;               // appended closing quotes / brackets; empty when none
  std::vector<std::string> rules;   // what acted: "parse_error", "repeated_lines", "closed_string", ...
  std::string reason;               // one sentence, for latent/explainContext
  int errors_without = 0;           // ERROR + MISSING nodes with the empty completion
  int errors_with = 0;              // ... with `text`
  bool has_code = false;            // `text` has code outside comments and strings
  size_t parses = 0;                // tree-sitter parses this verdict took
  double micros = 0;                // time spent checking
  int candidates = 1;               // rank: completions decoded side by side; `chosen` is the one shown
  int chosen = 0;
};

// rank: which of two verdicts on candidate completions to show. Not refused first, then has code, then
// fewer errors, then more text; on a tie the earlier candidate (the greedy one, the most likely) wins.
bool better_candidate(const SyntaxVerdict& a, const SyntaxVerdict& b);

struct SyntaxCheckOptions {
  DegenerationOptions degeneration;  // triple_quotes is set from the language
};

struct ErrorCount;

// Python's indentation rules, which tree-sitter's grammar does not enforce: a line indented deeper than the
// logical line before it must follow a block opener (`:`), and a dedent must return to an enclosing level.
// Fed the prefix, then (a copy) each candidate.
struct PythonIndent {
  std::vector<size_t> stack = {0};
  bool opener = false;         // the last logical line ended with ':'
  int depth = 0;               // open brackets
  std::string quote;           // what closes the open string
  bool at_line_start = true;   // the next character starts a logical line
  size_t pending = 0;          // indentation of an unfinished line that starts one
  // `try:` blocks still waiting for `except`/`finally`: (indentation, offset of the line in the last text fed,
  // npos when it came with an earlier one).
  std::vector<std::pair<size_t, size_t>> tries;
  size_t open_try() const {
    for (const auto& t : tries) {
      if (t.second != std::string::npos) return t.second;
    }
    return std::string::npos;
  }
  char last_code = 0;          // the last code character of the logical line so far
  // The offset in `text` of the start of the first line that breaks the rules; npos when none does.
  size_t feed(std::string_view text);
};

class SyntaxChecker {
 public:
  // `language` null: nothing to parse with (only loops are stopped). `tree`: optional tree of prefix + suffix
  // (a document's own tree; copied), else they are parsed once here.
  SyntaxChecker(const LanguageInfo* language, std::string prefix, std::string suffix,
                SyntaxCheckOptions options = {}, const TSTree* tree = nullptr);
  ~SyntaxChecker();
  SyntaxChecker(const SyntaxChecker&) = delete;
  SyntaxChecker& operator=(const SyntaxChecker&) = delete;

  // `final`: the engine is done; else only whole lines of `completion` are considered (streaming).
  SyntaxVerdict check(std::string_view completion, bool final);
  // Cheap (no parse): where the text degenerates, for stopping the decoder early.
  Degeneration scan(std::string_view completion, bool final) const;
  bool has_grammar() const { return parser_ != nullptr; }
  int errors_without() const { return errors_without_; }

 private:
  const LanguageInfo* language_;
  std::string prefix_, suffix_;
  SyntaxCheckOptions options_;
  TSParser* parser_ = nullptr;
  TSTree* base_ = nullptr;  // prefix + suffix
  int errors_without_ = 0;
  uint32_t at_row_ = 0, at_column_ = 0;  // the cursor as a tree-sitter point
  int new_errors(const ErrorCount& e, uint32_t at, uint32_t len) const;

  struct OldError {
    std::string type;
    bool missing;
    uint32_t start, end;
  };
  std::vector<OldError> base_errors_;     // of prefix + suffix
  uint32_t lo_ = 0;                       // start of the line of the last code before the cursor
  bool python_ = false;                   // empty blocks are errors
  PythonIndent indent_;                   // Python: after the prefix
  bool indent_ok_ = false;                // ... which follows the rules (else the rule is off)
};

// What the code in `text` leaves open at its end, and whether it has code outside comments and strings.
struct OpenState {
  std::string closer;  // closes the open string or comment, then the open brackets, innermost first
  bool in_string = false;
  bool has_code = false;
};
OpenState open_state(std::string_view text, std::string_view language_id);

// Python: the offset of the start of the first line of `text` (which starts a line) that ends, outside
// brackets and strings, with an operator that needs another line ("x = a or"); npos when there is none.
size_t python_dangling_line(std::string_view text);

// Counts of checks and rules for /metrics (latent_syntax_*).
class SyntaxStats {
 public:
  void record(const SyntaxVerdict& v);
  struct Snapshot {
    std::map<std::string, uint64_t> actions;  // kept, cut, refused, unchecked
    std::map<std::string, uint64_t> rules;
    uint64_t parses = 0;
    double seconds = 0;
  };
  Snapshot snapshot() const;

 private:
  mutable std::mutex mu_;
  Snapshot s_;
};

}  // namespace latent::lsp
