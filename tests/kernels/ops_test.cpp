// Every fast CPU op body (scalar, AVX2, AVX-512: each level this CPU has, called explicitly) against the
// double-precision references in ops_ref.cpp, over odd shapes and every weight dtype.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/ops.h"
#include "kernels/cpu/ops_isa.h"
#include "kernels/cpu/thread_pool.h"

namespace latent::cpu {
namespace {

// A random weight matrix in the given dtype, with FP8 block scales; owns its storage.
struct TestWeight {
  std::vector<uint8_t> bytes;
  std::vector<float> scales;
  WeightView view;
};

TestWeight make_weight(DType dt, int64_t rows, int64_t cols, uint32_t seed, int64_t block = 128) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.f, 1.f);
  TestWeight w;
  w.bytes.resize(static_cast<size_t>(rows * cols * dtype_size(dt)) + 1);
  for (int64_t i = 0; i < rows * cols; ++i) {
    float v = nd(rng);
    switch (dt) {
      case DType::kF32: reinterpret_cast<float*>(w.bytes.data())[i] = v; break;
      case DType::kBF16: reinterpret_cast<uint16_t*>(w.bytes.data())[i] = f32_to_bf16(v); break;
      case DType::kF16: {
        // A normal half built from its fields (sign, exponent, 10-bit mantissa) near v.
        float q = std::round(v * 1024.f) / 1024.f;
        uint16_t h = 0;
        float a = std::fabs(q);
        uint16_t sign = q < 0 ? 0x8000 : 0;
        if (a == 0.f) {
          h = sign;
        } else {
          int e;
          float m = std::frexp(a, &e);  // a = m * 2^e, m in [0.5, 1)
          int exp = e - 1 + 15;
          uint16_t mant = static_cast<uint16_t>(std::lround((m * 2.f - 1.f) * 1024.f));
          if (mant == 1024) {
            mant = 0;
            ++exp;
          }
          h = static_cast<uint16_t>(sign | (exp << 10) | mant);
        }
        reinterpret_cast<uint16_t*>(w.bytes.data())[i] = h;
        break;
      }
      case DType::kF8E4M3: {
        uint8_t b = static_cast<uint8_t>(rng() & 0xff);
        if ((b & 0x7f) == 0x7f) b &= 0xfe;  // no NaN codes
        w.bytes[i] = b;
        break;
      }
    }
  }
  w.view.data = w.bytes.data();
  w.view.dtype = dt;
  w.view.rows = rows;
  w.view.cols = cols;
  if (dt == DType::kF8E4M3) {
    int64_t sr = (rows + block - 1) / block, sc = (cols + block - 1) / block;
    std::uniform_real_distribution<float> ud(0.25f, 2.f);
    w.scales.resize(static_cast<size_t>(sr * sc));
    for (float& s : w.scales) s = ud(rng) / 64.f;
    w.view.scale_inv = w.scales.data();
    w.view.block = block;
  }
  return w;
}

std::vector<float> random_vec(int64_t n, uint32_t seed, float scale = 1.f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.f, scale);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& f : v) f = nd(rng);
  return v;
}

// Tolerance per output: float32 accumulation error bound relative to sum |x| |w|.
void expect_linear_close(const std::vector<float>& x, int64_t n, const WeightView& w, const std::vector<float>& y,
                         const std::string& what) {
  std::vector<float> ref(static_cast<size_t>(n * w.rows));
  ref::linear(x.data(), n, w, ref.data());
  int bad = 0;
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t r = 0; r < w.rows; ++r) {
      double mag = 0;
      for (int64_t c = 0; c < w.cols; ++c) mag += std::fabs(x[t * w.cols + c] * w.at(r, c));
      double tol = 2e-6 * mag + 1e-30;
      double got = y[t * w.rows + r], want = ref[t * w.rows + r];
      if (!(std::fabs(got - want) <= tol) && bad++ < 5) {
        ADD_FAILURE() << what << " t=" << t << " r=" << r << ": expected " << want << ", found " << got
                      << " (tol " << tol << ")";
      }
    }
  }
  EXPECT_EQ(bad, 0) << what;
}

std::vector<Isa> available_isas() {
  std::vector<Isa> v;
  for (Isa i : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512})
    if (isa_available(i)) v.push_back(i);
  return v;
}

