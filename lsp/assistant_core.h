#pragma once
// The assistant without a protocol (clangd's ClangdServer): documents, the workspace index, context, and
// completions through a CompletionBackend, reported through callbacks. LspServer translates LSP onto it.
//
// Type-through: a completion's generation outlives its request. When the user types the characters its
// suggestion (streamed so far or final) begins with, the next completion of the document at the new cursor is
// served by the same generation (no new prompt, no model step: its text is the rest of the suggestion, streamed
// as it comes). A cancelled request's generation goes on until the next change of its document: one that is
// not what it predicted stops it (change()), as does a completion elsewhere (superseded) or close().
//
// Thread-safety: document and workspace methods are called from one thread (the protocol loop); complete()
// and cancel() too. Callbacks of a completion arrive on the backend's thread (or, for a type-through of a
// finished suggestion, within complete()); each completion ends with exactly one on_done (result, error,
// kCancelled when cancelled or superseded).
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "lsp/completion_backend.h"
#include "lsp/context_builder.h"
#include "lsp/document_store.h"
#include "lsp/syntax_check.h"
#include "lsp/workspace_index.h"

namespace latent::lsp {

struct AssistantOptions {
  ContextOptions context;
  IndexOptions index;
  int max_tokens = 128;
  std::chrono::milliseconds time_budget{3000};
  // Sizing the context for time: with the backend's prefill cost model, the prompt is cut to what prefills
  // within prefill_share of time_budget (the rest is for generating), but never below min_time_tokens.
  double prefill_share = 0.5;
  size_t min_time_tokens = 256;
  size_t recent_files = 8;  // closed documents kept for snippet search
  std::string tenant;  // this connection's user (latentd --users), for fair sharing of the engine
  double tenant_weight = 1.0;  // that user's weight (users file "weight"; Request::tenant_weight)
  bool type_through = true;  // false: a cancelled or superseded completion's generation stops at once
  bool exact_trees = true;   // DocumentStore's: each tree equals a fresh parse, errors too (see document_store.h)
  // Completions are checked with the document's grammar before they are shown (lsp/syntax_check.h).
  SyntaxMode syntax = SyntaxMode::kTrim;
  // rank: completions decoded side by side per request (the greedy one, which streams, and rank_candidates - 1
  // sampled ones, CompletionJob::sample); when all are over, the best verdict is shown (better_candidate).
  int rank_candidates = 4;
  // rank: when the best candidate has no code (only a docstring or comments, which the check may have closed),
  // decode on after it: as many candidates again, from the prompt with that text appended (its closer
  // included), while at least a quarter of time_budget is left. The shown text is then the best of both rounds.
  bool continue_after_text = true;
  SyntaxStats* syntax_stats = nullptr;  // counters for /metrics; may be null; must outlive the core
};

struct CompletionRequest {
  std::string uri;
  Position position;
  PositionEncoding encoding = PositionEncoding::kUtf16;
  int max_tokens = 0;  // 0: AssistantOptions::max_tokens
  // Optional: the engine's account of this completion at its end, also when it was superseded or cancelled
  // (CompletionJob::on_usage; it may come after on_done, on the backend's thread). With --syntax-check rank it is
  // also called once for every sampled candidate and continuation round, with CompletionUsage::candidate set.
  std::function<void(const CompletionUsage&)> on_usage;
};

struct CompletionOutcome {
  std::string text;          // post-processed; insert at the request's position
  std::string raw;           // what the engine produced
  CompletionUsage usage;
  size_t context_tokens = 0; // the prompt's size by the context builder's count
  std::optional<SyntaxVerdict> syntax;  // the syntax check's verdict on the whole suggestion (none when off)
};

class AssistantCore {
 public:
  using Ticket = uint64_t;
  using OnPartial = std::function<void(const std::string& text_so_far)>;
  using OnDone = std::function<void(Result<CompletionOutcome>)>;

  // `backend` may be null (no model loaded); it must outlive the core.
  AssistantCore(AssistantOptions options, CompletionBackend* backend);
  ~AssistantCore();

  Status open(const std::string& uri, const std::string& language_id, int version, std::string text);
  Status change(const std::string& uri, int version, const std::vector<ContentChange>& changes,
                PositionEncoding enc);
  Status close(const std::string& uri);
  Status save(const std::string& uri);
  void add_workspace_folder(const std::string& path);
  void remove_workspace_folder(const std::string& path);
  void watched_file_changed(const std::string& path, bool deleted);

  // From the client (initializationOptions.latent.context); call before completions start.
  const ContextOptions& context_options() const { return builder_.options(); }
  void set_context_options(const ContextOptions& options) { builder_.set_options(options); }

