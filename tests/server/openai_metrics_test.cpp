// MetricsRegistry: Prometheus text exposition of counters, gauges and histograms.
#include "server/metrics.h"

#include <gtest/gtest.h>

#include <thread>

namespace latent {
namespace {

TEST(OpenaiMetrics, CountersGaugesAndLabelsRender) {
  MetricsRegistry reg;
  reg.counter("latent_http_requests_total", "HTTP requests", {{"endpoint", "/v1/models"}, {"status", "200"}}).inc();
  reg.counter("latent_http_requests_total", "HTTP requests", {{"endpoint", "/v1/models"}, {"status", "200"}}).inc(2);
  reg.counter("latent_http_requests_total", "HTTP requests", {{"endpoint", "/infill"}, {"status", "400"}}).inc();
  reg.gauge("latent_requests_running", "running").set(3);
  std::string text = reg.render();
  EXPECT_EQ(text,
            "# HELP latent_http_requests_total HTTP requests\n"
            "# TYPE latent_http_requests_total counter\n"
            "latent_http_requests_total{endpoint=\"/infill\",status=\"400\"} 1\n"
            "latent_http_requests_total{endpoint=\"/v1/models\",status=\"200\"} 3\n"
            "# HELP latent_requests_running running\n"
            "# TYPE latent_requests_running gauge\n"
            "latent_requests_running 3\n");
}

TEST(OpenaiMetrics, HistogramBucketsAreCumulativeWithInf) {
  MetricsRegistry reg;
  auto& h = reg.histogram("latent_ttft_seconds", "ttft", {0.01, 0.1, 1});
  for (double v : {0.005, 0.01, 0.05, 0.5, 7.0}) h.observe(v);
  std::string text = reg.render();
  EXPECT_NE(text.find("# TYPE latent_ttft_seconds histogram\n"), std::string::npos);
  EXPECT_NE(text.find("latent_ttft_seconds_bucket{le=\"0.01\"} 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("latent_ttft_seconds_bucket{le=\"0.1\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("latent_ttft_seconds_bucket{le=\"1\"} 4\n"), std::string::npos);
  EXPECT_NE(text.find("latent_ttft_seconds_bucket{le=\"+Inf\"} 5\n"), std::string::npos);
  EXPECT_NE(text.find("latent_ttft_seconds_sum 7.56"), std::string::npos) << text;
  EXPECT_NEAR(h.sum(), 7.565, 1e-12);
  EXPECT_NE(text.find("latent_ttft_seconds_count 5\n"), std::string::npos);
}

TEST(OpenaiMetrics, LabelValuesAreEscapedAndCollectorsRun) {
  MetricsRegistry reg;
  reg.counter("x_total", "x", {{"path", "a\"b\\c\nd"}}).inc();
  int calls = 0;
  reg.add_collector([&](MetricsRegistry& r) { r.gauge("y", "y").set(++calls); });
  std::string text = reg.render();
  EXPECT_NE(text.find("x_total{path=\"a\\\"b\\\\c\\nd\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("y 1\n"), std::string::npos);
  EXPECT_NE(reg.render().find("y 2\n"), std::string::npos);
}

TEST(OpenaiMetrics, ConcurrentIncrementsAreNotLost) {
  MetricsRegistry reg;
  auto& c = reg.counter("c_total", "c");
  auto& h = reg.histogram("h", "h", kLatencyBuckets);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        c.inc();
        h.observe(0.002);
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(c.value(), 40000);
  EXPECT_EQ(h.count(), 40000u);
  EXPECT_EQ(h.cumulative(1), 40000u);  // 0.002 <= 0.0025
  EXPECT_EQ(h.cumulative(0), 0u);
}

}  // namespace
}  // namespace latent
