#include "server/net_server.h"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

#include "kernels/base/log.h"
#include "kernels/base/version.h"
#include "server/openai/beast_exchange.h"
#include "server/tls_context.h"
#include "server/web_ui.h"

namespace latent::server {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;

bool is_loopback_host(const std::string& host) {
  // "localhost" is loopback by definition (RFC 6761); NetServer::start checks what it actually bound.
  if (host == "localhost") return true;
  std::string h = host;
  if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  // Any other name is not loopback, whatever it starts with ("127.0.0.1.example.com" resolves anywhere):
  // only a parsed address decides.
  boost::system::error_code ec;
  const net::ip::address a = net::ip::make_address(h, ec);
  if (ec) return false;
  if (a.is_v6() && a.to_v6().is_v4_mapped()) {
    return net::ip::make_address_v4(net::ip::v4_mapped, a.to_v6()).is_loopback();  // ::ffff:127.0.0.1
  }
  return a.is_loopback();
}

namespace {

// A connection's byte stream: plain TCP, or TLS over TCP when latentd has --tls-cert/--tls-key.
using PlainStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;
template <class Stream>
constexpr bool kTls = std::is_same_v<Stream, TlsStream>;

class SessionBase;

struct Shared {
  NetOptions options;
  std::shared_ptr<net::ssl::context> tls;  // null: plain HTTP and WebSocket
  std::shared_ptr<HttpRouter> router;
  UserSessionFn session;
  bool loopback_listen = true;  // the bound address (start())
  // Per-user connections in use (with options.users); a Slot gives one back when it goes.
  std::mutex users_mu;
  std::map<std::string, size_t> user_connections;
  // WebSocket sessions whose LSP loop runs on a thread of its own. stop() ends their input and waits for those
  // threads before the io_context goes: a session outliving it would touch a destroyed reactor.
  std::mutex sessions_mu;
  std::condition_variable sessions_cv;
  bool stopping = false;
  size_t live_session_threads = 0;
  std::vector<std::weak_ptr<SessionBase>> sessions;
};

bool constant_time_equal(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  unsigned char d = 0;
  for (size_t i = 0; i < a.size(); ++i) d |= static_cast<unsigned char>(a[i] ^ b[i]);
  return d == 0;
}

HttpRequest to_request(const http::request<http::string_body>& req) {
  HttpRequest r;
  r.method = std::string(req.method_string());
  r.target = std::string(req.target());
  size_t q = r.target.find('?');
  r.path = r.target.substr(0, q);
  r.query = q == std::string::npos ? "" : r.target.substr(q + 1);
  for (const auto& f : req) {
    std::string name(f.name_string());
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    r.headers[name] = std::string(f.value());
  }
  r.body = req.body();
  return r;
}

// One of a user's connections (max_connections_per_user); gives it back when the last copy goes.
using Slot = std::shared_ptr<void>;

// A slot for `user`, or null when the user has all theirs in use. Empty user (no --users): no limit.
Slot take_slot(const std::shared_ptr<Shared>& s, const std::string& user) {
  if (user.empty() || !s->options.users) return std::make_shared<int>(0);
  std::lock_guard<std::mutex> lock(s->users_mu);
  size_t& n = s->user_connections[user];
  if (n >= s->options.max_connections_per_user) return nullptr;
  ++n;
  std::weak_ptr<Shared> weak = s;
  // The pointer only has to be non-null (a null shared_ptr tests false); the deleter is what counts.
  static int held;
  return Slot(static_cast<void*>(&held), [weak, user](void*) {
    if (auto sh = weak.lock()) {
      std::lock_guard<std::mutex> lock(sh->users_mu);
      if (--sh->user_connections[user] == 0) sh->user_connections.erase(user);
    }
  });
}

HttpResponse too_many_connections(const Shared& s, const std::string& user) {
  HttpResponse r = HttpResponse::error(429, "too_many_connections",
                                       "this token has " + std::to_string(s.options.max_connections_per_user) +
                                           " connections in use; expected at most that many (--max-connections-per-user)");
  r.headers["Retry-After"] = "1";
  return r;
}

struct Access {
  std::optional<HttpResponse> refusal;
  SessionUser user;
};

// The token a request carries: the Authorization header, else ?token=; `from_url` says which.
std::string given_token(const HttpRequest& r, bool* from_url) {
  *from_url = false;
  auto auth = r.headers.find("authorization");
  if (auth != r.headers.end() && auth->second.rfind("Bearer ", 0) == 0) return auth->second.substr(7);
  std::string q = query_param(r.query, "token");
  *from_url = !q.empty();
  return q;
}

// Origin, token and scope. The answers never tell whether a user exists: an unknown token is refused exactly
// as a wrong one, and a scope is only named to a holder of a valid token.
Access check_access(const Shared& s, const HttpRequest& r, bool is_public = false) {
  auto origin = r.headers.find("origin");
  if (origin != r.headers.end()) {
    bool ok = s.options.allow_own_origin && is_own_origin(r, !s.options.token.empty() || s.options.users);
    for (const auto& a : s.options.allowed_origins) ok |= a == "*" || a == origin->second;
    if (!ok) {
      return {HttpResponse::error(403, "forbidden_origin",
                                  "Origin '" + origin->second + "' is not in the allow-list (--allow-origin)")};
    }
  }
  const Scope scope = s.options.users ? scope_for_route(r.method, r.path) : kScopeNone;
  const bool need_token = !is_public || scope != kScopeNone;
  if (!need_token || (s.options.token.empty() && !s.options.users)) return {};
  bool from_url = false;
  const std::string given = given_token(r, &from_url);
  if (from_url && !s.tls && !s.loopback_listen) {
    return {HttpResponse::error(401, "token_in_url_refused",
                                "expected the token in 'Authorization: Bearer <token>', found it in the URL (?token=), "
                                "which is refused over plain HTTP on a non-loopback address (use TLS: --tls-cert)")};
  }
  if (given.empty()) {
    return {HttpResponse::error(401, "unauthorized", "expected 'Authorization: Bearer <token>' or ?token=, found neither")};
  }
  if (!s.options.users) {
    if (!constant_time_equal(given, s.options.token)) {
      return {HttpResponse::error(401, "unauthorized", "expected a valid token, found one that is not")};
    }
    return {};
  }
  auto user = s.options.users->authenticate(given);
  if (!user) return {HttpResponse::error(401, "unauthorized", "expected a valid token, found one that is not")};
  if (scope != kScopeNone && !(user->scopes & scope)) {
    return {HttpResponse::error(403, "forbidden", "expected a token with the '" + std::string(scope_name(scope)) +
                                                      "' scope for " + r.method + " " + r.path + ", found one without it")};
  }
  if (s.options.quotas && (scope == kScopeComplete || scope == kScopeChat)) {
    if (auto wait = s.options.quotas->admit(user->name)) {
      HttpResponse r = HttpResponse::error(429, "rate_limited", "expected requests within this user's quota, found it "
                                                                "spent; retry after " + std::to_string(*wait) + " s");
      r.headers["Retry-After"] = std::to_string(*wait);
      return {std::move(r)};
    }
  }
  return {std::nullopt, SessionUser{user->name, user->scopes, user->weight}};
}

constexpr const char* kReplicaHeader = "X-Latent-Replica";

http::response<http::string_body> to_beast(const HttpResponse& r, unsigned version, bool keep_alive,
                                           const std::string& replica) {
  http::response<http::string_body> res{static_cast<http::status>(r.status), version};
  res.set(http::field::server, "latentd/" LATENT_VERSION);
  res.set(kReplicaHeader, replica);
  res.set(http::field::content_type, r.content_type);
  for (const auto& [k, v] : r.headers) res.set(k, v);
  res.keep_alive(keep_alive);
  res.body() = r.body;
  res.prepare_payload();
  return res;
}

// GET /health: the daemon answers; with a model, whether it serves yet (503 + Retry-After while it loads).
HttpResponse health(const NetOptions& o) {
  nlohmann::json body{{"status", "ok"}, {"version", LATENT_VERSION}, {"replica", o.replica_id}};
  if (!o.model_health) return HttpResponse::json(200, body);
  const ModelHealth m = o.model_health();
  body["model"] = m.status;
  if (m.serving) return HttpResponse::json(200, body);
  body["status"] = m.failed ? "error" : "loading";
  HttpResponse res = HttpResponse::json(503, body);
  if (!m.failed) res.headers["Retry-After"] = "2";
  return res;
}

// What stop() needs of a WebSocket session, whatever its stream.
class SessionBase {
 public:
  virtual ~SessionBase() = default;
  virtual void end_input() = 0;
};

// One WebSocket connection: a Transport whose loop runs on its own thread, fed by async reads on the strand.
template <class Stream>
class WebSocketSession : public lsp::MessageTransport,
                         public SessionBase,
                         public std::enable_shared_from_this<WebSocketSession<Stream>> {
 public:
  using std::enable_shared_from_this<WebSocketSession<Stream>>::shared_from_this;
  using std::enable_shared_from_this<WebSocketSession<Stream>>::weak_from_this;
  WebSocketSession(Stream&& stream, std::shared_ptr<Shared> shared, SessionUser user, Slot slot)
      : ws_(std::move(stream)), shared_(std::move(shared)), user_(std::move(user)), slot_(std::move(slot)) {}

  void start(http::request<http::string_body> req) {
    ws_.set_option(websocket::stream_base::timeout{std::chrono::seconds(30), shared_->options.idle_timeout, true});
    ws_.read_message_max(shared_->options.max_message_bytes);
    ws_.set_option(websocket::stream_base::decorator([replica = shared_->options.replica_id](websocket::response_type& res) {
      res.set(http::field::server, "latentd/" LATENT_VERSION);
      res.set(kReplicaHeader, replica);
    }));
    ws_.async_accept(req, beast::bind_front_handler(&WebSocketSession::on_accept, shared_from_this()));
  }

 // The LSP loop sees the end of its input (any thread).
  void end_input() override {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    cv_.notify_all();
  }

 protected:
  Result<std::optional<std::string>> read_message() override {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return closed_ || !inbox_.empty(); });
    if (inbox_.empty()) return std::optional<std::string>();
    std::string m = std::move(inbox_.front());
    inbox_.pop_front();
    return std::optional<std::string>(std::move(m));
  }

