#pragma once
// The agent's JSON-RPC methods over one connection (LspServer forwards them here, on whichever Transport):
//   latent/agent/start   {task, documents?: [uri], selection?: string, approval?: "edit" | "task"} -> {taskId}
//   latent/agent/respond {taskId, approve?: true, reject?: true, message?: string} -> null
//   latent/agent/cancel  {taskId} -> null
//   latent/agent/revert  {taskId} -> null   (one workspace/applyEdit undoes every applied edit of the task)
// and, from the daemon to the client:
//   latent/agent/update      notification {taskId, kind, ...} (agent_session.h lists the kinds)
//   workspace/applyEdit      request {label, edit}: each approved edit, so the editor's undo and unsaved
//                            buffers work
//   latent/agent/runCommand  request {taskId, command, cwd, timeoutMs, maxOutputBytes} -> {exitCode, output,
//                            truncated}: the editor runs it after the user approves; the daemon never does
//
// Thread-safety: on_call/on_reply run on the transport's loop thread; AgentClient's methods on task threads.
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string_view>

#include "lsp/agent/agent_session.h"
#include "lsp/json_rpc.h"

namespace latent::lsp::agent {

class AgentProtocol : public AgentClient {
 public:
  AgentProtocol(Transport& transport, AssistantCore& core, CompletionBackend* model, AgentOptions options);
  ~AgentProtocol() override;

  static bool handles(std::string_view method) { return method.substr(0, 13) == "latent/agent/"; }
  // Answers a latent/agent/* call.
  void on_call(std::string_view method, const Json& params, const Json& id);
  // True when `id` answers one of this object's requests to the client.
  bool on_reply(const Json& id, const RpcResult& result);

  void update(const std::string& task_id, const Json& update) override;
  void apply_edit(const std::string& label, const Json& workspace_edit, std::function<void(Result<bool>)> done) override;
  void run_command(const std::string& task_id, const Json& request, std::function<void(Result<Json>)> done) override;

 private:
  std::string send(std::string_view method, const Json& params, std::function<void(const RpcResult&)> on_reply);

  Transport& transport_;
  std::mutex mu_;  // guards pending_ and next_
  std::map<std::string, std::function<void(const RpcResult&)>> pending_;  // request id -> reply handler
  uint64_t next_ = 1;
  std::unique_ptr<AgentSession> session_;  // last: its tasks stop before the rest goes
};

}  // namespace latent::lsp::agent