class OpsIsaTest : public ::testing::TestWithParam<Isa> {
 protected:
  void SetUp() override {
    if (!isa_available(GetParam())) GTEST_SKIP() << isa_name(GetParam()) << " not available on this CPU";
  }
  const OpTable& ops() { return op_table(GetParam()); }
  ThreadPool pool_{2};
};

struct Shape {
  int64_t n, rows, cols;
};

TEST_P(OpsIsaTest, LinearAllDtypesOddShapes) {
  const std::vector<Shape> shapes = {
      {1, 1, 1},    {1, 7, 15},    {1, 33, 130},  {1, 257, 300},  {2, 9, 17},   {3, 130, 129},
      {4, 20, 1100}, {5, 17, 33},  {17, 33, 130}, {17, 9, 1100},  {49, 41, 64}, {64, 130, 257},
      {3, 300, 2048}, {200, 24, 70}, {64, 8, 16}, {1, 1000, 64},
  };
  for (DType dt : {DType::kF32, DType::kBF16, DType::kF16, DType::kF8E4M3}) {
    for (const Shape& s : shapes) {
      TestWeight w = make_weight(dt, s.rows, s.cols, static_cast<uint32_t>(s.rows * 31 + s.cols));
      std::vector<float> x = random_vec(s.n * s.cols, static_cast<uint32_t>(s.n + 7));
      std::vector<float> y(static_cast<size_t>(s.n * s.rows), NAN);
      ops().linear(x.data(), w.view.cols, s.n, w.view, y.data(), w.view.rows, pool_);
      expect_linear_close(x, s.n, w.view, y,
                          std::string(isa_name(GetParam())) + " " + dtype_name(dt) + " n=" + std::to_string(s.n) +
                              " rows=" + std::to_string(s.rows) + " cols=" + std::to_string(s.cols));
    }
  }
}

TEST_P(OpsIsaTest, LinearFp8OtherBlockSizes) {
  for (int64_t block : {32, 20, 64}) {
    for (Shape s : std::vector<Shape>{{1, 70, 90}, {3, 45, 100}, {20, 70, 90}}) {
      TestWeight w = make_weight(DType::kF8E4M3, s.rows, s.cols, 5, block);
      std::vector<float> x = random_vec(s.n * s.cols, 11);
      std::vector<float> y(static_cast<size_t>(s.n * s.rows), NAN);
      ops().linear(x.data(), w.view.cols, s.n, w.view, y.data(), w.view.rows, pool_);
      expect_linear_close(x, s.n, w.view, y, "fp8 block " + std::to_string(block) + " n=" + std::to_string(s.n));
    }
  }
}

TEST_P(OpsIsaTest, LinearSingleThreadedPoolMatches) {
  ThreadPool one(1);
  TestWeight w = make_weight(DType::kBF16, 100, 300, 3);
  for (int64_t n : {1, 3, 17}) {
    std::vector<float> x = random_vec(n * 300, 4);
    std::vector<float> y(static_cast<size_t>(n * 100));
    ops().linear(x.data(), w.view.cols, n, w.view, y.data(), w.view.rows, one);
    expect_linear_close(x, n, w.view, y, "pool of 1");
  }
}

TEST_P(OpsIsaTest, LinearStridedRowsLeaveTheGapsAlone) {
  // One head's slice: x rows inside a wider activation, y rows inside a wider output.
  for (DType dt : {DType::kBF16, DType::kF8E4M3}) {
    for (int64_t n : {1, 3, 17, 64}) {
      const int64_t rows = 40, cols = 150, ldx = 400, ldy = 97;
      TestWeight w = make_weight(dt, rows, cols, 21);
      std::vector<float> xw = random_vec(n * ldx, 22);
      std::vector<float> yw(static_cast<size_t>(n * ldy), -7.f);
      ops().linear(xw.data() + 5, ldx, n, w.view, yw.data() + 3, ldy, pool_);
      std::vector<float> x(static_cast<size_t>(n * cols)), y(static_cast<size_t>(n * rows));
      for (int64_t t = 0; t < n; ++t) {
        std::copy_n(xw.data() + t * ldx + 5, cols, x.data() + t * cols);
        std::copy_n(yw.data() + t * ldy + 3, rows, y.data() + t * rows);
        for (int64_t i = 0; i < ldy; ++i) {
          if (i < 3 || i >= 3 + rows) {
            ASSERT_EQ(yw[t * ldy + i], -7.f) << "wrote outside row " << t << " at " << i;
          }
        }
      }
      expect_linear_close(x, n, w.view, y, std::string("strided ") + dtype_name(dt) + " n=" + std::to_string(n));
    }
  }
}

