#include "kernels/cpu/cpu_features.h"

#include <gtest/gtest.h>

namespace latent::cpu {
namespace {

TEST(CpuFeatures, ConsistentHierarchy) {
  const CpuFeatures& f = cpu_features();
  EXPECT_TRUE(!f.avx512bf16 || f.avx512f);
  EXPECT_TRUE(!f.amx_bf16 || f.amx_tile);
  EXPECT_TRUE(!f.avx512f || f.avx2);
  EXPECT_NE(std::string(cpu_features_string()), "");
}

}  // namespace
}  // namespace latent::cpu
