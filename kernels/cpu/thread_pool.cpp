#include "kernels/cpu/thread_pool.h"

#include <sched.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <string>

#include "kernels/base/log.h"

namespace latent::cpu {
namespace {

thread_local bool t_inside_job = false;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// How long a worker spins for the next job before it sleeps: long enough to bridge the gap between two ops
// of one decode step, short enough not to burn a shared core when the engine is idle.
constexpr auto kSpinTime = std::chrono::microseconds(300);

}  // namespace

int ThreadPool::default_threads() {
  if (const char* env = std::getenv("LATENT_THREADS")) {
    int n = std::atoi(env);
    if (n >= 1) return n;
    LATENT_LOG_WARN("LATENT_THREADS=%s: expected a positive integer, using the CPU count", env);
  }
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

ThreadPool& ThreadPool::global() {
  static ThreadPool pool(default_threads());
  return pool;
}

ThreadPool::ThreadPool(int n_threads) : n_threads_(std::max(1, n_threads)) {
  workers_.reserve(n_threads_ - 1);
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this] { worker_main(); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true);
  generation_.fetch_add(1, std::memory_order_release);
  generation_.notify_all();
  for (auto& t : workers_) t.join();
}

// The claim word: job number (24 bits) | chunk count (20 bits) | next chunk (20 bits). Whether a job has chunks
// left is decided from the word alone; the job's fields are read only after a successful claim, when the job
// is certainly still running (the caller waits for the claimed chunk) and its fields cannot change.
namespace {
constexpr int kChunkBits = 20;
constexpr uint64_t kChunkMask = (uint64_t{1} << kChunkBits) - 1;
constexpr int64_t kMaxChunks = static_cast<int64_t>(kChunkMask);
uint64_t claim_word(uint32_t seq, int64_t chunks) {
  return (static_cast<uint64_t>(seq & 0xffffffu) << (2 * kChunkBits)) | (static_cast<uint64_t>(chunks) << kChunkBits);
}
}  // namespace

void ThreadPool::work() {
  t_inside_job = true;
  for (;;) {
    uint64_t v = claim_.load(std::memory_order_acquire);
    const int64_t next = static_cast<int64_t>(v & kChunkMask);
    const int64_t chunks = static_cast<int64_t>((v >> kChunkBits) & kChunkMask);
    if (next >= chunks) break;
    if (!claim_.compare_exchange_weak(v, v + 1, std::memory_order_acq_rel)) continue;
    const auto* fn = fn_.load(std::memory_order_relaxed);
    const int64_t n = n_.load(std::memory_order_relaxed), grain = grain_.load(std::memory_order_relaxed);
    const int64_t begin = next * grain;
    (*fn)(begin, std::min(n, begin + grain));
    done_.fetch_add(1, std::memory_order_release);
  }
  t_inside_job = false;
}

void ThreadPool::worker_main() {
  uint32_t seen = 0;  // generation_ starts at 0: a job or stop published before this thread ran is seen
  for (;;) {
    auto start = std::chrono::steady_clock::now();
    uint32_t g;
    int spins = 0;
    while ((g = generation_.load(std::memory_order_acquire)) == seen) {
      cpu_relax();
      if (++spins % 64 == 0 && std::chrono::steady_clock::now() - start > kSpinTime) {
        generation_.wait(seen, std::memory_order_acquire);
      }
    }
    seen = g;
    if (stop_.load()) return;
    work();
  }
}

bool ThreadPool::inside_job() { return t_inside_job; }

void ThreadPool::parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  if (grain <= 0) grain = (n + n_threads_ - 1) / n_threads_;
  grain = std::max(grain, (n + kMaxChunks - 1) / kMaxChunks);  // the chunk count must fit the claim word
  const int64_t chunks = (n + grain - 1) / grain;
  if (chunks == 1 || n_threads_ == 1 || t_inside_job) {
    // Inline: one chunk, no workers, or a nested call from inside a job (the workers are busy with it).
    for (int64_t b = 0; b < n; b += grain) fn(b, std::min(n, b + grain));
    return;
  }
  std::lock_guard<std::mutex> lock(call_mutex_);
  ++job_seq_;
  fn_.store(&fn, std::memory_order_relaxed);
  n_.store(n, std::memory_order_relaxed);
  grain_.store(grain, std::memory_order_relaxed);
  done_.store(0, std::memory_order_relaxed);
  claim_.store(claim_word(job_seq_, chunks), std::memory_order_release);
  generation_.fetch_add(1, std::memory_order_release);
  generation_.notify_all();
  work();
  // Wait for chunks other threads claimed: spin (they finish within microseconds), then yield the core.
  int spins = 0;
  while (done_.load(std::memory_order_acquire) < chunks) {
    if (++spins < 4000) {
      cpu_relax();
    } else {
      std::this_thread::yield();
    }
  }
}

void ThreadPool::run_on_all(const std::function<void(int, int)>& fn) {
  parallel_for(n_threads_, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) fn(static_cast<int>(i), n_threads_);
  });
}

}  // namespace latent::cpu
