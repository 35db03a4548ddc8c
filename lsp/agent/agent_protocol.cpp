#include "lsp/agent/agent_protocol.h"

#include "kernels/base/log.h"

namespace latent::lsp::agent {

AgentProtocol::AgentProtocol(Transport& transport, AssistantCore& core, CompletionBackend* model, AgentOptions options)
    : transport_(transport), session_(std::make_unique<AgentSession>(core, model, *this, options)) {}

AgentProtocol::~AgentProtocol() {
  session_.reset();  // cancels and joins the tasks while the transport is still here
  // Requests the client never answered: their waiters are gone with the tasks.
  std::lock_guard<std::mutex> lock(mu_);
  pending_.clear();
}

void AgentProtocol::on_call(std::string_view method, const Json& params, const Json& id) {
  auto task_id = [&]() -> std::string {
    if (!params.is_object() || !params.contains("taskId") || !params["taskId"].is_string()) {
      throw std::invalid_argument(std::string(method) + ": expected params {taskId: string, ...}, found " + params.dump().substr(0, 200));
    }
    return params["taskId"].get<std::string>();
  };
  auto answer = [&](const Status& st) {
    if (st.ok()) transport_.reply(id, Json());
    else transport_.reply(id, to_rpc_error(st.error()));
  };
  try {
    if (method == "latent/agent/start") {
      if (!params.is_object() || !params.contains("task") || !params["task"].is_string()) {
        transport_.reply(id, RpcError{rpc_error::kInvalidParams, "latent/agent/start: expected params {task: string, "
                                                                 "documents?, selection?, approval?}, found " +
                                                                     params.dump().substr(0, 200)});
        return;
      }
      TaskRequest r;
      r.task = params["task"].get<std::string>();
      for (const auto& d : params.value("documents", Json::array())) {
        if (d.is_string()) r.documents.push_back(d.get<std::string>());
      }
      if (params.contains("selection") && params["selection"].is_string()) r.selection = params["selection"].get<std::string>();
      std::string approval = params.value("approval", std::string("edit"));
      if (approval != "edit" && approval != "task") {
        transport_.reply(id, RpcError{rpc_error::kInvalidParams,
                                      "latent/agent/start: approval: expected \"edit\" or \"task\", found \"" + approval + "\""});
        return;
      }
      r.approval = approval == "task" ? Approval::kTask : Approval::kEachEdit;
      auto started = session_->start(std::move(r));
      if (!started.ok()) transport_.reply(id, to_rpc_error(started.error()));
      else transport_.reply(id, Json{{"taskId", *started}});
    } else if (method == "latent/agent/respond") {
      TaskResponse r;
      if (params.value("approve", false)) r.approve = true;
      if (params.value("reject", false)) r.approve = false;
      if (params.contains("message") && params["message"].is_string()) r.message = params["message"].get<std::string>();
      answer(session_->respond(task_id(), std::move(r)));
    } else if (method == "latent/agent/cancel") {
      answer(session_->cancel(task_id()));
    } else if (method == "latent/agent/revert") {
      answer(session_->revert(task_id()));
    } else {
      transport_.reply(id, RpcError{rpc_error::kMethodNotFound, "unknown method " + std::string(method) +
                                                                    "; expected latent/agent/start, respond, cancel or revert"});
    }
  } catch (const std::exception& e) {
    transport_.reply(id, RpcError{rpc_error::kInvalidParams, e.what()});
  }
}

bool AgentProtocol::on_reply(const Json& id, const RpcResult& result) {
  std::function<void(const RpcResult&)> handler;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = pending_.find(id.dump());
    if (it == pending_.end()) return false;
    handler = std::move(it->second);
    pending_.erase(it);
  }
  handler(result);
  return true;
}

std::string AgentProtocol::send(std::string_view method, const Json& params, std::function<void(const RpcResult&)> on_reply) {
  Json id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    id = "latent-agent-" + std::to_string(next_++);
    pending_[id.dump()] = std::move(on_reply);
  }
  transport_.call(method, params, id);
  return id.get<std::string>();
}

void AgentProtocol::update(const std::string& task_id, const Json& update) {
  Json params = update;
  params["taskId"] = task_id;
  transport_.notify("latent/agent/update", params);
}

void AgentProtocol::apply_edit(const std::string& label, const Json& workspace_edit, std::function<void(Result<bool>)> done) {
  send("workspace/applyEdit", Json{{"label", label}, {"edit", workspace_edit}}, [done](const RpcResult& r) {
    if (auto* e = std::get_if<RpcError>(&r)) {
      done(make_error(ErrorCode::kIo, "workspace/applyEdit: " + e->message));
      return;
    }
    const Json& j = std::get<Json>(r);
    bool applied = j.is_object() && j.value("applied", false);
    if (!applied && j.is_object() && j.contains("failureReason") && j["failureReason"].is_string()) {
      done(make_error(ErrorCode::kIo, "the editor refused: " + j["failureReason"].get<std::string>()));
      return;
    }
    done(applied);
  });
}

void AgentProtocol::run_command(const std::string& task_id, const Json& request, std::function<void(Result<Json>)> done) {
  send("latent/agent/runCommand", request, [done](const RpcResult& r) {
    if (auto* e = std::get_if<RpcError>(&r)) {
      done(make_error(ErrorCode::kCancelled, e->message));
      return;
    }
    done(std::get<Json>(r));
  });
}

}  // namespace latent::lsp::agent
