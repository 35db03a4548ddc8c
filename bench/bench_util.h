#pragma once
// Shared by the benchmarks: the machine's name, a STREAM-like read-bandwidth probe, timers and peak RSS.
#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "kernels/cpu/thread_pool.h"

namespace latent::bench {

inline double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

inline std::string cpu_model_name() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      auto p = line.find(':');
      return p == std::string::npos ? line : line.substr(p + 2);
    }
  }
  return "unknown";
}

// CPU seconds (user + system) this process has used, all threads. On a shared, busy machine wall time
// understates what the code does; tokens / (cpu seconds / threads) estimates the rate on an idle machine
// (conservatively: spin-waits count as CPU time too).
inline double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// The 1-minute load average (how busy the machine was while a benchmark ran).
inline double load_average() {
  std::ifstream in("/proc/loadavg");
  double l = 0;
  in >> l;
  return l;
}

inline double peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;
}

// Reads a buffer much larger than the caches with every thread of `pool` (each sums its own contiguous
// share) and returns the best of `passes` in GB/s (1e9 bytes). The buffer is allocated and touched once.
class ReadBandwidth {
 public:
  explicit ReadBandwidth(size_t bytes) : words_(bytes / 8) {
    for (size_t i = 0; i < words_.size(); ++i) words_[i] = i * 0x9e3779b97f4a7c15ull;
  }
  double measure(cpu::ThreadPool& pool, int passes = 3) {
    double best = 0;
    for (int p = 0; p < passes; ++p) {
      std::atomic<uint64_t> sink{0};
      double t0 = now_s();
      pool.run_on_all([&](int i, int n) {
        size_t begin = words_.size() * i / n, end = words_.size() * (i + 1) / n;
        const uint64_t* w = words_.data();
        uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        size_t k = begin;
        for (; k + 4 <= end; k += 4) {
          s0 += w[k];
          s1 += w[k + 1];
          s2 += w[k + 2];
          s3 += w[k + 3];
        }
        for (; k < end; ++k) s0 += w[k];
        sink += s0 + s1 + s2 + s3;
      });
      double dt = now_s() - t0;
      best = std::max(best, static_cast<double>(words_.size() * 8) / dt / 1e9);
      checksum_ ^= sink.load();
    }
    return best;
  }
  uint64_t checksum() const { return checksum_; }

 private:
  std::vector<uint64_t> words_;
  uint64_t checksum_ = 0;
};

}  // namespace latent::bench
