// Several in-process ranks (LocalRanks over thread_group) against the single-rank model on every golden
// checkpoint, tensor-parallel and in pipeline stages: prefill, decode and MTP logits within 1e-5, MoE expert
// choices identical (without stages: with them rank 0 traces its own layers only), cache block copies replayed
// on the followers' replicas, and each rank holding only its shard or its stage's tensors.
#include <gtest/gtest.h>

#include <map>

#include "engine/local_ranks.h"
#include "engine/pipeline.h"
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
  int tp, ep, pp = 1;
  bool dp = false;  // data-parallel attention
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
  KvCache cache = KvCache::for_model(model.config(), 16).value();
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

  // A batch of 5 sequences (data-parallel attention splits them 3 + 2, or 2 + 1 + 1 + 1 over 4 ranks): a
  // prefill with every position's logits, then one decode step of all five together.
  std::vector<std::vector<int32_t>> prompts;
  std::vector<std::vector<BlockId>> tables;
  std::vector<SequenceInput> batch;
  for (int s = 0; s < 5; ++s) {
    std::vector<int32_t> ids;
    for (int i = 0; i < 3 + 2 * s; ++i) ids.push_back((s * 131 + i * 17 + 3) % static_cast<int32_t>(model.config().vocab_size));
    prompts.push_back(ids);
    tables.push_back(*cache.allocate(1));
  }
  for (int s = 0; s < 5; ++s) batch.push_back({prompts[static_cast<size_t>(s)], 0, tables[static_cast<size_t>(s)], true});
  auto pre = model.forward(batch, cache);
  EXPECT_TRUE(pre.ok()) << (pre.ok() ? "" : pre.error().to_string());
  if (!pre.ok()) return run;
  run.logits.push_back(pre->logits);
  std::vector<std::vector<int32_t>> step_ids(5);
  for (int s = 0; s < 5; ++s) {
    step_ids[static_cast<size_t>(s)] = {(s * 7 + 1) % static_cast<int32_t>(model.config().vocab_size)};
    batch[static_cast<size_t>(s)] = SequenceInput{step_ids[static_cast<size_t>(s)], static_cast<int64_t>(prompts[static_cast<size_t>(s)].size()),
                                     tables[static_cast<size_t>(s)], false};
  }
  auto dec = model.forward(batch, cache);
  EXPECT_TRUE(dec.ok()) << (dec.ok() ? "" : dec.error().to_string());
  if (dec.ok()) run.logits.push_back(dec->logits);
  return run;
}

std::string name_of(const Case& c) {
  return c.model + " tp" + std::to_string(c.tp) + " ep" + std::to_string(c.ep) + " pp" + std::to_string(c.pp) +
         (c.dp ? " dp-attention" : "");
}
void PrintTo(const Case& c, std::ostream* os) { *os << name_of(c); }

class MultiRank : public ::testing::TestWithParam<Case> {};

TEST_P(MultiRank, LogitsAndExpertChoicesEqualSingleRank) {
  const Case& c = GetParam();
  const auto manifest = test::golden_manifest(c.model);
  const auto& p = manifest["prompts"][1];
  const auto prompt = p["prompt_ids"].get<std::vector<int32_t>>();
  auto gen = p["generated_ids"].get<std::vector<int32_t>>();
  gen.resize(std::min<size_t>(gen.size(), 6));

  auto ranks = LocalRanks::load(test::golden_dir(c.model), {}, ParallelOptions{c.tp, c.ep, c.pp, c.dp});
  ASSERT_TRUE(ranks.ok()) << ranks.error().to_string();
  ASSERT_EQ((*ranks)->size(), c.tp * c.pp);
  const ModelRun one = run_model(single(c.model), prompt, gen);
  const ModelRun many = run_model((*ranks)->model(), prompt, gen);

  const std::string tag = name_of(c);
  ASSERT_EQ(many.logits.size(), one.logits.size());
  for (size_t i = 0; i < one.logits.size(); ++i) {
    ASSERT_EQ(many.logits[i].size(), one.logits[i].size()) << tag << " forward " << i;
    expect_close(many.logits[i].data(), one.logits[i].data(), one.logits[i].size(), kTol, 0,
                 tag + " forward " + std::to_string(i));
  }
  if (c.pp == 1) {
    EXPECT_EQ(many.moe_choice, one.moe_choice) << tag << ": MoE expert choices differ";
  }
  EXPECT_FALSE(one.moe_choice.empty());
  ASSERT_EQ(many.copied_decode.size(), one.copied_decode.size());
  expect_close(many.copied_decode.data(), one.copied_decode.data(), one.copied_decode.size(), kTol, 0,
               tag + " decode over a copied block");

  // Each rank holds its shard: less than the whole, and the ranks together hold at least the whole once.
  const int64_t whole = single(c.model).weight_bytes();
  int64_t sum = 0;
  for (int r = 0; r < c.tp * c.pp; ++r) {
    EXPECT_LT((*ranks)->weight_bytes(r), whole) << tag << " rank " << r;
    sum += (*ranks)->weight_bytes(r);
  }
  EXPECT_GE(sum, whole) << tag;
  if (c.pp == 1) {
    EXPECT_GT((*ranks)->comm(0).stats().all_reduce_bytes, 0);
  } else {
    EXPECT_GT((*ranks)->stage_link_bytes(0), 0) << tag << ": no hidden state sent on";
  }
}

