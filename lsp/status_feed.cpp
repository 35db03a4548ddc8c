#include "lsp/status_feed.h"

namespace latent::lsp {

void StatusFeed::publish(Json status) {
  std::lock_guard<std::mutex> lock(mu_);
  current_ = std::move(status);
  for (const auto& [id, fn] : listeners_) fn(current_);
}

uint64_t StatusFeed::subscribe(Listener listener) {
  std::lock_guard<std::mutex> lock(mu_);
  const uint64_t id = next_id_++;
  listener(current_);
  listeners_.emplace(id, std::move(listener));
  return id;
}

void StatusFeed::unsubscribe(uint64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  listeners_.erase(id);
}

}  // namespace latent::lsp
