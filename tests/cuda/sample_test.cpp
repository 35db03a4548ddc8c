// Device token selection against host references: greedy (engine's argmax rule: lowest index on ties),
// top-p with a given uniform, checked against a sort-based nucleus, and top-k / min-p against thresholds.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>
#include <vector>

#include "kernels/cuda/ops.h"
#include "tests/cuda/cuda_test_util.h"

namespace latent::cuda {
namespace {

using testing::random_floats;

TEST(CudaSample, ArgmaxPicksLowestIndexOfTheMaximum) {
  LATENT_REQUIRE_GPU();
  const int64_t vocab = 102400;
  std::vector<float> l = random_floats(3 * vocab, 9, -5.f, 5.f);
  l[100] = 9.f, l[90000] = 9.f;                  // row 0: tie, lowest wins
  l[vocab + vocab - 1] = 11.f;                   // row 1: last element
  std::fill(l.begin() + 2 * vocab, l.end(), 0.f);  // row 2: all equal -> 0
  DeviceArray<float> dl(l);
  DeviceArray<int32_t> out(3);
  ASSERT_TRUE(argmax(dl.data(), 3, vocab, out.data(), nullptr).ok());
  EXPECT_EQ(out.to_host(), (std::vector<int32_t>{100, static_cast<int32_t>(vocab - 1), 0}));
}

// Host reference for cuda::sample: the kept set is every token at or above the largest of the thresholds (the
// nucleus's as above, the k-th largest probability, min_p times the largest), walked in index order.
int32_t reference_filtered(const std::vector<float>& l, float temp, float top_p, int top_k, float min_p, float u) {
  const float mx = *std::max_element(l.begin(), l.end());
  std::vector<double> p(l.size());
  double z = 0;
  for (size_t i = 0; i < l.size(); ++i) z += (p[i] = std::exp((l[i] - mx) / temp));
  for (auto& v : p) v /= z;
  std::vector<size_t> order(l.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return p[a] > p[b]; });
  double theta = 0;
  if (top_p < 1.0f) {
    double mass = 0;
    for (size_t i : order) {
      mass += p[i], theta = p[i];
      if (mass >= top_p) break;
    }
  }
  if (top_k > 0 && static_cast<size_t>(top_k) < l.size()) theta = std::max(theta, p[order[top_k - 1]]);
  theta = std::min(std::max(theta, min_p * p[order[0]]), p[order[0]]);
  double kept = 0;
  for (double v : p) if (v >= theta) kept += v;
  double run = 0, target = u * kept;
  int32_t last = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] < theta) continue;
    run += p[i], last = static_cast<int32_t>(i);
    if (target < run) return last;
  }
  return last;
}

// Host nucleus: reference_filtered without top-k and min-p.
int32_t reference_top_p(const std::vector<float>& l, float temp, float top_p, float u) {
  return reference_filtered(l, temp, top_p, 0, 0.f, u);
}

TEST(CudaSample, TopPMatchesSortedNucleus) {
  LATENT_REQUIRE_GPU();
  const int64_t vocab = 5000;
  const std::vector<float> l = random_floats(vocab, 11, -4.f, 4.f);
  for (float top_p : {0.05f, 0.5f, 0.9f, 1.0f}) {
    for (float u : {0.01f, 0.37f, 0.8f, 0.999f}) {
      DeviceArray<float> dl(l), du(std::vector<float>{u});
      DeviceArray<int32_t> out(1);
      ASSERT_TRUE(sample_top_p(dl.data(), 1, vocab, 0.7f, top_p, du.data(), out.data(), nullptr).ok());
      EXPECT_EQ(out.to_host()[0], reference_top_p(l, 0.7f, top_p, u)) << "top_p " << top_p << " u " << u;
    }
  }
}