  void write_message(std::string text) override {
    net::post(ws_.get_executor(), [self = shared_from_this(), text = std::move(text)]() mutable {
      if (self->write_closed_) return;
      self->outbox_.push_back(std::move(text));
      if (self->outbox_.size() == 1) self->do_write();
    });
  }

 private:
  void on_accept(beast::error_code ec) {
    if (ec) {
      LATENT_LOG_WARN("websocket accept: %s", ec.message().c_str());
      return;
    }
    {
      std::lock_guard<std::mutex> lock(shared_->sessions_mu);
      if (shared_->stopping) {
        start_close();
        return;
      }
      ++shared_->live_session_threads;
      std::erase_if(shared_->sessions, [](const auto& w) { return w.expired(); });
      shared_->sessions.push_back(weak_from_this());
    }
    std::thread([self = shared_from_this()]() mutable {
      std::shared_ptr<Shared> shared = self->shared_;
      shared->session(*self, self->user_);
      self->close_from_server();
      self.reset();  // before the count drops: stop() may destroy the io_context right after
      std::lock_guard<std::mutex> lock(shared->sessions_mu);
      --shared->live_session_threads;
      shared->sessions_cv.notify_all();
    }).detach();
    do_read();
  }

  void do_read() {
    ws_.async_read(buffer_, beast::bind_front_handler(&WebSocketSession::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, size_t) {
    if (ec) {
      if (ec != websocket::error::closed) LATENT_LOG_INFO("websocket closed: %s", ec.message().c_str());
      end_input();
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (inbox_.size() >= shared_->options.max_queued_messages) {
        LATENT_LOG_WARN("websocket: more than %zu messages queued; closing", shared_->options.max_queued_messages);
        closed_ = true;
        cv_.notify_all();
        ws_.async_close(websocket::close_code::policy_error, [self = shared_from_this()](beast::error_code) {});
        return;
      }
      inbox_.push_back(beast::buffers_to_string(buffer_.data()));
      cv_.notify_all();
    }
    buffer_.consume(buffer_.size());
    do_read();
  }

  void do_write() {
    ws_.text(true);
    ws_.async_write(net::buffer(outbox_.front()),
                    beast::bind_front_handler(&WebSocketSession::on_write, shared_from_this()));
  }

  void on_write(beast::error_code ec, size_t) {
    if (ec) {
      LATENT_LOG_INFO("websocket write: %s", ec.message().c_str());
      write_closed_ = true;
      outbox_.clear();
      end_input();
      return;
    }
    outbox_.pop_front();
    if (!outbox_.empty()) {
      do_write();
    } else if (close_after_writes_) {
      start_close();
    }
  }

  // The LSP loop ended (exit): flush queued writes, then close.
  void close_from_server() {
    net::post(ws_.get_executor(), [self = shared_from_this()] {
      self->close_after_writes_ = true;
      if (self->outbox_.empty()) self->start_close();
    });
  }

  void start_close() {
    if (write_closed_) return;
    write_closed_ = true;
    ws_.async_close(websocket::close_code::normal, [self = shared_from_this()](beast::error_code) {});
  }

  websocket::stream<Stream> ws_;
  std::shared_ptr<Shared> shared_;
  SessionUser user_;
  Slot slot_;  // one of the user's connections, for the session's life
  beast::flat_buffer buffer_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> inbox_;
  bool closed_ = false;
  // Strand-only state.
  std::deque<std::string> outbox_;
  bool write_closed_ = false;
  bool close_after_writes_ = false;
};

template <class Stream>
Stream make_stream(tcp::socket&& socket, Shared& shared);
template <>
PlainStream make_stream<PlainStream>(tcp::socket&& socket, Shared&) {
  return PlainStream(std::move(socket));
}
template <>
TlsStream make_stream<TlsStream>(tcp::socket&& socket, Shared& shared) {
  return TlsStream(std::move(socket), *shared.tls);
}

template <class Stream>
class HttpSession : public std::enable_shared_from_this<HttpSession<Stream>> {
 public:
  using std::enable_shared_from_this<HttpSession<Stream>>::shared_from_this;
  HttpSession(tcp::socket&& socket, std::shared_ptr<Shared> shared)
      : stream_(make_stream<Stream>(std::move(socket), *shared)), shared_(std::move(shared)) {}

  void run() {
    if constexpr (kTls<Stream>) {
      net::dispatch(stream_.get_executor(), beast::bind_front_handler(&HttpSession::handshake, shared_from_this()));
    } else {
      net::dispatch(stream_.get_executor(), beast::bind_front_handler(&HttpSession::do_read, shared_from_this()));
    }
  }

 private:
  beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream_); }

