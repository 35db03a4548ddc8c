#pragma once
// LSP over a Transport, onto an AssistantCore (clangd's ClangdLSPServer): lifecycle, document sync, workspace
// folders and watched files, textDocument/inlineCompletion with streaming and cancellation, and
// latent/explainContext. One LspServer per connection; it serves whichever Transport it is given.
//
// Streaming: while a completion decodes, the server sends the post-processed text so far, each message
// replacing the previous one, as
//   $/progress {token, value: InlineCompletionList}   when the request carried a partialResultToken,
//   latent/partialCompletion {id, uri, text}           otherwise (`id`: the request's id),
// and finally answers the request with an InlineCompletionList. After `initialized` the server sends
// latent/status {state: "loading" | "ready" | "error", progress?, message} (loading: the model is being read into
// memory, progress 0..1, while completions already work; error: no model is loaded).
// With initializationOptions.latent.usage = true, every completion's engine account follows its end as
// latent/usage {id, partialResultToken, uri, promptTokens, cachedTokens, completionTokens, forwardTokens, ttftMs, totalMs,
// finishReason} (also for superseded and cancelled ones: what benchmarks need to count wasted work).
//
// Thread-safety: message handlers run on the transport's loop thread; completion callbacks on the backend's.
#include <functional>
#include <optional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "lsp/agent/agent_protocol.h"
#include "lsp/assistant_core.h"
#include "lsp/json_rpc.h"
#include "lsp/status_feed.h"

namespace latent::lsp {

struct LspServerOptions {
  size_t max_pending_requests = 16;  // completions in flight per connection; more are refused (-32803)
  std::string version;               // for serverInfo
  // The model's loading state, sent as latent/status after `initialized` and on every change (must outlive
  // the server). Null: "ready" (or "error" without a backend) once.
  StatusFeed* status = nullptr;
  // The model the agent (latent/agent/*, lsp/agent/agent_protocol.h) runs on; null: agent requests are refused.
  CompletionBackend* agent_model = nullptr;
  agent::AgentOptions agent;
  // Calls this connection may not make now (latentd --users: the token's scopes, -32004 rpc_error::kForbidden;
  // its quota, -32005 rpc_error::kRateLimited): the error to answer before the method runs. Null: all allowed.
  std::function<std::optional<RpcError>(std::string_view method)> refuse_call;
  // Every completion's usage, whether or not the client asked for latent/usage (latentd: per-user /metrics and
  // quotas), and every ranked candidate's (CompletionUsage::candidate). Runs on the backend's thread; must not block.
  std::function<void(const CompletionUsage&)> on_usage;
};

class LspServer : public MessageHandler {
 public:
  LspServer(Transport& transport, AssistantCore& core, LspServerOptions options = {});
  ~LspServer() override;

  // Serves until `exit` or the peer closes. Returns true when the client asked for shutdown before exit.
  bool run();

  bool on_notify(std::string_view method, Json params) override;
  bool on_call(std::string_view method, Json params, Json id) override;
  bool on_reply(Json id, RpcResult result) override;

  PositionEncoding encoding() const { return encoding_; }

 private:
  enum class State { kStarting, kRunning, kShutdown };
  RpcResult initialize(const Json& params);
  void inline_completion(const Json& params, const Json& id);
  RpcResult explain_context(const Json& params);
  void did_open(const Json& params);
  void did_change(const Json& params);
  void did_change_watched_files(const Json& params);
  void did_change_workspace_folders(const Json& params);
  Position position_from(const Json& p) const;

  Transport& transport_;
  AssistantCore& core_;
  LspServerOptions options_;
  int max_tokens_ = 0;  // initializationOptions.maxTokens (0: the core's default)
  State state_ = State::kStarting;
  bool shutdown_requested_ = false;
  bool watch_files_ = false;  // the client can register file watchers dynamically
  int next_server_request_ = 1;
  PositionEncoding encoding_ = PositionEncoding::kUtf16;

  uint64_t status_subscription_ = 0;  // in options_.status, 0: none
  // latent/usage goes through this from the engine thread, possibly after the server is gone: the destructor
  // clears `transport` under the lock.
  struct UsageSink {
    std::mutex mu;
    Transport* transport = nullptr;
  };
  std::shared_ptr<UsageSink> usage_;  // null: the client did not ask for latent/usage
  std::mutex mu_;  // guards inflight_
  std::map<std::string, AssistantCore::Ticket> inflight_;  // request id (as JSON text) -> ticket
  std::unique_ptr<agent::AgentProtocol> agent_;  // made at the first latent/agent/* call (after initialize)
};

}  // namespace latent::lsp
