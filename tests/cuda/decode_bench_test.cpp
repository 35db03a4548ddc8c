// Batch-1 decode throughput of DeepseekModel on the CUDA device with a real-size model, for scripts/gpu-check.
// Disabled in the normal test run (it needs a GPU and a real-size model); gpu-check runs it with
//   LATENT_GPU_DECODE_MODEL=DIR LATENT_GPU_DECODE_RANDOM=1 LATENT_GPU_DECODE_OUT=FILE test_cuda
//     --gtest_also_run_disabled_tests --gtest_filter='*DecodeThroughput*'
// where DIR holds only config.json and the weights are generated on the device (ModelOptions::
// random_weights_seed; without LATENT_GPU_DECODE_RANDOM, DIR is a checkpoint and is loaded).
// Each step is one token at position ctx - 1 over a ctx-token latent cache (its contents do not change the
// work), through DeepseekModel::forward as the scheduler calls it: step inputs in, logits back to the host;
// one CUDA graph per batch bucket (captured on the second step, replayed after), or eager launches with
// LATENT_CUDA_GRAPHS=0. The device's counters give kernel launches (or replayed graph nodes) per token.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "engine/deepseek_model.h"
#include "kernels/cpu/ops.h"
#include "kernels/cuda/device.h"
#include "tests/cuda/cuda_test_util.h"

namespace latent::cuda {
namespace {

TEST(CudaForward, DISABLED_DecodeThroughput) {
  const char* dir = std::getenv("LATENT_GPU_DECODE_MODEL");
  if (!dir) GTEST_SKIP() << "LATENT_GPU_DECODE_MODEL not set";
  LATENT_REQUIRE_GPU();
  // The serving default: a BF16 latent cache (batch 1 runs the exact f32 GEMV either way).
  cpu::set_linear_precision(cpu::LinearPrecision::kBf16Activations);
  const char* graphs_env = std::getenv("LATENT_CUDA_GRAPHS");
  const bool graphs = !(graphs_env && std::string(graphs_env) == "0");
  const auto t_load = std::chrono::steady_clock::now();
  const char* random = std::getenv("LATENT_GPU_DECODE_RANDOM");
  const bool on_device = random && std::string(random) == "1";
  ModelOptions o;
  o.device = *DeviceSpec::parse("cuda");
  o.load_mtp = false;
  if (on_device) o.random_weights_seed = 1;
  auto model = DeepseekModel::load(dir, o);
  ASSERT_TRUE(model.ok()) << model.error().to_string();
  const int64_t max_ctx = 16384;
  auto cache = (*model)->make_cache(max_ctx / 64 + 1);
  ASSERT_TRUE(cache.ok()) << cache.error().to_string();
  auto blocks = cache->allocate(max_ctx / 64 + 1);
  ASSERT_TRUE(blocks.ok());
  const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_load).count();
  std::string json = "{\"model\": \"" + std::string(dir) + "\", \"device\": \"" + (*model)->device().name() +
                     "\", \"weights\": \"" + (on_device ? "random, generated on the device" : "checkpoint") +
                     "\", \"load_s\": " + std::to_string(load_s) +
                     ", \"mode\": \"batch 1, DeepseekModel::forward on the CUDA device, exact f32 GEMV, " +
                     std::string(dtype_name((*model)->device().cache_dtype())) + " latent cache, logits to the host "
                     "per step, " + (graphs ? "a CUDA graph per batch bucket" : "eager launches (LATENT_CUDA_GRAPHS=0)") +
                     "\"";
  for (int64_t ctx : {2048, 16384}) {
    const std::vector<BlockId> table(blocks->begin(), blocks->begin() + ctx / 64);
    const auto step = [&](int32_t id) {
      const std::vector<int32_t> one = {id};
      SequenceInput s{one, ctx - 1, table, false};
      return (*model)->forward(std::span<const SequenceInput>(&s, 1), *cache);
    };
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(step(1).ok());
    const int steps = 32;
    const Device::Counters c0 = (*model)->device().counters();
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < steps; ++i) {
      auto r = step(1 + i);
      ASSERT_TRUE(r.ok()) << r.error().to_string();
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const Device::Counters c1 = (*model)->device().counters();
    const std::string key = std::string(graphs ? "graph" : "eager") + "_ctx_" + std::to_string(ctx);
    json += ", \"" + key + "\": {\"tok_s\": " + std::to_string(steps / s) +
            ", \"ms_per_token\": " + std::to_string(1000 * s / steps) +
            ", \"launches_per_token\": " + std::to_string(static_cast<double>(c1.launches - c0.launches) / steps) +
            ", \"graph_replays\": " + std::to_string(c1.graph_replays - c0.graph_replays) +
            ", \"capture_failures\": " + std::to_string(c1.capture_failures) + "}";
    std::printf("decode %s: %.1f tok/s, %.1f launches per token\n", key.c_str(), steps / s,
                static_cast<double>(c1.launches - c0.launches) / steps);
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
