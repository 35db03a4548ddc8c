// The daemon's port: HTTP requests and WebSocket frames, parsed with the limits NetServer sets, then routed
// like a session does. Mode 0: bytes -> Beast's request parser (body limit 1 MiB) -> the OpenAI API without a
// model (every route must answer exactly once with a status, never throw). Mode 1: an upgrade request plus
// WebSocket frames into a server-side websocket stream with the daemon's message limit; read until the stream
// reports an error. Mode 2: the query-parameter parser on the request target.
#include <boost/beast/_experimental/test/stream.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include <cstdlib>
#include <memory>
#include <string>

#include "server/http_router.h"
#include "server/metrics.h"
#include "server/openai/api.h"

#define FUZZ_CHECK(c) \
  if (!(c)) std::abort()

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;

namespace {

class Recorder : public latent::openai::HttpExchange {
 public:
  void respond(int status, std::string, std::string body) override { ++answers; last = status; }
  void begin_stream(int status, std::string) override { ++answers; last = status; }
  void write(std::string) override {}
  void end_stream() override {}
  void on_disconnect(std::function<void()>) override {}
  int answers = 0;
  int last = 0;
};

void http_request(const uint8_t* data, size_t size) {
  http::request_parser<http::string_body> parser;
  parser.body_limit(1 << 20);
  parser.eager(true);
  beast::error_code ec;
  parser.put(boost::asio::buffer(data, size), ec);
  if (!ec && !parser.is_done()) parser.put_eof(ec);
  if (ec || !parser.is_done()) return;
  const auto& req = parser.get();
  static latent::MetricsRegistry metrics;
  static latent::openai::OpenAiApi api(latent::openai::EngineAccess{}, metrics, latent::openai::ApiOptions{});
  auto ex = std::make_shared<Recorder>();
  if (api.handle(std::string(req.method_string()), std::string(req.target()), req.body(), ex)) {
    FUZZ_CHECK(ex->answers == 1 && ex->last >= 200 && ex->last < 600);
  }
}

void websocket_frames(const uint8_t* data, size_t size) {
  boost::asio::io_context ioc;
  beast::test::stream client(ioc), server(ioc);
  server.connect(client);
  client.write_some(boost::asio::buffer(
      std::string("GET /lsp HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")));
  client.write_some(boost::asio::buffer(data, size));
  client.close();
  websocket::stream<beast::test::stream&> ws(server);
  ws.read_message_max(1 << 16);
  beast::error_code ec;
  ws.accept(ec);
  if (ec) return;
  for (int i = 0; i < 64 && !ec; ++i) {
    beast::flat_buffer buf;
    ws.read(buf, ec);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  switch (data[0] % 3) {
    case 0: http_request(data + 1, size - 1); break;
    case 1: websocket_frames(data + 1, size - 1); break;
    default: {
      const std::string q(reinterpret_cast<const char*>(data + 1), size - 1);
      (void)latent::server::query_param(q, "token");
    }
  }
  return 0;
}
