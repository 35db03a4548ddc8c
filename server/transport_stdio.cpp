#include "server/transport_stdio.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "kernels/base/log.h"

namespace latent::server {

Result<std::optional<std::string>> ContentLengthFramer::next() {
  if (skip_ > 0) {
    size_t n = std::min(skip_, buf_.size());
    buf_.erase(0, n);
    skip_ -= n;
    if (skip_ > 0) return std::optional<std::string>();
  }
  size_t end = buf_.find("\r\n\r\n");
  if (end == std::string::npos) {
    if (buf_.size() > 64 * 1024) {  // no header terminator in 64 KiB: garbage
      buf_.clear();
      return make_error(ErrorCode::kCorrupt, "expected a 'Content-Length: N' header block, found 64 KiB without one");
    }
    return std::optional<std::string>();
  }
  std::string_view headers(buf_.data(), end);
  std::optional<size_t> length;
  size_t pos = 0;
  while (pos <= headers.size()) {
    size_t eol = headers.find("\r\n", pos);
    std::string_view line = headers.substr(pos, eol == std::string_view::npos ? std::string_view::npos : eol - pos);
    pos = eol == std::string_view::npos ? headers.size() + 1 : eol + 2;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string name(line.substr(0, colon));
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (name != "content-length") continue;
    std::string_view v = line.substr(colon + 1);
    while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
    size_t n = 0;
    bool ok = !v.empty() && v.size() <= 18;
    for (char c : v) {
      if (c < '0' || c > '9') {
        ok = false;
        break;
      }
      n = n * 10 + static_cast<size_t>(c - '0');
    }
    if (ok) length = n;
  }
  if (!length) {
    std::string shown(headers.substr(0, 80));
    buf_.erase(0, end + 4);
    return make_error(ErrorCode::kCorrupt, "expected a 'Content-Length: N' header, found '" + shown + "'");
  }
  if (*length > max_) {
    buf_.erase(0, end + 4);
    skip_ = *length;
    size_t n = std::min(skip_, buf_.size());
    buf_.erase(0, n);
    skip_ -= n;
    return make_error(ErrorCode::kResourceExhausted, "message too large: expected at most " + std::to_string(max_) +
                                                         " bytes, found Content-Length " + std::to_string(*length));
  }
  if (buf_.size() < end + 4 + *length) return std::optional<std::string>();
  std::string body = buf_.substr(end + 4, *length);
  buf_.erase(0, end + 4 + *length);
  return std::optional<std::string>(std::move(body));
}

std::string frame_message(std::string_view body) {
  std::string out = "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n";
  out.append(body);
  return out;
}

StdioTransport::StdioTransport(int in_fd, int out_fd, size_t max_message_bytes, size_t max_queued_bytes)
    : in_fd_(in_fd), out_fd_(out_fd), framer_(max_message_bytes), max_queued_bytes_(max_queued_bytes) {
  writer_ = std::thread([this] { writer(); });
}

StdioTransport::~StdioTransport() {
  {
    std::lock_guard<std::mutex> lock(write_mu_);
    stop_ = true;
    write_cv_.notify_all();
  }
  writer_.join();
}

Result<std::optional<std::string>> StdioTransport::read_message() {
  for (;;) {
    auto msg = framer_.next();
    if (!msg.ok() || msg->has_value()) return msg;
    if (eof_) return std::optional<std::string>();
    char buf[65536];
    ssize_t n = ::read(in_fd_, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return make_error(ErrorCode::kIo, std::string("read stdin: ") + std::strerror(errno));
    }
    if (n == 0) {
      eof_ = true;
      if (framer_.buffered() > 0) LATENT_LOG_WARN("stdin closed inside a message (%zu bytes dropped)", framer_.buffered());
      return std::optional<std::string>();
    }
    framer_.feed(std::string_view(buf, static_cast<size_t>(n)));
  }
}

void StdioTransport::write_message(std::string text) {
  std::string framed = frame_message(text);
  std::lock_guard<std::mutex> lock(write_mu_);
  if (queued_bytes_ + framed.size() > max_queued_bytes_) {
    LATENT_LOG_ERROR("stdout: the client is not reading (%zu bytes queued); message dropped", queued_bytes_);
    return;
  }
  queued_bytes_ += framed.size();
  queue_.push_back(std::move(framed));
  write_cv_.notify_all();
}

void StdioTransport::writer() {
  std::unique_lock<std::mutex> lock(write_mu_);
  for (;;) {
    write_cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and everything is written
    std::string msg = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    size_t off = 0;
    bool failed = false;
    while (off < msg.size()) {
      ssize_t n = ::write(out_fd_, msg.data() + off, msg.size() - off);
      if (n < 0) {
        if (errno == EINTR) continue;
        LATENT_LOG_ERROR("write stdout: %s", std::strerror(errno));
        failed = true;
        break;
      }
      off += static_cast<size_t>(n);
    }
    lock.lock();
    queued_bytes_ -= msg.size();
    if (failed) {  // the client is gone: drop the rest
      queue_.clear();
      queued_bytes_ = 0;
    }
  }
}

}  // namespace latent::server