// A vocabulary of DeepSeek's size, two rows in one call: row 0 peaked as a trained model's logits are (64 likely
// tokens, the rest far below: the threshold is searched among the candidates), row 1 flat (more candidates than
// fit in shared memory: the search runs over the whole vocabulary).
TEST(CudaSample, TopPMatchesSortedNucleusOnPeakedAndFlatRows) {
  LATENT_REQUIRE_GPU();
  const int64_t vocab = 102400;
  std::vector<float> peaked = random_floats(vocab, 21, -10.f, 0.f);
  const std::vector<float> bumps = random_floats(64, 22, 4.f, 10.f);
  for (size_t j = 0; j < bumps.size(); ++j) peaked[(j * 1601 + 7) % vocab] = bumps[j];
  const std::vector<float> flat = random_floats(vocab, 23, -1.f, 1.f);
  std::vector<float> both = peaked;
  both.insert(both.end(), flat.begin(), flat.end());
  DeviceArray<float> dl(both);
  for (float top_p : {0.3f, 0.9f, 0.99f, 1.0f}) {
    for (float u : {0.02f, 0.5f, 0.97f}) {
      DeviceArray<float> du(std::vector<float>{u, 1.f - u});
      DeviceArray<int32_t> out(2);
      ASSERT_TRUE(sample_top_p(dl.data(), 2, vocab, 0.8f, top_p, du.data(), out.data(), nullptr).ok());
      const std::vector<int32_t> got = out.to_host();
      EXPECT_EQ(got[0], reference_top_p(peaked, 0.8f, top_p, u)) << "peaked, top_p " << top_p << " u " << u;
      // The flat row's nucleus sums ~10^5 probabilities in float32, on the device in another order than the
      // host's: where its mass passes top_p by less than a few ulps (top_p 0.99 here: by 5e-8), the device may keep
      // one token more or less. The picks for top_p +- 1e-6 are right too; anything else is not.
      const std::set<int32_t> flat_ok = {reference_top_p(flat, 0.8f, top_p, 1.f - u),
                                         reference_top_p(flat, 0.8f, top_p - 1e-6f, 1.f - u),
                                         reference_top_p(flat, 0.8f, std::min(1.f, top_p + 1e-6f), 1.f - u)};
      EXPECT_TRUE(flat_ok.count(got[1])) << "flat, top_p " << top_p << " u " << u << ": got " << got[1];
    }
  }
}

// Top-k and min-p, alone and with top-p (a ranked completion's samples: T 0.8, top-k 40, top-p 0.95), on a
// peaked row (the k-th largest found among the candidates) and a flat one (over the whole vocabulary).
TEST(CudaSample, TopKAndMinPMatchTheThresholdReference) {
  LATENT_REQUIRE_GPU();
  const int64_t vocab = 102400;
  std::vector<float> peaked = random_floats(vocab, 31, -10.f, 0.f);
  const std::vector<float> bumps = random_floats(64, 32, 4.f, 10.f);
  for (size_t j = 0; j < bumps.size(); ++j) peaked[(j * 1601 + 7) % vocab] = bumps[j];
  const std::vector<float> flat = random_floats(vocab, 33, -1.f, 1.f);
  std::vector<float> both = peaked;
  both.insert(both.end(), flat.begin(), flat.end());
  DeviceArray<float> dl(both);
  struct Filters {
    float top_p;
    int top_k;
    float min_p;
  };
  for (const Filters f : {Filters{0.95f, 40, 0.f}, Filters{1.f, 5, 0.f}, Filters{1.f, 0, 0.1f},
                          Filters{0.9f, 40, 0.05f}, Filters{0.99f, 3000, 0.f}, Filters{1.f, 1, 0.f}}) {
    for (float u : {0.02f, 0.5f, 0.97f}) {
      DeviceArray<float> du(std::vector<float>{u, 1.f - u});
      DeviceArray<int32_t> out(2);
      ASSERT_TRUE(sample(dl.data(), 2, vocab, 0.8f, f.top_p, f.top_k, f.min_p, du.data(), out.data(), nullptr).ok());
      const std::vector<int32_t> got = out.to_host();
      EXPECT_EQ(got[0], reference_filtered(peaked, 0.8f, f.top_p, f.top_k, f.min_p, u))
          << "peaked, top_p " << f.top_p << " top_k " << f.top_k << " min_p " << f.min_p << " u " << u;
      EXPECT_EQ(got[1], reference_filtered(flat, 0.8f, f.top_p, f.top_k, f.min_p, 1.f - u))
          << "flat, top_p " << f.top_p << " top_k " << f.top_k << " min_p " << f.min_p << " u " << u;
    }
  }
  DeviceArray<float> du(std::vector<float>{0.5f});
  DeviceArray<int32_t> out(1);
  EXPECT_FALSE(sample(dl.data(), 1, vocab, 0.8f, 0.9f, -1, 0.f, du.data(), out.data(), nullptr).ok());
  EXPECT_FALSE(sample(dl.data(), 1, vocab, 0.8f, 0.9f, 0, 1.5f, du.data(), out.data(), nullptr).ok());
}

TEST(CudaSample, TopPRejectsBadParameters) {
  LATENT_REQUIRE_GPU();
  DeviceArray<float> l(8), u(1);
  DeviceArray<int32_t> out(1);
  EXPECT_FALSE(sample_top_p(l.data(), 1, 8, 0.f, 0.9f, u.data(), out.data(), nullptr).ok());
  EXPECT_FALSE(sample_top_p(l.data(), 1, 8, 1.f, 1.5f, u.data(), out.data(), nullptr).ok());
}

}  // namespace
}  // namespace latent::cuda
