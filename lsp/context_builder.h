#pragma once
// Cursor -> prompt: prefix and suffix windows in a token budget, plus what the model cannot see from the
// window alone (enclosing scope headers, imports, definitions of identifiers near the cursor resolved through
// the WorkspaceIndex, similar snippets from other open or recently edited files), packed by priority and
// rendered in the FIM format (fim_format.h). Every candidate is kept in an audit saying why it went in or not.
//
// Thread-safety: build() is const and may run on any thread; the index is locked inside.
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/tokenizer/prompt_format.h"
#include "lsp/document_store.h"
#include "lsp/workspace_index.h"

namespace latent::lsp {

// Counts tokens. The default is a cheap estimate; a real tokenizer can be attached.
using TokenCounter = std::function<size_t(std::string_view)>;
size_t estimate_tokens(std::string_view text);  // ~3.5 bytes per token for code, at least 1 per line

// How the prompt is laid out around the cursor.
//   kWindow:      the prefix window ends at the cursor and starts wherever the budget allows (it slides with
//                 every line typed); the whole suffix window follows the hole; the context search looks at
//                 the cursor's own line. Every keystroke changes most of the prompt's token sequence after the
//                 first line that moved.
//   kCacheStable: what stays the same while the user types comes first and what changes with each keystroke
//                 last, so that the engine's prefix cache reuses all but the last few tokens: the prefix window
//                 starts at a line that is a multiple of `anchor_lines` (it moves every anchor_lines lines,
//                 not every line), the suffix after the hole is only the rest of the cursor's line and the next
//                 `near_suffix_lines` lines (the rest of the window goes earlier, as context from the current
//                 file), and the context found for a document (definitions, snippets, scopes) is kept while the
//                 cursor stays in the same group of `anchor_lines / 4` lines (ContextMemo).
enum class PromptLayout { kWindow, kCacheStable };
const char* prompt_layout_name(PromptLayout l);
bool parse_prompt_layout(std::string_view s, PromptLayout* out);

struct ContextOptions {
  PromptLayout layout = PromptLayout::kCacheStable;
  int anchor_lines = 32;
  int near_suffix_lines = 1;
  size_t budget_tokens = 2048;   // the whole prompt, special tokens aside
  double window_share = 0.7;     // of the budget for the prefix+suffix window; the rest for other context
  double prefix_share = 0.75;    // of the window for the prefix (the suffix gets the rest)
  int neighbourhood_lines = 12;  // lines before the cursor whose identifiers and words drive the search
  size_t max_definitions = 8;
  size_t max_snippets = 3;
  int snippet_lines = 16;        // snippet windows of this many lines, overlapping by half
  double min_similarity = 0.08;  // Jaccard over identifier sets
  size_t max_imports = 40;
};

struct ContextItem {
  std::string kind;    // prefix, suffix, scope, import, definition, snippet
  std::string path;
  uint32_t line = 0;   // 0-based first line
  size_t tokens = 0;
  double score = 0;    // higher is more relevant (per kind)
  bool included = false;
  std::string reason;  // why it was a candidate, and why it was dropped when it was
  std::string text;
};

// A cap on the prompt's size from the latency budget (AssistantCore::time_limit): the engine's measured prefill
// cost lets `tokens` prompt tokens through before the first token is due. `why` says how that was computed,
// for the items it drops ("dropped for time: ...").
struct TimeLimit {
  size_t tokens = 0;
  std::string why;
};

struct PromptContext {
  FimPrompt fim;             // the parts, for encode_fim
  std::string prompt;        // render_fim(fim): the text the model sees (after BOS)
  std::string prefix;        // the window before the cursor
  std::string suffix;        // the window after it
  std::string path;          // the current file, as rendered
  size_t prompt_tokens = 0;
  size_t budget_tokens = 0;  // what the prompt was packed into: min(options' budget, the time limit)
  size_t time_tokens = 0;    // the time limit's tokens (0: none applied)
  std::string time_why;      // and how it was computed
  std::vector<ContextItem> items;
};

// What the cache-stable layout remembers of a document's last context (see ContextBuilder::build).
struct ContextMemo {
  std::string uri;
  uint32_t hood_line = 0;            // the first line of the cursor's group of anchor_lines / 4 lines
  size_t budget = 0;
  std::vector<ContextItem> items;    // the candidates, `included` as packed
  size_t extras_tokens = 0;          // tokens of the included items
};

class ContextBuilder {
 public:
  ContextBuilder(const WorkspaceIndex& index, ContextOptions options = {}, TokenCounter counter = nullptr);

  // `others`: open documents and recently edited files other than `doc`, most recent first. `memo` (optional,
  // cache-stable layout only): the document's last context, reused while the search's anchor line is the same
  // (so that the context before the window does not change per keystroke), and updated.
  // `time` (optional): the prompt is packed into min(budget_tokens, time->tokens); what the token budget would
  // have held but the time limit does not is "dropped for time" in the audit.
  PromptContext build(const Snapshot& doc, size_t cursor_offset, const std::vector<const Snapshot*>& others,
                      ContextMemo* memo = nullptr, const TimeLimit* time = nullptr) const;

  const ContextOptions& options() const { return options_; }
  void set_options(const ContextOptions& options) { options_ = options; }
  void set_token_counter(TokenCounter counter) { counter_ = std::move(counter); }

 private:
  size_t count(std::string_view text) const { return counter_ ? counter_(text) : estimate_tokens(text); }

  const WorkspaceIndex& index_;
  ContextOptions options_;
  TokenCounter counter_;
};

// Identifier-like words of `text` (2+ characters), for similarity and lookups.
std::vector<std::string> words_of(std::string_view text);
double jaccard(const std::vector<std::string>& a_sorted_unique, const std::vector<std::string>& b_sorted_unique);

}  // namespace latent::lsp
