#include "lsp/lsp_server.h"

#include <algorithm>

#include "kernels/base/log.h"
#include "lsp/uri.h"

namespace latent::lsp {

namespace {

// A client's token limit: a positive integer, capped so that one request cannot hold the engine for long.
int max_tokens_from(const Json& v, int fallback) {
  constexpr int kMaxTokensCap = 4096;
  if (!v.is_number_integer() || v.get<long long>() <= 0) return fallback;
  return static_cast<int>(std::min<long long>(v.get<long long>(), kMaxTokensCap));
}

Json position_json(Position p) { return Json{{"line", p.line}, {"character", p.character}}; }

Json item_list(const std::string& text, Position at) {
  Json items = Json::array();
  if (!text.empty()) {
    items.push_back({{"insertText", text}, {"range", {{"start", position_json(at)}, {"end", position_json(at)}}}});
  }
  return Json{{"items", items}};
}

}  // namespace

LspServer::LspServer(Transport& transport, AssistantCore& core, LspServerOptions options)
    : transport_(transport), core_(core), options_(std::move(options)) {}

LspServer::~LspServer() {
  if (usage_) {
    std::lock_guard<std::mutex> lock(usage_->mu);
    usage_->transport = nullptr;
  }
  if (status_subscription_ != 0) options_.status->unsubscribe(status_subscription_);
  std::vector<AssistantCore::Ticket> tickets;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [id, t] : inflight_) tickets.push_back(t);
  }
  // The connection is gone (shutdown, or a client that vanished: stdin closed, socket dropped): its requests
  // are cancelled and stop at the engine's next step.
  if (!tickets.empty()) LATENT_LOG_INFO("connection closed: cancelling %zu request(s) in flight", tickets.size());
  for (auto t : tickets) core_.cancel(t);
  agent_.reset();  // its tasks end before the core's documents and index go
  core_.quiesce();  // a completion finishing on the engine thread may still be inside our on_done
}

bool LspServer::run() {
  Status st = transport_.loop(*this);
  if (!st.ok()) LATENT_LOG_WARN("connection ended: %s", st.error().to_string().c_str());
  return shutdown_requested_;
}

Position LspServer::position_from(const Json& p) const {
  return Position{p.at("line").get<uint32_t>(), p.at("character").get<uint32_t>()};
}

bool LspServer::on_notify(std::string_view method, Json params) {
  if (method == "exit") return false;
  if (state_ == State::kStarting) {
    LATENT_LOG_DEBUG("dropped %.*s before initialize", static_cast<int>(method.size()), method.data());
    return true;
  }
  try {
    if (method == "initialized") {
      state_ = State::kRunning;
      if (watch_files_) {
        // Workspace files changed outside the editor (git checkout, generators) keep the index current.
        Json watchers = Json::array({Json{{"globPattern", "**/*"}}});
        transport_.call("client/registerCapability",
                        Json{{"registrations",
                              Json::array({Json{{"id", "latent-watch"},
                                                {"method", "workspace/didChangeWatchedFiles"},
                                                {"registerOptions", {{"watchers", watchers}}}}})}},
                        Json("latent-" + std::to_string(next_server_request_++)));
      }
      if (core_.has_backend() && options_.status) {
        if (status_subscription_ == 0) {
          status_subscription_ =
              options_.status->subscribe([this](const Json& st) { transport_.notify("latent/status", st); });
        }
      } else if (core_.has_backend()) {
        transport_.notify("latent/status", Json{{"state", "ready"}, {"message", core_.backend_name()}});
      } else {
        transport_.notify("latent/status",
                          Json{{"state", "error"}, {"message", "no model is loaded: start latentd with --model DIR"}});
      }
    } else if (method == "textDocument/didOpen") {
      did_open(params);
    } else if (method == "textDocument/didChange") {
      did_change(params);
    } else if (method == "textDocument/didClose") {
      Status st = core_.close(params.at("textDocument").at("uri").get<std::string>());
      if (!st.ok()) LATENT_LOG_WARN("%s", st.error().message.c_str());
    } else if (method == "textDocument/didSave") {
      Status st = core_.save(params.at("textDocument").at("uri").get<std::string>());
      if (!st.ok()) LATENT_LOG_WARN("%s", st.error().message.c_str());
    } else if (method == "workspace/didChangeWatchedFiles") {
      did_change_watched_files(params);
    } else if (method == "workspace/didChangeWorkspaceFolders") {
      did_change_workspace_folders(params);
    } else if (method == "$/cancelRequest") {
      std::string key = params.at("id").dump();
      std::optional<AssistantCore::Ticket> ticket;
      {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = inflight_.find(key);
        if (it != inflight_.end()) ticket = it->second;
      }
      if (ticket) core_.cancel(*ticket);  // its on_done answers RequestCancelled
    } else {
      LATENT_LOG_DEBUG("ignored notification %.*s", static_cast<int>(method.size()), method.data());
    }
  } catch (const std::exception& e) {
    // Notifications have no answer: log the bad params and keep serving.
    LATENT_LOG_WARN("%.*s: invalid params: %s", static_cast<int>(method.size()), method.data(), e.what());
  }
  return true;
}

