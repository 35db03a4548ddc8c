// Token selection where the logits are (Device::select_tokens on CUDA): a forward of a golden model with
// ForwardOptions::select gives, per logit row, what the host Sampler picks from the logits the same forward
// returns without it: greedy rows (cuda::argmax) exactly; temperature/top-p/top-k rows (cuda::sample with the
// position's uniform) exactly on these logits (no ties at a cut); rows with a repetition penalty (selected on
// the host after their logits come back) exactly; unwanted rows -1. Then the
// Scheduler over the CUDA model gives the same tokens with selection on the device and on the host, with drafts.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/deepseek_model.h"
#include "engine/scheduler.h"
#include "tests/cuda/cuda_test_util.h"
#include "tests/test_paths.h"

namespace latent::cuda {
namespace {

std::string golden_dir(const std::string& model) {
  const char* env = std::getenv("LATENT_TEST_DATA");
  return std::string(env && *env ? env : LATENT_TEST_DATA) + "/golden/" + model;
}

std::unique_ptr<DeepseekModel> load_cuda(const std::string& model) {
  ModelOptions o;
  o.device = *DeviceSpec::parse("cuda");
  auto m = DeepseekModel::load(golden_dir(model), o);
  EXPECT_TRUE(m.ok()) << (m.ok() ? "" : m.error().to_string());
  return m.ok() ? std::move(*m) : nullptr;
}

std::vector<int32_t> prompt_of(const std::string& model) {
  auto manifest = nlohmann::json::parse(std::ifstream(golden_dir(model) + "/golden/manifest.json"));
  return manifest["prompts"][0]["full_sequence_ids"].get<std::vector<int32_t>>();
}

TEST(CudaSelect, ForwardSelectsWhatTheHostPicksFromItsLogits) {
  LATENT_REQUIRE_GPU();
  auto model = load_cuda("v3-tiny");
  ASSERT_TRUE(model);
  const std::vector<int32_t> prompt = prompt_of("v3-tiny");
  SamplingParams greedy, nucleus, top_k, penalised;
  nucleus.temperature = 0.8f, nucleus.top_p = 0.9f, nucleus.seed = 3;
  top_k.temperature = 1.0f, top_k.top_k = 5, top_k.seed = 4;
  penalised.repetition_penalty = 1.5f;
  auto run = [&](const ForwardOptions& o) {
    auto cache = model->make_cache(4);
    EXPECT_TRUE(cache.ok());
    std::vector<BlockId> blocks;
    for (int64_t b = 0; b * KvCache::kBlockSize < static_cast<int64_t>(prompt.size()); ++b) blocks.push_back(*cache->allocate());
    SequenceInput in;
    in.tokens = prompt;
    in.block_table = blocks;
    in.all_logits = true;
    return model->forward(std::span<const SequenceInput>(&in, 1), *cache, o);
  };
  auto logits = run(ForwardOptions{});
  ASSERT_TRUE(logits.ok()) << logits.error().to_string();
  std::vector<TokenSelect> rows(prompt.size());
  const SamplingParams* kinds[] = {&greedy, &nucleus, &top_k, &penalised, nullptr};
  for (size_t r = 0; r < rows.size(); ++r) {
    rows[r].params = kinds[r % 5];
    rows[r].history = std::span<const int32_t>(prompt.data(), r + 1);
  }
  std::vector<int32_t> want;
  select_on_host(logits->logits.data(), logits->vocab_size, rows, &want);
  ForwardOptions o;
  o.select = rows;
  auto picked = run(o);
  ASSERT_TRUE(picked.ok()) << picked.error().to_string();
  EXPECT_TRUE(picked->logits.empty());
  EXPECT_EQ(picked->ids, want);
}

TEST(CudaSelect, SchedulerGivesTheSameTokensSelectingOnTheDeviceOrTheHost) {
  LATENT_REQUIRE_GPU();
  auto model = load_cuda("v3-tiny");
  ASSERT_TRUE(model);
  auto serving = serve_deepseek(*model);
  const std::vector<int32_t> prompt = prompt_of("v3-tiny");
  std::vector<std::vector<int32_t>> out[2];
  for (int on = 0; on < 2; ++on) {
    auto cache = model->make_cache(16);
    ASSERT_TRUE(cache.ok());
    SchedulerOptions opt;
    opt.select_on_device = on == 1;
    Scheduler sched(*serving, *cache, opt);
    std::vector<std::vector<int32_t>> got(6);
    for (size_t k = 0; k < got.size(); ++k) {
      Request r;
      r.prompt = std::vector<int32_t>(prompt.begin(), prompt.begin() + static_cast<long>(prompt.size() / 2));
      r.stop.max_tokens = 12;
      r.sampling.temperature = k < 2 ? 0.f : 0.7f;
      r.sampling.top_p = 0.9f;
      r.sampling.seed = 40 + k;
      r.spec.mode = k % 2 ? SpecMode::kMtp : SpecMode::kNgram;
      r.context_ids = prompt;
      std::vector<int32_t>* dst = &got[k];
      r.on_event = [dst](const Event& e) {
        if (e.kind == Event::Kind::kToken) dst->insert(dst->end(), e.tokens.begin(), e.tokens.end());
      };
      ASSERT_TRUE(sched.submit(std::move(r)).ok());
    }
    sched.run_until_idle();
    out[on] = got;
  }
  EXPECT_EQ(out[1], out[0]);
}

}  // namespace
}  // namespace latent::cuda
