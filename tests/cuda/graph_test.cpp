// CUDA graphs per decode bucket (engine/cuda/device_cuda.cpp): a greedy decode of several sequences in lockstep
// with graphs gives the ids of the same decode without them (LATENT_CUDA_GRAPHS=0) and logits within float
// rounding (the graph's split plan is made for the longest context, the eager one for this step's, so the
// softmax merges in another order); the device counts captures and replays. Prints kernel launches per decoded
// token for both (scripts/gpu-check reports the line).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/deepseek_model.h"
#include "engine/scheduler.h"
#include "kernels/cpu/ops.h"
#include "tests/cuda/cuda_test_util.h"
#include "tests/test_paths.h"

namespace latent::cuda {
namespace {

std::string golden_dir(const std::string& model) {
  const char* env = std::getenv("LATENT_TEST_DATA");
  return std::string(env && *env ? env : LATENT_TEST_DATA) + "/golden/" + model;
}

std::unique_ptr<DeepseekModel> load_cuda(const std::string& dir, bool graphs) {
  if (graphs) {
    unsetenv("LATENT_CUDA_GRAPHS");
  } else {
    setenv("LATENT_CUDA_GRAPHS", "0", 1);  // read when the device is made
  }
  ModelOptions o;
  o.device = *DeviceSpec::parse("cuda");
  auto m = DeepseekModel::load(dir, o);
  unsetenv("LATENT_CUDA_GRAPHS");
  EXPECT_TRUE(m.ok()) << (m.ok() ? "" : m.error().to_string());
  return m.ok() ? std::move(*m) : nullptr;
}

int32_t testing_argmax(const float* x, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i) {
    if (x[i] > x[best]) best = i;
  }
  return static_cast<int32_t>(best);
}

struct Decode {
  std::vector<std::vector<int32_t>> ids;  // per step, per sequence
  std::vector<std::vector<float>> logits;  // per step [B, V]
  Device::Counters before, after;
};

// Prefills B prompts (each alone), then decodes `steps` greedy tokens for all B in one forward per step.
Decode run(DeepseekModel& model, const std::vector<std::vector<int32_t>>& prompts, int steps) {
  Decode out;
  const int64_t V = model.config().vocab_size;
  auto cache = model.make_cache(64);
  EXPECT_TRUE(cache.ok());
  if (!cache.ok()) return out;
  const size_t B = prompts.size();
  std::vector<std::vector<BlockId>> blocks(B);
  std::vector<int64_t> cached(B, 0);
  std::vector<int32_t> next(B);
  for (size_t s = 0; s < B; ++s) {
    auto b = cache->allocate(KvCache::blocks_needed(static_cast<int64_t>(prompts[s].size()) + steps + 1));
    EXPECT_TRUE(b.ok());
    if (!b.ok()) return out;
    blocks[s] = *b;
    SequenceInput in{prompts[s], 0, blocks[s], false};
    auto r = model.forward(std::span<const SequenceInput>(&in, 1), *cache);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().to_string());
    if (!r.ok()) return out;
    next[s] = testing_argmax(r->logits.data(), V);
    cached[s] = static_cast<int64_t>(prompts[s].size());
  }
  out.before = model.device().counters();
  for (int step = 0; step < steps; ++step) {
    std::vector<std::vector<int32_t>> tok(B);
    std::vector<SequenceInput> batch;
    for (size_t s = 0; s < B; ++s) {
      tok[s] = {next[s]};
      batch.push_back(SequenceInput{tok[s], cached[s], blocks[s], false});
    }
    auto r = model.forward(batch, *cache);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().to_string());
    if (!r.ok()) return out;
    std::vector<int32_t> ids(B);
    for (size_t s = 0; s < B; ++s) {
      ids[s] = testing_argmax(r->logits_row(static_cast<int64_t>(s)), V);
      next[s] = ids[s];
      cached[s] += 1;
    }
    out.ids.push_back(ids);
    out.logits.push_back(r->logits);
  }
  out.after = model.device().counters();
  for (auto& b : blocks) {
    for (BlockId id : b) (void)cache->unref(id);
  }
  return out;
}

