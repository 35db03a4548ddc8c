#pragma once
// StatusFeed: the daemon's model state ({state: "loading" | "ready" | "error", progress?: 0..1, message?}),
// published by whoever loads the model and sent by every LspServer as the `latent/status` notification: the
// current value after `initialized`, then each change. Thread-safe; listeners run on the publisher's thread,
// under the feed's lock, so after unsubscribe() returns no call to that listener is in progress.
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>

#include "lsp/json_rpc.h"

namespace latent::lsp {

class StatusFeed {
 public:
  using Listener = std::function<void(const Json& status)>;
  explicit StatusFeed(Json initial = Json{{"state", "ready"}}) : current_(std::move(initial)) {}

  void publish(Json status);
  // Calls `listener` with the current status at once, then with every later one, in order.
  uint64_t subscribe(Listener listener);
  void unsubscribe(uint64_t id);

 private:
  std::mutex mu_;
  Json current_;
  uint64_t next_id_ = 1;
  std::map<uint64_t, Listener> listeners_;
};

}  // namespace latent::lsp
