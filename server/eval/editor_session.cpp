#include "server/eval/editor_session.h"

#include <filesystem>
#include <future>

#include "lsp/positions.h"
#include "lsp/uri.h"

namespace latent::eval {

lsp::AssistantOptions eval_assistant_options(size_t budget_tokens, int max_tokens,
                                             std::chrono::milliseconds time_budget) {
  lsp::AssistantOptions o;
  o.context.budget_tokens = budget_tokens;
  o.max_tokens = max_tokens;
  o.time_budget = time_budget;
  o.index.background = false;
  o.type_through = false;
  o.recent_files = 0;
  return o;
}

EditorSession::EditorSession(lsp::CompletionBackend* backend, const lsp::AssistantOptions& options,
                             const std::string& root)
    : options_(options), root_(root), core_(std::make_unique<lsp::AssistantCore>(options, backend)) {
  if (!root.empty()) core_->add_workspace_folder(root);
}

EditorSession::~EditorSession() = default;

Result<Suggestion> EditorSession::complete(const std::string& path, const std::string& text, size_t offset) {
  const std::string uri = lsp::path_to_uri(path);
  LATENT_RETURN_IF_ERROR(core_->open(uri, "", 1, text));
  struct Closer {
    lsp::AssistantCore& core;
    std::string uri, path;
    bool indexed;
    ~Closer() {
      (void)core.close(uri);
      std::error_code ec;
      // close() left the document's symbols in the index: back to the file on disk, or out of it.
      if (indexed && std::filesystem::is_regular_file(path, ec)) {
        core.watched_file_changed(path, false);
      } else {
        core.index().file_deleted(path);
      }
    }
  } closer{*core_, uri, path, !root_.empty()};

  lsp::CompletionRequest req;
  req.uri = uri;
  req.position = lsp::position_of(text, offset, lsp::PositionEncoding::kUtf8);
  req.encoding = lsp::PositionEncoding::kUtf8;
  auto promise = std::make_shared<std::promise<Result<lsp::CompletionOutcome>>>();
  auto future = promise->get_future();
  const auto t0 = std::chrono::steady_clock::now();
  auto ticket = core_->complete(req, nullptr, [promise](Result<lsp::CompletionOutcome> r) {
    promise->set_value(std::move(r));
  });
  if (!ticket.ok()) return ticket.error();
  // The backend ends every job (its time budget bounds decoding); the bound here only keeps a broken engine
  // from hanging the run.
  const auto bound = options_.time_budget * 20 + std::chrono::seconds(120);
  if (future.wait_for(bound) != std::future_status::ready) {
    core_->cancel(*ticket);
    return make_error(ErrorCode::kInternal, "completion: no answer from the engine within " +
                                                std::to_string(bound.count() / 1000) + " s");
  }
  auto r = future.get();
  if (!r.ok()) return r.error();
  Suggestion s;
  s.text = std::move(r->text);
  s.raw = std::move(r->raw);
  s.milliseconds = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  s.prompt_tokens = r->context_tokens;
  s.finish_reason = r->usage.finish_reason;
  return s;
}

}  // namespace latent::eval
