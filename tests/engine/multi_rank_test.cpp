// Several in-process ranks (LocalRanks over thread_group) against the single-rank model on every golden
// checkpoint: prefill, decode and MTP logits within 1e-5, MoE expert choices identical, cache block copies
// replayed on the followers' replicas, and each rank holding only its shard.
#include <gtest/gtest.h>

#include <map>

#include "engine/local_ranks.h"
#include "tests/engine/model_test_util.h"

namespace latent {
namespace {

using test::expect_close;

constexpr double kTol = 1e-5;

DeepseekModel& single(const std::string& name) {
  static std::map<std::string, std::unique_ptr<DeepseekModel>> models;
  auto& m = models[name];
  if (!m) m = test::load_model(test::golden_dir(name));
  return *m;
}

struct Case {
  std::string model;
  int tp, ep;
};

// Everything one model run produces that the ranks must agree on.
struct ModelRun {
  std::vector<std::vector<float>> logits;       // prefill (every token), then each decode step, then MTP
  std::vector<std::vector<int32_t>> moe_choice;  // per forward, per MoE layer: expert ids
  std::vector<float> copied_decode;              // decode over a block copied with copy_block
};

void keep_trace(ModelRun& run, const ForwardTrace& t) {
  for (const auto& idx : t.moe_topk_idx) run.moe_choice.push_back(idx);
}

// prompt prefill (with hidden states and a trace), decode of `gen` one token at a time, MTP over the prompt;
// then a second sequence that shares the first's blocks through copy_block (the scheduler's copy-on-write).
ModelRun run_model(DeepseekModel& model, const std::vector<int32_t>& prompt, const std::vector<int32_t>& gen) {
  ModelRun run;
  KvCache cache = *KvCache::for_model(model.config(), 8);
  {
    test::SequenceRunner seq(model, cache, 256);
    ForwardTrace trace;
    ForwardResult pre = seq.feed(prompt, true, &trace, true);
    run.logits.push_back(pre.logits);
    keep_trace(run, trace);
    for (int32_t t : gen) {
      ForwardTrace tr;
      run.logits.push_back(seq.feed({t}, false, &tr).logits);
      keep_trace(run, tr);
    }
    if (model.has_mtp() && prompt.size() >= 2) {
      std::vector<int32_t> next(prompt.begin() + 1, prompt.end());
      ForwardTrace tr;
      run.logits.push_back(seq.feed_mtp(next, pre.hidden.data(), &tr).logits);
      keep_trace(run, tr);
    }
  }
  // 70 tokens span two blocks; a second sequence takes block 0 by reference and a copy of block 1's first
  // 70 - 64 slots, then decodes one token: followers must have replayed the copy on their replicas.
  std::vector<int32_t> long_prompt;
  for (int i = 0; i < 70; ++i) long_prompt.push_back((i * 37 + 11) % static_cast<int32_t>(model.config().vocab_size));
  std::vector<BlockId> a = *cache.allocate(2);
  SequenceInput in{long_prompt, 0, a, false};
  EXPECT_TRUE(model.forward(std::span<const SequenceInput>(&in, 1), cache).ok());
  BlockId b1 = *cache.allocate();
  EXPECT_TRUE(cache.ref(a[0]).ok());
  EXPECT_TRUE(cache.copy_block(a[1], b1, 70 - KvCache::kBlockSize).ok());
  std::vector<BlockId> b = {a[0], b1};
  const std::vector<int32_t> next = {5};
  SequenceInput in2{next, 70, b, false};
  auto r = model.forward(std::span<const SequenceInput>(&in2, 1), cache);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().to_string());
  if (r.ok()) run.copied_decode = r->logits;
  return run;
}

void PrintTo(const Case& c, std::ostream* os) { *os << c.model << " tp" << c.tp << " ep" << c.ep; }

class MultiRank : public ::testing::TestWithParam<Case> {};

TEST_P(MultiRank, LogitsAndExpertChoicesEqualSingleRank) {
  const Case& c = GetParam();
  const auto manifest = test::golden_manifest(c.model);
  const auto& p = manifest["prompts"][1];
  const auto prompt = p["prompt_ids"].get<std::vector<int32_t>>();
  auto gen = p["generated_ids"].get<std::vector<int32_t>>();
  gen.resize(std::min<size_t>(gen.size(), 6));

  auto ranks = LocalRanks::load(test::golden_dir(c.model), {}, ParallelOptions{c.tp, c.ep});
  ASSERT_TRUE(ranks.ok()) << ranks.error().to_string();
  ASSERT_EQ((*ranks)->size(), c.tp);
  const ModelRun one = run_model(single(c.model), prompt, gen);
  const ModelRun many = run_model((*ranks)->model(), prompt, gen);

  const std::string tag = c.model + " tp" + std::to_string(c.tp) + " ep" + std::to_string(c.ep);
  ASSERT_EQ(many.logits.size(), one.logits.size());
  for (size_t i = 0; i < one.logits.size(); ++i) {
    ASSERT_EQ(many.logits[i].size(), one.logits[i].size()) << tag << " forward " << i;
    expect_close(many.logits[i].data(), one.logits[i].data(), one.logits[i].size(), kTol, 0,
                 tag + " forward " + std::to_string(i));
  }
  EXPECT_EQ(many.moe_choice, one.moe_choice) << tag << ": MoE expert choices differ";
  EXPECT_FALSE(one.moe_choice.empty());
  ASSERT_EQ(many.copied_decode.size(), one.copied_decode.size());
  expect_close(many.copied_decode.data(), one.copied_decode.data(), one.copied_decode.size(), kTol, 0,
               tag + " decode over a copied block");

  // Each rank holds its shard: less than the whole, and the ranks together hold at least the whole once.
  const int64_t whole = single(c.model).weight_bytes();
  int64_t sum = 0;
  for (int r = 0; r < c.tp; ++r) {
    EXPECT_LT((*ranks)->weight_bytes(r), whole) << tag << " rank " << r;
    sum += (*ranks)->weight_bytes(r);
  }
  EXPECT_GE(sum, whole) << tag;
  EXPECT_GT((*ranks)->comm(0).stats().all_reduce_bytes, 0);
}

std::vector<Case> cases() {
  std::vector<Case> out;
  for (const char* m : {"v2lite-tiny", "v3-tiny", "v3-tiny-bf16"}) {
    out.push_back({m, 2, 2});
    out.push_back({m, 2, 1});
    out.push_back({m, 4, 4});
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(Golden, MultiRank, ::testing::ValuesIn(cases()), [](const auto& info) {
  std::string n = info.param.model + "_tp" + std::to_string(info.param.tp) + "_ep" + std::to_string(info.param.ep);
  for (char& ch : n) {
    if (ch == '-') ch = '_';
  }
  return n;
});

TEST(MultiRankLoad, HeadsNotDivisibleIsAClearError) {
  auto ranks = LocalRanks::load(test::golden_dir("v3-tiny"), {}, ParallelOptions{3, 3});
  ASSERT_FALSE(ranks.ok());
  EXPECT_NE(ranks.error().message.find("num_attention_heads (4) divisible"), std::string::npos) << ranks.error().message;
}

TEST(MultiRankLoad, EpMustBeOneOrTp) {
  auto ranks = LocalRanks::load(test::golden_dir("v3-tiny"), {}, ParallelOptions{2, 4});
  ASSERT_FALSE(ranks.ok());
  EXPECT_NE(ranks.error().message.find("--ep"), std::string::npos) << ranks.error().message;
}

TEST(MultiRankLoad, AFollowerOnlyFollows) {
  auto comms = thread_group(2);
  ModelOptions o;
  o.comm = comms[1].get();
  auto m = DeepseekModel::load(test::golden_dir("v3-tiny"), o);
  ASSERT_TRUE(m.ok()) << m.error().to_string();
  KvCache cache = *KvCache::for_model((*m)->config(), 1);
  std::vector<BlockId> blocks = *cache.allocate(1);
  const std::vector<int32_t> toks = {1, 2};
  SequenceInput in{toks, 0, blocks, false};
  auto r = (*m)->forward(std::span<const SequenceInput>(&in, 1), cache);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("expected rank 0"), std::string::npos) << r.error().message;
}

}  // namespace
}  // namespace latent

