#include "server/net_server.h"

#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include <mutex>
#include <thread>

namespace latent::server {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

// An echo "LSP" session: answers every call with its params, until the peer closes.
class Echo : public lsp::MessageHandler {
 public:
  explicit Echo(lsp::Transport& t) : t_(t) {}
  bool on_notify(std::string_view, lsp::Json) override { return true; }
  bool on_call(std::string_view, lsp::Json params, lsp::Json id) override {
    t_.reply(id, lsp::RpcResult(std::move(params)));
    return true;
  }
  bool on_reply(lsp::Json, lsp::RpcResult) override { return true; }

 private:
  lsp::Transport& t_;
};

class NetServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    NetOptions o;
    o.port = 0;
    o.token = "s3cret";
    o.allowed_origins = {"http://localhost:3000"};
    o.max_message_bytes = 1024;
    router_ = std::make_shared<HttpRouter>();
    o.model_health = [this] {
      std::lock_guard<std::mutex> lock(health_mu_);
      return health_;
    };
    router_->add("GET", "/v1/ping", [](const HttpRequest& r) { return HttpResponse::json(200, {{"pong", r.query}}); });
    server_ = std::make_unique<NetServer>(o, router_, [](lsp::Transport& t) {
      Echo e(t);
      (void)t.loop(e);
    });
    ASSERT_TRUE(server_->start().ok());
    thread_ = std::thread([this] { server_->run(); });
  }
  void TearDown() override {
    server_->stop();
    thread_.join();
  }
  http::response<http::string_body> get(const std::string& target, std::map<std::string, std::string> headers = {}) {
    net::io_context ioc;
    tcp::socket s(ioc);
    s.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), server_->port()));
    http::request<http::string_body> req{http::verb::get, target, 11};
    req.set(http::field::host, "localhost");
    for (const auto& [k, v] : headers) req.set(k, v);
    http::write(s, req);
    beast::flat_buffer buf;
    http::response<http::string_body> res;
    http::read(s, buf, res);
    return res;
  }
  void set_health(ModelHealth h) {
    std::lock_guard<std::mutex> lock(health_mu_);
    health_ = std::move(h);
  }
  std::mutex health_mu_;
  ModelHealth health_;  // serving, as without a model
  std::shared_ptr<HttpRouter> router_;
  std::unique_ptr<NetServer> server_;
  std::thread thread_;
};

TEST_F(NetServerTest, HealthRoutesAndJson404) {
  auto h = get("/health");
  EXPECT_EQ(h.result_int(), 200);
  EXPECT_EQ(nlohmann::json::parse(h.body())["status"], "ok");
  // No replica id given: HOST:PORT as bound, in /health and in a header on every answer (docs/team.md).
  const std::string replica = "127.0.0.1:" + std::to_string(server_->port());
  EXPECT_EQ(nlohmann::json::parse(h.body())["replica"], replica);
  EXPECT_EQ(h["X-Latent-Replica"], replica);
  auto unauth = get("/v1/ping");
  EXPECT_EQ(unauth.result_int(), 401);
  EXPECT_EQ(unauth["X-Latent-Replica"], replica);
  auto ok = get("/v1/ping?x=1", {{"Authorization", "Bearer s3cret"}});
  EXPECT_EQ(ok.result_int(), 200);
  EXPECT_EQ(nlohmann::json::parse(ok.body())["pong"], "x=1");
  auto missing = get("/nope?token=s3cret");
  EXPECT_EQ(missing.result_int(), 404);
  EXPECT_EQ(nlohmann::json::parse(missing.body())["error"]["type"], "not_found");
  auto origin = get("/v1/ping?token=s3cret", {{"Origin", "http://evil.example"}});
  EXPECT_EQ(origin.result_int(), 403);
}