TEST_P(OpsIsaTest, MatmulAllDtypesOddShapes) {
  struct MShape { int64_t m, k, n, b_rows, b_row0; };
  const std::vector<MShape> shapes = {{1, 1, 1, 1, 0},      {1, 128, 512, 4096, 256}, {3, 17, 33, 40, 20},
                                      {17, 130, 100, 300, 129}, {64, 64, 577, 64, 0},  {9, 600, 50, 700, 64},
                                      {130, 16, 48, 16, 0},   {4, 33, 300, 64, 5},     {2, 128, 1000, 200, 64}};
  for (DType dt : {DType::kF32, DType::kBF16, DType::kF16, DType::kF8E4M3}) {
    for (const MShape& s : shapes) {
      TestWeight b = make_weight(dt, s.b_rows, s.n + 3, static_cast<uint32_t>(s.k + s.n));
      const int64_t lda = s.k + 5, ldc = s.n + 2;
      std::vector<float> a = random_vec(s.m * lda, 31);
      for (bool acc : {false, true}) {
        std::vector<float> c = random_vec(s.m * ldc, 32), ref = c;
        ops().matmul(a.data(), lda, s.m, s.k, b.view, s.b_row0, s.n, c.data(), ldc, acc, pool_);
        ref::matmul(a.data(), lda, s.m, s.k, b.view, s.b_row0, s.n, ref.data(), ldc, acc);
        for (int64_t i = 0; i < s.m; ++i) {
          for (int64_t j = 0; j < ldc; ++j) {
            double mag = acc ? std::fabs(ref[i * ldc + j]) : 0;
            for (int64_t kk = 0; j < s.n && kk < s.k; ++kk) mag += std::fabs(a[i * lda + kk] * b.view.at(s.b_row0 + kk, j));
            ASSERT_NEAR(c[i * ldc + j], ref[i * ldc + j], 2e-6 * mag + 1e-30)
                << isa_name(GetParam()) << " " << dtype_name(dt) << " m=" << s.m << " k=" << s.k << " n=" << s.n
                << " acc=" << acc << " at " << i << "," << j;
          }
        }
      }
    }
  }
}

TEST_P(OpsIsaTest, RmsNorm) {
  for (int64_t d : {1, 15, 16, 33, 64, 2048, 7000}) {
    for (DType dt : {DType::kF32, DType::kBF16, DType::kF16}) {
      const int64_t n = 3;
      std::vector<float> x = random_vec(n * d, static_cast<uint32_t>(d), 3.f);
      TestWeight g = make_weight(dt, 1, d, 9);
      std::vector<float> y(static_cast<size_t>(n * d)), ref(static_cast<size_t>(n * d));
      ops().rms_norm(x.data(), n, d, g.view.data, dt, 1e-6f, y.data());
      ref::rms_norm(x.data(), n, d, g.view.data, dt, 1e-6f, ref.data());
      for (int64_t i = 0; i < n * d; ++i) {
        ASSERT_NEAR(y[i], ref[i], 1e-5 * std::fabs(ref[i]) + 1e-6) << "d=" << d << " " << dtype_name(dt) << " i=" << i;
      }
    }
  }
}

TEST_P(OpsIsaTest, EmbeddingRow) {
  for (DType dt : {DType::kF32, DType::kBF16, DType::kF16, DType::kF8E4M3}) {
    for (int64_t cols : {1, 17, 130, 2048}) {
      TestWeight w = make_weight(dt, 300, cols, 2);
      for (int64_t id : {0, 129, 299}) {
        std::vector<float> out(static_cast<size_t>(cols)), ref(static_cast<size_t>(cols));
        ops().embedding_row(w.view, id, out.data());
        ref::embedding_row(w.view, id, ref.data());
        for (int64_t c = 0; c < cols; ++c) ASSERT_EQ(out[c], ref[c]) << dtype_name(dt) << " id=" << id << " c=" << c;
      }
    }
  }
}