namespace latent {
namespace {

// A rank that dies (here: stops without following) never hangs rank 0: its next forward fails naming the rank,
// at once when the rank says so (abort), else after the collective timeout.
TEST(MultiRankDeath, RankZeroReportsTheDeadRank) {
  for (bool says_so : {true, false}) {
    auto comms = thread_group(2);
    ModelOptions o0, o1;
    o0.comm = comms[0].get();
    o1.comm = comms[1].get();
    auto m0 = DeepseekModel::load(test::golden_dir("v3-tiny"), o0);
    auto m1 = DeepseekModel::load(test::golden_dir("v3-tiny"), o1);
    ASSERT_TRUE(m0.ok() && m1.ok());
    if (says_so) {
      comms[1]->abort("killed by the test");
    } else {
      comms[0]->set_timeout(std::chrono::milliseconds(200));
    }
    KvCache cache = *KvCache::for_model((*m0)->config(), 1);
    std::vector<BlockId> blocks = *cache.allocate(1);
    const std::vector<int32_t> toks = {1, 2};
    SequenceInput in{toks, 0, blocks, false};
    auto r = (*m0)->forward(std::span<const SequenceInput>(&in, 1), cache);
    ASSERT_FALSE(r.ok());
    const std::string want = says_so ? "rank 1 stopped: killed by the test" : "rank 1 did not arrive";
    EXPECT_NE(r.error().message.find(want), std::string::npos) << r.error().message;
  }
}

}  // namespace
}  // namespace latent
