// Batch-1 decode throughput of GpuDeepseek on a real-size checkpoint, for scripts/gpu-check. Disabled in the
// normal test run (it needs a GPU and a real-size model); gpu-check runs it with
//   LATENT_GPU_DECODE_MODEL=DIR LATENT_GPU_DECODE_RANDOM=1 LATENT_GPU_DECODE_OUT=FILE test_cuda
//     --gtest_also_run_disabled_tests --gtest_filter='*DecodeThroughput*'
// where DIR holds only config.json and the weights are generated on the device (without
// LATENT_GPU_DECODE_RANDOM, DIR is a checkpoint and is loaded)'
// Each step is one token at position ctx - 1 over a ctx-token latent cache (its contents do not change the
// work); a host round trip per step (ids in, logits out), eager launches, then the captured decode graph.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "kernels/cuda/device.h"
#include "tests/cuda/cuda_test_util.h"
#include "tests/cuda/gpu_forward.h"

namespace latent::cuda {
namespace {

TEST(CudaForward, DISABLED_DecodeThroughput) {
  const char* dir = std::getenv("LATENT_GPU_DECODE_MODEL");
  if (!dir) GTEST_SKIP() << "LATENT_GPU_DECODE_MODEL not set";
  LATENT_REQUIRE_GPU();
  const auto t_load = std::chrono::steady_clock::now();
  // LATENT_GPU_DECODE_RANDOM=1: DIR holds only config.json; the weights are generated on the device.
  const char* random = std::getenv("LATENT_GPU_DECODE_RANDOM");
  const bool on_device = random && std::string(random) == "1";
  auto model = on_device ? GpuDeepseek::random(dir, 1, 16384 / 64 + 1) : GpuDeepseek::load(dir, 1, 16384 / 64 + 1);
  ASSERT_TRUE(model.ok()) << model.error().to_string();
  const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_load).count();
  std::string json = "{\"model\": \"" + std::string(dir) + "\", \"weights\": \"" +
                     (on_device ? "random, generated on the device" : "checkpoint") +
                     "\", \"load_s\": " + std::to_string(load_s) +
                     ", \"mode\": \"batch 1, exact f32 GEMV, host sync per step; eager launches, then one captured CUDA graph "
                     "planned for the whole 16k cache\"";
  for (bool graph : {false, true}) {
    for (int64_t ctx : {2048, 16384}) {
      std::vector<int32_t> table(static_cast<size_t>(ctx / 64));
      for (size_t b = 0; b < table.size(); ++b) table[b] = static_cast<int32_t>(b);
      for (int i = 0; i < 3; ++i) ASSERT_TRUE((*model)->forward({1}, ctx - 1, table, false, graph).ok());
      const int steps = 32;
      const auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < steps; ++i) ASSERT_TRUE((*model)->forward({1 + i}, ctx - 1, table, false, graph).ok());
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const std::string key = std::string(graph ? "graph" : "eager") + "_ctx_" + std::to_string(ctx);
      json += ", \"" + key + "\": {\"tok_s\": " + std::to_string(steps / s) +
              ", \"ms_per_token\": " + std::to_string(1000 * s / steps) + "}";
      std::printf("decode %s: %.1f tok/s\n", key.c_str(), steps / s);
    }
  }
  json += "}\n";
  if (const char* out = std::getenv("LATENT_GPU_DECODE_OUT")) {
    FILE* f = std::fopen(out, "w");
    ASSERT_NE(f, nullptr) << out;
    std::fputs(json.c_str(), f);
    std::fclose(f);
  }
}

}  // namespace
}  // namespace latent::cuda
