// Serving on the GPU: the Scheduler (continuous batching, prefill chunks mixed with decodes, MTP and n-gram
// verification, prefix reuse) over DeepseekModel on the CUDA device, sampling on the host logits. Greedy ids
// must be the golden ones, as on the CPU (tests/engine/serving_test.cpp), and every block comes back.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "engine/deepseek_model.h"
#include "engine/scheduler.h"
#include "engine/scheduler_model.h"
#include "kernels/cpu/ops.h"
#include "tests/cuda/cuda_test_util.h"
#include "tests/test_paths.h"

namespace latent::cuda {
namespace {

std::string golden_dir(const std::string& model) {
  const char* env = std::getenv("LATENT_TEST_DATA");
  return std::string(env && *env ? env : LATENT_TEST_DATA) + "/golden/" + model;
}

struct Collected {
  std::vector<int32_t> tokens;
  bool done = false;
  std::optional<Error> error;
};

class CudaServing : public ::testing::TestWithParam<std::string> {};

TEST_P(CudaServing, GreedyIdsAreTheGoldenOnesForEverySpecMode) {
  LATENT_REQUIRE_GPU();
  cpu::set_linear_precision(cpu::LinearPrecision::kExact);
  const std::string dir = golden_dir(GetParam());
  ModelOptions o;
  o.device = *DeviceSpec::parse("cuda");
  auto model = DeepseekModel::load(dir, o);
  ASSERT_TRUE(model.ok()) << model.error().to_string();
  auto serving = serve_deepseek(**model);
  std::ifstream in(dir + "/golden/manifest.json");
  const nlohmann::json manifest = nlohmann::json::parse(in);
  for (SpecMode mode : {SpecMode::kNone, SpecMode::kMtp, SpecMode::kNgram}) {
    auto cache = (*model)->make_cache(16);
    ASSERT_TRUE(cache.ok()) << cache.error().to_string();
    SchedulerOptions opt;
    opt.prefill_chunk = 16;  // the 33-token prompt prefills in three chunks beside the others' decodes
    Scheduler sched(*serving, *cache, opt);
    std::vector<Collected> got(manifest["prompts"].size());
    size_t p = 0;
    for (const auto& pr : manifest["prompts"]) {
      Request r;
      r.prompt = pr["prompt_ids"].get<std::vector<int32_t>>();
      r.stop.max_tokens = static_cast<int>(pr["generated_ids"].size());
      r.spec.mode = mode;
      if (mode == SpecMode::kNgram) r.context_ids = pr["full_sequence_ids"].get<std::vector<int32_t>>();
      Collected* out = &got[p++];
      r.on_event = [out](const Event& e) {
        if (e.kind == Event::Kind::kToken) out->tokens.insert(out->tokens.end(), e.tokens.begin(), e.tokens.end());
        if (e.kind == Event::Kind::kDone) out->done = true;
        if (e.kind == Event::Kind::kError) out->error = e.error;
      };
      ASSERT_TRUE(sched.submit(std::move(r)).ok());
    }
    sched.run_until_idle();
    p = 0;
    for (const auto& pr : manifest["prompts"]) {
      const std::string tag = GetParam() + " " + spec_mode_name(mode) + " p" + std::to_string(p);
      const Collected& c = got[p++];
      ASSERT_FALSE(c.error) << tag << ": " << c.error->to_string();
      EXPECT_TRUE(c.done) << tag;
      EXPECT_EQ(c.tokens, pr["generated_ids"].get<std::vector<int32_t>>()) << tag;
    }
    sched.prefix_cache().clear();
    EXPECT_EQ(cache->free_count(), cache->capacity()) << GetParam() << " " << spec_mode_name(mode);
  }
}

INSTANTIATE_TEST_SUITE_P(Golden, CudaServing, ::testing::Values("v2lite-tiny", "v3-tiny"), [](const auto& info) {
  std::string s = info.param;
  for (char& ch : s) if (ch == '-') ch = '_';
  return s;
});

}  // namespace
}  // namespace latent::cuda
