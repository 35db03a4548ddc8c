#include "lsp/transport_memory.h"

namespace latent::lsp {

void InMemoryTransport::client_send(std::string text) {
  std::lock_guard<std::mutex> lock(mu_);
  to_server_.push_back(std::move(text));
  cv_.notify_all();
}

std::optional<Json> InMemoryTransport::client_receive(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!cv_.wait_for(lock, timeout, [&] { return !to_client_.empty(); })) return std::nullopt;
  std::string text = std::move(to_client_.front());
  to_client_.pop_front();
  return Json::parse(text);
}

void InMemoryTransport::client_close() {
  std::lock_guard<std::mutex> lock(mu_);
  closed_ = true;
  cv_.notify_all();
}

Result<std::optional<std::string>> InMemoryTransport::read_message() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return closed_ || !to_server_.empty(); });
  if (to_server_.empty()) return std::optional<std::string>();
  std::string text = std::move(to_server_.front());
  to_server_.pop_front();
  return std::optional<std::string>(std::move(text));
}

void InMemoryTransport::write_message(std::string text) {
  std::lock_guard<std::mutex> lock(mu_);
  to_client_.push_back(std::move(text));
  cv_.notify_all();
}

}  // namespace latent::lsp
