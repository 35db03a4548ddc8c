// The fast CPU precision (BF16 activations, the default) against the exact float32 path on the golden models
// and the demo model: greedy ids identical (and equal to the golden ids), logits within a stated tolerance.
// The golden tests themselves run on the exact path (golden_test.cpp sets it; ctest's environment sets
// LATENT_LINEAR_PRECISION=exact for every test process).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "kernels/cpu/ops.h"
#include "tests/engine/model_test_util.h"

namespace latent {
namespace {

// Logit tolerance of the fast path against the exact one: |Δ| <= kAbs + kRel * max |exact logit| of the row.
// BF16 rounding of each linear's input is a relative error of at most 2^-9 per element; through a few layers
// it stays near 1e-3 of the logits' scale (measured: see the printed max |Δ| / scale, ~1e-3 here).
constexpr double kAbs = 1e-3, kRel = 1e-2;

struct Run {
  std::vector<float> prefill_logits;  // [L, V]
  std::vector<std::vector<float>> decode_logits;
  std::vector<int32_t> greedy;  // argmax after the prompt, then after each decode step
};

class PrecisionGuard {
 public:
  explicit PrecisionGuard(cpu::LinearPrecision p) : before_(cpu::linear_precision()) { cpu::set_linear_precision(p); }
  ~PrecisionGuard() { cpu::set_linear_precision(before_); }

 private:
  cpu::LinearPrecision before_;
};

// Prefill `prompt`, then `steps` greedy decode steps.
Run run(DeepseekModel& model, const std::vector<int32_t>& prompt, int64_t steps, cpu::LinearPrecision p) {
  PrecisionGuard guard(p);
  const int64_t V = model.config().vocab_size, L = static_cast<int64_t>(prompt.size());
  auto cache = KvCache::for_model(model.config(), KvCache::blocks_needed(L + steps + 1) + 1);
  EXPECT_TRUE(cache.ok());
  test::SequenceRunner seq(model, *cache, L + steps + 1);
  Run r;
  ForwardResult pre = seq.feed(prompt);
  r.prefill_logits = pre.logits;
  r.greedy.push_back(test::argmax(pre.logits_row(L - 1), V));
  for (int64_t j = 0; j < steps; ++j) {
    ForwardResult d = seq.feed({r.greedy.back()}, false);
    r.decode_logits.push_back(d.logits);
    r.greedy.push_back(test::argmax(d.logits.data(), V));
  }
  return r;
}

// max over rows of max |fast - exact| / (kAbs + kRel * max |exact|); <= 1 passes. Prints the relative error.
double worst_ratio(const std::vector<float>& fast, const std::vector<float>& exact, int64_t V, const std::string& what) {
  EXPECT_EQ(fast.size(), exact.size()) << what;
  double worst = 0, worst_rel = 0;
  for (size_t row = 0; row * V < exact.size() && (row + 1) * V <= fast.size(); ++row) {
    double scale = 0, diff = 0;
    for (int64_t i = 0; i < V; ++i) {
      scale = std::max(scale, std::fabs(static_cast<double>(exact[row * V + i])));
      diff = std::max(diff, std::fabs(static_cast<double>(fast[row * V + i]) - exact[row * V + i]));
    }
    worst = std::max(worst, diff / (kAbs + kRel * scale));
    worst_rel = std::max(worst_rel, diff / std::max(scale, 1e-30));
  }
  std::printf("%s: max |fast - exact| / max |exact logit| = %.3g\n", what.c_str(), worst_rel);
  return worst;
}

bool has_bf16_weights(const std::string& model) { return model.find("bf16") != std::string::npos; }

class FastPrecision : public ::testing::TestWithParam<std::string> {};

TEST_P(FastPrecision, GoldenGreedyIdsIdenticalAndLogitsWithinTolerance) {
  const std::string name = GetParam();
  auto model = test::load_model(test::golden_dir(name));
  ASSERT_NE(model, nullptr);
  const int64_t V = model->config().vocab_size;
  const nlohmann::json manifest = test::golden_manifest(name);
  for (size_t p = 0; p < manifest["prompts"].size(); ++p) {
    const nlohmann::json& pm = manifest["prompts"][p];
    const auto prompt = pm["prompt_ids"].get<std::vector<int32_t>>();
    std::vector<int32_t> golden = pm["generated_ids"].get<std::vector<int32_t>>();
    golden.push_back(pm["next_token_after_last_decode_step"].get<int32_t>());
    const int64_t steps = static_cast<int64_t>(golden.size()) - 1;
    const std::string tag = name + " p" + std::to_string(p);

    Run exact = run(*model, prompt, steps, cpu::LinearPrecision::kExact);
    Run fast = run(*model, prompt, steps, cpu::LinearPrecision::kBf16Activations);
    EXPECT_EQ(exact.greedy, golden) << tag << " (exact path)";
    EXPECT_EQ(fast.greedy, exact.greedy) << tag << ": greedy ids differ between bf16 and exact";
    EXPECT_LE(worst_ratio(fast.prefill_logits, exact.prefill_logits, V, tag + " prefill"), 1.0) << tag;
    for (int64_t j = 0; j < steps; ++j) {
      EXPECT_LE(worst_ratio(fast.decode_logits[j], exact.decode_logits[j], V, tag + " decode " + std::to_string(j)), 1.0);
    }
    if (!has_bf16_weights(name)) {
      // F32 weights never take the BF16-activation path: bit for bit the exact result.
      EXPECT_EQ(fast.prefill_logits, exact.prefill_logits) << tag;
      EXPECT_EQ(fast.decode_logits, exact.decode_logits) << tag;
    } else if (cpu::bf16_activations_available()) {
      EXPECT_NE(fast.prefill_logits, exact.prefill_logits) << tag << ": expected the BF16-activation path to run";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Golden, FastPrecision, ::testing::Values("v2lite-tiny", "v3-tiny", "v3-tiny-bf16"),
                         [](const ::testing::TestParamInfo<std::string>& i) {
                           std::string s = i.param;
                           std::replace(s.begin(), s.end(), '-', '_');
                           return s;
                         });

// The demo model (BF16, trained, 128 wide): a 40-token prompt prefilled in one GEMM chunk, then 24 greedy steps.
TEST(FastPrecisionDemo, GreedyIdsIdenticalAndLogitsWithinTolerance) {
  auto model = test::load_model(std::string(LATENT_SOURCE_DIR) + "/models/demo");
  ASSERT_NE(model, nullptr);
  const int64_t V = model->config().vocab_size;
  std::vector<int32_t> prompt;
  for (int i = 0; i < 40; ++i) prompt.push_back(static_cast<int32_t>((i * 97 + 13) % V));
  Run exact = run(*model, prompt, 24, cpu::LinearPrecision::kExact);
  Run fast = run(*model, prompt, 24, cpu::LinearPrecision::kBf16Activations);
  EXPECT_EQ(fast.greedy, exact.greedy);
  EXPECT_LE(worst_ratio(fast.prefill_logits, exact.prefill_logits, V, "demo prefill"), 1.0);
  for (size_t j = 0; j < exact.decode_logits.size(); ++j) {
    EXPECT_LE(worst_ratio(fast.decode_logits[j], exact.decode_logits[j], V, "demo decode " + std::to_string(j)), 1.0);
  }
}

}  // namespace
}  // namespace latent
