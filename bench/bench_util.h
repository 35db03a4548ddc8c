#pragma once
// Shared by the benchmarks: the machine's name, a STREAM-like read-bandwidth probe, timers and peak RSS.
#include <immintrin.h>
#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
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

// The process's resident set now (VmRSS of /proc/self/status), MB; -1 where unreadable.
inline double rss_mb() {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return -1;
  char line[256];
  double kb = -1;
  while (std::fgets(line, sizeof line, f)) {
    if (std::sscanf(line, "VmRSS: %lf kB", &kb) == 1) break;
  }
  std::fclose(f);
  return kb < 0 ? -1 : kb / 1024.0;
}

inline double peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;
}

// Sums 64-bit words [begin, end) with 256-bit loads and 4 independent accumulators (so the loop is bound by
// memory, not by adds).
__attribute__((target("avx2"))) inline uint64_t sum_words_avx2(const uint64_t* w, size_t begin, size_t end) {
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  size_t k = begin;
  for (; k + 16 <= end; k += 16) {
    a0 = _mm256_add_epi64(a0, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + k)));
    a1 = _mm256_add_epi64(a1, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + k + 4)));
    a2 = _mm256_add_epi64(a2, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + k + 8)));
    a3 = _mm256_add_epi64(a3, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + k + 12)));
  }
  alignas(32) uint64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3)));
  uint64_t s = lanes[0] + lanes[1] + lanes[2] + lanes[3];
  for (; k < end; ++k) s += w[k];
  return s;
}

inline uint64_t sum_words(const uint64_t* w, size_t begin, size_t end) {
  if (__builtin_cpu_supports("avx2")) return sum_words_avx2(w, begin, end);
  uint64_t s0 = 0, s1 = 0;
  size_t k = begin;
  for (; k + 2 <= end; k += 2) {
    s0 += w[k];
    s1 += w[k + 1];
  }
  for (; k < end; ++k) s0 += w[k];
  return s0 + s1;
}

// STREAM-like read bandwidth: the pool's threads sum a buffer 8x the size of a large L3 in chunks claimed
// dynamically (as the ops do), in GB/s (1e9 bytes). Allocated and touched once.
class ReadBandwidth {
 public:
  explicit ReadBandwidth(size_t bytes = size_t{256} << 20) : words_(bytes / 8) {
    for (size_t i = 0; i < words_.size(); ++i) words_[i] = i * 0x9e3779b97f4a7c15ull;
  }
  // Mean GB/s over `passes` (total bytes / total time), the statistic the benchmarks compare against.
  double measure(cpu::ThreadPool& pool, int passes = 5) {
    double t = 0;
    for (int p = 0; p < passes; ++p) t += pass(pool);
    return static_cast<double>(bytes()) * passes / t / 1e9;
  }
  // One pass over the buffer; returns its seconds. Interleave passes with the measured work so that both
  // see the same machine (on a shared machine other processes come and go).
  double pass(cpu::ThreadPool& pool) {
    const int64_t chunks = 64;
    std::atomic<uint64_t> sink{0};
    double t0 = now_s();
    pool.parallel_for(chunks, 1, [&](int64_t c0, int64_t c1) {
      size_t begin = words_.size() * static_cast<size_t>(c0) / chunks;
      size_t end = words_.size() * static_cast<size_t>(c1) / chunks;
      sink += sum_words(words_.data(), begin, end);
    });
    double dt = now_s() - t0;
    checksum_ ^= sink.load();
    return dt;
  }
  size_t bytes() const { return words_.size() * 8; }
  uint64_t checksum() const { return checksum_; }

 private:
  std::vector<uint64_t> words_;
  uint64_t checksum_ = 0;
};

}  // namespace latent::bench
