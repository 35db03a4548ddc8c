#include "server/openai/beast_exchange.h"

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/ssl.hpp>

#include <deque>

#include "kernels/base/log.h"
#include "kernels/base/version.h"

namespace latent::openai {
namespace {

namespace beast = boost::beast;
namespace net = boost::asio;

// Stream: beast::tcp_stream (HTTP) or beast::ssl_stream<beast::tcp_stream> (HTTPS); socket work goes to its
// lowest layer.
template <class Stream>
class BeastExchange : public HttpExchange, public std::enable_shared_from_this<BeastExchange<Stream>> {
 public:
  using std::enable_shared_from_this<BeastExchange<Stream>>::shared_from_this;
  BeastExchange(Stream& stream, beast::flat_buffer& buffer, unsigned version, bool keep_alive,
                std::shared_ptr<void> owner, std::function<void(bool)> done, size_t max_queued,
                std::string extra_headers)
      : stream_(stream),
        buffer_(buffer),
        version_(version),
        keep_alive_(keep_alive),
        owner_(std::move(owner)),
        done_(std::move(done)),
        max_queued_(max_queued),
        extra_headers_(std::move(extra_headers)) {}

  // On the strand: no idle timer while the engine works; watch for the client leaving.
  void start() {
    net::post(stream_.get_executor(), [self = shared_from_this()] {
      self->tcp().expires_never();
      // Streamed tokens are small writes; Nagle's algorithm would hold each for the peer's delayed ACK (~40 ms).
      beast::error_code ignored;
      self->tcp().socket().set_option(net::ip::tcp::no_delay(true), ignored);
      self->watch();
    });
  }

  void respond(int status, std::string content_type, std::string body) override {
    std::string head = status_line(status) + "Content-Type: " + content_type +
                       "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" +
                       (keep_alive_ ? "" : "Connection: close\r\n") + "\r\n";
    post([head = std::move(head), body = std::move(body)](BeastExchange& self) {
      if (self.started_) return;
      self.started_ = true;
      self.enqueue(head + body);
      self.finished_ = true;
      self.pump();
    });
  }

  void begin_stream(int status, std::string content_type) override {
    post([status, content_type = std::move(content_type)](BeastExchange& self) {
      if (self.started_) return;
      self.started_ = true;
      self.chunked_ = self.version_ >= 11;
      if (!self.chunked_) self.keep_alive_ = false;  // HTTP/1.0: the body ends when the connection does
      std::string head = self.status_line(status) + "Content-Type: " + content_type +
                         "\r\nCache-Control: no-cache\r\nX-Accel-Buffering: no\r\n" +
                         (self.chunked_ ? "Transfer-Encoding: chunked\r\n" : "") +
                         (self.keep_alive_ ? "" : "Connection: close\r\n") + "\r\n";
      self.enqueue(std::move(head));
      self.pump();
    });
  }

  void write(std::string chunk) override {
    if (chunk.empty()) return;
    post([chunk = std::move(chunk)](BeastExchange& self) {
      if (!self.started_ || self.finished_) return;
      if (self.chunked_) {
        char size[20];
        std::snprintf(size, sizeof size, "%zx\r\n", chunk.size());
        self.enqueue(size + chunk + "\r\n");
      } else {
        self.enqueue(chunk);
      }
      self.pump();
    });
  }

  void end_stream() override {
    post([](BeastExchange& self) {
      if (!self.started_ || self.finished_) return;
      if (self.chunked_) self.enqueue("0\r\n\r\n");
      self.finished_ = true;
      self.pump();
    });
  }

  void on_disconnect(std::function<void()> fn) override {
    post([fn = std::move(fn)](BeastExchange& self) mutable {
      if (self.gone_) {
        fn();
        return;
      }
      self.on_gone_.push_back(std::move(fn));
    });
  }

 private:
  beast::tcp_stream& tcp() { return beast::get_lowest_layer(stream_); }

  template <typename F>
  void post(F f) {
    net::post(stream_.get_executor(), [self = shared_from_this(), f = std::move(f)]() mutable { f(*self); });
  }

  std::string status_line(int status) const {
    auto reason = beast::http::obsolete_reason(static_cast<beast::http::status>(status));
    return (version_ >= 11 ? "HTTP/1.1 " : "HTTP/1.0 ") + std::to_string(status) + " " + std::string(reason) +
           "\r\nServer: latentd/" LATENT_VERSION "\r\n" + extra_headers_;
  }

  void enqueue(std::string bytes) {
    if (gone_) return;
    queued_ += bytes.size();
    outbox_.push_back(std::move(bytes));
    if (queued_ > max_queued_) {
      LATENT_LOG_WARN("http: client reads too slowly (%zu bytes queued); dropping it", queued_);
      lose_client();
    }
  }

