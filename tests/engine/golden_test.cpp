// The engine against the golden logits of the official DeepSeek-V3 inference code (tests/data/golden):
// prefill, decode, greedy ids, hidden states, per-layer outputs, MoE expert sets and MTP drafts.
#include <gtest/gtest.h>

#include <map>

#include "kernels/cpu/ops.h"
#include "tests/engine/model_test_util.h"

namespace latent {
namespace {

using test::expect_close;

constexpr double kTol = 1e-4;  // README: logits and hidden_postnorm |Δ| <= 1e-4

DeepseekModel& model_for(const std::string& name) {
  // The golden outputs are float32 computations: the exact path (the default is BF16 activations; see
  // precision_test.cpp for the fast path against this one).
  cpu::set_linear_precision(cpu::LinearPrecision::kExact);
  static std::map<std::string, std::unique_ptr<DeepseekModel>> models;
  auto& m = models[name];
  if (!m) m = test::load_model(test::golden_dir(name));
  return *m;
}

struct GoldenCase {
  std::string model;
  int prompt;
};

class Golden : public ::testing::TestWithParam<GoldenCase> {
 protected:
  void SetUp() override {
    manifest_ = test::golden_manifest(GetParam().model);
    p_ = manifest_["prompts"][GetParam().prompt];
    prompt_ = p_["prompt_ids"].get<std::vector<int32_t>>();
    generated_ = p_["generated_ids"].get<std::vector<int32_t>>();
    full_ = p_["full_sequence_ids"].get<std::vector<int32_t>>();
    ASSERT_NE(&model_for(GetParam().model), nullptr);
  }
  NpyArray npy(const std::string& key) { return test::golden_npy(GetParam().model, p_["files"][key]["file"]); }
  bool has(const std::string& key) const { return p_["files"].contains(key); }
  DeepseekModel& model() { return model_for(GetParam().model); }
  std::string tag() const { return GetParam().model + " p" + std::to_string(GetParam().prompt); }

