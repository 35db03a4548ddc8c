// BF16 weights repacked into the vdpbf16ps tile order (packed_weights.h) against the row-major weights they
// came from, on shapes that are not multiples of the tile (rows vs the 64-row block, odd columns vs the pair,
// columns vs the 128-pair slice) and 1..130 tokens (the GEMV's 1..4 and the GEMM's token tiles and their tails).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/dtype.h"
#include "kernels/cpu/ops.h"
#include "kernels/cpu/packed_weights.h"
#include "kernels/cpu/thread_pool.h"

namespace latent::cpu {
namespace {

struct Bf16Matrix {
  std::vector<uint16_t> bits;
  WeightView view;
};

Bf16Matrix random_bf16(int64_t rows, int64_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.f, 1.f);
  Bf16Matrix m;
  m.bits.resize(static_cast<size_t>(rows * cols));
  for (auto& b : m.bits) b = f32_to_bf16(nd(rng));
  m.view = WeightView{m.bits.data(), DType::kBF16, rows, cols};
  return m;
}

std::vector<float> random_x(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& f : v) f = nd(rng);
  return v;
}

class PrecisionScope {
 public:
  explicit PrecisionScope(LinearPrecision p) : before_(linear_precision()) { set_linear_precision(p); }
  ~PrecisionScope() { set_linear_precision(before_); }

 private:
  LinearPrecision before_;
};

struct Shape {
  int64_t rows, cols;
};
// {70, 2100}: two column slices of the GEMM (1050 pairs > 1024) and, at 130 tokens, two token panels (126 + 4).
const Shape kShapes[] = {{1, 1}, {17, 15}, {63, 33}, {64, 64}, {65, 257}, {130, 130}, {200, 71}, {129, 1100}, {70, 2100}};
const int64_t kTokens[] = {1, 2, 3, 4, 5, 6, 7, 11, 12, 13, 48, 49, 97, 130};

TEST(PackedWeights, ElementsAndUnpackAreTheRowMajorOnes) {
  if (!bf16_activations_available()) GTEST_SKIP() << "no AVX512-BF16 here";
  for (Shape s : kShapes) {
    Bf16Matrix m = random_bf16(s.rows, s.cols, 7);
    ASSERT_TRUE(can_pack_bf16_tiles(m.view));
    TileBuffer buf = TileBuffer::allocate(bf16_tiles_bytes(s.rows, s.cols));
    ASSERT_NE(buf.data(), nullptr);
    const WeightView p = pack_bf16_tiles(m.view, buf.data());
    EXPECT_EQ(p.layout, WeightLayout::kBf16Tiles);
    EXPECT_FALSE(can_pack_bf16_tiles(p));
    for (int64_t r = 0; r < s.rows; ++r)
      for (int64_t c = 0; c < s.cols; ++c) ASSERT_EQ(p.at(r, c), m.view.at(r, c)) << r << "," << c;
    std::vector<uint16_t> back(m.bits.size());
    unpack_bf16_tiles(p, 0, s.rows, back.data());
    EXPECT_EQ(back, m.bits);
    // Padding past the last row and column is zero (the GEMM sums it).
    const auto* u32 = static_cast<const uint32_t*>(buf.data());
    const int64_t pairs = (s.cols + 1) / 2, blocks = (s.rows + kTileRows - 1) / kTileRows;
    for (int64_t b = 0; b < blocks; ++b)
      for (int64_t q = 0; q < pairs; ++q)
        for (int64_t l = 0; l < kTileRows; ++l) {
          const uint32_t v = u32[(b * pairs + q) * kTileRows + l];
          const int64_t r = b * kTileRows + l;
          if (r >= s.rows) {
            ASSERT_EQ(v, 0u);
          } else if (s.cols % 2 == 1 && q == pairs - 1) {
            ASSERT_EQ(v >> 16, 0u);
          }
        }
  }
}