bool LspServer::on_call(std::string_view method, Json params, Json id) {
  if (method == "initialize") {
    if (state_ != State::kStarting) {
      transport_.reply(id, RpcError{rpc_error::kInvalidRequest, "initialize: expected once, found a second call"});
      return true;
    }
  } else if (state_ == State::kStarting) {
    transport_.reply(id, RpcError{rpc_error::kServerNotInitialized,
                                  "expected initialize first, found " + std::string(method)});
    return true;
  } else if (state_ == State::kShutdown) {
    transport_.reply(id, RpcError{rpc_error::kInvalidRequest,
                                  "expected exit after shutdown, found " + std::string(method)});
    return true;
  }
  if (options_.refuse_call) {
    if (auto refusal = options_.refuse_call(method)) {
      transport_.reply(id, *refusal);
      return true;
    }
  }
  try {
    if (method == "initialize") {
      transport_.reply(id, initialize(params));
    } else if (method == "shutdown") {
      state_ = State::kShutdown;
      shutdown_requested_ = true;
      transport_.reply(id, Json());
    } else if (method == "textDocument/inlineCompletion") {
      inline_completion(params, id);
    } else if (method == "latent/explainContext") {
      transport_.reply(id, explain_context(params));
    } else if (agent::AgentProtocol::handles(method)) {
      if (!agent_) {
        agent::AgentOptions o = options_.agent;
        o.encoding = encoding_;
        agent_ = std::make_unique<agent::AgentProtocol>(transport_, core_, options_.agent_model, o);
      }
      agent_->on_call(method, params, id);
    } else {
      transport_.reply(id, RpcError{rpc_error::kMethodNotFound, "unknown method " + std::string(method)});
    }
  } catch (const Json::exception& e) {
    transport_.reply(id, RpcError{rpc_error::kInvalidParams, std::string(method) + ": invalid params: " + e.what()});
  } catch (const std::exception& e) {
    LATENT_LOG_ERROR("%.*s failed: %s", static_cast<int>(method.size()), method.data(), e.what());
    transport_.reply(id, RpcError{rpc_error::kInternalError, std::string(method) + ": " + e.what()});
  }
  return true;
}

bool LspServer::on_reply(Json id, RpcResult result) {
  if (agent_ && agent_->on_reply(id, result)) return true;
  if (auto* err = std::get_if<RpcError>(&result)) {
    LATENT_LOG_INFO("client answered %s with error %d: %s", id.dump().c_str(), err->code, err->message.c_str());
  }
  return true;
}