TEST(CudaGraphs, ReplayGivesTheEagerIdsAndLogits) {
  LATENT_REQUIRE_GPU();
  cpu::set_linear_precision(cpu::LinearPrecision::kExact);
  const std::string dir = golden_dir("v3-tiny");
  std::ifstream in(dir + "/golden/manifest.json");
  const nlohmann::json manifest = nlohmann::json::parse(in);
  std::vector<std::vector<int32_t>> prompts;
  for (const auto& p : manifest["prompts"]) prompts.push_back(p["prompt_ids"].get<std::vector<int32_t>>());
  ASSERT_GE(prompts.size(), 2u);
  auto eager = load_cuda(dir, false);
  auto graphs = load_cuda(dir, true);
  ASSERT_TRUE(eager && graphs);
  constexpr int kSteps = 8;
  for (size_t B : {size_t{1}, prompts.size()}) {
    const std::vector<std::vector<int32_t>> batch(prompts.begin(), prompts.begin() + static_cast<int64_t>(B));
    const Decode e = run(*eager, batch, kSteps);
    const Decode g = run(*graphs, batch, kSteps);
    ASSERT_EQ(e.ids.size(), static_cast<size_t>(kSteps));
    ASSERT_EQ(g.ids.size(), static_cast<size_t>(kSteps));
    for (int s = 0; s < kSteps; ++s) {
      EXPECT_EQ(g.ids[s], e.ids[s]) << "batch " << B << " step " << s;
      EXPECT_LT(testing::rel_err(g.logits[s], e.logits[s]), 1e-4) << "batch " << B << " step " << s;
    }
    // The bucket's first step runs eagerly, the second is captured, the rest replay it. A one-token prompt's
    // prefill (one token, its last row's logits) is a step of batch 1's decode bucket, and then its warm-up: the
    // first decode is captured already.
    const bool prefill_warms = B == 1 && batch[0].size() == 1;
    EXPECT_EQ(g.after.graph_captures - g.before.graph_captures, 1) << "batch " << B;
    EXPECT_EQ(g.after.graph_replays - g.before.graph_replays, kSteps - (prefill_warms ? 1 : 2)) << "batch " << B;
    EXPECT_EQ(g.after.capture_failures, 0);
    EXPECT_EQ(e.after.graph_captures + e.after.graph_replays, 0) << "LATENT_CUDA_GRAPHS=0 runs eagerly";
    const double tokens = static_cast<double>(kSteps * B);
    std::printf("[ launches ] v3-tiny batch %zu: eager %.1f kernels per decoded token, graphs %.1f (replayed graph "
                "nodes) in %.2f graph launches per token\n",
                B, (e.after.launches - e.before.launches) / tokens, (g.after.launches - g.before.launches) / tokens,
                (g.after.graph_replays - g.before.graph_replays + g.after.graph_captures - g.before.graph_captures) / tokens);
  }
}

// Verification steps run as graphs too: one request whose context holds its own continuation drafts 2 n-gram
// tokens a step, so the steps after the prefill feed 3 tokens with a row each (uniform steps of one bucket); with
// graphs the tokens are those of the eager run (the golden ones), and some of those steps were captured and
// replayed.
TEST(CudaGraphs, VerificationStepsReplayWithTheEagerTokens) {
  LATENT_REQUIRE_GPU();
  cpu::set_linear_precision(cpu::LinearPrecision::kExact);
  const std::string dir = golden_dir("v3-tiny");
  std::ifstream in(dir + "/golden/manifest.json");
  const nlohmann::json manifest = nlohmann::json::parse(in);
  const auto prompt = manifest["prompts"][0]["prompt_ids"].get<std::vector<int32_t>>();
  const auto full = manifest["prompts"][0]["full_sequence_ids"].get<std::vector<int32_t>>();
  std::vector<int32_t> tokens[2];
  Device::Counters used[2];
  for (int graphs = 0; graphs < 2; ++graphs) {
    auto model = load_cuda(dir, graphs == 1);
    ASSERT_TRUE(model);
    auto serving = serve_deepseek(*model);
    auto cache = model->make_cache(16);
    ASSERT_TRUE(cache.ok());
    SchedulerOptions opt;
    int uniform = 0;  // steps that fed the last token and 2 drafts: the bucket's warm-up, capture, replays
    opt.on_step = [&uniform](const StepBatch& b) { uniform += b.members.size() == 1 && b.members[0].fed == 3; };
    Scheduler sched(*serving, *cache, opt);
    Request r;
    r.prompt = prompt;
    r.stop.max_tokens = static_cast<int>(full.size() - prompt.size());
    r.spec.mode = SpecMode::kNgram;
    r.spec.ngram_max_draft = 2;
    r.context_ids = full;
    std::vector<int32_t>* dst = &tokens[graphs];
    r.on_event = [dst](const Event& e) {
      if (e.kind == Event::Kind::kToken) dst->insert(dst->end(), e.tokens.begin(), e.tokens.end());
    };
    const Device::Counters before = model->device().counters();
    ASSERT_TRUE(sched.submit(std::move(r)).ok());
    sched.run_until_idle();
    const Device::Counters after = model->device().counters();
    EXPECT_GE(uniform, 3) << "enough verification steps of one shape to warm, capture and replay a graph";
    used[graphs].graph_captures = after.graph_captures - before.graph_captures;
    used[graphs].graph_replays = after.graph_replays - before.graph_replays;
    used[graphs].capture_failures = after.capture_failures - before.capture_failures;
  }
  EXPECT_EQ(tokens[1], tokens[0]);
  EXPECT_EQ(tokens[0], std::vector<int32_t>(full.begin() + static_cast<long>(prompt.size()), full.end()));
  EXPECT_GE(used[1].graph_captures, 1);
  EXPECT_GE(used[1].graph_replays, 1);
  EXPECT_EQ(used[1].capture_failures, 0);
  EXPECT_EQ(used[0].graph_captures + used[0].graph_replays, 0);
}

}  // namespace
}  // namespace latent::cuda
