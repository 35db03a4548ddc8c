#include "engine/prefix_cache.h"

#include <gtest/gtest.h>

#include <numeric>

namespace latent {
namespace {

std::vector<int32_t> iota_tokens(int n, int start = 0) {
  std::vector<int32_t> v(n);
  std::iota(v.begin(), v.end(), start);
  return v;
}

TEST(PrefixCache, MatchesFullBlocksAndThePartialTail) {
  KvCache cache(1, 2, 1, 8);
  PrefixCache pc(cache, 8);
  auto toks = iota_tokens(150);  // 2 full blocks + 22
  auto blocks = cache.allocate(3);
  ASSERT_TRUE(blocks.ok());
  pc.insert(toks, *blocks, 0);
  for (BlockId b : *blocks) (void)cache.unref(b);  // the tree keeps them alive
  EXPECT_EQ(pc.held_blocks(), 3);
  EXPECT_EQ(cache.free_count(), 5);

  auto m = pc.acquire(toks, 149);
  EXPECT_EQ(m.n_tokens, 149);
  EXPECT_EQ(m.blocks, *blocks);
  for (BlockId b : m.blocks) EXPECT_EQ(cache.ref_count(b), 2);
  for (BlockId b : m.blocks) (void)cache.unref(b);

  // Diverges inside the second block: one full block + the first 10 tokens of the next.
  auto other = toks;
  other[74] = 999;
  auto m2 = pc.acquire(other, 1000);
  EXPECT_EQ(m2.n_tokens, 74);
  ASSERT_EQ(m2.blocks.size(), 2u);
  for (BlockId b : m2.blocks) (void)cache.unref(b);

  auto none = pc.acquire(iota_tokens(10, 500), 10);
  EXPECT_EQ(none.n_tokens, 0);
  EXPECT_TRUE(none.blocks.empty());
}

TEST(PrefixCache, LongerTailReplacesShorterAndMtpSlotsAreTracked) {
  KvCache cache(2, 2, 1, 8);
  PrefixCache pc(cache, 8);
  auto toks = iota_tokens(100);
  auto b1 = cache.allocate(2);
  pc.insert(std::span<const int32_t>(toks.data(), 80), *b1, 0);
  auto b2 = cache.allocate(2);
  pc.insert(toks, *b2, 99);  // same first block tokens, more MTP slots: takes over
  for (BlockId b : *b1) (void)cache.unref(b);
  for (BlockId b : *b2) (void)cache.unref(b);
  EXPECT_EQ(pc.held_blocks(), 2);
  EXPECT_EQ(cache.free_count(), 6);
  auto m = pc.acquire(toks, 99);
  EXPECT_EQ(m.n_tokens, 99);
  EXPECT_EQ(m.mtp_tokens, 98);  // slot 98 was computed from token 99, which is not part of the match
  EXPECT_EQ(m.blocks, *b2);
  for (BlockId b : m.blocks) (void)cache.unref(b);
}

TEST(PrefixCache, EvictsLeastRecentlyUsedUnsharedLeaves) {
  KvCache cache(1, 2, 1, 4);
  PrefixCache pc(cache, 4);
  for (int i = 0; i < 4; ++i) {
    auto t = iota_tokens(10, 100 * i);
    auto b = cache.allocate();
    pc.insert(t, std::vector<BlockId>{*b}, 0);
    (void)cache.unref(*b);
  }
  EXPECT_EQ(cache.free_count(), 0);
  // Touch entry 0 and hold entry 1: entry 2 is the oldest unshared one.
  auto m0 = pc.acquire(iota_tokens(10, 0), 10);
  for (BlockId b : m0.blocks) (void)cache.unref(b);
  auto held = pc.acquire(iota_tokens(10, 100), 10);
  EXPECT_EQ(pc.evict(1), 1);
  EXPECT_EQ(pc.acquire(iota_tokens(10, 200), 10).n_tokens, 0);
  EXPECT_EQ(pc.evict(10), 2);  // 0 and 3; 1 is shared
  EXPECT_EQ(pc.held_blocks(), 1);
  for (BlockId b : held.blocks) (void)cache.unref(b);
  pc.clear();
  EXPECT_EQ(cache.free_count(), cache.capacity());
}

}  // namespace
}  // namespace latent