std::vector<Case> cases() {
  std::vector<Case> out;
  for (const char* m : {"v2lite-tiny", "v3-tiny", "v3-tiny-bf16"}) {
    out.push_back({m, 2, 2});
    out.push_back({m, 2, 1});
    out.push_back({m, 4, 4});
    out.push_back({m, 1, 1, 2});  // v3-tiny's 3 layers: stages of 2 and 1
    out.push_back({m, 2, 2, 2});
    out.push_back({m, 2, 1, 2});
    out.push_back({m, 2, 2, 1, true});
    out.push_back({m, 2, 1, 1, true});
    out.push_back({m, 4, 4, 1, true});
    out.push_back({m, 2, 2, 2, true});
  }
  out.push_back({"v3-tiny", 1, 1, 3});
  out.push_back({"v2lite-tiny", 1, 1, 4});
  return out;
}

INSTANTIATE_TEST_SUITE_P(Golden, MultiRank, ::testing::ValuesIn(cases()), [](const auto& info) {
  std::string n = info.param.model + "_tp" + std::to_string(info.param.tp) + "_ep" + std::to_string(info.param.ep) +
                  (info.param.pp > 1 ? "_pp" + std::to_string(info.param.pp) : "") + (info.param.dp ? "_dp" : "");
  for (char& ch : n) {
    if (ch == '-') ch = '_';
  }
  return n;
});

// ForwardOptions::select with several ranks: the logits come to rank 0 (all-gathered, or from the last pipeline
// stage), which selects there; the tokens are what select_on_host picks from the logits the same forward returns
// without a selection, for the main model and the MTP module.
TEST(MultiRankSelect, TokensAreWhatTheHostPicksFromTheGatheredLogits) {
  const auto manifest = test::golden_manifest("v3-tiny");
  const auto prompt = manifest["prompts"][1]["full_sequence_ids"].get<std::vector<int32_t>>();
  SamplingParams greedy, sampled;
  sampled.temperature = 1.0f, sampled.top_p = 0.9f, sampled.seed = 3;
  std::vector<TokenSelect> rows(prompt.size());
  for (size_t r = 0; r < rows.size(); ++r) {
    rows[r].params = r % 2 ? &sampled : &greedy;
    rows[r].history = std::span<const int32_t>(prompt.data(), r + 1);
  }
  for (const Case& c : {Case{"v3-tiny", 2, 2}, Case{"v3-tiny", 1, 1, 2}, Case{"v3-tiny", 2, 1, 1, true}}) {
    auto ranks = LocalRanks::load(test::golden_dir(c.model), {}, ParallelOptions{c.tp, c.ep, c.pp, c.dp});
    ASSERT_TRUE(ranks.ok()) << ranks.error().to_string();
    DeepseekModel& model = (*ranks)->model();
    auto run = [&](const ForwardOptions& o, bool mtp) {
      KvCache cache = KvCache::for_model(model.config(), 4).value();
      std::vector<BlockId> blocks = *cache.allocate(KvCache::blocks_needed(static_cast<int64_t>(prompt.size())));
      SequenceInput in{prompt, 0, blocks, true};
      ForwardOptions first;
      first.return_hidden = true;
      auto r = model.forward(std::span<const SequenceInput>(&in, 1), cache, mtp ? first : o);
      if (!mtp || !r.ok()) return r;
      std::vector<int32_t> next(prompt.begin() + 1, prompt.end());
      MtpSequenceInput m{next, r->hidden.data(), 0, blocks, true};
      return model.forward_mtp(std::span<const MtpSequenceInput>(&m, 1), cache, o);
    };
    for (bool mtp : {false, true}) {
      const std::string tag = name_of(c) + (mtp ? " mtp" : "");
      auto logits = run(ForwardOptions{}, mtp);
      ASSERT_TRUE(logits.ok()) << tag << ": " << logits.error().to_string();
      const std::span<const TokenSelect> want_rows(rows.data(), logits->logits.size() / logits->vocab_size);
      std::vector<int32_t> want;
      select_on_host(logits->logits.data(), logits->vocab_size, want_rows, &want);
      ForwardOptions o;
      o.select = want_rows;
      auto picked = run(o, mtp);
      ASSERT_TRUE(picked.ok()) << tag << ": " << picked.error().to_string();
      EXPECT_TRUE(picked->logits.empty()) << tag;
      EXPECT_EQ(picked->ids, want) << tag;
    }
  }
}

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

