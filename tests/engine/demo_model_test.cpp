// The engine on the project's own demo model (models/demo, trained by tools/demo-model) against the training
// code's float32 forward pass on the same bf16 weights (tests/data/demo, written by tools/demo-model/evaluate.py):
// prefill logits, greedy next token, MTP draft logits, and the C++ tokenizer against the Python BPE encoder.
#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/tokenizer/tokenizer.h"
#include "tests/engine/model_test_util.h"
#include "tests/test_paths.h"

namespace latent {
namespace {

// Both sides compute in float32 on identical bf16 weights; only summation order differs (observed |Δ| ~3e-7
// on logits of magnitude ~10). 1e-3 leaves room for other ISAs' accumulation orders.
// Reference cases were picked so that no routing decision is closer than 2e-5 (an expert flip would change
// logits by far more than the tolerance) and the greedy choice has a clear gap; both are recorded in the
// manifest and checked below.
constexpr double kTol = 1e-3;

std::string demo_model_dir() { return std::string(LATENT_SOURCE_DIR) + "/models/demo"; }
std::string demo_data_dir() { return std::string(LATENT_TEST_DATA) + "/demo"; }

nlohmann::json manifest() {
  std::ifstream in(demo_data_dir() + "/manifest.json");
  EXPECT_TRUE(in.good()) << "missing " << demo_data_dir() << "/manifest.json";
  return in.good() ? nlohmann::json::parse(in) : nlohmann::json::object();
}

NpyArray load_npy(const std::string& file) {
  auto a = read_npy(demo_data_dir() + "/" + file);
  EXPECT_TRUE(a.ok()) << (a.ok() ? "" : a.error().to_string());
  return a.ok() ? std::move(*a) : NpyArray{};
}

DeepseekModel& demo_model() {
  static std::unique_ptr<DeepseekModel> m = test::load_model(demo_model_dir());
  return *m;
}

TEST(DemoModel, LoadsAsDeepseekV3WithMtp) {
  const ModelConfig& c = demo_model().config();
  EXPECT_EQ(c.vocab_size, 4096);
  EXPECT_TRUE(demo_model().has_mtp());
  const nlohmann::json m = manifest();
  ASSERT_TRUE(m.contains("cases"));
  EXPECT_GE(m["cases"].size(), 3u);
}

TEST(DemoModel, PrefillAndMtpLogitsMatchTrainingCode) {
  DeepseekModel& model = demo_model();
  const int64_t V = model.config().vocab_size;
  const nlohmann::json m = manifest();
  ASSERT_TRUE(m.contains("cases"));
  for (const auto& c : m["cases"]) {
    const std::string name = c["name"];
    const auto ids = c["ids"].get<std::vector<int32_t>>();
    const int64_t n = static_cast<int64_t>(ids.size());
    // The references are only meaningful where float32 noise cannot flip a routing or greedy decision.
    EXPECT_GT(c.at("min_routing_margin").get<double>(), 1e-5) << name;
    EXPECT_GT(c.at("last_top1_top2_gap").get<double>(), 1e-4) << name;

    auto cache = KvCache::for_model(model.config(), KvCache::blocks_needed(n) * 2 + 2);
    ASSERT_TRUE(cache.ok()) << cache.error().to_string();
    test::SequenceRunner seq(model, *cache, n);
    ForwardResult r = seq.feed(ids, true, nullptr, true);
    NpyArray ref = load_npy(c["logits"]);
    ASSERT_EQ(ref.shape, (std::vector<int64_t>{n, V})) << name;
    ASSERT_EQ(r.logits.size(), ref.f32.size()) << name;
    const double worst = test::expect_close(r.logits.data(), ref.f32.data(), ref.f32.size(), kTol, 0, name + " logits");
    EXPECT_EQ(test::argmax(r.logits_row(n - 1), V), c["greedy_next"].get<int32_t>()) << name;

    // MTP slot i: token ids[i+1] with the main model's post-norm hidden state at i.
    std::vector<int32_t> next(ids.begin() + 1, ids.end());
    ForwardResult mtp = seq.feed_mtp(next, r.hidden.data());
    NpyArray mref = load_npy(c["mtp_logits"]);
    ASSERT_EQ(mref.shape, (std::vector<int64_t>{n - 1, V})) << name;
    ASSERT_EQ(mtp.logits.size(), mref.f32.size()) << name;
    const double mworst =
        test::expect_close(mtp.logits.data(), mref.f32.data(), mref.f32.size(), kTol, 0, name + " mtp_logits");
    std::printf("demo %s: %lld tokens, max |Δ| logits %.2e, mtp %.2e\n", name.c_str(), static_cast<long long>(n),
                worst, mworst);
  }
}

TEST(DemoModel, TokenizerMatchesPythonEncoder) {
  auto tok = Tokenizer::load(demo_model_dir());
  ASSERT_TRUE(tok.ok()) << tok.error().to_string();
  EXPECT_EQ(tok->vocab_size(), 4096u);
  EXPECT_EQ(tok->bos_id(), 0);
  EXPECT_EQ(tok->eos_id(), 1);
  EXPECT_TRUE(tok->add_bos());
  const nlohmann::json m = manifest();
  ASSERT_TRUE(m.contains("cases"));
  for (const auto& c : m["cases"]) {
    const std::string text = c["text"];
    const auto ids = c["ids"].get<std::vector<int32_t>>();  // BOS + encode(text), FIM tokens matched
    EXPECT_EQ(tok->encode(text, true), ids) << c["name"];
    std::vector<int32_t> body(ids.begin() + 1, ids.end());
    EXPECT_EQ(tok->decode(body), text) << c["name"];
  }
  // Every held-out file, FIM prompts and edge cases (tools/demo-model/tokenizer_cases.py; the same file passes
  // the JS reference tokenizer, tools/demo-model/check_tokenizer.mjs).
  std::ifstream in(demo_data_dir() + "/tokenizer_cases.json");
  ASSERT_TRUE(in.good());
  const nlohmann::json cases = nlohmann::json::parse(in);
  ASSERT_GE(cases.size(), 12u);
  size_t tokens = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const std::string text = cases[i]["text"];
    const auto ids = cases[i]["ids"].get<std::vector<int32_t>>();
    EXPECT_EQ(tok->encode(text, false), ids) << "tokenizer case " << i;
    EXPECT_EQ(tok->decode(ids), text) << "tokenizer case " << i;
    tokens += ids.size();
  }
  EXPECT_GT(tokens, 10000u);
}

}  // namespace
}  // namespace latent
