// Each CUDA op against the CPU backend (kernels/cpu/ops.h, engine/rope.h) on random data.
#include "kernels/cuda/ops.h"

#include <gtest/gtest.h>

#include <ostream>

#include <algorithm>
#include <vector>

#include "engine/config.h"
#include "engine/rope.h"
#include "tests/cuda/cuda_test_util.h"

namespace latent::cuda {
namespace {

using testing::HostWeight;
using testing::random_floats;
using testing::rel_err;

struct LinearCase {
  DType dtype;
  int64_t n;
};
void PrintTo(const LinearCase& c, std::ostream* os) { *os << dtype_name(c.dtype) << " n=" << c.n; }

class CudaLinear : public ::testing::TestWithParam<LinearCase> {};

TEST_P(CudaLinear, MatchesCpuLinear) {
  LATENT_REQUIRE_GPU();
  const auto [dtype, n] = GetParam();
  const int64_t rows = 200, cols = 264;  // not multiples of 128: partial FP8 scale blocks
  HostWeight w(dtype, rows, cols, 7);
  auto arena = DeviceArena::create(size_t{1} << 24);
  ASSERT_TRUE(arena.ok());
  auto dw = arena->upload(w.view);
  ASSERT_TRUE(dw.ok()) << dw.error().to_string();
  const std::vector<float> x = random_floats(n * cols, 3);
  std::vector<float> want(static_cast<size_t>(n * rows));
  cpu::linear(x.data(), n, w.view, want.data());

  auto blas = Blas::create(nullptr, n * cols);
  ASSERT_TRUE(blas.ok());
  DeviceArray<float> dx(x), dy(n * rows);
  ASSERT_TRUE(linear(*blas, dx.data(), n, *dw, dy.data()).ok());
  const bool tensor_cores = n >= blas->tensor_core_min_tokens && dtype != DType::kF8E4M3 && dtype != DType::kF32;
  EXPECT_LT(rel_err(dy.to_host(), want), tensor_cores ? 2e-2 : 1e-5) << "dtype " << dtype_name(dtype) << " n " << n;
}

INSTANTIATE_TEST_SUITE_P(Dtypes, CudaLinear,
                         ::testing::Values(LinearCase{DType::kF32, 1}, LinearCase{DType::kBF16, 1},
                                           LinearCase{DType::kBF16, 5}, LinearCase{DType::kBF16, 40},
                                           LinearCase{DType::kF32, 40}, LinearCase{DType::kF8E4M3, 1},
                                           LinearCase{DType::kF8E4M3, 9}),
                         [](const ::testing::TestParamInfo<LinearCase>& info) {
                           // A readable, stable name (the default prints the struct's bytes, padding included).
                           return std::string(dtype_name(info.param.dtype)) + "_n" + std::to_string(info.param.n);
                         });

TEST(CudaOps, RmsNormMatchesCpu) {
  LATENT_REQUIRE_GPU();
  const int64_t n = 3, d = 2048;
  const std::vector<float> x = random_floats(n * d, 1);
  HostWeight g(DType::kBF16, 1, d, 2);
  std::vector<float> want(static_cast<size_t>(n * d));
  cpu::rms_norm(x.data(), n, d, g.view.data, DType::kBF16, 1e-6f, want.data());
  DeviceArray<float> dx(x), dy(n * d);
  DeviceArray<uint8_t> dg(g.bytes);
  ASSERT_TRUE(rms_norm(dx.data(), n, d, dg.data(), DType::kBF16, 1e-6f, dy.data(), nullptr).ok());
  EXPECT_LT(rel_err(dy.to_host(), want), 1e-6);
}

TEST(CudaOps, StridedRmsNormTouchesOnlyItsColumnsAndAddAccumulates) {
  LATENT_REQUIRE_GPU();
  const int64_t n = 2, d = 512, ld = 576;
  const std::vector<float> x = random_floats(n * ld, 3), gain = random_floats(d, 4);
  std::vector<float> want = x;
  for (int64_t t = 0; t < n; ++t) cpu::rms_norm(x.data() + t * ld, 1, d, gain.data(), DType::kF32, 1e-6f, want.data() + t * ld);
  DeviceArray<float> dx(x), dg(gain);
  ASSERT_TRUE(rms_norm_strided(dx.data(), ld, n, d, dg.data(), DType::kF32, 1e-6f, dx.data(), ld, nullptr).ok());
  EXPECT_LT(rel_err(dx.to_host(), want), 1e-6);
  DeviceArray<float> da(x);
  ASSERT_TRUE(add_inplace(da.data(), n * ld, dx.data(), nullptr).ok());
  for (size_t i = 0; i < want.size(); ++i) want[i] += x[i];
  EXPECT_LT(rel_err(dx.to_host(), want), 1e-6);
}

TEST(CudaOps, EmbeddingMatchesCpuRows) {
  LATENT_REQUIRE_GPU();
  HostWeight table(DType::kBF16, 50, 64, 4);
  auto arena = DeviceArena::create(size_t{1} << 20);
  ASSERT_TRUE(arena.ok());
  auto dt = arena->upload(table.view);
  ASSERT_TRUE(dt.ok());
  const std::vector<int32_t> ids = {3, 49, 0, 3};
  std::vector<float> want(ids.size() * 64);
  for (size_t i = 0; i < ids.size(); ++i) cpu::embedding_row(table.view, ids[i], want.data() + i * 64);
  DeviceArray<int32_t> di(ids);
  DeviceArray<float> out(static_cast<int64_t>(want.size()));
  ASSERT_TRUE(embedding(*dt, di.data(), 4, out.data(), nullptr).ok());
  EXPECT_EQ(out.to_host(), want);
}

TEST(CudaOps, YarnRopeMatchesEngineRope) {
  LATENT_REQUIRE_GPU();
  const int64_t n = 4, H = 3, nope = 16, rope_dim = 64, stride = H * (nope + rope_dim);
  const std::vector<float> inv = yarn_inv_freq(rope_dim, 10000.0, 40.0, 4096, 32.0, 1.0);
  const std::vector<int32_t> pos = {0, 7, 4095, 100000};
  // 1: no magnitude factor; 1.3689: yarn_get_mscale(40, 1) / yarn_get_mscale(40, 0), a YaRN config with
  // mscale 1 and no mscale_all_dim (DeepSeek-V3's has both 1, so its factor is 1 again).
  for (const float mscale : {1.0f, static_cast<float>(yarn_get_mscale(40.0, 1.0) / yarn_get_mscale(40.0, 0.0))}) {
    SCOPED_TRACE(mscale);
    std::vector<float> x = random_floats(n * stride, 5), want = x;
    std::vector<float> cs(static_cast<size_t>(rope_dim));
    for (int64_t t = 0; t < n; ++t) {
      rope_cos_sin(inv, pos[static_cast<size_t>(t)], cs.data(), mscale);
      for (int64_t h = 0; h < H; ++h) rope_rotate(want.data() + t * stride + h * (nope + rope_dim) + nope, rope_dim, cs.data());
    }
    DeviceArray<float> dx(x), dinv(inv);
    DeviceArray<int32_t> dpos(pos);
    ASSERT_TRUE(rope(dx.data(), n, H, stride, nope + rope_dim, nope, rope_dim, dpos.data(), dinv.data(), mscale, nullptr).ok());
    EXPECT_LT(rel_err(dx.to_host(), want), 1e-6);
  }
}

TEST(CudaOps, SwigluMatchesCpu) {
  LATENT_REQUIRE_GPU();
  const int64_t n = 1000;
  const std::vector<float> g = random_floats(n, 1, -6.f, 6.f), u = random_floats(n, 2);
  std::vector<float> want(static_cast<size_t>(n));
  cpu::swiglu(g.data(), u.data(), n, want.data());
  DeviceArray<float> dg(g), du(u), out(n);
  ASSERT_TRUE(swiglu(dg.data(), du.data(), n, out.data(), nullptr).ok());
  EXPECT_LT(rel_err(out.to_host(), want), 1e-6);
}

TEST(CudaOps, RejectsWidthsTheKernelsCannotVectorize) {
  LATENT_REQUIRE_GPU();
  HostWeight w(DType::kBF16, 8, 12, 1);
  auto arena = DeviceArena::create(size_t{1} << 16);
  ASSERT_TRUE(arena.ok());
  auto dw = arena->upload(w.view);
  ASSERT_TRUE(dw.ok());
  auto blas = Blas::create(nullptr, 0);
  ASSERT_TRUE(blas.ok());
  DeviceArray<float> x(12), y(8);
  const Status st = linear(*blas, x.data(), 1, *dw, y.data());
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("cols % 8"), std::string::npos) << st.error().message;
}

}  // namespace
}  // namespace latent::cuda