  // TLS: the handshake first, bounded like a request; a client that speaks plain HTTP to an HTTPS port fails
  // here and is dropped.
  void handshake() {
    if constexpr (kTls<Stream>) {
      lowest().expires_after(std::min<std::chrono::seconds>(shared_->options.idle_timeout, std::chrono::seconds(30)));
      stream_.async_handshake(net::ssl::stream_base::server, [self = shared_from_this()](beast::error_code ec) {
        if (ec) {
          LATENT_LOG_DEBUG("tls handshake: %s", ec.message().c_str());
          return;
        }
        self->do_read();
      });
    }
  }

  // No more responses on this connection: TLS says close_notify (bounded by the stream's timer), TCP shuts its
  // sending side.
  void close_send() {
    if constexpr (kTls<Stream>) {
      lowest().expires_after(std::chrono::seconds(30));
      stream_.async_shutdown([self = shared_from_this()](beast::error_code) {});
    } else {
      beast::error_code ignored;
      stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    }
  }

  void do_read() {
    parser_.emplace();
    parser_->body_limit(shared_->options.max_http_body_bytes);
    lowest().expires_after(shared_->options.idle_timeout);
    http::async_read(stream_, buffer_, *parser_, beast::bind_front_handler(&HttpSession::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, size_t) {
    if (ec == http::error::end_of_stream) {
      close_send();
      return;
    }
    if (ec == beast::error::timeout) {
      beast::error_code ignored;
      lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
      return;
    }
    if (ec) {
      if (ec == http::error::body_limit) {
        send(HttpResponse::error(413, "too_large", "request body over " +
                                                       std::to_string(shared_->options.max_http_body_bytes) + " bytes"),
             11, false);
        return;
      }
      LATENT_LOG_DEBUG("http read: %s", ec.message().c_str());
      return;
    }
    auto req = parser_->release();
    HttpRequest r = to_request(req);
    bool upgrade = websocket::is_upgrade(req);
    if (upgrade && r.path == "/lsp") {
      Access access = check_access(*shared_, r);
      if (access.refusal) {
        send(*access.refusal, req.version(), false);
        return;
      }
      Slot slot = take_slot(shared_, access.user.name);
      if (!slot) {
        send(too_many_connections(*shared_, access.user.name), req.version(), false);
        return;
      }
      lowest().expires_never();
      std::make_shared<WebSocketSession<Stream>>(std::move(stream_), shared_, access.user, std::move(slot))
          ->start(std::move(req));
      return;
    }
    HttpResponse res;
    if (upgrade) {
      res = HttpResponse::error(404, "not_found", "no WebSocket endpoint at " + r.path + " (expected /lsp)");
    } else if (r.method == "GET" && r.path == "/health") {
      res = health(shared_->options);
    } else if (Access access = check_access(*shared_, r, shared_->router->is_public(r.method, r.path));
               access.refusal) {
      res = *access.refusal;
    } else {
      r.user = access.user.name;
      res = shared_->router->handle(r);
    }
    if (res.deferred) {
      // An answer that takes a while (a generation) holds one of the user's connections until it is written.
      Slot slot = take_slot(shared_, r.user);
      if (!slot) {
        send(too_many_connections(*shared_, r.user), req.version(), req.keep_alive());
        return;
      }
      res.deferred(openai::make_beast_exchange(stream_, buffer_, req.version(), req.keep_alive(), shared_from_this(),
                                               [self = shared_from_this(), slot](bool reuse) {
                                                 if (reuse) self->do_read();
                                               },
                                               16 << 20,
                                               std::string(kReplicaHeader) + ": " + shared_->options.replica_id + "\r\n"));
      return;
    }
    send(res, req.version(), req.keep_alive());
  }

  void send(const HttpResponse& r, unsigned version, bool keep_alive) {
    auto res = std::make_shared<http::response<http::string_body>>(to_beast(r, version, keep_alive, shared_->options.replica_id));
    http::async_write(stream_, *res, [self = shared_from_this(), res, keep_alive](beast::error_code ec, size_t) {
      if (ec) return;
      if (!keep_alive) {
        self->close_send();
        return;
      }
      self->do_read();
    });
  }

  Stream stream_;
  std::shared_ptr<Shared> shared_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
};

}  // namespace

struct NetServer::Impl {
  std::shared_ptr<Shared> shared;
  net::io_context ioc;
  tcp::acceptor acceptor{ioc};
  std::vector<std::thread> threads;
  std::unique_ptr<net::signal_set> signals;
  std::map<int, std::function<void()>> on_signal;

