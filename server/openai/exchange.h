#pragma once
// One HTTP request/response as the API handlers see it, whatever the transport. The daemon's Beast session
// implements it (server/openai/beast_exchange.*); the handlers never touch sockets.
//
// A handler either respond()s once, or begin_stream()s, write()s chunks (server-sent events) and
// end_stream()s. Thread-safety: every method may be called from any thread (the engine thread calls write()
// for streamed tokens) and must not block: the transport queues and writes on its own strand. After the
// client has gone, calls are ignored.
#include <functional>
#include <string>

namespace latent::openai {

class HttpExchange {
 public:
  virtual ~HttpExchange() = default;
  virtual void respond(int status, std::string content_type, std::string body) = 0;
  virtual void begin_stream(int status, std::string content_type) = 0;
  virtual void write(std::string chunk) = 0;
  virtual void end_stream() = 0;
  // fn runs once, on some thread, if the client disconnects before the response is complete (at once when it
  // already has). Once the response is complete the exchange drops fn (fn usually owns the generation, which
  // owns this exchange: keeping it would be a reference cycle).
  virtual void on_disconnect(std::function<void()> fn) = 0;
};

}  // namespace latent::openai
