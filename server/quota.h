#pragma once
// Per-user rate and token quotas (latentd --users with --requests-per-minute / --tokens-per-minute): a token
// bucket per user and kind, refilled continuously at limit/60 per second, holding at most one minute's worth.
// A generation request takes one request; its prompt + completion tokens are charged when it ends (so the
// token bucket may go below zero: the next request then waits until it is back above zero). A refusal says how
// many whole seconds to wait (HTTP 429 Retry-After).
// Thread-safety: every method may be called from any thread.
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>

namespace latent::server {

struct QuotaLimits {
  double requests_per_minute = 0;  // 0: no limit
  double tokens_per_minute = 0;    // 0: no limit
  bool any() const { return requests_per_minute > 0 || tokens_per_minute > 0; }
};

class UserQuotas {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;
  // `clock` empty: steady_clock::now (tests pass a manual one).
  explicit UserQuotas(QuotaLimits limits, Clock clock = {});
  // nullopt: go ahead (one request taken); else the seconds to wait (>= 1).
  std::optional<int> admit(const std::string& user);
  void charge_tokens(const std::string& user, int64_t tokens);

 private:
  struct Buckets {
    double requests = 0, tokens = 0;
    std::chrono::steady_clock::time_point at;
  };
  Buckets& refill(const std::string& user);

  QuotaLimits limits_;
  Clock clock_;
  std::mutex mu_;
  std::map<std::string, Buckets> users_;  // bounded by the users file
};

}  // namespace latent::server