RpcResult LspServer::initialize(const Json& params) {
  if (!params.is_object()) {
    return RpcError{rpc_error::kInvalidParams,
                    std::string("initialize: expected params to be an object, found ") + params.type_name()};
  }
  // Position encoding: UTF-8 when the client offers it (no conversion), else the LSP default UTF-16.
  encoding_ = PositionEncoding::kUtf16;
  if (auto caps = params.find("capabilities"); caps != params.end() && caps->is_object()) {
    const Json& ws = caps->value("workspace", Json::object());
    if (ws.is_object() && ws.contains("didChangeWatchedFiles") && ws["didChangeWatchedFiles"].is_object()) {
      watch_files_ = ws["didChangeWatchedFiles"].value("dynamicRegistration", false);
    }
    if (caps->contains("general") && (*caps)["general"].contains("positionEncodings")) {
      for (const auto& e : (*caps)["general"]["positionEncodings"]) {
        if (e == "utf-8") encoding_ = PositionEncoding::kUtf8;
      }
    }
  }
  if (auto folders = params.find("workspaceFolders"); folders != params.end() && folders->is_array()) {
    for (const auto& f : *folders) core_.add_workspace_folder(uri_to_path(f.at("uri").get<std::string>()));
  } else if (auto root = params.find("rootUri"); root != params.end() && root->is_string()) {
    core_.add_workspace_folder(uri_to_path(root->get<std::string>()));
  }
  // initializationOptions.latent.context: {budgetTokens, windowShare, prefixShare, maxSnippets, maxDefinitions}
  if (auto io = params.find("initializationOptions"); io != params.end() && io->is_object()) {
    max_tokens_ = max_tokens_from(io->value("maxTokens", Json()), 0);
    const Json& latent = io->value("latent", Json::object());
    if (auto u = latent.find("usage"); latent.is_object() && u != latent.end() && u->is_boolean() && u->get<bool>()) {
      usage_ = std::make_shared<UsageSink>();
      usage_->transport = &transport_;
    }
    // initializationOptions.latent.syntaxCheck: "off" | "trim" | "rank"
    if (latent.is_object() && latent.contains("syntaxCheck")) {
      const Json& sc = latent["syntaxCheck"];
      SyntaxMode mode;
      if (!sc.is_string() || !parse_syntax_mode(sc.get<std::string>(), &mode)) {
        return RpcError{rpc_error::kInvalidParams,
                        "initializationOptions.latent.syntaxCheck: expected \"off\", \"trim\" or \"rank\", found " +
                            sc.dump().substr(0, 40)};
      }
      core_.set_syntax_mode(mode);
    }
    const Json& ctx = latent.is_object() ? latent.value("context", Json::object()) : Json::object();
    if (ctx.is_object()) {
      ContextOptions o = core_.context_options();
      auto share = [](const Json& v, double fallback) {
        return v.is_number() && v.get<double>() > 0 && v.get<double>() <= 1 ? v.get<double>() : fallback;
      };
      auto count = [](const Json& v, size_t fallback) {
        return v.is_number_unsigned() && v.get<size_t>() > 0 ? v.get<size_t>() : fallback;
      };
      o.budget_tokens = count(ctx.value("budgetTokens", Json()), o.budget_tokens);
      o.window_share = share(ctx.value("windowShare", Json()), o.window_share);
      o.prefix_share = share(ctx.value("prefixShare", Json()), o.prefix_share);
      o.max_snippets = count(ctx.value("maxSnippets", Json()), o.max_snippets);
      o.max_definitions = count(ctx.value("maxDefinitions", Json()), o.max_definitions);
      core_.set_context_options(o);
    }
  }
  state_ = State::kRunning;  // some clients send requests before `initialized`
  Json caps = {
      {"positionEncoding", position_encoding_name(encoding_)},
      {"textDocumentSync", {{"openClose", true}, {"change", 2}, {"save", {{"includeText", false}}}}},
      {"inlineCompletionProvider", true},
      {"workspace", {{"workspaceFolders", {{"supported", true}, {"changeNotifications", true}}}}},
      {"experimental",
       {{"latent",
         {{"explainContext", true},
          {"progressNotification", "latent/partialCompletion"},
          {"agent", options_.agent_model != nullptr},
          {"model", core_.backend_name()}}}}},
  };
  // The longest prompt + completion the engine's cache holds (not the model's max_position_embeddings).
  if (auto n = core_.context_length()) caps["experimental"]["latent"]["contextLength"] = *n;
  return Json{{"capabilities", caps}, {"serverInfo", {{"name", "latentd"}, {"version", options_.version}}}};
}

