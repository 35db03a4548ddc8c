// Collective's in-process body: every call on every rank, bit-identical reductions in rank order, and waits
// that end with an error naming the missing rank. (The MPI body runs the same checks under mpirun:
// tests/engine/multi_rank_cli_test.cpp.)
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <thread>

#include "engine/collective.h"

namespace latent {
namespace {

// Runs fn(comm) on one thread per rank and returns each rank's status.
std::vector<Status> run_ranks(std::vector<std::unique_ptr<Collective>>& comms,
                              const std::function<Status(Collective&)>& fn) {
  std::vector<Status> st(comms.size());
  std::vector<std::thread> threads;
  for (size_t r = 0; r < comms.size(); ++r) threads.emplace_back([&, r] { st[r] = fn(*comms[r]); });
  for (auto& t : threads) t.join();
  return st;
}

TEST(ThreadCollective, AllReduceAddsInRankOrderOnEveryRank) {
  constexpr int kRanks = 4;
  auto comms = thread_group(kRanks);
  // Values whose float sum depends on the order: (1e8 + 1) - 1e8 + 1 != 1e8 - 1e8 + 1 + 1.
  const float v[kRanks][3] = {{1e8f, 0.1f, 3.f}, {1.f, 0.2f, -7.f}, {-1e8f, 0.3f, 1e-7f}, {1.f, 0.4f, 2.f}};
  std::vector<std::vector<float>> out(kRanks);
  auto st = run_ranks(comms, [&](Collective& c) -> Status {
    for (int iter = 0; iter < 50; ++iter) {  // repeated calls reuse the rendezvous safely
      std::vector<float> d(v[c.rank()], v[c.rank()] + 3);
      LATENT_RETURN_IF_ERROR(c.all_reduce_sum(d.data(), 3));
      if (iter == 49) out[static_cast<size_t>(c.rank())] = d;
    }
    return Status::Ok();
  });
  for (int i = 0; i < 3; ++i) {
    float expect = v[0][i];
    for (int r = 1; r < kRanks; ++r) expect += v[r][i];
    for (int r = 0; r < kRanks; ++r) {
      ASSERT_TRUE(st[static_cast<size_t>(r)].ok()) << st[static_cast<size_t>(r)].error().to_string();
      EXPECT_EQ(std::memcmp(&out[static_cast<size_t>(r)][static_cast<size_t>(i)], &expect, 4), 0)
          << "rank " << r << " element " << i;
    }
  }
  EXPECT_EQ(out[0][0], 1.f);  // (1e8 + 1 - 1e8) + 1 in float: the rank order, not a sorted or tree order
  EXPECT_EQ(comms[0]->stats().all_reduce_bytes, 50 * 12);
}

TEST(ThreadCollective, AllGatherBroadcastSendRecvBarrier) {
  constexpr int kRanks = 3;
  auto comms = thread_group(kRanks);
  auto st = run_ranks(comms, [&](Collective& c) -> Status {
    const int r = c.rank(), n = c.size();
    for (int iter = 0; iter < 20; ++iter) {
      const float mine[2] = {static_cast<float>(r), static_cast<float>(iter)};
      std::vector<float> all(static_cast<size_t>(2 * n));
      LATENT_RETURN_IF_ERROR(c.all_gather(mine, 2, all.data()));
      for (int q = 0; q < n; ++q) {
        if (all[static_cast<size_t>(2 * q)] != q || all[static_cast<size_t>(2 * q + 1)] != iter) {
          return make_error(ErrorCode::kInternal, "all_gather: wrong row " + std::to_string(q));
        }
      }
      int64_t word = r == 1 ? 1000 + iter : -1;
      LATENT_RETURN_IF_ERROR(c.broadcast(&word, sizeof word, 1));
      if (word != 1000 + iter) return make_error(ErrorCode::kInternal, "broadcast: found " + std::to_string(word));
      // A ring: each rank sends to the next and receives from the previous.
      const int32_t out = r * 100 + iter;
      int32_t in = -1;
      LATENT_RETURN_IF_ERROR(c.send(&out, sizeof out, (r + 1) % n));
      LATENT_RETURN_IF_ERROR(c.recv(&in, sizeof in, (r + n - 1) % n));
      if (in != ((r + n - 1) % n) * 100 + iter) return make_error(ErrorCode::kInternal, "recv: found " + std::to_string(in));
      LATENT_RETURN_IF_ERROR(c.barrier());
    }
    return Status::Ok();
  });
  for (int r = 0; r < kRanks; ++r) EXPECT_TRUE(st[static_cast<size_t>(r)].ok()) << st[static_cast<size_t>(r)].error().to_string();
}

TEST(ThreadCollective, AWaitPastTheTimeoutNamesTheMissingRank) {
  auto comms = thread_group(3);
  comms[0]->set_timeout(std::chrono::milliseconds(100));
  comms[2]->set_timeout(std::chrono::milliseconds(-1));  // waits until the group is broken by rank 0's timeout
  // Ranks 0 and 2 arrive; rank 1 never does.
  std::vector<float> a(4, 1.f), b(4, 1.f);
  Status s2;
  std::thread t2([&] { s2 = comms[2]->all_reduce_sum(b.data(), 4); });
  Status s0 = comms[0]->all_reduce_sum(a.data(), 4);
  t2.join();
  ASSERT_FALSE(s0.ok());
  EXPECT_EQ(s0.error().code, ErrorCode::kResourceExhausted);
  EXPECT_NE(s0.error().message.find("rank 1 did not arrive"), std::string::npos) << s0.error().message;
  ASSERT_FALSE(s2.ok());  // the other waiter is released with the same reason, never left hanging
  EXPECT_NE(s2.error().message.find("rank 1 did not arrive"), std::string::npos) << s2.error().message;
  EXPECT_FALSE(comms[1]->barrier().ok());  // the group stays broken
}

TEST(ThreadCollective, RecvTimeoutNamesTheSender) {
  auto comms = thread_group(2);
  comms[1]->set_timeout(std::chrono::milliseconds(50));
  int32_t x = 0;
  Status s = comms[1]->recv(&x, 4, 0);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("rank 0 sent nothing"), std::string::npos) << s.error().message;
}

TEST(ThreadCollective, AbortReleasesAWaiterWithoutTimeout) {
  auto comms = thread_group(2);
  comms[0]->set_timeout(std::chrono::milliseconds(-1));
  Status s0;
  std::thread t([&] { s0 = comms[0]->barrier(); });
  comms[1]->abort("failed to load its shard");
  t.join();
  ASSERT_FALSE(s0.ok());
  EXPECT_NE(s0.error().message.find("rank 1 stopped: failed to load its shard"), std::string::npos) << s0.error().message;
}

TEST(ThreadCollective, BadPeersAreErrors) {
  auto comms = thread_group(2);
  int32_t x = 0;
  EXPECT_FALSE(comms[0]->send(&x, 4, 0).ok());
  EXPECT_FALSE(comms[0]->recv(&x, 4, 2).ok());
  EXPECT_FALSE(comms[0]->broadcast(&x, 4, 5).ok());
}

}  // namespace
}  // namespace latent
