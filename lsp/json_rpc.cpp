#include "lsp/json_rpc.h"

#include "kernels/base/log.h"

namespace latent::lsp {

RpcError to_rpc_error(const Error& error) {
  switch (error.code) {
    case ErrorCode::kInvalidArgument: return {rpc_error::kInvalidParams, error.message};
    case ErrorCode::kCancelled: return {rpc_error::kRequestCancelled, error.message};
    case ErrorCode::kInternal: return {rpc_error::kInternalError, error.message};
    default: return {rpc_error::kRequestFailed, error.message};
  }
}

std::string dump_json(const Json& value) {
  return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

void MessageTransport::notify(std::string_view method, Json params) {
  Json msg = {{"jsonrpc", "2.0"}, {"method", method}};
  if (!params.is_null()) msg["params"] = std::move(params);
  write_message(dump_json(msg));
}

void MessageTransport::call(std::string_view method, Json params, Json id) {
  Json msg = {{"jsonrpc", "2.0"}, {"id", std::move(id)}, {"method", method}};
  if (!params.is_null()) msg["params"] = std::move(params);
  write_message(dump_json(msg));
}

void MessageTransport::reply(Json id, RpcResult result) {
  Json msg = {{"jsonrpc", "2.0"}, {"id", std::move(id)}};
  if (auto* value = std::get_if<Json>(&result)) {
    msg["result"] = std::move(*value);
  } else {
    const auto& err = std::get<RpcError>(result);
    msg["error"] = {{"code", err.code}, {"message", err.message}};
  }
  write_message(dump_json(msg));
}

Status MessageTransport::loop(MessageHandler& handler) {
  for (;;) {
    auto msg = read_message();
    if (!msg.ok()) {
      const Error& e = msg.error();
      if (e.code == ErrorCode::kResourceExhausted || e.code == ErrorCode::kCorrupt) {
        RpcError err{e.code == ErrorCode::kCorrupt ? rpc_error::kParseError : rpc_error::kInvalidRequest,
                     e.message};
        LATENT_LOG_WARN("bad message skipped: %s", e.message.c_str());
        reply(nullptr, err);
        handler.on_bad_message(err);
        continue;
      }
      return e;
    }
    if (!msg->has_value()) return Status::Ok();
    if (!dispatch_message(**msg, handler, *this)) return Status::Ok();
  }
}

bool dispatch_message(std::string_view text, MessageHandler& handler, Transport& transport) {
  Json msg = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  auto bad = [&](Json id, int code, std::string message) {
    RpcError err{code, std::move(message)};
    transport.reply(std::move(id), err);
    handler.on_bad_message(err);
    return true;
  };
  if (msg.is_discarded()) {
    return bad(nullptr, rpc_error::kParseError,
               "expected a JSON-RPC message, found text that is not JSON (" + std::to_string(text.size()) +
                   " bytes)");
  }
  if (!msg.is_object()) {
    return bad(nullptr, rpc_error::kInvalidRequest,
               std::string("expected a JSON object, found ") + msg.type_name() +
                   (msg.is_array() ? " (batches are not supported)" : ""));
  }
  Json id = msg.contains("id") ? msg["id"] : Json();
  if (!id.is_null() && !id.is_number_integer() && !id.is_string()) {
    return bad(nullptr, rpc_error::kInvalidRequest,
               std::string("expected an integer or string id, found ") + id.type_name());
  }
  Json params = msg.contains("params") ? std::move(msg["params"]) : Json();
  auto method_it = msg.find("method");
  if (method_it != msg.end()) {
    if (!method_it->is_string()) {
      return bad(id, rpc_error::kInvalidRequest,
                 std::string("expected a string method, found ") + method_it->type_name());
    }
    std::string method = *method_it;
    if (msg.contains("id")) return handler.on_call(method, std::move(params), std::move(id));
    return handler.on_notify(method, std::move(params));
  }
  if (msg.contains("id") && (msg.contains("result") || msg.contains("error"))) {
    if (msg.contains("error")) {
      const Json& e = msg["error"];
      RpcError err{rpc_error::kInternalError, ""};
      if (e.is_object() && e.contains("code") && e["code"].is_number_integer()) err.code = e["code"].get<int>();
      if (e.is_object() && e.contains("message") && e["message"].is_string()) err.message = e["message"];
      return handler.on_reply(std::move(id), err);
    }
    return handler.on_reply(std::move(id), RpcResult(std::move(msg["result"])));
  }
  return bad(id, rpc_error::kInvalidRequest, "expected a request, notification or response, found neither");
}

}  // namespace latent::lsp