void LspServer::did_open(const Json& params) {
  const Json& td = params.at("textDocument");
  Status st = core_.open(td.at("uri").get<std::string>(), td.value("languageId", std::string()),
                         td.value("version", 0), td.at("text").get<std::string>());
  if (!st.ok()) LATENT_LOG_WARN("didOpen: %s", st.error().message.c_str());
}

void LspServer::did_change(const Json& params) {
  const Json& td = params.at("textDocument");
  std::vector<ContentChange> changes;
  for (const auto& c : params.at("contentChanges")) {
    ContentChange change;
    change.text = c.at("text").get<std::string>();
    if (c.contains("range")) {
      const Json& r = c["range"];
      change.range = Range{position_from(r.at("start")), position_from(r.at("end"))};
    }
    changes.push_back(std::move(change));
  }
  Status st = core_.change(td.at("uri").get<std::string>(), td.value("version", 0), changes, encoding_);
  if (!st.ok()) LATENT_LOG_WARN("didChange: %s", st.error().message.c_str());
}

void LspServer::did_change_watched_files(const Json& params) {
  for (const auto& c : params.at("changes")) {
    core_.watched_file_changed(uri_to_path(c.at("uri").get<std::string>()), c.value("type", 2) == 3);
  }
}

void LspServer::did_change_workspace_folders(const Json& params) {
  const Json& event = params.at("event");
  for (const auto& f : event.value("removed", Json::array())) {
    core_.remove_workspace_folder(uri_to_path(f.at("uri").get<std::string>()));
  }
  for (const auto& f : event.value("added", Json::array())) {
    core_.add_workspace_folder(uri_to_path(f.at("uri").get<std::string>()));
  }
}

