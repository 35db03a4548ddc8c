#pragma once
// Metrics: counters, gauges and histograms, rendered in Prometheus' text exposition format (version 0.0.4)
// for GET /metrics.
//
//   auto& reqs = registry.counter("latent_http_requests_total", "HTTP requests served",
//                                 {{"endpoint", "/v1/completions"}, {"status", "200"}});
//   reqs.inc();
//   registry.histogram("latent_time_to_first_token_seconds", "...", kLatencyBuckets).observe(0.042);
//
// A family (one name) has one help text, one type and any number of series (label sets). Lookups return
// references that stay valid for the registry's lifetime, so hot paths keep them and only touch atomics.
// Collectors run at the start of render() to refresh gauges from state owned elsewhere (the engine's
// snapshot).
// Thread-safety: everything may be called from any thread; updates are lock-free, lookups and render() lock.
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace latent {

using MetricLabels = std::vector<std::pair<std::string, std::string>>;

class Counter {
 public:
  void inc(double v = 1.0);
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

class Gauge {
 public:
  void set(double v) { value_.store(v, std::memory_order_relaxed); }
  void add(double v);
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);  // ascending; +Inf is implicit
  void observe(double v);
  const std::vector<double>& upper_bounds() const { return bounds_; }
  // Cumulative count of observations <= upper_bounds()[i] (i == size(): all).
  uint64_t cumulative(size_t i) const;
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  double sum() const { return sum_.load(std::memory_order_relaxed); }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // per bucket (not cumulative), plus one for +Inf
  std::atomic<uint64_t> count_{0};
  std::atomic<double> sum_{0.0};
};

// Seconds: 1 ms .. 60 s, for latencies.
extern const std::vector<double> kLatencyBuckets;
// Seconds: 0.5 ms .. 2 s, for per-token times.
extern const std::vector<double> kTokenTimeBuckets;

class MetricsRegistry {
 public:
  Counter& counter(const std::string& name, const std::string& help, const MetricLabels& labels = {});
  Gauge& gauge(const std::string& name, const std::string& help, const MetricLabels& labels = {});
  Histogram& histogram(const std::string& name, const std::string& help, const std::vector<double>& bounds,
                       const MetricLabels& labels = {});

  void add_collector(std::function<void(MetricsRegistry&)> collector);

  // The whole registry in Prometheus text format, families sorted by name.
  std::string render();

 private:
  enum class Type { kCounter, kGauge, kHistogram };
  struct Family {
    Type type;
    std::string help;
    std::map<MetricLabels, std::unique_ptr<Counter>> counters;
    std::map<MetricLabels, std::unique_ptr<Gauge>> gauges;
    std::map<MetricLabels, std::unique_ptr<Histogram>> histograms;
  };
  Family& family(const std::string& name, const std::string& help, Type type);

  std::mutex mu_;
  std::map<std::string, Family> families_;
  std::vector<std::function<void(MetricsRegistry&)>> collectors_;
};

// "a\"b" -> a\"b with backslash, quote and newline escaped, as label values need.
std::string prometheus_escape(const std::string& value);

}  // namespace latent