  void wait_signals() {
    signals->async_wait([this](beast::error_code ec, int signo) {
      if (ec) return;
      if (auto it = on_signal.find(signo); it != on_signal.end()) it->second();
      wait_signals();
    });
  }

  void do_accept() {
    acceptor.async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
      if (ec) {
        if (ec == net::error::operation_aborted) return;
        LATENT_LOG_WARN("accept: %s", ec.message().c_str());
      } else {
        if (shared->tls) {
          std::make_shared<HttpSession<TlsStream>>(std::move(socket), shared)->run();
        } else {
          std::make_shared<HttpSession<PlainStream>>(std::move(socket), shared)->run();
        }
      }
      do_accept();
    });
  }
};

NetServer::NetServer(NetOptions options, std::shared_ptr<HttpRouter> router, SessionFn session)
    : NetServer(std::move(options), std::move(router),
                UserSessionFn([session = std::move(session)](lsp::Transport& t, const SessionUser&) { session(t); })) {}

NetServer::NetServer(NetOptions options, std::shared_ptr<HttpRouter> router, UserSessionFn session)
    : impl_(std::make_unique<Impl>()) {
  impl_->shared = std::make_shared<Shared>();
  impl_->shared->options = std::move(options);
  impl_->shared->router = std::move(router);
  impl_->shared->session = std::move(session);
}

