// The Scheduler over the REAL DeepseekModel and the golden checkpoints (tests/data/golden): every spec mode
// reproduces the reference greedy ids, MTP acceptance matches what the golden MTP logits predict, prefix
// reuse feeds only new tokens, cancellation frees every block, and several client threads share one engine.
#include <gtest/gtest.h>

#include <map>
#include <numeric>
#include <random>
#include <thread>

#include "engine/scheduler.h"
#include "engine/sampler.h"
#include "tests/engine/model_test_util.h"

namespace latent {
namespace {

struct GoldenPrompt {
  std::vector<int32_t> prompt, generated, full;
};

struct Golden {
  std::unique_ptr<DeepseekModel> model;
  std::unique_ptr<ServingModel> serving;
  std::vector<GoldenPrompt> prompts;
  nlohmann::json manifest;
};

Golden& golden(const std::string& name) {
  static std::map<std::string, Golden> cache;
  auto it = cache.find(name);
  if (it != cache.end()) return it->second;
  Golden g;
  g.model = test::load_model(test::golden_dir(name));
  if (g.model) g.serving = serve_deepseek(*g.model);
  g.manifest = test::golden_manifest(name);
  for (const auto& p : g.manifest["prompts"]) {
    g.prompts.push_back({p["prompt_ids"].get<std::vector<int32_t>>(), p["generated_ids"].get<std::vector<int32_t>>(),
                         p["full_sequence_ids"].get<std::vector<int32_t>>()});
  }
  return cache.emplace(name, std::move(g)).first->second;
}

struct Collected {
  std::vector<int32_t> tokens;
  std::optional<Event> done;
  std::optional<Error> error;
};

Request make_request(const std::vector<int32_t>& prompt, int max_tokens, Collected* out) {
  Request r;
  r.prompt = prompt;
  r.stop.max_tokens = max_tokens;
  r.on_event = [out](const Event& e) {
    if (e.kind == Event::Kind::kToken) out->tokens.insert(out->tokens.end(), e.tokens.begin(), e.tokens.end());
    if (e.kind == Event::Kind::kDone) out->done = e;
    if (e.kind == Event::Kind::kError) out->error = e.error;
  };
  return r;
}

// Accepted MTP drafts a depth-1 greedy run must see: at each decode step with n_cached = c, the draft is
// argmax(mtp_logits[c - 1]) and it is right when it equals full[c + 1].
int expected_mtp_accepts(const std::string& model, size_t p, const GoldenPrompt& g) {
  auto mtp = test::golden_npy(model, "p" + std::to_string(p) + ".mtp_logits.npy");
  const int64_t V = mtp.shape[1];
  int64_t c = static_cast<int64_t>(g.prompt.size());
  int generated = 1, accepted = 0;
  while (generated < static_cast<int>(g.generated.size())) {
    int32_t draft = test::argmax(mtp.f32.data() + (c - 1) * V, V);
    if (draft == g.full[c + 1] && generated + 1 < static_cast<int>(g.generated.size())) {
      ++accepted;
      generated += 2;
      c += 2;
    } else {
      generated += 1;
      c += 1;
    }
  }
  return accepted;
}

class ServingGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(ServingGolden, GreedyOutputIsIdenticalForEverySpecMode) {
  Golden& g = golden(GetParam());
  ASSERT_TRUE(g.model);
  const bool has_mtp = g.model->has_mtp();
  for (SpecMode mode : {SpecMode::kNone, SpecMode::kMtp, SpecMode::kNgram, SpecMode::kAuto}) {
    for (int depth : {1, 3}) {
      if (depth > 1 && (mode == SpecMode::kNone || mode == SpecMode::kNgram)) continue;
      auto cache = KvCache::for_model(g.model->config(), 16);
      ASSERT_TRUE(cache.ok());
      SchedulerOptions opt;
      opt.prefill_chunk = 16;  // p2 (33 tokens) is prefilled in three chunks, mixed with the others' decodes
      Scheduler sched(*g.serving, *cache, opt);
      std::vector<Collected> got(g.prompts.size());
      for (size_t p = 0; p < g.prompts.size(); ++p) {
        Request r = make_request(g.prompts[p].prompt, static_cast<int>(g.prompts[p].generated.size()), &got[p]);
        r.spec.mode = mode;
        r.spec.mtp_depth = depth;
        // The supplied context holds the continuation for n-gram lookups (in auto mode for one prompt only,
        // so that the others draft with MTP).
        if (mode == SpecMode::kNgram || (mode == SpecMode::kAuto && p == 1)) r.context_ids = g.prompts[p].full;
        ASSERT_TRUE(sched.submit(std::move(r)).ok());
      }
      sched.run_until_idle();
      const std::string tag = GetParam() + " " + spec_mode_name(mode) + " depth " + std::to_string(depth);
      for (size_t p = 0; p < g.prompts.size(); ++p) {
        ASSERT_FALSE(got[p].error) << tag << ": " << got[p].error->to_string();
        ASSERT_TRUE(got[p].done) << tag;
        EXPECT_EQ(got[p].tokens, g.prompts[p].generated) << tag << " p" << p;
        const Usage& u = got[p].done->usage;
        if (mode == SpecMode::kNgram) {
          EXPECT_GT(u.accepted_tokens, 0) << tag << " p" << p;
          EXPECT_LT(u.forward_tokens, static_cast<int>(g.prompts[p].prompt.size() + 2 * g.prompts[p].generated.size()));
        }
        if (mode == SpecMode::kMtp && has_mtp) {
          EXPECT_GT(u.drafted_tokens, 0) << tag;
          if (depth == 1) {
            EXPECT_EQ(u.accepted_tokens, expected_mtp_accepts(GetParam(), p, g.prompts[p])) << tag << " p" << p;
          }
        }
        if (mode == SpecMode::kMtp && !has_mtp) {
          EXPECT_EQ(u.drafted_tokens, 0);
        }
      }
      sched.prefix_cache().clear();
      EXPECT_EQ(cache->free_count(), cache->capacity()) << tag;
    }
  }
}

// The real model: sampled output is the same for a seed whether or not MTP / n-gram drafts are
// verified, because each position's draw depends only on (seed, position) (sampler.h).
TEST_P(ServingGolden, SameSeedSameSampledOutputForEverySpecMode) {
  Golden& g = golden(GetParam());
  ASSERT_TRUE(g.model);
  const int kSeeds = 6;
  std::map<SpecMode, std::vector<std::vector<int32_t>>> out;
  int64_t accepted = 0;
  for (SpecMode mode : {SpecMode::kNone, SpecMode::kMtp, SpecMode::kNgram}) {
    auto cache = KvCache::for_model(g.model->config(), 32);
    ASSERT_TRUE(cache.ok());
    SchedulerOptions opt;
    opt.prefix_cache = false;
    Scheduler sched(*g.serving, *cache, opt);
    std::vector<Collected> got(g.prompts.size() * kSeeds);
    for (size_t p = 0; p < g.prompts.size(); ++p) {
      for (int k = 0; k < kSeeds; ++k) {
        Request r = make_request(g.prompts[p].prompt, 16, &got[p * kSeeds + static_cast<size_t>(k)]);
        r.sampling.temperature = 0.5f;  // with top-k 2: drafts (greedy paths) are often, not always, drawn
        r.sampling.top_k = 2;
        r.sampling.seed = 31 + static_cast<uint64_t>(k);
        r.spec.mode = mode;
        r.spec.mtp_depth = 2;
        r.context_ids = g.prompts[p].full;
        ASSERT_TRUE(sched.submit(std::move(r)).ok());
      }
    }
    sched.run_until_idle();
    if (mode != SpecMode::kNone) accepted += sched.stats().accepted;
    for (auto& c : got) {
      ASSERT_FALSE(c.error) << c.error->to_string();
      out[mode].push_back(c.tokens);
    }
  }
  EXPECT_GT(accepted, 0) << "some drafts were verified and accepted";
  EXPECT_NE(out[SpecMode::kNone][0], out[SpecMode::kNone][1]) << "different seeds differ";
  EXPECT_EQ(out[SpecMode::kMtp], out[SpecMode::kNone]) << GetParam();
  EXPECT_EQ(out[SpecMode::kNgram], out[SpecMode::kNone]) << GetParam();
}

// Tokens selected where the logits are (ForwardOptions::select, the default) against the host Sampler over the
// returned logits (select_on_device off): the same tokens and the same draft verdicts for greedy and sampled
// requests, with every filter (top-k, top-p, min-p, repetition penalty), with and without drafts.
TEST_P(ServingGolden, TokensSelectedWithTheLogitsEqualTheHostSamplers) {
  Golden& g = golden(GetParam());
  ASSERT_TRUE(g.model);
  std::vector<SamplingParams> params(4);
  params[1].temperature = 0.7f, params[1].top_p = 0.9f, params[1].seed = 5;
  params[2].temperature = 0.9f, params[2].top_k = 3, params[2].min_p = 0.05f, params[2].seed = 6;
  params[3].repetition_penalty = 1.3f;  // greedy over penalised logits: the history matters
  for (SpecMode mode : {SpecMode::kNone, SpecMode::kMtp, SpecMode::kNgram}) {
    std::vector<std::vector<int32_t>> tokens[2];
    std::vector<int> accepted[2];
    for (int on = 0; on < 2; ++on) {
      auto cache = KvCache::for_model(g.model->config(), 32);
      ASSERT_TRUE(cache.ok());
      SchedulerOptions opt;
      opt.prefill_chunk = 16;
      opt.select_on_device = on == 1;
      Scheduler sched(*g.serving, *cache, opt);
      std::vector<Collected> got(g.prompts.size() * params.size());
      for (size_t p = 0; p < g.prompts.size(); ++p) {
        for (size_t k = 0; k < params.size(); ++k) {
          Request r = make_request(g.prompts[p].prompt, 12, &got[p * params.size() + k]);
          r.sampling = params[k];
          r.spec.mode = mode;
          r.spec.mtp_depth = 2;
          r.context_ids = g.prompts[p].full;
          ASSERT_TRUE(sched.submit(std::move(r)).ok());
        }
      }
      sched.run_until_idle();
      for (auto& c : got) {
        ASSERT_FALSE(c.error) << c.error->to_string();
        ASSERT_TRUE(c.done);
        tokens[on].push_back(c.tokens);
        accepted[on].push_back(c.done->usage.accepted_tokens);
      }
    }
    const std::string tag = GetParam() + " " + spec_mode_name(mode);
    EXPECT_EQ(tokens[1], tokens[0]) << tag;
    EXPECT_EQ(accepted[1], accepted[0]) << tag;
    if (mode == SpecMode::kNgram) {
      EXPECT_GT(std::accumulate(accepted[1].begin(), accepted[1].end(), 0), 0) << tag << ": drafts were verified";
    }
  }
}

// The model itself: ForwardOptions::select returns, per logit row, what select_on_host picks from the logits
// the same forward returns without it (-1 for a row nobody wants), and refuses a count that is not the rows'.
TEST_P(ServingGolden, ForwardSelectsWhatTheHostPicksFromItsLogits) {
  Golden& g = golden(GetParam());
  ASSERT_TRUE(g.model);
  const std::vector<int32_t>& prompt = g.prompts[0].full;
  SamplingParams sampled, penalised, greedy;
  sampled.temperature = 1.0f, sampled.top_p = 0.95f, sampled.seed = 11;
  penalised.repetition_penalty = 2.0f;
  std::vector<BlockId> blocks;
  auto run = [&](const ForwardOptions& o) {
    auto cache = KvCache::for_model(g.model->config(), 8);
    EXPECT_TRUE(cache.ok());
    blocks.clear();
    const int64_t need = (static_cast<int64_t>(prompt.size()) + KvCache::kBlockSize - 1) / KvCache::kBlockSize;
    for (int64_t b = 0; b < need; ++b) blocks.push_back(*cache->allocate());
    SequenceInput in;
    in.tokens = prompt;
    in.block_table = blocks;
    in.all_logits = true;  // a row per token
    return g.model->forward(std::span<const SequenceInput>(&in, 1), *cache, o);
  };
  auto logits = run(ForwardOptions{});
  ASSERT_TRUE(logits.ok()) << logits.error().to_string();
  const size_t n = prompt.size();
  std::vector<TokenSelect> rows(n);
  for (size_t r = 0; r < n; ++r) {
    if (r % 4 == 3) continue;  // not wanted
    rows[r].params = r % 4 == 0 ? &sampled : r % 4 == 1 ? &penalised : &greedy;
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
  EXPECT_EQ(std::count(want.begin(), want.end(), -1), static_cast<long>(n / 4));
  o.select = std::span<const TokenSelect>(rows.data(), n - 1);
  auto wrong = run(o);
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.error().message.find("expected one token selection per logit row (" + std::to_string(n) + "), found " +
                                       std::to_string(n - 1)),
            std::string::npos)
      << wrong.error().message;
}

TEST_P(ServingGolden, PromptSharingAPrefixFeedsOnlyItsNewTokens) {
  Golden& g = golden(GetParam());
  ASSERT_TRUE(g.model);
  const GoldenPrompt& p2 = g.prompts[2];
  for (SpecMode mode : {SpecMode::kNone, SpecMode::kMtp}) {
    auto cache = KvCache::for_model(g.model->config(), 16);
    ASSERT_TRUE(cache.ok());
    Scheduler sched(*g.serving, *cache);
    Collected first;
    Request r1 = make_request(p2.prompt, 16, &first);
    r1.spec.mode = mode;
    ASSERT_TRUE(sched.submit(std::move(r1)).ok());
    sched.run_until_idle();
    ASSERT_TRUE(first.done);
    EXPECT_EQ(first.tokens, p2.generated);

    // The user accepted 7 tokens of the completion: the new prompt is 40 tokens of full_sequence_ids.
    std::vector<int32_t> longer(p2.full.begin(), p2.full.begin() + 40);
    Collected second;
    Request r2 = make_request(longer, 9, &second);
    r2.spec.mode = mode;
    ASSERT_TRUE(sched.submit(std::move(r2)).ok());
    sched.run_until_idle();
    ASSERT_TRUE(second.done);
    EXPECT_EQ(second.tokens, std::vector<int32_t>(p2.full.begin() + 40, p2.full.end()));
    const Usage& u = second.done->usage;
    if (mode == SpecMode::kNone) {
      EXPECT_EQ(u.cached_tokens, 39);
      EXPECT_EQ(u.forward_tokens, 1 + 8);  // the last prompt token, then 8 decodes
    } else {
      EXPECT_GE(u.cached_tokens, 38);      // MTP needs the hidden state of the token before its first slot
      EXPECT_LE(u.forward_tokens - u.drafted_tokens, 2 + 8);  // verified drafts ride along with decodes
    }

    // A keystroke that changes the prompt's last token: one token of prefill.
    std::vector<int32_t> edited = p2.prompt;
    edited.back() = (edited.back() + 1) % static_cast<int32_t>(g.model->config().vocab_size);
    Collected third;
    ASSERT_TRUE(sched.submit(make_request(edited, 4, &third)).ok());
    sched.run_until_idle();
    ASSERT_TRUE(third.done);
    EXPECT_EQ(third.done->usage.cached_tokens, static_cast<int>(edited.size()) - 1);
    EXPECT_EQ(third.done->usage.forward_tokens, 1 + 3);
    // Same answer as a scheduler without any prefix cache.
    auto fresh_cache = KvCache::for_model(g.model->config(), 8);
    SchedulerOptions no_reuse;
    no_reuse.prefix_cache = false;
    Scheduler fresh(*g.serving, *fresh_cache, no_reuse);
    Collected ref;
    ASSERT_TRUE(fresh.submit(make_request(edited, 4, &ref)).ok());
    fresh.run_until_idle();
    EXPECT_EQ(third.tokens, ref.tokens);
    EXPECT_EQ(ref.done->usage.forward_tokens, static_cast<int>(edited.size()) + 3);
  }
}

// A prefix cached without MTP latents: an explicit MTP request recomputes it (its module needs them), an auto
// request reuses it and drafts with n-gram lookups instead; both still give the reference ids.
TEST_P(ServingGolden, AutoModeReusesAPrefixCachedWithoutMtp) {
  Golden& g = golden(GetParam());
  ASSERT_TRUE(g.model);
  if (!g.model->has_mtp()) GTEST_SKIP() << "no MTP module";
  // 100 tokens: the golden prompt p2 continued by its reference output, then by a repeat of itself.
  std::vector<int32_t> prompt = g.prompts[2].full;
  while (prompt.size() < 100) prompt.push_back(prompt[prompt.size() - 40]);
  auto cache = KvCache::for_model(g.model->config(), 16);
  ASSERT_TRUE(cache.ok());
  Scheduler sched(*g.serving, *cache);
  Collected plain;
  ASSERT_TRUE(sched.submit(make_request(prompt, 8, &plain)).ok());
  sched.run_until_idle();
  ASSERT_TRUE(plain.done);
  for (SpecMode mode : {SpecMode::kAuto, SpecMode::kMtp}) {
    Collected got;
    Request r = make_request(prompt, 8, &got);
    r.spec.mode = mode;
    ASSERT_TRUE(sched.submit(std::move(r)).ok());
    sched.run_until_idle();
    ASSERT_TRUE(got.done);
    EXPECT_EQ(got.tokens, plain.tokens) << spec_mode_name(mode);
    EXPECT_EQ(got.done->usage.cached_tokens, mode == SpecMode::kAuto ? 99 : 0) << spec_mode_name(mode);
  }
}

TEST_P(ServingGolden, CancellingAtRandomPointsFreesEveryBlock) {
  Golden& g = golden(GetParam());
  ASSERT_TRUE(g.model);
  std::mt19937 rng(7);
  auto cache = KvCache::for_model(g.model->config(), 12);
  ASSERT_TRUE(cache.ok());
  SchedulerOptions opt;
  opt.prefill_chunk = 4;  // cancellation lands in the middle of prompts too
  opt.max_batch_tokens = 24;
  Scheduler sched(*g.serving, *cache, opt);
  for (int round = 0; round < 3; ++round) {
    std::vector<Collected> got(9);
    std::vector<RequestId> ids;
    for (size_t i = 0; i < got.size(); ++i) {
      const GoldenPrompt& gp = g.prompts[i % g.prompts.size()];
      Request r = make_request(gp.prompt, 16, &got[i]);
      r.spec.mode = static_cast<SpecMode>(rng() % 4);
      r.spec.mtp_depth = 1 + static_cast<int>(rng() % 2);
      r.priority = static_cast<Priority>(rng() % 3);
      auto id = sched.submit(std::move(r));
      ASSERT_TRUE(id.ok());
      ids.push_back(*id);
    }
    while (sched.has_work()) {
      if (rng() % 4 == 0) sched.cancel(ids[rng() % ids.size()]);
      sched.step();
    }
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_FALSE(got[i].error) << got[i].error->to_string();
      ASSERT_TRUE(got[i].done);
      const auto& gen = g.prompts[i % g.prompts.size()].generated;
      // Whatever was produced before a cancel is a prefix of the reference.
      ASSERT_LE(got[i].tokens.size(), gen.size());
      EXPECT_EQ(got[i].tokens, std::vector<int32_t>(gen.begin(), gen.begin() + got[i].tokens.size()));
    }
  }
  sched.prefix_cache().clear();
  EXPECT_EQ(cache->free_count(), cache->capacity());
}

TEST_P(ServingGolden, ClientThreadsShareOneEngineThread) {
  Golden& g = golden(GetParam());
  ASSERT_TRUE(g.model);
  auto cache = KvCache::for_model(g.model->config(), 24);
  ASSERT_TRUE(cache.ok());
  Scheduler sched(*g.serving, *cache);
  std::atomic<int> mismatches{0}, errors{0}, finished{0};
  {
    EngineThread engine(sched);
    std::vector<std::thread> clients;
    for (int t = 0; t < 3; ++t) {
      clients.emplace_back([&, t] {
        for (int i = 0; i < 4; ++i) {
          const GoldenPrompt& gp = g.prompts[(t + i) % g.prompts.size()];
          Request r;
          r.prompt = gp.prompt;
          r.stop.max_tokens = static_cast<int>(gp.generated.size());
          r.spec.mode = static_cast<SpecMode>((t + i) % 4);
          r.context_ids = gp.full;
          auto sub = sched.submit_stream(std::move(r));
          if (!sub.ok()) {
            ++errors;
            continue;
          }
          std::vector<int32_t> toks;
          for (const Event& e : sub->second->drain()) {
            toks.insert(toks.end(), e.tokens.begin(), e.tokens.end());
            if (e.kind == Event::Kind::kError) ++errors;
            if (e.kind == Event::Kind::kDone) ++finished;
          }
          if (toks != gp.generated) ++mismatches;
        }
      });
    }
    for (auto& c : clients) c.join();
  }
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_EQ(finished.load(), 12);
}

INSTANTIATE_TEST_SUITE_P(Models, ServingGolden, ::testing::Values("v2lite-tiny", "v3-tiny", "v3-tiny-bf16"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (auto& ch : n)
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return n;
                         });

}  // namespace
}  // namespace latent
