#pragma once
// The agent loop without a protocol (like AssistantCore for completions): one AgentSession per connection
// runs tasks; each task alternates model turns and tool calls until the model answers without a tool call
// (done), the client cancels, or the step limit is hit.
//   model turn: the conversation in DeepSeek's chat format with the tool definitions in the system prompt
//               (chat::plan_chat), run by the CompletionBackend as a chat job at agent priority (below
//               keystroke completions); the output is split by chat::StreamParser / parse_output
//   tool call:  agent_tools.h; edits and created files wait for the user's approval (per edit, or once per
//               task), then reach the editor through AgentClient::apply_edit (workspace/applyEdit); commands go
//               to the client (AgentClient::run_command), never run here
// Everything the user sees is reported as updates (AgentClient::update):
//   {kind: "status", state: running|waiting|done|cancelled|stopped|error, step, message}
//   {kind: "text", step, text}                           the model's text, streamed
//   {kind: "toolCall", step, callId, name, arguments}
//   {kind: "toolResult", step, callId, name, ok, result}
//   {kind: "edit", editId, state: proposed|applied|rejected|reverted|failed, path, uri, range, oldText,
//    newText, description, create}
//
// Thread-safety: public methods are thread-safe. Each task runs on a thread of its own; AgentClient's methods
// are called from those threads, and their `done` callbacks may come from any thread.
#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "lsp/agent/agent_tools.h"
#include "lsp/assistant_core.h"
#include "lsp/completion_backend.h"

namespace latent::lsp::agent {

class AgentClient {
 public:
  virtual ~AgentClient() = default;
  virtual void update(const std::string& task_id, const Json& update) = 0;
  // workspace/applyEdit; done(true) when the editor applied it.
  virtual void apply_edit(const std::string& label, const Json& workspace_edit,
                          std::function<void(Result<bool>)> done) = 0;
  // latent/agent/runCommand; done({exitCode, output, truncated}) or an error (rejected, timed out).
  virtual void run_command(const std::string& task_id, const Json& request, std::function<void(Result<Json>)> done) = 0;
};

enum class Approval { kEachEdit, kTask };

struct AgentOptions {
  int max_steps = 16;
  int max_tokens = 1024;                          // per model turn
  std::chrono::milliseconds turn_budget{180000};  // per model turn
  size_t max_tasks = 4;                           // running at once per session
  PositionEncoding encoding = PositionEncoding::kUtf16;
  // Whose turns these are (latentd --users): model turns share the engine fairly with other users' work.
  std::string tenant;
  double tenant_weight = 1.0;
};

struct TaskRequest {
  std::string task;
  std::vector<std::string> documents;  // URIs the user attached
  std::optional<std::string> selection;
  Approval approval = Approval::kEachEdit;
};

// The user's answer to a waiting task: approve or reject the pending edit (or command), and/or a message.
struct TaskResponse {
  std::optional<bool> approve;  // true: approve, false: reject
  std::string message;
};

class AgentSession {
 public:
  // `model` may be null (start() then fails); `core` and `client` must outlive the session.
  AgentSession(AssistantCore& core, CompletionBackend* model, AgentClient& client, AgentOptions options = {});
  ~AgentSession();  // cancels and joins every task

  Result<std::string> start(TaskRequest request);
  Status respond(const std::string& task_id, TaskResponse response);
  Status cancel(const std::string& task_id);
  // Undoes every applied edit of the task in one workspace/applyEdit (files created by it are deleted). Refused
  // when a file changed since the task's last edit of it.
  Status revert(const std::string& task_id);
  // Blocks until the task ended (done, cancelled, stopped, error) or `timeout` passed; true when it ended.
  bool wait(const std::string& task_id, std::chrono::milliseconds timeout);

 private:
  struct Task;
  void run(const std::shared_ptr<Task>& task);
  ToolContext tool_context() const;

  AssistantCore& core_;
  CompletionBackend* model_;
  AgentClient& client_;
  AgentOptions options_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<Task>> tasks_;
  int next_id_ = 1;
};

}  // namespace latent::lsp::agent
