// UserQuotas against a manual clock: refusals and Retry-After follow the arithmetic, never the machine's speed.
#include "server/quota.h"

#include <gtest/gtest.h>

namespace latent::server {
namespace {

struct ManualClock {
  std::chrono::steady_clock::time_point t = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
  UserQuotas::Clock fn() {
    return [this] { return t; };
  }
  void advance(double seconds) { t += std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(seconds)); }
};

TEST(UserQuotas, RequestsPerMinuteRefuseWithRetryAfterAndRefill) {
  ManualClock clock;
  UserQuotas q(QuotaLimits{6, 0}, clock.fn());  // one request per 10 s, a burst of 6
  for (int i = 0; i < 6; ++i) EXPECT_FALSE(q.admit("ada").has_value()) << i;
  auto wait = q.admit("ada");
  ASSERT_TRUE(wait.has_value());
  EXPECT_EQ(*wait, 10);
  EXPECT_FALSE(q.admit("bob").has_value()) << "another user has a bucket of his own";
  clock.advance(9.5);
  EXPECT_EQ(q.admit("ada").value_or(0), 1);  // 0.95 of a request: half a second more, rounded up
  clock.advance(0.5);
  EXPECT_FALSE(q.admit("ada").has_value());
  EXPECT_TRUE(q.admit("ada").has_value());
  clock.advance(3600);
  for (int i = 0; i < 6; ++i) EXPECT_FALSE(q.admit("ada").has_value()) << "refilled up to a minute's worth";
  EXPECT_TRUE(q.admit("ada").has_value());
}

TEST(UserQuotas, TokensPerMinuteChargeAfterTheFactAndWaitOutTheDebt) {
  ManualClock clock;
  UserQuotas q(QuotaLimits{0, 600}, clock.fn());  // 10 tokens per second
  EXPECT_FALSE(q.admit("ada").has_value());
  q.charge_tokens("ada", 500);
  EXPECT_FALSE(q.admit("ada").has_value()) << "100 tokens left";
  q.charge_tokens("ada", 400);  // 300 in debt
  auto wait = q.admit("ada");
  ASSERT_TRUE(wait.has_value());
  EXPECT_EQ(*wait, 31);  // (300 + 1) tokens at 10 per second
  clock.advance(30.2);
  EXPECT_FALSE(q.admit("ada").has_value());
}

TEST(UserQuotas, NoLimitsNoRefusals) {
  UserQuotas q(QuotaLimits{});
  for (int i = 0; i < 1000; ++i) EXPECT_FALSE(q.admit("ada").has_value());
  q.charge_tokens("ada", 1 << 30);
  EXPECT_FALSE(q.admit("ada").has_value());
}

}  // namespace
}  // namespace latent::server