NetServer::~NetServer() { stop(); }

Status NetServer::start() {
  const NetOptions& o = impl_->shared->options;
  if (o.tls_cert.empty() != o.tls_key.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "expected both --tls-cert and --tls-key, found only " +
                                                       std::string(o.tls_cert.empty() ? "--tls-key" : "--tls-cert"));
  }
  if (!o.tls_cert.empty()) {
    auto tls = load_tls_context(o.tls_cert, o.tls_key);
    if (!tls.ok()) return tls.error();
    impl_->shared->tls = *tls;
  }
  beast::error_code ec;
  tcp::resolver resolver(impl_->ioc);
  std::string host = o.host;
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  auto results = resolver.resolve(host, std::to_string(o.port), ec);
  if (ec || results.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "--listen: cannot resolve host '" + o.host + "': " + ec.message());
  }
  tcp::endpoint ep = results.begin()->endpoint();
  // Without a token only a loopback address may be bound: decided on the resolved address, so a name that
  // resolves elsewhere (a "localhost" remapped in /etc/hosts) is refused too.
  impl_->shared->loopback_listen = is_loopback_host(ep.address().to_string());
  if (o.token.empty() && !o.users && !impl_->shared->loopback_listen) {
    return make_error(ErrorCode::kInvalidArgument, "--listen " + o.host + ": resolves to " + ep.address().to_string() +
                                                       ", not a loopback address; expected a token (--token-file)");
  }
  auto& a = impl_->acceptor;
  if (a.open(ep.protocol(), ec); ec) return make_error(ErrorCode::kIo, "socket: " + ec.message());
  if (a.set_option(net::socket_base::reuse_address(true), ec); ec) return make_error(ErrorCode::kIo, ec.message());
  if (a.bind(ep, ec); ec) {
    return make_error(ErrorCode::kIo, "bind " + o.host + ":" + std::to_string(o.port) + ": " + ec.message());
  }
  if (a.listen(net::socket_base::max_listen_connections, ec); ec) return make_error(ErrorCode::kIo, "listen: " + ec.message());
  if (impl_->shared->options.replica_id.empty()) {
    impl_->shared->options.replica_id = o.host + ":" + std::to_string(port());
  }
  impl_->do_accept();
  return Status::Ok();
}

