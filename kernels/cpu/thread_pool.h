#pragma once
// A small fork-join pool for the CPU ops: one pool sized to the machine, `parallel_for` over index ranges.
//
// Thread-safety: `parallel_for` may be called from any thread; concurrent callers are serialized (one job runs
// at a time), and a call made from inside a job (nested) runs inline on the calling thread. Workers spin
// briefly after each job (decode issues hundreds of small jobs per token) and then sleep on a futex, so an idle
// pool costs no CPU.
//
// Chunks are claimed from one atomic word holding (job number, chunk count, next chunk), and the caller waits only for
// chunks that were claimed: a worker that the OS has not scheduled yet (a busy, shared machine) never holds a
// job up; when it wakes it finds the job exhausted, or joins the next one.
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

  // Calls fn(i, size()) once for each i in [0, size()), in parallel as far as the threads are free (a late
  // thread's index may run on another one).
  void run_on_all(const std::function<void(int index, int n_threads)>& fn);

  // The process-wide pool the ops use when given none: LATENT_THREADS threads if set, else one per CPU
  // this process may run on (sched_getaffinity).
  static ThreadPool& global();
  static int default_threads();
  // Whether the calling thread is running a chunk of a job: its own parallel_for calls then run inline, in order.
  static bool inside_job();

 private:
  void worker_main();
  void work();  // claims and runs chunks of the current job until none is left

  int n_threads_;
  std::vector<std::thread> workers_;
  std::mutex call_mutex_;  // one job at a time
  uint32_t job_seq_ = 0;   // caller side, under call_mutex_
  // The current job; read by a worker only after it claimed one of its chunks (atomics for the formal race
  // with the next job's publication, which cannot overlap a claimed chunk).
  std::atomic<const std::function<void(int64_t, int64_t)>*> fn_{nullptr};
  std::atomic<int64_t> n_{0}, grain_{1};
  std::atomic<uint64_t> claim_{0};  // job_seq (24 bits) | chunk count (20) | next chunk (20)
  std::atomic<int64_t> done_{0};    // chunks of the current job finished
  std::atomic<uint32_t> generation_{0};  // bumped per job: wakes sleeping workers
  std::atomic<bool> stop_{false};
};

}  // namespace latent::cpu
