#pragma once
// The LSP base protocol over a pair of file descriptors (stdin/stdout): "Content-Length: N\r\n\r\n" + N bytes
// of JSON. The framer is separate so that it can be tested on byte streams split anywhere.
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <optional>
#include <string>
#include <string_view>

#include "kernels/base/result.h"
#include "lsp/json_rpc.h"

namespace latent::server {

class ContentLengthFramer {
 public:
  explicit ContentLengthFramer(size_t max_message_bytes) : max_(max_message_bytes) {}
  void feed(std::string_view bytes) { buf_.append(bytes); }
  // The next whole message; nullopt when more bytes are needed. Errors: kCorrupt for a header block without a
  // valid Content-Length (skipped), kResourceExhausted for a message over the limit (its body is skipped as it
  // arrives). After an error, call next() again.
  Result<std::optional<std::string>> next();
  size_t buffered() const { return buf_.size(); }

 private:
  size_t max_;
  std::string buf_;
  size_t skip_ = 0;  // bytes of an oversized body still to drop
};

std::string frame_message(std::string_view body);

// Writes go through a queue to a writer thread, so that a client slow to read never blocks the engine thread
// that streams completions (its callbacks must not block). The queue is bounded (max_queued_bytes); past it,
// messages are dropped with an error in the log: a client that far behind is not reading at all.
class StdioTransport : public lsp::MessageTransport {
 public:
  StdioTransport(int in_fd, int out_fd, size_t max_message_bytes, size_t max_queued_bytes = size_t(64) << 20);
  ~StdioTransport() override;  // writes out what is queued, then stops the writer

 protected:
  Result<std::optional<std::string>> read_message() override;
  void write_message(std::string text) override;

 private:
  void writer();

  int in_fd_, out_fd_;
  ContentLengthFramer framer_;
  bool eof_ = false;
  size_t max_queued_bytes_;
  std::mutex write_mu_;
  std::condition_variable write_cv_;
  std::deque<std::string> queue_;
  size_t queued_bytes_ = 0;
  bool stop_ = false;
  std::thread writer_;
};

}  // namespace latent::server