TEST_P(OpsIsaTest, Swiglu) {
  for (int64_t n : {1, 15, 16, 17, 1408, 1411}) {
    std::vector<float> g = random_vec(n, 1, 4.f), u = random_vec(n, 2);
    if (n > 4) {
      g[0] = -100.f;  // exp overflow side
      g[1] = 100.f;
      g[2] = 0.f;
    }
    std::vector<float> out(static_cast<size_t>(n)), ref(static_cast<size_t>(n));
    ops().swiglu(g.data(), u.data(), n, out.data());
    ref::swiglu(g.data(), u.data(), n, ref.data());
    for (int64_t i = 0; i < n; ++i) ASSERT_NEAR(out[i], ref[i], 2e-6 * std::fabs(ref[i]) + 1e-30) << "n=" << n << " i=" << i;
  }
}

TEST_P(OpsIsaTest, Softmax) {
  for (int64_t n : {1, 6, 16, 17, 64, 256, 1000}) {
    std::vector<float> x = random_vec(n, 5, 8.f);
    if (n > 10) x[3] = -INFINITY;  // masked position
    std::vector<float> ref = x;
    ops().softmax(x.data(), n);
    ref::softmax(ref.data(), n);
    double sum = 0;
    for (int64_t i = 0; i < n; ++i) {
      ASSERT_NEAR(x[i], ref[i], 1e-5 * ref[i] + 1e-8) << "n=" << n << " i=" << i;
      sum += x[i];
    }
    EXPECT_NEAR(sum, 1.0, 1e-5);
  }
}

INSTANTIATE_TEST_SUITE_P(AllLevels, OpsIsaTest, ::testing::Values(Isa::kScalar, Isa::kAvx2, Isa::kAvx512),
                         [](const ::testing::TestParamInfo<Isa>& i) { return std::string(isa_name(i.param)); });

// The fast precision (the default): GEMV (n <= 4, decode) and GEMM (n > 4, prefill) against float32 math on the
// BF16-rounded activations, including the threaded GEMV (>= 128 KiB of weights) and column tails.
TEST(OpsBf16Activations, MatchesReferenceOnRoundedActivations) {
  if (!bf16_activations_available()) GTEST_SKIP() << "no AVX512-BF16 here";
  const LinearPrecision before = linear_precision();
  ThreadPool pool(2);
  for (Shape s : std::vector<Shape>{{1, 1, 1},    {1, 7, 15},     {1, 37, 2096}, {1, 520, 1408}, {2, 19, 70},
                                    {3, 64, 1408}, {4, 9, 31},     {4, 300, 512}, {1, 33, 48},    {5, 17, 33},
                                    {17, 33, 130}, {49, 41, 64},   {64, 130, 1100}, {200, 24, 71}}) {
    TestWeight w = make_weight(DType::kBF16, s.rows, s.cols, 41);
    std::vector<float> x = random_vec(s.n * s.cols, 42);
    std::vector<float> y(static_cast<size_t>(s.n * s.rows), NAN), exact(y.size());
    set_linear_precision(LinearPrecision::kExact);
    linear(x.data(), s.n, w.view, exact.data(), &pool);
    set_linear_precision(LinearPrecision::kBf16Activations);
    linear(x.data(), s.n, w.view, y.data(), &pool);
    // Against float32 math on the BF16-rounded activations: agree to accumulation error.
    std::vector<float> xr = x;
    for (float& v : xr) v = bf16_to_f32(f32_to_bf16(v));
    const std::string what = "bf16 activations n=" + std::to_string(s.n) + " rows=" + std::to_string(s.rows) +
                             " cols=" + std::to_string(s.cols);
    expect_linear_close(xr, s.n, w.view, y, what);
    // The strided entry point (one head's slice) takes the same path.
    std::vector<float> xs(static_cast<size_t>(s.n * (s.cols + 3)), 7.f), ys(static_cast<size_t>(s.n * (s.rows + 5)), NAN);
    for (int64_t t = 0; t < s.n; ++t) std::copy_n(x.begin() + t * s.cols, s.cols, xs.begin() + t * (s.cols + 3));
    linear_strided(xs.data(), s.cols + 3, s.n, w.view, ys.data(), s.rows + 5, &pool);
    for (int64_t t = 0; t < s.n; ++t)
      for (int64_t r = 0; r < s.rows; ++r) ASSERT_EQ(ys[t * (s.rows + 5) + r], y[t * s.rows + r]) << what;
    // And it really is the rounded path: it differs from the exact result somewhere.
    bool differs = false;
    for (size_t i = 0; i < y.size(); ++i) differs |= y[i] != exact[i];
    if (s.cols > 1) {
      EXPECT_TRUE(differs) << what;
    }
  }
  set_linear_precision(before);
}

