#include "lsp/agent/mcp_server.h"

#include <istream>
#include <ostream>
#include <string>

#include "lsp/agent/agent_tools.h"
#include "lsp/agent/workspace_files.h"
#include "lsp/json_rpc.h"
#include "lsp/uri.h"

namespace latent::lsp::agent {
namespace {

constexpr const char* kProtocolVersion = "2025-06-18";
constexpr int kIndexWaitMs = 60000;  // the first tool call waits for the initial walk

Json error_reply(const Json& id, int code, const std::string& message) {
  return {{"jsonrpc", "2.0"}, {"id", id}, {"error", {{"code", code}, {"message", message}}}};
}

Json tool_list() {
  auto obj = [](Json props, std::vector<std::string> required) {
    return Json{{"type", "object"}, {"properties", std::move(props)}, {"required", std::move(required)}};
  };
  Json s = {{"type", "string"}}, n = {{"type", "integer"}, {"minimum", 1}};
  return Json::array({
      {{"name", "find_symbol"}, {"description", "Where a function, class or type is defined in the workspace (name or Outer.inner)."},
       {"inputSchema", obj({{"name", s}}, {"name"})}},
      {{"name", "definition"}, {"description", "The full text of a symbol's definition."},
       {"inputSchema", obj({{"name", s}}, {"name"})}},
      {{"name", "references"}, {"description", "Lines where an identifier occurs in the workspace (word-bounded text matches)."},
       {"inputSchema", obj({{"name", s}}, {"name"})}},
      {{"name", "context_for"},
       {"description", "The code context Latent's completion would use at a file's line: enclosing scopes, imports, "
                       "definitions used nearby and similar snippets, each with why it was chosen."},
       {"inputSchema", obj({{"file", s}, {"line", n}}, {"file", "line"})}},
  });
}

}  // namespace

McpServer::McpServer(AssistantCore& core, std::string version) : core_(core), version_(std::move(version)) {}

Json McpServer::context_for(const Json& args) {
  if (!args.contains("file") || !args["file"].is_string() || !args.contains("line") || !args["line"].is_number_integer() ||
      args["line"].get<long long>() < 1) {
    throw std::invalid_argument("context_for: expected {file: string, line: integer >= 1}, found " + args.dump().substr(0, 200));
  }
  ToolContext ctx;
  ctx.roots = core_.index().roots();
  auto f = current_text(ctx, args["file"].get<std::string>());
  if (!f.ok()) throw std::invalid_argument("context_for: " + f.error().message);
  if (!f->exists) throw std::invalid_argument("context_for: " + args["file"].get<std::string>() + " does not exist");
  std::string uri = path_to_uri(f->absolute);
  if (auto st = core_.open(uri, "", 1, f->text); !st.ok()) throw std::invalid_argument("context_for: " + st.error().message);
  auto line = static_cast<uint32_t>(args["line"].get<long long>() - 1);
  auto pc = core_.context_at(uri, Position{line, 0}, PositionEncoding::kUtf8);
  (void)core_.close(uri);
  if (!pc.ok()) throw std::invalid_argument("context_for: " + pc.error().message);
  Json items = Json::array();
  for (const auto& it : pc->items) {
    if (!it.included || it.kind == "prefix" || it.kind == "suffix") continue;
    items.push_back({{"kind", it.kind}, {"path", it.path}, {"line", it.line + 1}, {"reason", it.reason}, {"text", it.text}});
  }
  return {{"file", f->relative}, {"line", line + 1}, {"items", items}};
}

Json McpServer::call_tool(const std::string& name, const Json& args) {
  core_.index().wait_idle(kIndexWaitMs);
  Json result;
  bool ok = true;
  if (name == "context_for") {
    try {
      result = context_for(args);
    } catch (const std::exception& e) {
      ok = false;
      result = {{"error", e.what()}};
    }
  } else if (name == "find_symbol" || name == "definition" || name == "references") {
    ToolContext ctx;
    ctx.roots = core_.index().roots();
    ctx.documents = &core_.documents();
    ctx.index = &core_.index();
    ToolOutput out = run_tool(ctx, name, args);
    ok = out.ok;
    result = out.result;
  } else {
    ok = false;
    result = {{"error", "unknown tool '" + name.substr(0, 80) + "'; expected find_symbol, definition, references or context_for"}};
  }
  Json reply = {{"content", Json::array({{{"type", "text"}, {"text", result.dump(2, ' ', false, Json::error_handler_t::replace)}}})},
                {"isError", !ok}};
  if (ok) reply["structuredContent"] = result;
  return reply;
}

std::optional<Json> McpServer::handle(const Json& m) {
  if (!m.is_object() || m.value("jsonrpc", "") != "2.0") {
    return error_reply(m.is_object() && m.contains("id") ? m["id"] : Json(), rpc_error::kInvalidRequest,
                       "expected a JSON-RPC 2.0 message object");
  }
  if (!m.contains("method")) return std::nullopt;  // a reply: this server sends no requests
  if (!m["method"].is_string()) return error_reply(m.value("id", Json()), rpc_error::kInvalidRequest, "method: expected a string");
  std::string method = m["method"].get<std::string>();
  if (!m.contains("id")) {
    if (method == "notifications/initialized") initialized_ = true;
    return std::nullopt;
  }
  const Json& id = m["id"];
  Json params = m.value("params", Json::object());
  auto ok = [&](Json result) { return Json{{"jsonrpc", "2.0"}, {"id", id}, {"result", std::move(result)}}; };
  if (method == "initialize") {
    std::string requested = params.is_object() ? params.value("protocolVersion", kProtocolVersion) : kProtocolVersion;
    return ok({{"protocolVersion", requested.empty() ? kProtocolVersion : requested},
               {"capabilities", {{"tools", {{"listChanged", false}}}}},
               {"serverInfo", {{"name", "latentd"}, {"version", version_}}},
               {"instructions", "Latent's workspace index: symbols, definitions, references and completion context."}});
  }
  if (method == "ping") return ok(Json::object());
  if (method == "tools/list") return ok({{"tools", tool_list()}});
  if (method == "tools/call") {
    if (!params.is_object() || !params.contains("name") || !params["name"].is_string()) {
      return error_reply(id, rpc_error::kInvalidParams, "tools/call: expected params {name: string, arguments?: object}");
    }
    Json args = params.value("arguments", Json::object());
    if (!args.is_object()) return error_reply(id, rpc_error::kInvalidParams, "tools/call: arguments: expected an object");
    return ok(call_tool(params["name"].get<std::string>(), args));
  }
  return error_reply(id, rpc_error::kMethodNotFound, "unknown method " + method.substr(0, 80) +
                                                         "; expected initialize, ping, tools/list or tools/call");
}

Status McpServer::serve(std::istream& in, std::ostream& out, size_t max_line_bytes) {
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    std::optional<Json> reply;
    if (line.size() > max_line_bytes) {
      reply = error_reply(Json(), rpc_error::kInvalidRequest, "message of " + std::to_string(line.size()) +
                                                                  " bytes; expected at most " + std::to_string(max_line_bytes));
    } else {
      Json m = Json::parse(line, nullptr, false);
      reply = m.is_discarded() ? error_reply(Json(), rpc_error::kParseError, "expected a JSON message on one line")
                               : handle(m);
    }
    if (reply) {
      out << dump_json(*reply) << '\n';
      out.flush();
    }
  }
  return Status::Ok();
}

}  // namespace latent::lsp::agent
