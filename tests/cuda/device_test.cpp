#include "kernels/cuda/device.h"

#include <gtest/gtest.h>

#include "tests/cuda/cuda_test_util.h"

namespace latent::cuda {
namespace {

TEST(CudaDevice, DescribesEveryDeviceOrSkips) {
  LATENT_REQUIRE_GPU();
  const int n = device_count();
  for (int i = 0; i < n; ++i) EXPECT_FALSE(device_description(i).empty());
}

}  // namespace
}  // namespace latent::cuda