bool NetServer::tls() const { return impl_->shared->tls != nullptr; }

void NetServer::on_signal(int signo, std::function<void()> fn) {
  if (!impl_->signals) impl_->signals = std::make_unique<net::signal_set>(impl_->ioc);
  impl_->signals->add(signo);
  const bool first = impl_->on_signal.empty();
  impl_->on_signal[signo] = std::move(fn);
  if (first) impl_->wait_signals();
}

uint16_t NetServer::port() const { return impl_->acceptor.local_endpoint().port(); }

void NetServer::run() {
  int n = std::max(1, impl_->shared->options.threads);
  for (int i = 1; i < n; ++i) impl_->threads.emplace_back([this] { impl_->ioc.run(); });
  impl_->ioc.run();
}

void NetServer::stop() {
  Shared& s = *impl_->shared;
  std::vector<std::shared_ptr<SessionBase>> live;
  {
    std::lock_guard<std::mutex> lock(s.sessions_mu);
    s.stopping = true;
    for (const auto& w : s.sessions) {
      if (auto p = w.lock()) live.push_back(std::move(p));
    }
    s.sessions.clear();
  }
  for (const auto& p : live) p->end_input();
  live.clear();
  {
    std::unique_lock<std::mutex> lock(s.sessions_mu);
    if (!s.sessions_cv.wait_for(lock, std::chrono::seconds(10), [&] { return s.live_session_threads == 0; })) {
      LATENT_LOG_WARN("stop: %zu WebSocket session(s) still running after 10 s", s.live_session_threads);
    }
  }
  if (impl_->signals) {
    beast::error_code ignored;
    impl_->signals->cancel(ignored);
  }
  impl_->ioc.stop();
  for (auto& t : impl_->threads) {
    if (t.joinable() && t.get_id() != std::this_thread::get_id()) t.join();
  }
  impl_->threads.clear();
}

}  // namespace latent::server
