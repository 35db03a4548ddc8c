#include "engine/sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <algorithm>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <span>

namespace latent {
namespace {

std::vector<float> logits_of(std::vector<float> probs) {
  for (auto& p : probs) p = std::log(p);
  return probs;
}

TEST(Sampler, GreedyIsArgmaxWithLowestIndexOnTies) {
  Sampler s(SamplingParams{});
  std::vector<float> l = {0.1f, 3.0f, -1.0f, 3.0f};
  EXPECT_EQ(s.sample(l, {}), 1);
  std::vector<float> p;
  s.distribution(l, {}, &p);
  EXPECT_EQ(p, (std::vector<float>{0, 1, 0, 0}));
}

TEST(Sampler, RepetitionPenaltyMovesTheArgmax) {
  SamplingParams sp;
  sp.repetition_penalty = 2.0f;
  Sampler s(sp);
  std::vector<float> l = {1.0f, 3.0f, 2.0f, -1.0f};
  std::vector<int32_t> hist = {1, 1, 3};
  EXPECT_EQ(s.sample(l, hist), 2);  // 3/2 = 1.5 < 2
  EXPECT_EQ(s.sample(l, {}), 1);
}

TEST(Sampler, TopKTopPMinPKeepTheExpectedSets) {
  std::vector<float> l = logits_of({0.4f, 0.3f, 0.2f, 0.1f});
  std::vector<float> p;
  SamplingParams sp;
  sp.temperature = 1.0f;
  sp.top_k = 2;
  Sampler(sp).distribution(l, {}, &p);
  EXPECT_NEAR(p[0], 0.4 / 0.7, 1e-5);
  EXPECT_NEAR(p[1], 0.3 / 0.7, 1e-5);
  EXPECT_EQ(p[2], 0.0f);
  sp.top_k = 0;
  sp.top_p = 0.75f;  // 0.4 + 0.3 < 0.75: the third is needed
  Sampler(sp).distribution(l, {}, &p);
  EXPECT_GT(p[2], 0.0f);
  EXPECT_EQ(p[3], 0.0f);
  sp.top_p = 1.0f;
  sp.min_p = 0.45f;  // keep p >= 0.18
  Sampler(sp).distribution(l, {}, &p);
  EXPECT_GT(p[2], 0.0f);
  EXPECT_EQ(p[3], 0.0f);
  sp.min_p = 0;
  sp.temperature = 0.5f;  // sharper: p ∝ p^2
  Sampler(sp).distribution(l, {}, &p);
  EXPECT_NEAR(p[0], 0.16 / 0.30, 1e-5);
}

// Over a large vocabulary the sampler orders only the head the filters read (nth_element, then a sort of just
// those ids); the distribution is the one a sort of the whole vocabulary gives (bit for bit: same order, same
// sums), for peaked and flat logits, for top-k, top-p and min-p alone and together, with top_p so close to 1
// that rounding can carry the walk past the top-p candidates, and with ties at the top.
TEST(Sampler, FiltersOverALargeVocabularyEqualTheWholeSort) {
  const size_t V = 50000;
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.f, 1.f);
  for (float spread : {0.3f, 3.0f, 8.0f}) {
    std::vector<float> l(V);
    for (auto& x : l) x = spread * normal(rng);
    l[123] = l[4567] = 4 * spread;  // a tie at the top
    for (int top_k : {0, 1, 40, 3000}) {
      for (float top_p : {1.0f, 0.5f, 0.9f, 0.99f, 0.999999f}) {
        for (float min_p : {0.0f, 0.01f}) {
          if (top_k == 0 && top_p == 1.0f && min_p == 0.0f) continue;  // no filter: nothing is ordered
          SamplingParams sp;
          sp.temperature = 0.9f;
          sp.top_k = top_k;
          sp.top_p = top_p;
          sp.min_p = min_p;
          std::vector<float> got;
          Sampler(sp).distribution(l, {}, &got);
          SamplingParams all = sp;
          all.top_k = 0, all.top_p = 1.0f, all.min_p = 0.0f;
          std::vector<float> probs;
          Sampler(all).distribution(l, {}, &probs);
          std::vector<int32_t> order(V);
          std::iota(order.begin(), order.end(), 0);
          std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
            return probs[a] != probs[b] ? probs[a] > probs[b] : a < b;
          });
          size_t keep = top_k > 0 ? static_cast<size_t>(top_k) : V;
          if (top_p < 1.0f) {
            double cum = 0;
            size_t n = 0;
            while (n < keep) {
              cum += probs[order[n++]];
              if (cum >= top_p) break;
            }
            keep = n;
          }
          if (min_p > 0) {
            size_t n = 1;
            while (n < keep && probs[order[n]] >= min_p * probs[order[0]]) ++n;
            keep = n;
          }
          std::vector<float> want(V, 0.0f);
          double total = 0;
          for (size_t i = 0; i < keep; ++i) total += probs[order[i]];
          for (size_t i = 0; i < keep; ++i) want[order[i]] = static_cast<float>(probs[order[i]] / total);
          ASSERT_EQ(got, want) << "spread " << spread << " top_k " << top_k << " top_p " << top_p << " min_p "
                               << min_p << " kept " << keep;
        }
      }
    }
  }
}