  nlohmann::json manifest_, p_;
  std::vector<int32_t> prompt_, generated_, full_;
};

TEST_P(Golden, PrefillThenDecodeMatchLogitsAndGreedyIds) {
  const int64_t V = model().config().vocab_size;
  auto cache = KvCache::for_model(model().config(), 4);
  ASSERT_TRUE(cache.ok());
  test::SequenceRunner seq(model(), *cache, static_cast<int64_t>(full_.size()) + 1);

  ForwardResult pre = seq.feed(prompt_);
  NpyArray ref = npy("prefill_logits");
  ASSERT_EQ(pre.logits.size(), ref.f32.size());
  expect_close(pre.logits.data(), ref.f32.data(), ref.f32.size(), kTol, 0, tag() + " prefill_logits");
  const int64_t L = static_cast<int64_t>(prompt_.size());
  EXPECT_EQ(test::argmax(pre.logits_row(L - 1), V), generated_[0]);

  // Decode: generated_ids[j] alone at position L + j; greedy reproduces the golden ids.
  NpyArray dec = npy("decode_logits");
  std::vector<int32_t> greedy = {test::argmax(pre.logits_row(L - 1), V)};
  for (size_t j = 0; j < generated_.size(); ++j) {
    ForwardResult r = seq.feed({greedy[j]}, false);
    ASSERT_EQ(r.logits.size(), static_cast<size_t>(V));
    expect_close(r.logits.data(), dec.f32.data() + j * V, V, kTol, 0, tag() + " decode step " + std::to_string(j));
    greedy.push_back(test::argmax(r.logits.data(), V));
  }
  std::vector<int32_t> expect = generated_;
  expect.push_back(p_["next_token_after_last_decode_step"].get<int32_t>());
  EXPECT_EQ(greedy, expect);
}

TEST_P(Golden, FullSequencePrefillHiddenStatesAndDebugArrays) {
  const int64_t V = model().config().vocab_size, d = model().config().hidden_size;
  const size_t N = full_.size(), L = prompt_.size();
  auto cache = KvCache::for_model(model().config(), 4);
  ASSERT_TRUE(cache.ok());
  test::SequenceRunner seq(model(), *cache, static_cast<int64_t>(N));
  ForwardTrace trace;
  ForwardResult r = seq.feed(full_, true, &trace, /*hidden=*/true);

  // Logits: concat(prefill_logits, decode_logits) minus the last decode row (it predicts past the sequence).
  NpyArray pre = npy("prefill_logits"), dec = npy("decode_logits");
  ASSERT_EQ(r.logits.size(), N * V);
  expect_close(r.logits.data(), pre.f32.data(), L * V, kTol, 0, tag() + " full prefill, prompt rows");
  expect_close(r.logits.data() + L * V, dec.f32.data(), (N - L) * V, kTol, 0, tag() + " full prefill, generated rows");

  NpyArray post = npy("hidden_postnorm"), prenorm = npy("hidden_prenorm");
  ASSERT_EQ(r.hidden.size(), N * d);
  expect_close(r.hidden.data(), post.f32.data(), N * d, kTol, 0, tag() + " hidden_postnorm");
  ASSERT_EQ(trace.hidden_prenorm.size(), N * d);
  expect_close(trace.hidden_prenorm.data(), prenorm.f32.data(), N * d, kTol, 1e-5, tag() + " hidden_prenorm");

  if (has("debug.layer_outputs")) {
    NpyArray lo = npy("debug.layer_outputs");  // [n_layers + 1, N, d]
    ASSERT_EQ(lo.shape[0], static_cast<int64_t>(trace.layer_outputs.size()));
    for (size_t l = 0; l < trace.layer_outputs.size(); ++l) {
      expect_close(trace.layer_outputs[l].data(), lo.f32.data() + l * N * d, N * d, kTol, 1e-5,
                   tag() + " layer_outputs[" + std::to_string(l) + "]");
    }
    NpyArray idx = npy("debug.moe_topk_idx"), wt = npy("debug.moe_topk_weight");  // [n_moe, N, K]
    ASSERT_EQ(idx.shape[0], static_cast<int64_t>(trace.moe_topk_idx.size()));
    for (size_t m = 0; m < trace.moe_topk_idx.size(); ++m) {
      const size_t n = N * static_cast<size_t>(idx.shape[2]);
      ASSERT_EQ(trace.moe_topk_idx[m].size(), n);
      EXPECT_EQ(trace.moe_topk_idx[m], std::vector<int32_t>(idx.i32.begin() + m * n, idx.i32.begin() + (m + 1) * n))
          << tag() << " MoE layer " << m << " expert sets";
      expect_close(trace.moe_topk_weight[m].data(), wt.f32.data() + m * n, n, kTol, 1e-5,
                   tag() + " moe_topk_weight[" + std::to_string(m) + "]");
    }
  }

  if (!has("mtp_logits")) {
    EXPECT_FALSE(model().has_mtp());
    return;
  }
  // MTP slot i: token full[i+1] and hidden_postnorm[i] -> predicts full[i+2].
  ASSERT_TRUE(model().has_mtp());
  std::vector<int32_t> next(full_.begin() + 1, full_.end());
  ForwardTrace mtp_trace;
  ForwardResult m = seq.feed_mtp(next, r.hidden.data(), &mtp_trace);
  NpyArray mtp = npy("mtp_logits");
  ASSERT_EQ(m.logits.size(), mtp.f32.size());
  expect_close(m.logits.data(), mtp.f32.data(), mtp.f32.size(), kTol, 0, tag() + " mtp_logits");
  if (has("debug.mtp_topk_idx")) {
    NpyArray idx = npy("debug.mtp_topk_idx"), wt = npy("debug.mtp_topk_weight");
    ASSERT_EQ(mtp_trace.moe_topk_idx.size(), 1u);
    EXPECT_EQ(mtp_trace.moe_topk_idx[0], idx.i32) << tag() << " MTP expert sets";
    expect_close(mtp_trace.moe_topk_weight[0].data(), wt.f32.data(), wt.f32.size(), kTol, 1e-5, tag() + " mtp weights");
  }
}

TEST_P(Golden, ChunkedPrefillAndIncrementalMtpEqualSinglePrefill) {
  const int64_t V = model().config().vocab_size, d = model().config().hidden_size;
  const size_t N = full_.size();
  auto cache = KvCache::for_model(model().config(), 8);
  ASSERT_TRUE(cache.ok());
  test::SequenceRunner one(model(), *cache, static_cast<int64_t>(N));
  ForwardResult whole = one.feed(full_, true, nullptr, true);

  test::SequenceRunner chunked(model(), *cache, static_cast<int64_t>(N));
  std::vector<float> logits, hidden;
  for (size_t at = 0; at < N; at += 5) {
    std::vector<int32_t> chunk(full_.begin() + at, full_.begin() + std::min(N, at + 5));
    ForwardResult r = chunked.feed(chunk, true, nullptr, true);
    logits.insert(logits.end(), r.logits.begin(), r.logits.end());
    hidden.insert(hidden.end(), r.hidden.begin(), r.hidden.end());
  }
  ASSERT_EQ(logits.size(), N * V);
  expect_close(logits.data(), whole.logits.data(), N * V, 1e-5, 0, tag() + " chunked vs single prefill");
  if (!model().has_mtp() || N < 3) return;
  // MTP over all slots at once vs one slot at a time (its own cache layer).
  std::vector<int32_t> next(full_.begin() + 1, full_.end());
  ForwardResult all = one.feed_mtp(next, whole.hidden.data());
  for (size_t i = 0; i + 1 < N; ++i) {
    ForwardResult r = chunked.feed_mtp({next[i]}, hidden.data() + i * d);
    expect_close(r.logits.data(), all.logits.data() + i * V, V, 1e-5, 0, tag() + " MTP slot " + std::to_string(i));
  }
}

std::vector<GoldenCase> cases() {
  std::vector<GoldenCase> out;
  for (std::string m : {"v2lite-tiny", "v3-tiny", "v3-tiny-bf16"}) {
    auto manifest = test::golden_manifest(m);
    for (size_t p = 0; p < manifest["prompts"].size(); ++p) out.push_back({m, static_cast<int>(p)});
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(Models, Golden, ::testing::ValuesIn(cases()), [](const auto& info) {
  std::string n = info.param.model + "_p" + std::to_string(info.param.prompt);
  for (auto& ch : n) {
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  }
  return n;
});

}  // namespace
}  // namespace latent