// The fast precision on the repacked weight against the row-major fast path (same BF16 rounding of x, another
// order of accumulation) and against float32 math on the rounded x; the GEMM's rows equal the GEMV's bit for bit
// (each lane sums its row's pairs in column order in both); strided, pair and row-slice entry points agree.
TEST(PackedWeights, FastPathMatchesRowMajorOnOddShapes) {
  if (!bf16_activations_available()) GTEST_SKIP() << "no AVX512-BF16 here";
  PrecisionScope fast(LinearPrecision::kBf16Activations);
  ThreadPool pool(2);
  for (Shape s : kShapes) {
    Bf16Matrix m = random_bf16(s.rows, s.cols, 11);
    TileBuffer buf = TileBuffer::allocate(bf16_tiles_bytes(s.rows, s.cols));
    const WeightView p = pack_bf16_tiles(m.view, buf.data(), &pool);
    for (int64_t n : kTokens) {
      const std::string what = "rows=" + std::to_string(s.rows) + " cols=" + std::to_string(s.cols) + " n=" + std::to_string(n);
      std::vector<float> x = random_x(n * s.cols, 12);
      std::vector<float> y(static_cast<size_t>(n * s.rows), NAN), yr(y.size(), NAN);
      linear(x.data(), n, p, y.data(), &pool);
      linear(x.data(), n, m.view, yr.data(), &pool);
      int bad = 0;
      for (int64_t t = 0; t < n; ++t) {
        for (int64_t r = 0; r < s.rows; ++r) {
          double want = 0, mag = 0;
          for (int64_t c = 0; c < s.cols; ++c) {
            const double prod = static_cast<double>(bf16_to_f32(f32_to_bf16(x[t * s.cols + c]))) * m.view.at(r, c);
            want += prod;
            mag += std::fabs(prod);
          }
          const double tol = 2e-6 * mag + 1e-30, got = y[t * s.rows + r];
          if (!(std::fabs(got - want) <= tol) && bad++ < 5) ADD_FAILURE() << what << " t=" << t << " r=" << r << ": " << got << " vs " << want;
          if (!(std::fabs(got - yr[t * s.rows + r]) <= 2 * tol) && bad++ < 5) ADD_FAILURE() << what << " vs row-major t=" << t << " r=" << r;
        }
      }
      ASSERT_EQ(bad, 0) << what;
      if (n > 4) {  // the GEMM's first 4 tokens = the GEMV of those tokens, bit for bit
        std::vector<float> g(static_cast<size_t>(4 * s.rows), NAN);
        linear(x.data(), 4, p, g.data(), &pool);
        for (size_t i = 0; i < g.size(); ++i) ASSERT_EQ(g[i], y[i]) << what << " i=" << i;
      }
      // Strided rows, a pair of matrices, and a slice of whole blocks.
      std::vector<float> xs(static_cast<size_t>(n * (s.cols + 5)), 9.f), ys(static_cast<size_t>(n * (s.rows + 3)), NAN);
      for (int64_t t = 0; t < n; ++t) std::copy_n(x.begin() + t * s.cols, s.cols, xs.begin() + t * (s.cols + 5));
      linear_strided(xs.data(), s.cols + 5, n, p, ys.data(), s.rows + 3, &pool);
      for (int64_t t = 0; t < n; ++t)
        for (int64_t r = 0; r < s.rows; ++r) ASSERT_EQ(ys[t * (s.rows + 3) + r], y[t * s.rows + r]) << what;
      std::vector<float> ya(y.size(), NAN), yb(y.size(), NAN);
      linear_pair(x.data(), n, p, ya.data(), p, yb.data(), &pool);
      ASSERT_EQ(ya, y) << what;
      ASSERT_EQ(yb, y) << what;
      // Nested inside a pool job (an MoE expert on the thread that claimed it: chunks run inline, in order,
      // each prefetching the next): the same bits.
      std::vector<float> yn(y.size(), NAN), yna(y.size(), NAN), ynb(y.size(), NAN);
      pool.parallel_for(2, 1, [&](int64_t i0, int64_t) {
        if (i0 != 0) return;
        EXPECT_TRUE(ThreadPool::inside_job());
        linear(x.data(), n, p, yn.data(), &pool);
        linear_pair(x.data(), n, p, yna.data(), p, ynb.data(), &pool);
      });
      ASSERT_EQ(yn, y) << what << " nested";
      ASSERT_EQ(yna, y) << what << " nested pair";
      ASSERT_EQ(ynb, y) << what << " nested pair";
      if (s.rows > kTileRows) {
        const WeightView tail = weight_rows(p, kTileRows, s.rows);
        std::vector<float> yt(static_cast<size_t>(n * tail.rows), NAN);
        linear_strided(x.data(), s.cols, n, tail, yt.data(), tail.rows, &pool);
        for (int64_t t = 0; t < n; ++t)
          for (int64_t r = 0; r < tail.rows; ++r) ASSERT_EQ(yt[t * tail.rows + r], y[t * s.rows + kTileRows + r]) << what;
      }
    }
  }
}

// Under the exact precision a repacked weight gives the row-major weight's exact results, bit for bit.
TEST(PackedWeights, ExactPathIsBitForBitTheRowMajorOne) {
  if (!bf16_activations_available()) GTEST_SKIP() << "no AVX512-BF16 here";
  PrecisionScope exact(LinearPrecision::kExact);
  ThreadPool pool(2);
  for (Shape s : {Shape{200, 71}, Shape{129, 1100}, Shape{700, 1500}}) {
    Bf16Matrix m = random_bf16(s.rows, s.cols, 21);
    TileBuffer buf = TileBuffer::allocate(bf16_tiles_bytes(s.rows, s.cols));
    const WeightView p = pack_bf16_tiles(m.view, buf.data(), &pool);
    for (int64_t n : {int64_t{1}, int64_t{3}, int64_t{5}, int64_t{49}}) {
      std::vector<float> x = random_x(n * s.cols, 22);
      std::vector<float> y(static_cast<size_t>(n * s.rows), NAN), yr(y.size(), NAN);
      linear(x.data(), n, p, y.data(), &pool);
      linear(x.data(), n, m.view, yr.data(), &pool);
      ASSERT_EQ(y, yr) << "rows=" << s.rows << " cols=" << s.cols << " n=" << n;
    }
  }
}

}  // namespace
}  // namespace latent::cpu
