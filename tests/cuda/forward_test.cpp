// The whole forward pass on the GPU (tests/cuda/gpu_forward.h) against the golden logits of
// tests/data/golden: a prefill of each prompt, then 16 single-token decode steps through the device cache,
// eagerly and through the captured decode graph.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "engine/npy.h"
#include "kernels/cuda/device.h"
#include "tests/cuda/cuda_test_util.h"
#include "tests/cuda/gpu_forward.h"

namespace latent::cuda {
namespace {

// $LATENT_TEST_DATA first: binaries built here run on the GPU machine from another checkout path.
std::string golden_dir(const std::string& model) {
  const char* env = std::getenv("LATENT_TEST_DATA");
  return std::string(env && *env ? env : LATENT_TEST_DATA) + "/golden/" + model;
}

double max_abs_diff(const float* a, const float* b, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; ++i) m = std::max(m, std::fabs(static_cast<double>(a[i]) - b[i]));
  return m;
}

class CudaForward : public ::testing::TestWithParam<std::string> {};

TEST_P(CudaForward, MatchesGoldenPrefillAndDecodeLogits) {
  LATENT_REQUIRE_GPU();
  const std::string dir = golden_dir(GetParam());
  auto model = GpuDeepseek::load(dir, 64, 8);
  ASSERT_TRUE(model.ok()) << model.error().to_string();
  std::ifstream in(dir + "/golden/manifest.json");
  const nlohmann::json manifest = nlohmann::json::parse(in);
  const int64_t V = (*model)->vocab();
  int prompt = 0;
  for (const auto& p : manifest["prompts"]) {
    const std::string tag = GetParam() + " p" + std::to_string(prompt++);
    const std::vector<int32_t> ids = p["prompt_ids"].get<std::vector<int32_t>>();
    const std::vector<int32_t> gen = p["generated_ids"].get<std::vector<int32_t>>();
    const std::vector<int32_t> table = {3, 0, 5, 1};  // scrambled blocks: paging is exercised
    auto pre = read_npy(dir + "/golden/" + p["files"]["prefill_logits"]["file"].get<std::string>());
    auto dec = read_npy(dir + "/golden/" + p["files"]["decode_logits"]["file"].get<std::string>());
    ASSERT_TRUE(pre.ok() && dec.ok()) << tag;
    for (bool graph : {false, true}) {  // decode eagerly, then again replaying the captured CUDA graph
      const std::string mode = graph ? " (graph)" : " (eager)";
      auto logits = (*model)->forward(ids, 0, table, true);
      ASSERT_TRUE(logits.ok()) << logits.error().to_string();
      EXPECT_LT(max_abs_diff(logits->data(), pre->f32.data(), pre->f32.size()), 1e-4) << tag << " prefill";
      const int64_t L = static_cast<int64_t>(ids.size());
      for (size_t j = 0; j < gen.size(); ++j) {
        auto step = (*model)->forward({gen[j]}, L + static_cast<int64_t>(j), table, false, graph);
        ASSERT_TRUE(step.ok()) << step.error().to_string();
        EXPECT_LT(max_abs_diff(step->data(), dec->f32.data() + j * V, static_cast<size_t>(V)), 1e-4)
            << tag << mode << " decode step " << j;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Golden, CudaForward, ::testing::Values("v2lite-tiny", "v3-tiny", "v3-tiny-bf16"),
                         [](const auto& info) {
                           std::string s = info.param;
                           for (char& ch : s) if (ch == '-') ch = '_';
                           return s;
                         });

}  // namespace
}  // namespace latent::cuda
