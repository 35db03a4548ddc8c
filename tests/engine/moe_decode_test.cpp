// The two ways a few tokens (decode) run the MoE experts (engine/moe.h MoeDecode, LATENT_MOE_DECODE) give one
// result bit for bit: every expert's gate/up then every down as two row-chunked pool jobs, or each expert whole
// on the thread that claims it (the shared experts one more unit). Both precisions, a 2-thread pool, the golden
// MoE models and the demo model; decode steps of 1 token and a 3-token step (several tokens per expert).
#include <gtest/gtest.h>

#include "engine/moe.h"
#include "kernels/cpu/ops.h"
#include "tests/engine/model_test_util.h"
#include "tests/test_paths.h"

namespace latent {
namespace {

class ModeGuard {
 public:
  ModeGuard() : precision_(cpu::linear_precision()), moe_(moe_decode()) {}
  ~ModeGuard() {
    cpu::set_linear_precision(precision_);
    set_moe_decode(moe_);
  }

 private:
  cpu::LinearPrecision precision_;
  MoeDecode moe_;
};

// Prefill `prompt`, then `steps` greedy single-token steps, then one 3-token step; every step's logits.
std::vector<std::vector<float>> decode_logits(DeepseekModel& model, const std::vector<int32_t>& prompt, int steps,
                                              MoeDecode mode, cpu::LinearPrecision p) {
  ModeGuard guard;
  cpu::set_linear_precision(p);
  set_moe_decode(mode);
  const int64_t V = model.config().vocab_size, L = static_cast<int64_t>(prompt.size());
  auto cache = KvCache::for_model(model.config(), KvCache::blocks_needed(L + steps + 4) + 1);
  EXPECT_TRUE(cache.ok());
  test::SequenceRunner seq(model, *cache, L + steps + 4);
  ForwardResult r = seq.feed(prompt, false);
  int32_t next = test::argmax(r.logits.data(), V);
  std::vector<std::vector<float>> out;
  for (int j = 0; j < steps; ++j) {
    r = seq.feed({next}, false);
    out.push_back(r.logits);
    next = test::argmax(r.logits.data(), V);
  }
  r = seq.feed({next, static_cast<int32_t>((next + 1) % V), static_cast<int32_t>((next + 7) % V)}, true);
  out.push_back(r.logits);
  return out;
}

void expect_modes_agree(const std::string& dir, const std::string& tag) {
  auto model = test::load_model(dir);
  ASSERT_NE(model, nullptr);
  ASSERT_GT(model->config().n_routed_experts, 0) << tag << ": expected a MoE model";
  const int64_t V = model->config().vocab_size;
  std::vector<int32_t> prompt;
  for (int i = 0; i < 11; ++i) prompt.push_back(static_cast<int32_t>((i * 97 + 13) % V));
  for (auto p : {cpu::LinearPrecision::kExact, cpu::LinearPrecision::kBf16Activations}) {
    const auto grouped = decode_logits(*model, prompt, 6, MoeDecode::kGrouped, p);
    const auto whole = decode_logits(*model, prompt, 6, MoeDecode::kWholeExperts, p);
    ASSERT_EQ(grouped.size(), whole.size());
    for (size_t j = 0; j < grouped.size(); ++j) {
      ASSERT_EQ(grouped[j].size(), whole[j].size());
      for (size_t i = 0; i < grouped[j].size(); ++i) {
        ASSERT_EQ(grouped[j][i], whole[j][i]) << tag << " precision " << cpu::linear_precision_name(p) << " step " << j
                                              << " logit " << i;
      }
    }
  }
}

TEST(MoeDecode, WholeExpertsAndGroupedJobsAgreeBitForBit) {
  for (const char* name : {"v2lite-tiny", "v3-tiny", "v3-tiny-bf16"}) expect_modes_agree(test::golden_dir(name), name);
  expect_modes_agree(std::string(LATENT_SOURCE_DIR) + "/models/demo", "demo");
}

TEST(MoeDecode, NamesAndSetting) {
  ModeGuard guard;
  set_moe_decode(MoeDecode::kWholeExperts);
  EXPECT_EQ(moe_decode(), MoeDecode::kWholeExperts);
  EXPECT_STREQ(moe_decode_name(moe_decode()), "experts");
  set_moe_decode(MoeDecode::kGrouped);
  EXPECT_STREQ(moe_decode_name(moe_decode()), "grouped");
}

}  // namespace
}  // namespace latent
