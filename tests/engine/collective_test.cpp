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

// sub_group: two groups of two over a world of four (two pipeline stages of tp 2), each reducing, gathering and
// broadcasting on its own while the world's ranks also exchange point to point; sums in group order.
TEST(SubGroup, EachGroupReducesGathersAndBroadcastsInGroupOrder) {
  auto world = thread_group(4);
  std::vector<std::unique_ptr<Collective>> groups;
  for (int r = 0; r < 4; ++r) {
    auto g = sub_group(*world[static_cast<size_t>(r)], r < 2 ? std::vector<int>{0, 1} : std::vector<int>{2, 3});
    ASSERT_TRUE(g.ok()) << g.error().to_string();
    groups.push_back(std::move(*g));
  }
  const float v[4] = {1e8f, 1.f, -1e8f, 2.f};
  auto st = run_ranks(world, [&](Collective& w) -> Status {
    Collective& g = *groups[static_cast<size_t>(w.rank())];
    if (g.size() != 2 || g.rank() != w.rank() % 2) return make_error(ErrorCode::kInternal, "group rank");
    for (int iter = 0; iter < 20; ++iter) {
      float x[2] = {v[w.rank()], static_cast<float>(iter)};
      LATENT_RETURN_IF_ERROR(g.all_reduce_sum(x, 2));
      const float want = w.rank() < 2 ? v[0] + v[1] : v[2] + v[3];
      if (std::memcmp(&x[0], &want, 4) != 0 || x[1] != 2.f * iter) {
        return make_error(ErrorCode::kInternal, "all_reduce_sum: found " + std::to_string(x[0]));
      }
      const float mine = static_cast<float>(w.rank() * 10 + iter);
      float all[2] = {-1, -1};
      LATENT_RETURN_IF_ERROR(g.all_gather(&mine, 1, all));
      const int base = w.rank() / 2 * 2;
      if (all[0] != base * 10 + iter || all[1] != (base + 1) * 10 + iter) {
        return make_error(ErrorCode::kInternal, "all_gather: wrong rows");
      }
      int64_t word = g.rank() == 1 ? 100 * w.rank() + iter : -1;
      LATENT_RETURN_IF_ERROR(g.broadcast(&word, sizeof word, 1));
      if (word != 100 * (base + 1) + iter) return make_error(ErrorCode::kInternal, "broadcast: found " + std::to_string(word));
      // Stage to stage over the world, between the groups' traffic: 0 -> 2, 1 -> 3.
      int32_t h = w.rank() * 1000 + iter;
      if (w.rank() < 2) {
        LATENT_RETURN_IF_ERROR(w.send(&h, sizeof h, w.rank() + 2));
      } else {
        LATENT_RETURN_IF_ERROR(w.recv(&h, sizeof h, w.rank() - 2));
        if (h != (w.rank() - 2) * 1000 + iter) return make_error(ErrorCode::kInternal, "stage recv: found " + std::to_string(h));
      }
    }
    return g.barrier();
  });
  for (int r = 0; r < 4; ++r) EXPECT_TRUE(st[static_cast<size_t>(r)].ok()) << "rank " << r << ": " << st[static_cast<size_t>(r)].error().to_string();
  EXPECT_EQ(groups[0]->stats().all_reduce_bytes, 20 * 8);
}

TEST(SubGroup, MembersMustIncludeThisRankOnce) {
  auto world = thread_group(3);
  auto missing = sub_group(*world[0], {1, 2});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("rank 0 among the members"), std::string::npos) << missing.error().message;
  auto twice = sub_group(*world[0], {0, 1, 1});
  ASSERT_FALSE(twice.ok());
  EXPECT_NE(twice.error().message.find("distinct ranks"), std::string::npos) << twice.error().message;
}

}  // namespace
}  // namespace latent
