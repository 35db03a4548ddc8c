#include "server/quota.h"

#include <algorithm>
#include <cmath>

namespace latent::server {

UserQuotas::UserQuotas(QuotaLimits limits, Clock clock) : limits_(limits), clock_(std::move(clock)) {
  if (!clock_) clock_ = [] { return std::chrono::steady_clock::now(); };
}

UserQuotas::Buckets& UserQuotas::refill(const std::string& user) {
  const auto now = clock_();
  auto [it, fresh] = users_.try_emplace(user);
  Buckets& b = it->second;
  if (fresh) {
    b.requests = limits_.requests_per_minute;  // a new user starts with a full minute's worth
    b.tokens = limits_.tokens_per_minute;
  } else {
    const double s = std::chrono::duration<double>(now - b.at).count();
    b.requests = std::min(limits_.requests_per_minute, b.requests + s * limits_.requests_per_minute / 60.0);
    b.tokens = std::min(limits_.tokens_per_minute, b.tokens + s * limits_.tokens_per_minute / 60.0);
  }
  b.at = now;
  return b;
}

std::optional<int> UserQuotas::admit(const std::string& user) {
  if (!limits_.any() || user.empty()) return std::nullopt;
  std::lock_guard<std::mutex> lock(mu_);
  Buckets& b = refill(user);
  double wait = 0;
  if (limits_.requests_per_minute > 0 && b.requests < 1) {
    wait = std::max(wait, (1 - b.requests) * 60.0 / limits_.requests_per_minute);
  }
  if (limits_.tokens_per_minute > 0 && b.tokens <= 0) {
    // Back above zero: one token more than the debt.
    wait = std::max(wait, (1 - b.tokens) * 60.0 / limits_.tokens_per_minute);
  }
  if (wait > 0) return std::max(1, static_cast<int>(std::ceil(wait)));
  if (limits_.requests_per_minute > 0) b.requests -= 1;
  return std::nullopt;
}

void UserQuotas::charge_tokens(const std::string& user, int64_t tokens) {
  if (limits_.tokens_per_minute <= 0 || user.empty() || tokens <= 0) return;
  std::lock_guard<std::mutex> lock(mu_);
  refill(user).tokens -= static_cast<double>(tokens);
}

}  // namespace latent::server