  // initializationOptions.latent.syntaxCheck; applies to completions started afterwards.
  SyntaxMode syntax_mode() const;
  void set_syntax_mode(SyntaxMode mode);
  // The verdict on the last finished completion of `uri` (for latent/explainContext); none if there was none.
  std::optional<SyntaxVerdict> last_syntax(const std::string& uri) const;

  Result<PromptContext> context_at(const std::string& uri, Position pos, PositionEncoding enc) const;
  // The cap on prompt tokens from the latency budget and the backend's prefill cost model; nullopt when the
  // backend has none (yet) or the budget is off.
  std::optional<TimeLimit> time_limit() const;

  // Builds the context and starts the backend. A running completion of the same document is superseded
  // (its on_done gets kCancelled). Errors before the start (no model, unknown document) are returned.
  Result<Ticket> complete(const CompletionRequest& request, OnPartial on_partial, OnDone on_done);
  // After cancel() returns, none of the completion's callbacks is running or will run.
  void cancel(Ticket ticket);
  // Waits until no completion is in the middle of calling its on_done (for owners of what callbacks touch,
  // before they go away: call after cancelling their completions).
  void quiesce();
  size_t running() const;
  // Completions served by type-through since the start (no model step).
  size_t type_throughs() const { return type_throughs_.load(); }

  DocumentStore& documents() { return documents_; }
  WorkspaceIndex& index() { return index_; }
  bool has_backend() const { return backend_ != nullptr; }
  std::string backend_name() const { return backend_ ? backend_->describe() : "none"; }
  std::optional<size_t> context_length() const { return backend_ ? backend_->context_length() : std::nullopt; }

  struct Job;  // one generation (assistant_core.cpp)

 private:
  std::optional<Ticket> adopt(const std::shared_ptr<Job>& job, const std::shared_ptr<const std::string>& text,
                              size_t offset, const CompletionRequest& request, OnPartial& on_partial, OnDone& on_done);
  // Stops the document's generation, unless `now` (the document's new text) is what it predicted.
  void drop_generation(const std::string& uri, const std::string* now);
  void on_delta(Job& job, std::string_view delta);
  void on_end(Job& job, Result<CompletionUsage> usage);
  // rank: a sampled candidate's text and end.
  void on_candidate_delta(Job& job, size_t k, std::string_view delta);
  void on_candidate_end(Job& job, size_t k, bool ok);
  // With the job's lock held: the greedy candidate is over; answers once every candidate is. True when a
  // continuation round was prepared instead: the caller starts it (start_continuation) after unlocking.
  bool primary_over(Job& job);
  bool finish_if_all_over(Job& job);
  // With the job's lock held: prepares the continuation round (AssistantOptions::continue_after_text).
  bool prepare_continuation(Job& job);
  // Without the job's lock: starts the prepared continuation candidates (a backend may answer within start()).
  void start_continuation(Job& job);
  // With the job's lock held: the best verdict over the greedy text and the candidates (rank).
  SyntaxVerdict best_verdict(Job& job);
  // With the job's lock held: stops every candidate still decoding.
  void stop_decoding(Job& job);
  void answer(Job& job, Result<CompletionOutcome> result);
  CompletionOutcome outcome(const Job& job) const;
  // With the job's lock held: the generation is over; post-processes and checks its text.
  void finalize(Job& job);
  std::vector<const Snapshot*> others(const std::vector<std::unique_ptr<Snapshot>>& open,
                                      const std::string& uri) const;

  AssistantOptions options_;
  CompletionBackend* backend_;
  DocumentStore documents_;
  WorkspaceIndex index_;
  ContextBuilder builder_;
  std::deque<std::shared_ptr<const Snapshot>> recent_;  // recently closed, newest first
  // When each open document's symbols were last re-indexed: re-indexing a big file on every keystroke would
  // keep a core busy, so it happens at most every kReindexInterval while typing (and on save).
  static constexpr std::chrono::milliseconds kReindexInterval{500};
  std::map<std::string, std::chrono::steady_clock::time_point> reindexed_;
  // Per document, the cache-stable layout's last context (ContextBuilder::build); protocol thread only.
  mutable std::map<std::string, ContextMemo> memos_;

  mutable std::mutex mu_;  // guards jobs_, generations_, finishing_ and the syntax fields; taken after a Job's
                           // lock, never before
  std::condition_variable idle_cv_;
  int finishing_ = 0;
  std::map<Ticket, std::shared_ptr<Job>> jobs_;
  std::map<std::string, std::shared_ptr<Job>> generations_;  // per document: its latest generation
  std::atomic<size_t> type_throughs_{0};
  std::map<std::string, SyntaxVerdict> last_syntax_;  // by uri, bounded by the open documents
  SyntaxMode syntax_mode_;
  // The engine supersedes by CompletionJob::doc_key: one core per connection, so two clients editing the same
  // path never cancel each other.
  std::string doc_key_prefix_;
  Ticket next_ticket_ = 1;
};

}  // namespace latent::lsp