TEST(Sampler, SameSeedSameDraws) {
  SamplingParams sp;
  sp.temperature = 1.0f;
  sp.seed = 9;
  Sampler a(sp), b(sp);
  std::vector<float> l = logits_of({0.25f, 0.25f, 0.25f, 0.25f});
  std::vector<int32_t> da, db, history;
  for (int i = 0; i < 50; ++i) {
    da.push_back(a.sample(l, history));
    db.push_back(b.sample(l, history));
    history.push_back(da.back());
  }
  EXPECT_EQ(da, db);
  EXPECT_GT(std::set<int32_t>(da.begin(), da.end()).size(), 1u);
  // The draw at a position depends on (seed, position) only, not on the draws made before it.
  Sampler c(sp);
  EXPECT_EQ(c.sample(l, std::span<const int32_t>(history).first(37)), da[37]);
  sp.seed = 10;
  Sampler other(sp);
  std::vector<int32_t> dother;
  for (int i = 0; i < 50; ++i) dother.push_back(other.sample(l, std::span<const int32_t>(history).first(i)));
  EXPECT_NE(dother, da);
}

TEST(Sampler, PositionUniformIsUniform) {
  // 200000 draws over seeds and positions: every decile holds 10% +- 0.5%, the mean is 0.5.
  std::vector<int> bins(10);
  double sum = 0;
  const int n = 200000;
  for (int i = 0; i < n; ++i) {
    const double u = position_uniform(static_cast<uint64_t>(i / 100), static_cast<uint64_t>(i % 100));
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    ++bins[static_cast<size_t>(u * 10)];
    sum += u;
  }
  for (int b = 0; b < 10; ++b) EXPECT_NEAR(bins[static_cast<size_t>(b)] / double(n), 0.1, 0.005) << b;
  EXPECT_NEAR(sum / n, 0.5, 0.005);
}

// Lossless speculation: whatever the draft, the emitted token follows the target distribution, and it is the
// token sample() gives at that position (so the output does not depend on the draft at all).
TEST(Sampler, VerifyOfAnyDraftKeepsTheTargetDistribution) {
  const std::vector<float> target = {0.5f, 0.3f, 0.15f, 0.05f};
  std::vector<float> l = logits_of(target);
  SamplingParams sp;
  sp.temperature = 1.0f;
  for (int32_t draft : {0, 2, 3}) {
    std::map<int32_t, int> count;
    int accepted = 0;
    const int n = 100000;
    for (int i = 0; i < n; ++i) {
      sp.seed = static_cast<uint64_t>(i);
      Sampler s(sp), plain(sp);
      int32_t tok = -1;
      const bool ok = s.verify(l, {}, draft, &tok);
      accepted += ok;
      ASSERT_EQ(ok, tok == draft);
      ASSERT_EQ(tok, plain.sample(l, {}));
      ++count[tok];
    }
    for (int v = 0; v < 4; ++v) EXPECT_NEAR(count[v] / double(n), target[v], 0.006) << "draft " << draft << " v " << v;
    EXPECT_NEAR(accepted / double(n), target[draft], 0.006);
  }
  // Greedy: accept iff the draft is the argmax, else the argmax.
  Sampler g(SamplingParams{});
  int32_t tok = -1;
  EXPECT_TRUE(g.verify(l, {}, 0, &tok));
  EXPECT_FALSE(g.verify(l, {}, 2, &tok));
  EXPECT_EQ(tok, 0);
}

}  // namespace
}  // namespace latent
