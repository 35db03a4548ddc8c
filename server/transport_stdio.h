#pragma once
// The LSP base protocol over a pair of file descriptors (stdin/stdout): "Content-Length: N\r\n\r\n" + N bytes
// of JSON. The framer is separate so that it can be tested on byte streams split anywhere.
#include <mutex>
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

class StdioTransport : public lsp::MessageTransport {
 public:
  StdioTransport(int in_fd, int out_fd, size_t max_message_bytes);

 protected:
  Result<std::optional<std::string>> read_message() override;
  void write_message(std::string text) override;

 private:
  int in_fd_, out_fd_;
  ContentLengthFramer framer_;
  std::mutex write_mu_;
  bool eof_ = false;
};

}  // namespace latent::server