// The decode GEMV's weight-load bodies (LATENT_GEMV=halves|zmm|rows2, kept for A/B runs) sum in the same order:
// bit for bit one result, threaded and not, on row counts that are odd (rows2's one-row tail) and column tails.
TEST(OpsBf16Activations, GemvBodiesAgreeBitForBit) {
  if (!bf16_activations_available()) GTEST_SKIP() << "no AVX512-BF16 here";
  const LinearPrecision before = linear_precision();
  const std::string body_before = gemv_body();
  set_linear_precision(LinearPrecision::kBf16Activations);
  EXPECT_FALSE(set_gemv_body("ymm"));
  ThreadPool pool(2);
  for (Shape s : std::vector<Shape>{{1, 37, 2096}, {1, 521, 1408}, {2, 19, 70}, {3, 64, 1408}, {4, 301, 512}, {1, 7, 15}}) {
    TestWeight w = make_weight(DType::kBF16, s.rows, s.cols, 43);
    std::vector<float> x = random_vec(s.n * s.cols, 44);
    std::vector<std::vector<float>> ys;
    for (const char* body : {"halves", "zmm", "rows2"}) {
      ASSERT_TRUE(set_gemv_body(body));
      EXPECT_STREQ(gemv_body(), body);
      ys.emplace_back(static_cast<size_t>(s.n * s.rows), NAN);
      linear(x.data(), s.n, w.view, ys.back().data(), &pool);
    }
    for (size_t b = 1; b < ys.size(); ++b)
      for (size_t i = 0; i < ys[0].size(); ++i)
        ASSERT_EQ(ys[b][i], ys[0][i]) << "body " << b << " n=" << s.n << " rows=" << s.rows << " cols=" << s.cols;
  }
  ASSERT_TRUE(set_gemv_body(body_before.c_str()));
  set_linear_precision(before);
}

// linear_pair (an MLP's gate and up, x packed once, one pool job): bit for bit what two linear() calls give,
// on both precisions, with row counts that are not multiples of the 8-row groups and several token blocks.
TEST(OpsBf16Activations, LinearPairIsTwoLinears) {
  const LinearPrecision before = linear_precision();
  ThreadPool pool(2);
  for (LinearPrecision prec : {LinearPrecision::kExact, LinearPrecision::kBf16Activations}) {
    set_linear_precision(prec);
    for (Shape s : std::vector<Shape>{{1, 9, 64}, {5, 17, 33}, {49, 41, 64}, {100, 130, 256}, {7, 1, 16}}) {
      TestWeight a = make_weight(DType::kBF16, s.rows, s.cols, 51), b = make_weight(DType::kBF16, s.rows + 3, s.cols, 52);
      std::vector<float> x = random_vec(s.n * s.cols, 53);
      std::vector<float> ya(static_cast<size_t>(s.n * s.rows), NAN), yb(static_cast<size_t>(s.n * (s.rows + 3)), NAN);
      std::vector<float> ra(ya.size()), rb(yb.size());
      linear(x.data(), s.n, a.view, ra.data(), &pool);
      linear(x.data(), s.n, b.view, rb.data(), &pool);
      linear_pair(x.data(), s.n, a.view, ya.data(), b.view, yb.data(), &pool);
      const std::string what = std::string(linear_precision_name(prec)) + " n=" + std::to_string(s.n) +
                               " rows=" + std::to_string(s.rows) + " cols=" + std::to_string(s.cols);
      for (size_t i = 0; i < ya.size(); ++i) ASSERT_EQ(ya[i], ra[i]) << what << " a[" << i << "]";
      for (size_t i = 0; i < yb.size(); ++i) ASSERT_EQ(yb[i], rb[i]) << what << " b[" << i << "]";
    }
  }
  set_linear_precision(before);
}

TEST(OpsBf16Activations, PrecisionNamesParse) {
  EXPECT_EQ(parse_linear_precision("exact"), LinearPrecision::kExact);
  EXPECT_EQ(parse_linear_precision("bf16"), LinearPrecision::kBf16Activations);
  EXPECT_FALSE(parse_linear_precision("fp16").has_value());
  EXPECT_FALSE(parse_linear_precision("").has_value());
  EXPECT_STREQ(linear_precision_name(LinearPrecision::kExact), "exact");
  EXPECT_STREQ(linear_precision_name(LinearPrecision::kBf16Activations), "bf16");
}