void LspServer::inline_completion(const Json& params, const Json& id) {
  CompletionRequest req;
  req.uri = params.at("textDocument").at("uri").get<std::string>();
  req.position = position_from(params.at("position"));
  req.encoding = encoding_;
  // Per request: params.latent.maxTokens (the VS Code extension's setting), else the session's.
  req.max_tokens = max_tokens_from(params.value("latent", Json::object()).value("maxTokens", Json()), max_tokens_);
  Json token = params.contains("partialResultToken") ? params["partialResultToken"] : Json();
  if (usage_ || options_.on_usage) {
    req.on_usage = [sink = usage_, observe = options_.on_usage, id, token, uri = req.uri](const CompletionUsage& u) {
      if (observe) observe(u);
      if (!sink || u.candidate) return;  // latent/usage: the request's own account; candidates count in quotas
      std::lock_guard<std::mutex> lock(sink->mu);
      if (!sink->transport) return;
      sink->transport->notify("latent/usage", Json{{"id", id},
                                                   {"partialResultToken", token},
                                                   {"uri", uri},
                                                   {"promptTokens", u.prompt_tokens},
                                                   {"cachedTokens", u.cached_tokens},
                                                   {"completionTokens", u.completion_tokens},
                                                   {"forwardTokens", u.forward_tokens},
                                                   {"ttftMs", u.ttft_ms},
                                                   {"contextMs", u.context_ms},
                                                   {"firstTextMs", u.first_text_ms},
                                                   {"totalMs", u.milliseconds},
                                                   {"finishReason", u.finish_reason}});
    };
  }
  std::string key = id.dump();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (inflight_.size() >= options_.max_pending_requests) {
      transport_.reply(id, RpcError{rpc_error::kRequestFailed,
                                    "too many pending requests: expected at most " +
                                        std::to_string(options_.max_pending_requests) + ", found " +
                                        std::to_string(inflight_.size() + 1)});
      return;
    }
    if (inflight_.count(key)) {
      transport_.reply(id, RpcError{rpc_error::kInvalidRequest, "request id " + key + " is already in flight"});
      return;
    }
  }
  Transport& transport = transport_;
  std::string uri = req.uri;
  Position at = req.position;
  auto on_partial = [&transport, id, token, uri, at](const std::string& text) {
    if (!token.is_null()) {
      transport.notify("$/progress", Json{{"token", token}, {"value", item_list(text, at)}});
    } else {
      transport.notify("latent/partialCompletion", Json{{"id", id}, {"uri", uri}, {"text", text}});
    }
  };
  // on_done may run before complete() returns (a backend that fails at once): the entry is added first.
  {
    std::lock_guard<std::mutex> lock(mu_);
    inflight_[key] = 0;
  }
  auto on_done = [this, id, key, at](Result<CompletionOutcome> r) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      inflight_.erase(key);
    }
    if (!r.ok()) {
      transport_.reply(id, to_rpc_error(r.error()));
      return;
    }
    LATENT_LOG_DEBUG("completion %s: %zu context tokens, %zu generated, %.1f ms (%s)", key.c_str(),
                     r->context_tokens, r->usage.completion_tokens, r->usage.milliseconds,
                     r->usage.finish_reason.c_str());
    transport_.reply(id, item_list(r->text, at));
  };
  auto ticket = core_.complete(req, on_partial, on_done);
  std::lock_guard<std::mutex> lock(mu_);
  if (!ticket.ok()) {
    inflight_.erase(key);
    transport_.reply(id, to_rpc_error(ticket.error()));
    return;
  }
  auto it = inflight_.find(key);
  if (it != inflight_.end()) it->second = *ticket;
}

RpcResult LspServer::explain_context(const Json& params) {
  auto ctx = core_.context_at(params.at("textDocument").at("uri").get<std::string>(),
                              position_from(params.at("position")), encoding_);
  if (!ctx.ok()) return to_rpc_error(ctx.error());
  Json items = Json::array();
  for (const auto& it : ctx->items) {
    items.push_back({{"kind", it.kind},
                     {"path", it.path},
                     {"line", it.line},
                     {"tokens", it.tokens},
                     {"score", it.score},
                     {"included", it.included},
                     {"reason", it.reason},
                     {"text", it.text}});
  }
  // The syntax check's verdict on this document's last completion: why it was kept, cut back or refused.
  Json syntax = {{"mode", syntax_mode_name(core_.syntax_mode())}, {"last", Json()}};
  if (auto v = core_.last_syntax(params.at("textDocument").at("uri").get<std::string>())) {
    syntax["last"] = {{"action", syntax_action_name(v->action)},
                      {"rules", v->rules},
                      {"reason", v->reason},
                      {"text", v->text},
                      {"closer", v->closer},
                      {"errorsWithout", v->errors_without},
                      {"errorsWith", v->errors_with},
                      {"hasCode", v->has_code},
                      {"parses", v->parses},
                      {"candidates", v->candidates},
                      {"chosen", v->chosen},
                      {"milliseconds", v->micros / 1000.0}};
  }
  return Json{{"syntaxCheck", syntax},          {"prompt", ctx->prompt},         {"prefix", ctx->prefix},
              {"suffix", ctx->suffix},         {"path", ctx->path},
              {"promptTokens", ctx->prompt_tokens}, {"budgetTokens", ctx->budget_tokens},
              {"timeLimitTokens", ctx->time_tokens}, {"timeLimit", ctx->time_why},
              {"items", items}};
}

}  // namespace latent::lsp
