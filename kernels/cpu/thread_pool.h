#pragma once
// A small fork-join pool for the CPU ops: one pool sized to the machine, `parallel_for` over index ranges.
//
// Thread-safety: `parallel_for` may be called from any thread; concurrent callers are serialized (one job runs
// at a time), and a call made from inside a job (nested) runs inline on the calling thread. Workers spin
// briefly after each job (decode issues hundreds of small jobs per token) and then sleep on a futex, so an idle
// pool costs no CPU.
#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace latent::cpu {

class ThreadPool {
 public:
  // n_threads counts the calling thread: ThreadPool(1) starts no worker and runs everything inline.
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Calls fn(begin, end) over disjoint chunks covering [0, n); chunks hold `grain` indices (the last may be
  // shorter) and are claimed dynamically, so a thread slowed by another process does not hold the others up.
  // grain <= 0 picks ceil(n / size()), i.e. one contiguous chunk per thread. Returns when all chunks are done.
  void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t begin, int64_t end)>& fn);

  // Calls fn(thread_index, size()) once on each thread of the pool (index 0 is the caller).
  void run_on_all(const std::function<void(int thread_index, int n_threads)>& fn);

  // The process-wide pool the ops use when given none: LATENT_THREADS threads if set, else one per CPU
  // this process may run on (sched_getaffinity).
  static ThreadPool& global();
  static int default_threads();

 private:
  struct Job {
    const std::function<void(int64_t, int64_t)>* range_fn = nullptr;
    const std::function<void(int, int)>* all_fn = nullptr;
    int64_t n = 0;
    int64_t grain = 1;
  };
  void worker_main(int index);
  void run_job(int index);
  void dispatch(const Job& job);

  int n_threads_;
  std::vector<std::thread> workers_;
  std::mutex call_mutex_;             // one job at a time
  Job job_;                           // written by the caller before generation_ is bumped
  std::atomic<int64_t> next_{0};      // next unclaimed index of a range job
  std::atomic<uint32_t> generation_{0};
  std::atomic<int> pending_{0};       // workers still inside the current job
  std::atomic<bool> stop_{false};
};

}  // namespace latent::cpu
