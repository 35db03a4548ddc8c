#pragma once
// Asks for an inline completion exactly as latentd does for an editor: an AssistantCore (the same context
// builder, prompt format and post-processing as the LSP path) over a CompletionBackend, with one document opened
// at a path, completed at a byte offset, and closed again. Used by `latent eval` so that what it measures is
// what the editor shows.
//
// The core keeps no memory between calls: no recently closed files (recent_files = 0), no type-through, and
// after its document closes a file is re-indexed from disk (under `root`) or dropped from the index. Only the workspace index of
// `root` (walked once, synchronously) is shared between calls.
//
// Thread-safety: one thread at a time.
#include <memory>
#include <string>

#include "lsp/assistant_core.h"

namespace latent::eval {

struct Suggestion {
  std::string text;          // post-processed, as the editor would show it
  std::string raw;           // what the engine produced
  double milliseconds = 0;   // request to final answer
  size_t prompt_tokens = 0;  // by the context builder's count
  std::string finish_reason;
};

// The AssistantOptions latentd uses for the given prompt budget, made stateless as above.
lsp::AssistantOptions eval_assistant_options(size_t budget_tokens, int max_tokens,
                                             std::chrono::milliseconds time_budget);

class EditorSession {
 public:
  // `root`: a workspace folder to index (cross-file context); empty for none.
  EditorSession(lsp::CompletionBackend* backend, const lsp::AssistantOptions& options, const std::string& root);
  ~EditorSession();

  // `path`: absolute (the document need not exist on disk); `text`: the buffer; `offset`: the cursor's byte.
  Result<Suggestion> complete(const std::string& path, const std::string& text, size_t offset);

 private:
  lsp::AssistantOptions options_;
  std::string root_;
  std::unique_ptr<lsp::AssistantCore> core_;
};

}  // namespace latent::eval
