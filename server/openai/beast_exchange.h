#pragma once
// HttpExchange over a Beast HTTP session's connection, for answers that come later or in pieces (server-sent
// events). The session lends its stream and read buffer for one response:
//
//   auto ex = make_beast_exchange(stream_, buffer_, req.version(), req.keep_alive(), shared_from_this(),
//                                 [self](bool reuse) { if (reuse) self->do_read(); });
//
// While the response is pending, a read on the connection notices a client that goes away (EOF, reset) and
// fires on_disconnect; bytes that arrive instead (a pipelined request) stay in `buffer` for the session.
// Streams use chunked transfer encoding (HTTP/1.1) or end by closing (HTTP/1.0). When the response is
// written, `done(true)` hands the connection back for the next request, or `done(false)` after it is closed.
// A client that stops reading is dropped once max_queued_bytes are waiting, so nothing grows without bound.
// `extra_headers` ("Name: value\r\n" lines, e.g. X-Latent-Replica) go into the response head.
// Thread-safety: the HttpExchange methods may be called from any thread; all socket work runs on the
// stream's executor (the session's strand).
#include <functional>
#include <memory>
#include <string>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include "server/openai/exchange.h"

namespace latent::openai {

std::shared_ptr<HttpExchange> make_beast_exchange(boost::beast::tcp_stream& stream,
                                                  boost::beast::flat_buffer& buffer, unsigned http_version,
                                                  bool keep_alive, std::shared_ptr<void> owner,
                                                  std::function<void(bool reuse)> done,
                                                  size_t max_queued_bytes = 16 << 20,
                                                  std::string extra_headers = {});
// The same over TLS (latentd --tls-cert/--tls-key).
std::shared_ptr<HttpExchange> make_beast_exchange(boost::beast::ssl_stream<boost::beast::tcp_stream>& stream,
                                                  boost::beast::flat_buffer& buffer, unsigned http_version,
                                                  bool keep_alive, std::shared_ptr<void> owner,
                                                  std::function<void(bool reuse)> done,
                                                  size_t max_queued_bytes = 16 << 20,
                                                  std::string extra_headers = {});

}  // namespace latent::openai
