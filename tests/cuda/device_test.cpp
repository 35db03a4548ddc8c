#include "kernels/cuda/device.h"

#include <gtest/gtest.h>

namespace latent::cuda {
namespace {

TEST(CudaDevice, DescribesEveryDeviceOrSkips) {
  int n = device_count();
  if (n == 0) GTEST_SKIP() << "no CUDA device present";
  for (int i = 0; i < n; ++i) EXPECT_FALSE(device_description(i).empty());
}

}  // namespace
}  // namespace latent::cuda
