#include "kernels/base/result.h"

#include <gtest/gtest.h>

#include "kernels/base/log.h"

namespace latent {
namespace {

Result<int> parse_positive(int x) {
  if (x <= 0) return make_error(ErrorCode::kInvalidArgument, "expected > 0, found " + std::to_string(x));
  return x;
}

Result<int> twice(int x) {
  LATENT_ASSIGN_OR_RETURN(int v, parse_positive(x));
  return 2 * v;
}

TEST(Result, ValueAndErrorPropagate) {
  auto ok = twice(4);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, 8);
  auto bad = twice(-1);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(bad.error().message, "expected > 0, found -1");
  EXPECT_EQ(bad.error().to_string(), "invalid argument: expected > 0, found -1");
}

TEST(Log, SinkReceivesLinesAtOrAboveLevel) {
  std::vector<std::string> lines;
  set_log_sink([&](LogLevel, const std::string& s) { lines.push_back(s); });
  LogLevel old = log_level();
  set_log_level(LogLevel::kWarn);
  LATENT_LOG_INFO("hidden %d", 1);
  LATENT_LOG_WARN("shown %d", 2);
  set_log_level(old);
  set_log_sink(nullptr);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("shown 2"), std::string::npos);
}

}  // namespace
}  // namespace latent