// A load balancer asks /health (no token): 503 + Retry-After while the model loads, 200 once it serves, 503 without
// Retry-After when the load failed for good; the model's state (latent/status's params) in the body.
TEST_F(NetServerTest, HealthSaysLoadingWith503UntilTheModelServes) {
  set_health({false, false, {{"state", "loading"}, {"phase", "uploading"}, {"percent", 42}}});
  auto loading = get("/health");
  EXPECT_EQ(loading.result_int(), 503);
  EXPECT_EQ(loading["Retry-After"], "2");
  auto body = nlohmann::json::parse(loading.body());
  EXPECT_EQ(body["status"], "loading");
  EXPECT_EQ(body["model"]["phase"], "uploading");
  EXPECT_EQ(body["model"]["percent"], 42);
  set_health({true, false, {{"state", "loading"}, {"phase", "warming"}}});
  auto warming = get("/health");
  EXPECT_EQ(warming.result_int(), 200);
  EXPECT_EQ(nlohmann::json::parse(warming.body())["status"], "ok");
  set_health({false, true, {{"state", "error"}, {"phase", "failed"}, {"message", "the model failed to load: x"}}});
  auto failed = get("/health");
  EXPECT_EQ(failed.result_int(), 503);
  EXPECT_EQ(failed.count("Retry-After"), 0u);
  body = nlohmann::json::parse(failed.body());
  EXPECT_EQ(body["status"], "error");
  EXPECT_EQ(body["model"]["message"], "the model failed to load: x");
}

TEST_F(NetServerTest, WebSocketNeedsTokenAndEchoesFrames) {
  net::io_context ioc;
  {
    beast::websocket::stream<tcp::socket> ws(ioc);
    ws.next_layer().connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), server_->port()));
    beast::error_code ec;
    ws.handshake("localhost", "/lsp", ec);
    EXPECT_TRUE(ec) << "a handshake without the token must be refused";
  }
  beast::websocket::stream<tcp::socket> ws(ioc);
  ws.next_layer().connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), server_->port()));
  ws.handshake("localhost", "/lsp?token=s3cret");
  ws.text(true);
  ws.write(net::buffer(std::string(R"({"jsonrpc":"2.0","id":1,"method":"m","params":{"é":1}})")));
  beast::flat_buffer buf;
  ws.read(buf);
  auto reply = nlohmann::json::parse(beast::buffers_to_string(buf.data()));
  EXPECT_EQ(reply["id"], 1);
  EXPECT_EQ(reply["result"]["é"], 1);
  // Over the 1024-byte limit: the server closes the connection.
  ws.write(net::buffer(std::string(4096, ' ')));
  beast::error_code ec;
  buf.clear();
  ws.read(buf, ec);
  EXPECT_TRUE(ec);
}

TEST(NetServer, LoopbackHosts) {
  EXPECT_TRUE(is_loopback_host("127.0.0.1"));
  EXPECT_TRUE(is_loopback_host("localhost"));
  EXPECT_TRUE(is_loopback_host("[::1]"));
  EXPECT_FALSE(is_loopback_host("0.0.0.0"));
  EXPECT_FALSE(is_loopback_host("192.168.1.2"));
  // Decided by the parsed address, never by a name's prefix.
  EXPECT_FALSE(is_loopback_host("127.0.0.1.nip.io"));
  EXPECT_FALSE(is_loopback_host("127.evil.example"));
  EXPECT_FALSE(is_loopback_host("127."));
  EXPECT_FALSE(is_loopback_host("127.1"));  // not a dotted quad: a name for the resolver
  EXPECT_TRUE(is_loopback_host("127.255.255.254"));
  EXPECT_TRUE(is_loopback_host("::1"));
  EXPECT_TRUE(is_loopback_host("::ffff:127.0.0.1"));
  EXPECT_FALSE(is_loopback_host("::ffff:10.0.0.1"));
  EXPECT_FALSE(is_loopback_host("::"));
  EXPECT_FALSE(is_loopback_host("[::1"));
  EXPECT_FALSE(is_loopback_host(""));
  EXPECT_EQ(query_param("a=1&token=x%2Fy", "token"), "x/y");
  EXPECT_EQ(query_param("a=1", "token"), "");
}

// Without a token the server binds only a loopback address, checked on the address the host resolved to.
TEST(NetServer, RefusesToBindANonLoopbackAddressWithoutAToken) {
  auto start = [](const std::string& host, const std::string& token) {
    NetOptions o;
    o.host = host;
    o.port = 0;
    o.token = token;
    NetServer server(o, std::make_shared<HttpRouter>(), [](lsp::Transport&) {});
    return server.start();
  };
  Status st = start("0.0.0.0", "");
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("resolves to 0.0.0.0, not a loopback address; expected a token"),
            std::string::npos)
      << st.error().message;
  EXPECT_TRUE(start("127.0.0.1", "").ok());
  EXPECT_TRUE(start("0.0.0.0", "s3cret").ok());
}

}  // namespace
}  // namespace latent::server