TEST(MultiRankLoad, MoreStagesThanLayersIsAClearError) {
  auto ranks = LocalRanks::load(test::golden_dir("v3-tiny"), {}, ParallelOptions{1, 1, 4});
  ASSERT_FALSE(ranks.ok());
  EXPECT_NE(ranks.error().message.find("--pp 4: expected at most num_hidden_layers (3) pipeline stages, found 4"),
            std::string::npos)
      << ranks.error().message;
}

TEST(PipelineStage, LayerRangesCoverEveryLayerOnce) {
  for (int64_t layers : {1, 3, 4, 61}) {
    for (int count = 1; count <= std::min<int64_t>(layers, 8); ++count) {
      int64_t next = 0;
      for (int i = 0; i < count; ++i) {
        auto s = Stage::of(layers, i, count);
        ASSERT_TRUE(s.ok());
        EXPECT_EQ(s->layer_begin, next) << layers << " layers, stage " << i << " of " << count;
        EXPECT_GE(s->layer_end - s->layer_begin, layers / count);
        EXPECT_LE(s->layer_end - s->layer_begin, layers / count + 1);
        next = s->layer_end;
      }
      EXPECT_EQ(next, layers);
    }
  }
  EXPECT_FALSE(Stage::of(3, 0, 4).ok());
}

// Each stage holds its own tensors only: the embedding on the first, the head and MTP module on the last.
TEST(MultiRankLoad, EachStageHoldsItsLayersOnly) {
  auto ranks = LocalRanks::load(test::golden_dir("v3-tiny"), {}, ParallelOptions{1, 1, 3});
  ASSERT_TRUE(ranks.ok()) << ranks.error().to_string();
  const int64_t whole = single("v3-tiny").weight_bytes();
  EXPECT_EQ((*ranks)->weight_bytes(0) + (*ranks)->weight_bytes(1) + (*ranks)->weight_bytes(2), whole);
  EXPECT_LT((*ranks)->weight_bytes(1), (*ranks)->weight_bytes(2)) << "the last stage holds the head and MTP too";
  // Warming rank 0 reads its own tensors only: the embedding and layer 0, not the checkpoint.
  size_t reported = 0;
  const size_t touched = (*ranks)->model().touch_weights([&](size_t done, size_t) {
    reported = done;
    return true;
  });
  // (weight bytes also count FP8 block scales, which the walk leaves out: a few percent on these tiny shapes)
  const auto near = [](size_t walked, int64_t held) { return walked <= static_cast<size_t>(held) && walked * 10 >= static_cast<size_t>(held) * 9; };
  EXPECT_TRUE(near(touched, (*ranks)->weight_bytes(0))) << touched << " of " << (*ranks)->weight_bytes(0);
  EXPECT_EQ(reported, touched);
  EXPECT_LT(touched * 2, (*ranks)->model().weights().file_bytes());
  const size_t all = single("v3-tiny").touch_weights(nullptr);
  EXPECT_TRUE(near(all, whole)) << "one rank walks every tensor: " << all << " of " << whole;
}

TEST(MultiRankLoad, AFollowerOnlyFollows) {
  auto comms = thread_group(2);
  ModelOptions o;
  o.comm = comms[1].get();
  auto m = DeepseekModel::load(test::golden_dir("v3-tiny"), o);
  ASSERT_TRUE(m.ok()) << m.error().to_string();
  KvCache cache = KvCache::for_model((*m)->config(), 1).value();
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
    KvCache cache = KvCache::for_model((*m0)->config(), 1).value();
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