  void pump() {
    if (writing_ || gone_) return;
    if (outbox_.empty()) {
      if (finished_) complete();
      return;
    }
    writing_ = true;
    net::async_write(stream_, net::buffer(outbox_.front()),
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       self->writing_ = false;
                       if (self->gone_) {
                         self->outbox_.clear();
                         return;
                       }
                       if (ec) {
                         LATENT_LOG_DEBUG("http write: %s", ec.message().c_str());
                         self->lose_client();
                         return;
                       }
                       self->queued_ -= self->outbox_.front().size();
                       self->outbox_.pop_front();
                       self->pump();
                     });
  }

  // A pending read: EOF or an error means the client left; data is a pipelined request, kept for later.
  void watch() {
    if (gone_ || completed_) return;
    watching_ = true;
    stream_.async_read_some(buffer_.prepare(4096), [self = shared_from_this()](beast::error_code ec, size_t n) {
      self->watching_ = false;
      if (!ec) {
        self->buffer_.commit(n);  // the next request already; stop watching, the session parses it later
      } else if (ec != net::error::operation_aborted) {
        LATENT_LOG_DEBUG("http: client left during a response (%s)", ec.message().c_str());
        self->lose_client();
      }
      if (self->completed_ && !self->handed_back_) self->hand_back();
    });
  }

  void lose_client() {
    if (gone_) return;
    gone_ = true;
    // An async_write in flight still points into the front string: keep it until its handler runs.
    while (outbox_.size() > (writing_ ? 1u : 0u)) outbox_.pop_back();
    queued_ = 0;
    beast::error_code ignored;
    tcp().socket().shutdown(net::ip::tcp::socket::shutdown_both, ignored);
    tcp().socket().close(ignored);
    for (auto& fn : on_gone_) fn();
    on_gone_.clear();
    if (!handed_back_) {
      handed_back_ = true;
      done_(false);
    }
  }

  // Everything written: give the connection back once the watching read has stopped.
  void complete() {
    if (completed_) return;
    completed_ = true;
    on_gone_.clear();  // the response is whole; a later close is not a disconnect mid-response
    if (!keep_alive_) {
      beast::error_code ignored;
      tcp().socket().shutdown(net::ip::tcp::socket::shutdown_send, ignored);
      handed_back_ = true;
      done_(false);
      return;
    }
    if (watching_) {
      beast::error_code ignored;
      tcp().socket().cancel(ignored);  // the read handler hands back
      return;
    }
    hand_back();
  }

  void hand_back() {
    handed_back_ = true;
    done_(!gone_);
  }

  Stream& stream_;
  beast::flat_buffer& buffer_;
  unsigned version_;
  bool keep_alive_;
  std::shared_ptr<void> owner_;  // keeps the session (and so stream_ and buffer_) alive
  std::function<void(bool)> done_;
  size_t max_queued_;
  const std::string extra_headers_;  // "Name: value\r\n" lines, after Server
  // Strand-only state.
  std::deque<std::string> outbox_;
  size_t queued_ = 0;
  std::vector<std::function<void()>> on_gone_;
  bool started_ = false, chunked_ = false, finished_ = false, writing_ = false, watching_ = false;
  bool gone_ = false, completed_ = false, handed_back_ = false;
};

template <class Stream>
std::shared_ptr<HttpExchange> make(Stream& stream, beast::flat_buffer& buffer, unsigned http_version,
                                   bool keep_alive, std::shared_ptr<void> owner, std::function<void(bool)> done,
                                   size_t max_queued_bytes, std::string extra_headers) {
  auto ex = std::make_shared<BeastExchange<Stream>>(stream, buffer, http_version, keep_alive, std::move(owner),
                                                    std::move(done), max_queued_bytes, std::move(extra_headers));
  ex->start();
  return ex;
}

}  // namespace

std::shared_ptr<HttpExchange> make_beast_exchange(beast::tcp_stream& stream, beast::flat_buffer& buffer,
                                                  unsigned http_version, bool keep_alive,
                                                  std::shared_ptr<void> owner, std::function<void(bool)> done,
                                                  size_t max_queued_bytes, std::string extra_headers) {
  return make(stream, buffer, http_version, keep_alive, std::move(owner), std::move(done), max_queued_bytes,
              std::move(extra_headers));
}

std::shared_ptr<HttpExchange> make_beast_exchange(beast::ssl_stream<beast::tcp_stream>& stream,
                                                  beast::flat_buffer& buffer, unsigned http_version, bool keep_alive,
                                                  std::shared_ptr<void> owner, std::function<void(bool)> done,
                                                  size_t max_queued_bytes, std::string extra_headers) {
  return make(stream, buffer, http_version, keep_alive, std::move(owner), std::move(done), max_queued_bytes,
              std::move(extra_headers));
}

}  // namespace latent::openai
