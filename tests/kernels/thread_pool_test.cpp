#include "kernels/cpu/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

namespace latent::cpu {
namespace {

TEST(ThreadPool, ParallelForCoversEachIndexOnce) {
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.size(), threads);
    for (int64_t n : {0, 1, 2, 5, 100, 1001}) {
      for (int64_t grain : {0, 1, 3, 64, 5000}) {
        std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
        pool.parallel_for(n, grain, [&](int64_t b, int64_t e) {
          ASSERT_LE(0, b);
          ASSERT_LT(b, e);
          ASSERT_LE(e, n);
          if (grain > 0) {
            ASSERT_LE(e - b, grain);
          }
          for (int64_t i = b; i < e; ++i) hits[i].fetch_add(1);
        });
        for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << "threads=" << threads << " n=" << n << " i=" << i;
      }
    }
  }
}

TEST(ThreadPool, UsesSeveralThreads) {
  ThreadPool pool(2);
  std::mutex mu;
  std::condition_variable cv;
  std::set<std::thread::id> ids;
  // Every chunk waits until two distinct threads have run a chunk: the job can only finish if the pool really
  // hands chunks to a second thread, however late the scheduler wakes it (the bound only turns a hang into a
  // failure).
  pool.parallel_for(8, 1, [&](int64_t, int64_t) {
    std::unique_lock<std::mutex> l(mu);
    ids.insert(std::this_thread::get_id());
    cv.notify_all();
    cv.wait_for(l, std::chrono::seconds(120), [&] { return ids.size() >= 2; });
  });
  EXPECT_EQ(ids.size(), 2u);
}

TEST(ThreadPool, RunOnAllGivesEveryIndex) {
  ThreadPool pool(3);
  std::vector<std::atomic<int>> seen(3);
  pool.run_on_all([&](int i, int n) {
    EXPECT_EQ(n, 3);
    seen[i].fetch_add(1);
  });
  for (auto& s : seen) EXPECT_EQ(s.load(), 1);
}

TEST(ThreadPool, NestedCallsRunInline) {
  ThreadPool pool(2);
  std::atomic<int64_t> total{0};
  pool.parallel_for(4, 1, [&](int64_t b, int64_t e) {
    pool.parallel_for(10, 2, [&](int64_t b2, int64_t e2) { total += (e2 - b2) * (e - b); });
  });
  EXPECT_EQ(total.load(), 40);
}

TEST(ThreadPool, ConcurrentCallersAreSerialized) {
  ThreadPool pool(2);
  std::atomic<int64_t> sum{0};
  auto caller = [&] {
    for (int k = 0; k < 200; ++k) pool.parallel_for(100, 7, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) sum += i;
    });
  };
  std::thread a(caller), b(caller);
  a.join();
  b.join();
  EXPECT_EQ(sum.load(), 2 * 200 * 4950);
}

TEST(ThreadPool, ManySmallJobsAfterIdle) {
  ThreadPool pool(2);
  std::this_thread::sleep_for(std::chrono::milliseconds(5));  // workers have gone to sleep
  int64_t count = 0;
  std::atomic<int64_t> c{0};
  for (int k = 0; k < 5000; ++k) {
    pool.parallel_for(2, 1, [&](int64_t b, int64_t e) { c += e - b; });
    count += 2;
  }
  EXPECT_EQ(c.load(), count);
}

// Back-to-back jobs of different shapes: a worker arriving late from one job must never run a chunk of the next
// with the old job's bookkeeping (each index of every job exactly once).
TEST(ThreadPool, BackToBackJobsOfDifferentShapes) {
  for (int threads : {2, 3, 8}) {  // 8 threads on few cores: workers are preempted mid-claim
    ThreadPool pool(threads);
    std::vector<std::atomic<int>> hits(64);
    for (int job = 0; job < 20000; ++job) {
      const int64_t n = 1 + (job * 7) % 64, grain = 1 + (job * 3) % 5;
      for (int64_t i = 0; i < n; ++i) hits[i].store(0, std::memory_order_relaxed);
      pool.parallel_for(n, grain, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) hits[i].fetch_add(1, std::memory_order_relaxed);
      });
      for (int64_t i = 0; i < n; ++i) {
        ASSERT_EQ(hits[i].load(), 1) << "threads=" << threads << " job " << job << " n=" << n << " grain=" << grain
                                     << " i=" << i;
      }
    }
  }
}

TEST(ThreadPool, GlobalPoolHonorsDefault) {
  EXPECT_GE(ThreadPool::default_threads(), 1);
  EXPECT_EQ(ThreadPool::global().size(), ThreadPool::default_threads());
}

}  // namespace
}  // namespace latent::cpu
