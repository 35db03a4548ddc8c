#pragma once
// JSON-RPC 2.0 as LSP uses it: message classification, error codes, and the Transport interface (clangd's
// shape: notify, call, reply, loop) that stdio, WebSocket and in-memory connections implement.
#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "kernels/base/result.h"

namespace latent::lsp {

using Json = nlohmann::json;

// Error codes of JSON-RPC and LSP.
namespace rpc_error {
constexpr int kParseError = -32700;
constexpr int kInvalidRequest = -32600;
constexpr int kMethodNotFound = -32601;
constexpr int kInvalidParams = -32602;
constexpr int kInternalError = -32603;
constexpr int kServerNotInitialized = -32002;
// Latent's own, in JSON-RPC's server-error range: the connection's token may not call this method (latentd
// --users scopes), like HTTP 403.
constexpr int kForbidden = -32004;
// Also Latent's: the user's request or token quota is spent for now; the message says when to retry.
constexpr int kRateLimited = -32005;
constexpr int kRequestFailed = -32803;
constexpr int kServerCancelled = -32802;
constexpr int kRequestCancelled = -32800;
}  // namespace rpc_error

struct RpcError {
  int code = rpc_error::kInternalError;
  std::string message;
};

// The outcome of a call: a result value or an error object.
using RpcResult = std::variant<Json, RpcError>;

// Maps a library Error onto a JSON-RPC error object (the one place that does so).
RpcError to_rpc_error(const Error& error);

// Receives decoded messages. Each method returns false to end the transport's loop (after `exit`).
class MessageHandler {
 public:
  virtual ~MessageHandler() = default;
  virtual bool on_notify(std::string_view method, Json params) = 0;
  virtual bool on_call(std::string_view method, Json params, Json id) = 0;
  virtual bool on_reply(Json id, RpcResult result) = 0;
  // A message that could not be decoded; the transport has already answered it when it had an id.
  virtual void on_bad_message(const RpcError& error) {}
};

// A bidirectional JSON-RPC connection. notify/call/reply are thread-safe (completions stream from the engine
// thread); loop() runs on one thread and blocks until the peer closes or a handler returns false.
class Transport {
 public:
  virtual ~Transport() = default;
  virtual void notify(std::string_view method, Json params) = 0;
  virtual void call(std::string_view method, Json params, Json id) = 0;
  virtual void reply(Json id, RpcResult result) = 0;
  virtual Status loop(MessageHandler& handler) = 0;
};

// A Transport over whole messages (one JSON text each); subclasses supply framing. Thread-safe writes are the
// subclass's duty (write_message may be called from several threads at once).
class MessageTransport : public Transport {
 public:
  void notify(std::string_view method, Json params) override;
  void call(std::string_view method, Json params, Json id) override;
  void reply(Json id, RpcResult result) override;
  Status loop(MessageHandler& handler) override;

 protected:
  // Blocks for the next message. nullopt: the peer closed cleanly. An error with code kResourceExhausted or
  // kCorrupt is a bad message that was skipped (the loop answers it and goes on); any other error ends the loop.
  virtual Result<std::optional<std::string>> read_message() = 0;
  virtual void write_message(std::string text) = 0;
};

// Decodes one message and calls the handler; answers undecodable requests through `transport`.
// Returns what the handler returned (true for a bad message: keep serving).
bool dispatch_message(std::string_view text, MessageHandler& handler, Transport& transport);

// Serializes without throwing on invalid UTF-8 (replaced with U+FFFD).
std::string dump_json(const Json& value);

}  // namespace latent::lsp
