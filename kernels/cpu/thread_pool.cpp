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
constexpr auto kSpinTime = std::chrono::microseconds(200);

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
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { worker_main(i); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true);
  generation_.fetch_add(1, std::memory_order_release);
  generation_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::run_job(int index) {
  t_inside_job = true;
  if (job_.all_fn) {
    (*job_.all_fn)(index, n_threads_);
  } else {
    for (;;) {
      int64_t begin = next_.fetch_add(job_.grain, std::memory_order_relaxed);
      if (begin >= job_.n) break;
      (*job_.range_fn)(begin, std::min(job_.n, begin + job_.grain));
    }
  }
  t_inside_job = false;
}

void ThreadPool::worker_main(int index) {
  uint32_t seen = 0;
  for (;;) {
    // Spin, then sleep, until the generation moves on.
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
    run_job(index);
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) pending_.notify_one();
  }
}

void ThreadPool::dispatch(const Job& job) {
  if (n_threads_ == 1 || t_inside_job) {
    // Inline: no workers, or a nested call from inside a job (the workers are busy with the outer one).
    bool outer = t_inside_job;
    if (job.all_fn) {
      (*job.all_fn)(0, 1);
    } else {
      for (int64_t b = 0; b < job.n; b += job.grain) (*job.range_fn)(b, std::min(job.n, b + job.grain));
    }
    t_inside_job = outer;
    return;
  }
  std::lock_guard<std::mutex> lock(call_mutex_);
  job_ = job;
  next_.store(0, std::memory_order_relaxed);
  pending_.store(n_threads_ - 1, std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_release);
  generation_.notify_all();
  run_job(0);
  // Wait for the workers: spin first (they finish within microseconds of us), then sleep.
  int spins = 0;
  int p;
  while ((p = pending_.load(std::memory_order_acquire)) != 0) {
    if (++spins < 20000) {
      cpu_relax();
    } else {
      pending_.wait(p, std::memory_order_acquire);
    }
  }
}

void ThreadPool::parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  if (grain <= 0) grain = (n + n_threads_ - 1) / n_threads_;
  if (grain >= n) {  // one chunk: no need to wake anyone
    fn(0, n);
    return;
  }
  Job job;
  job.range_fn = &fn;
  job.n = n;
  job.grain = grain;
  dispatch(job);
}

void ThreadPool::run_on_all(const std::function<void(int, int)>& fn) {
  Job job;
  job.all_fn = &fn;
  dispatch(job);
}

}  // namespace latent::cpu
