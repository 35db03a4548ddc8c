#pragma once
// One TCP port for WebSocket LSP (/lsp) and HTTP (Boost.Beast, the chat-multi shape: listener ->
// http_session -> websocket_session). Each WebSocket connection is a lsp::Transport whose loop runs on its own
// thread (`session` below); the Asio threads only read, parse and write. A strand per connection; a write
// queue per session for streamed messages.
//
// TLS: with tls_cert and tls_key every connection starts with a TLS handshake (HTTPS and WSS on the same port);
// a bad certificate or key fails start() with the file and the reason.
//
// Security: when `token` (or `users`) is set every request but GET /health needs `Authorization: Bearer <token>`
// or `?token=<token>` (routes added with HttpRouter::add_public need none; with `users`, a public route that
// needs a scope, /dashboard, needs its token too). A token in the URL is refused over plain HTTP when the
// listening address is not loopback (URLs end up in logs and proxies); a request with an Origin header
// outside `allowed_origins` (and, with `allow_own_origin`, not this port's own pages) is refused (403).
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kernels/base/result.h"
#include "lsp/json_rpc.h"
#include "server/http_router.h"
#include "server/quota.h"
#include "server/users.h"

namespace latent::server {

// What GET /health says of the model (NetOptions::model_health).
struct ModelHealth {
  bool serving = true;      // requests are served (loaded, maybe still warming)
  bool failed = false;      // the load failed for good
  nlohmann::json status;    // latent/status's params (server/model_loader.h LoadState::to_json)
};

struct NetOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;                      // 0: any free port (see NetServer::port)
  std::string token;                      // empty: no authentication (loopback only; latentd enforces)
  // --users: per-user tokens and scopes (server/users.h), checked instead of `token`; each request is answered
  // 401 (no token or an unknown one) or 403 (a scope missing) alike for every user.
  std::shared_ptr<UserDirectory> users;
  size_t max_connections_per_user = 32;
  std::shared_ptr<UserQuotas> quotas;     // with `users`: generation requests over quota get 429 + Retry-After   // with `users`: WebSocket sessions + streamed HTTP answers at once
  std::string tls_cert, tls_key;          // PEM files; both set: HTTPS and WSS only (server/tls_context.h)
  std::vector<std::string> allowed_origins;  // exact "scheme://host[:port]"; "*" allows every Origin
  bool allow_own_origin = false;          // --ui: pages this port served may connect (web_ui.h is_own_origin)
  size_t max_message_bytes = 8 << 20;     // one WebSocket message; bigger closes the connection (1009)
  size_t max_http_body_bytes = 8 << 20;
  size_t max_queued_messages = 256;       // read but not yet handled, per connection
  std::chrono::seconds idle_timeout{600}; // HTTP keep-alive and WebSocket idle limit
  int threads = 2;
  // Which replica answers (--replica-id; empty: "HOST:PORT" as bound): in GET /health's "replica" and in an
  // X-Latent-Replica header on every HTTP answer and WebSocket upgrade, so that a load balancer's routing
  // can be seen and checked (docs/team.md).
  std::string replica_id;
  // The model's load (latentd's ModelLoader), for GET /health: unset, /health is always 200 "ok" (no model, or a
  // test double). While the model loads: 503 {"status": "loading", "model": {...}} with Retry-After (a load
  // balancer sends no traffic here yet); once it serves: 200 "ok"; a failed load: 503 "error".
  std::function<ModelHealth()> model_health;
};

// Who a connection authenticated as: with --users the user and their scopes; otherwise name "" and every scope.
struct SessionUser {
  std::string name;
  unsigned scopes = ~0u;
  double weight = 1.0;  // fair-share weight (users file "weight")
};

// Runs one LSP connection to its end on the calling thread (a thread of its own per connection).
using SessionFn = std::function<void(lsp::Transport&)>;
using UserSessionFn = std::function<void(lsp::Transport&, const SessionUser&)>;

class NetServer {
 public:
  NetServer(NetOptions options, std::shared_ptr<HttpRouter> router, SessionFn session);
  NetServer(NetOptions options, std::shared_ptr<HttpRouter> router, UserSessionFn session);
  ~NetServer();
  // Binds and listens; the port is known after this.
  Status start();
  uint16_t port() const;
  bool tls() const;  // after start(): HTTPS/WSS
  // Runs fn on an Asio thread whenever the process gets `signo` (SIGHUP: reload --users). Call before run().
  void on_signal(int signo, std::function<void()> fn);
  // Serves on `threads` Asio threads until stop(); blocks.
  void run();
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

bool is_loopback_host(const std::string& host);

}  // namespace latent::server
