#include "engine/npy.h"

#include <gtest/gtest.h>

#include <filesystem>
#include "tests/test_paths.h"

namespace latent {
namespace {

TEST(Npy, RoundTripsFloat32) {
  std::string path = (std::filesystem::temp_directory_path() / "latent_npy_test.npy").string();
  std::vector<float> data = {1.f, -2.5f, 3.f, 4.f, 5.f, 6.f};
  ASSERT_TRUE(write_npy_f32(path, data.data(), {2, 3}).ok());
  auto a = read_npy(path);
  ASSERT_TRUE(a.ok()) << a.error().to_string();
  EXPECT_EQ(a->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(a->f32, data);
  std::filesystem::remove(path);
}

TEST(Npy, ReadsGoldenManifestArrays) {
  auto a = read_npy(std::string(LATENT_TEST_DATA) + "/golden/v3-tiny/golden/p0.prefill_logits.npy");
  ASSERT_TRUE(a.ok()) << a.error().to_string();
  ASSERT_EQ(a->shape.size(), 2u);
  EXPECT_EQ(a->shape[1], 512);
}

TEST(Npy, MissingFileIsAClearError) {
  auto a = read_npy("/nonexistent/x.npy");
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.error().message.find("/nonexistent/x.npy"), std::string::npos);
}

}  // namespace
}  // namespace latent