// Prints the level this process dispatches to; LatentCpuCapsTheLevel runs it under LATENT_CPU caps.
TEST(OpsDispatch, PrintBestIsa) { std::printf("best_isa=%s\n", isa_name(best_isa())); }

std::string best_isa_under(const char* cap) {
  char self[4096] = {};
  if (readlink("/proc/self/exe", self, sizeof self - 1) <= 0) return "readlink failed";
  std::string cmd = std::string("LATENT_CPU=") + cap + " '" + self + "' --gtest_filter=OpsDispatch.PrintBestIsa 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return "popen failed";
  std::string out;
  char buf[256];
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  pclose(p);
  auto i = out.find("best_isa=");
  return i == std::string::npos ? out : out.substr(i + 9, out.find('\n', i) - i - 9);
}

TEST(OpsDispatch, LatentCpuCapsTheLevel) {
  EXPECT_EQ(best_isa_under("scalar"), "scalar");
  EXPECT_EQ(best_isa_under("avx2"), isa_available(Isa::kAvx2) ? "avx2" : "scalar");
  EXPECT_EQ(best_isa_under("avx512"), isa_name(best_isa()));
}

TEST(OpsDispatch, BestLevelIsAvailableAndUsedByDefault) {
  EXPECT_TRUE(isa_available(best_isa()));
  EXPECT_TRUE(isa_available(Isa::kScalar));
  EXPECT_FALSE(available_isas().empty());
  // The dispatched op (global pool) agrees with the reference.
  TestWeight w = make_weight(DType::kBF16, 257, 513, 8);
  for (int64_t n : {1, 64}) {
    std::vector<float> x = random_vec(n * 513, 6);
    std::vector<float> y(static_cast<size_t>(n * 257));
    linear(x.data(), n, w.view, y.data());
    expect_linear_close(x, n, w.view, y, "dispatched");
  }
}

}  // namespace
}  // namespace latent::cpu

namespace latent {
namespace {

// The obvious encoder: the nearest of all finite codes, ties to the even code.
uint8_t fp8_nearest(float f) {
  if (std::isnan(f)) return 0x7f;
  uint8_t sign = std::signbit(f) ? 0x80 : 0;
  float a = std::fabs(f);
  if (a >= 448.f) return sign | 0x7e;
  uint8_t best = 0;
  float best_err = INFINITY;
  for (uint8_t c = 0; c < 0x7f; ++c) {
    float err = std::fabs(fp8e4m3_to_f32(c) - a);
    if (err < best_err || (err == best_err && (c & 1) == 0)) {
      best_err = err;
      best = c;
    }
  }
  return sign | best;
}

TEST(Fp8Encode, MatchesNearestCodeSearch) {
  std::mt19937 rng(1);
  std::vector<float> vals = {0.f, -0.f, 448.f, 500.f, -1e9f, 1e-12f, 0.015625f, 0.0146484375f, 0.00048828125f,
                             0.0009765625f, 0.001953125f * 0.5f, 1.0625f, 1.1875f, 240.f, 464.f, 447.f};
  // Every code, and the midpoints between neighbours (ties).
  for (int c = 0; c < 0x7e; ++c) {
    float lo = fp8e4m3_to_f32(static_cast<uint8_t>(c)), hi = fp8e4m3_to_f32(static_cast<uint8_t>(c + 1));
    vals.push_back(lo);
    vals.push_back((lo + hi) / 2);
    vals.push_back(std::nextafter((lo + hi) / 2, 0.f));
    vals.push_back(std::nextafter((lo + hi) / 2, 1e9f));
  }
  std::lognormal_distribution<float> ln(-2.f, 3.f);
  for (int i = 0; i < 20000; ++i) vals.push_back(ln(rng) * ((rng() & 1) ? 1.f : -1.f));
  for (float v : vals) {
    for (float s : {1.f, -1.f}) {
      ASSERT_EQ(f32_to_fp8e4m3(v * s), fp8_nearest(v * s)) << "value " << v * s;
    }
  }
  for (int c = 0; c < 256; ++c) {
    if ((c & 0x7f) == 0x7f) continue;
    ASSERT_EQ(f32_to_fp8e4m3(fp8e4m3_to_f32(static_cast<uint8_t>(c))) & 0x7f, c & 0x7f) << c;
  }
}

}  // namespace
}  // namespace latent
