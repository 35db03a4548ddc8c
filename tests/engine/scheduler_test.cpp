// Scheduler against the cache-checking FakeModel (serving_fake_model.h): continuous batching, spec modes,
// prefix reuse, cancellation, supersede, priorities, preemption, threads. The real model: serving_test.cpp.
#include "engine/scheduler.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>
#include <thread>

#include "tests/engine/serving_fake_model.h"

namespace latent {
namespace {

using testing::FakeModel;
using testing::random_prompt;


struct Collected {
  std::vector<int32_t> tokens;
  std::optional<Event> done;
  std::optional<Error> error;
};

// Single-threaded: the callback runs inside step().
Request make_request(std::vector<int32_t> prompt, int max_tokens, Collected* out) {
  Request r;
  r.prompt = std::move(prompt);
  r.stop.max_tokens = max_tokens;
  r.on_event = [out](const Event& e) {
    if (e.kind == Event::Kind::kToken) out->tokens.insert(out->tokens.end(), e.tokens.begin(), e.tokens.end());
    if (e.kind == Event::Kind::kDone) out->done = e;
    if (e.kind == Event::Kind::kError) out->error = e.error;
  };
  return r;
}

TEST(Scheduler, GreedyOutputIsIdenticalForEverySpecMode) {
  for (int window : {0, 1}) {
    for (SpecMode mode : {SpecMode::kNone, SpecMode::kMtp, SpecMode::kNgram, SpecMode::kAuto}) {
      for (int depth : {1, 3}) {
        FakeModel model(window);
        KvCache cache = FakeModel::make_cache(64);
        Scheduler sched(model, cache);
        std::vector<Collected> got(4);
        std::vector<std::vector<int32_t>> prompts;
        for (int i = 0; i < 4; ++i) {
          prompts.push_back(random_prompt(5 + 40 * i, 7 + i));
          Request r = make_request(prompts.back(), 60, &got[i]);
          r.spec.mode = mode;
          r.spec.mtp_depth = depth;
          ASSERT_TRUE(sched.submit(std::move(r)).ok());
        }
        sched.run_until_idle();
        for (int i = 0; i < 4; ++i) {
          ASSERT_FALSE(got[i].error) << got[i].error->to_string();
          ASSERT_TRUE(got[i].done);
          EXPECT_EQ(got[i].tokens, model.reference(prompts[i], 60))
              << "window " << window << " mode " << spec_mode_name(mode) << " depth " << depth << " seq " << i;
          EXPECT_EQ(got[i].done->finish, FinishReason::kLength);
          EXPECT_EQ(got[i].done->usage.completion_tokens, 60);
        }
        if (mode == SpecMode::kMtp) {
          EXPECT_GT(sched.stats().drafted, 0);
          EXPECT_GT(sched.stats().accepted, 0);
          // Speculation must save main-model steps: 4 prompts x 60 tokens took fewer forward passes.
          EXPECT_LT(sched.stats().steps, 60);
        }
        if (mode == SpecMode::kNgram && window == 1) {
          EXPECT_GT(sched.stats().accepted, 0);
        }
        sched.prefix_cache().clear();
        EXPECT_EQ(cache.free_count(), cache.capacity());
      }
    }
  }
}

TEST(Scheduler, SecondPromptSharingAPrefixComputesOnlyItsNewTokens) {
  FakeModel model;
  KvCache cache = FakeModel::make_cache(32);
  Scheduler sched(model, cache);
  auto a = random_prompt(150, 1);
  Collected first;
  ASSERT_TRUE(sched.submit(make_request(a, 4, &first)).ok());
  sched.run_until_idle();
  ASSERT_TRUE(first.done);
  EXPECT_EQ(first.done->usage.cached_tokens, 0);
  EXPECT_EQ(first.done->usage.forward_tokens, 150 + 3);

  // The prompt grows by 3 tokens (that differ from what was generated): only they are fed, plus decodes.
  auto b = a;
  for (int32_t t : {5, 6, 7}) b.push_back(t == first.tokens[0] ? t + 1 : t);
  Collected second;
  int64_t before = model.tokens_fed;
  ASSERT_TRUE(sched.submit(make_request(b, 4, &second)).ok());
  sched.run_until_idle();
  ASSERT_TRUE(second.done);
  EXPECT_EQ(second.done->usage.cached_tokens, 150);
  EXPECT_EQ(model.tokens_fed - before, 3 + 3);
  EXPECT_EQ(second.tokens, model.reference(b, 4));

  // A keystroke that changes the last token: the partial block is shared, copied, and one token recomputed.
  auto c = b;
  c.back() = (c.back() + 11) % FakeModel::kVocab;
  Collected third;
  before = model.tokens_fed;
  ASSERT_TRUE(sched.submit(make_request(c, 1, &third)).ok());
  sched.run_until_idle();
  ASSERT_TRUE(third.done);
  EXPECT_EQ(third.done->usage.cached_tokens, 152);
  EXPECT_EQ(model.tokens_fed - before, 1);
  EXPECT_EQ(third.tokens, model.reference(c, 1));
  // Earlier entries are still intact (the copy-on-write did not touch them).
  Collected again;
  ASSERT_TRUE(sched.submit(make_request(b, 4, &again)).ok());
  sched.run_until_idle();
  EXPECT_EQ(again.tokens, model.reference(b, 4));
  EXPECT_GT(sched.prefix_cache().hits(), 0);
}

TEST(Scheduler, CancellingAtRandomPointsFreesEveryBlock) {
  std::mt19937 rng(42);
  for (int round = 0; round < 6; ++round) {
    FakeModel model(0, true);
    KvCache cache = FakeModel::make_cache(40);
    SchedulerOptions opt;
    opt.max_batch_tokens = 64;
    opt.prefill_chunk = 32;  // long prompts take several steps: cancel lands mid-prefill too
    Scheduler sched(model, cache, opt);
    std::vector<Collected> got(8);
    std::vector<RequestId> ids;
    for (int i = 0; i < 8; ++i) {
      Request r = make_request(random_prompt(20 + static_cast<int>(rng() % 200), rng()), 30, &got[i]);
      r.spec.mode = static_cast<SpecMode>(rng() % 4);
      r.priority = static_cast<Priority>(rng() % 3);
      auto id = sched.submit(std::move(r));
      ASSERT_TRUE(id.ok());
      ids.push_back(*id);
    }
    for (int s = 0; s < 200 && sched.has_work(); ++s) {
      if (rng() % 3 == 0) sched.cancel(ids[rng() % ids.size()]);
      sched.step();
    }
    for (RequestId id : ids) sched.cancel(id);
    sched.run_until_idle();
    for (auto& g : got) {
      ASSERT_FALSE(g.error) << g.error->to_string();
      ASSERT_TRUE(g.done);
    }
    EXPECT_EQ(sched.running() + sched.waiting(), 0u);
    sched.prefix_cache().clear();
    EXPECT_EQ(cache.free_count(), cache.capacity()) << "round " << round;
  }
}

// A cancel (what a vanished client's transport sends: LspServer's destructor over stdio and WebSocket, the HTTP
// exchange's on_disconnect) stops the request at the next step, counted in steps and fed tokens, not time:
// queued, between prefill chunks, and mid-decode. The request is not fed again and its blocks are free.
TEST(Scheduler, CancelStopsTheRequestAtTheNextStep) {
  for (int stage = 0; stage < 3; ++stage) {
    FakeModel model(0, true);
    KvCache cache = FakeModel::make_cache(40);
    SchedulerOptions opt;
    opt.prefill_chunk = 16;  // a 100-token prompt takes 7 steps
    opt.prefix_cache = false;
    Scheduler sched(model, cache, opt);
    Collected got;
    auto id = sched.submit(make_request(random_prompt(100, 5), 50, &got));
    ASSERT_TRUE(id.ok());
    const int steps_before_cancel = stage == 0 ? 0 : stage == 1 ? 3 : 10;  // queued, mid-prefill, mid-decode
    for (int i = 0; i < steps_before_cancel; ++i) sched.step();
    ASSERT_FALSE(got.done);
    const size_t tokens_before = got.tokens.size();
    if (stage == 1) {
      EXPECT_EQ(tokens_before, 0u) << "still prefilling";
    }
    if (stage == 2) {
      EXPECT_GT(tokens_before, 0u) << "decoding";
    }
    const int64_t fed_before = sched.stats().forward_tokens;
    sched.cancel(*id);
    sched.step();  // one step
    ASSERT_TRUE(got.done) << "stage " << stage;
    EXPECT_EQ(got.done->finish, FinishReason::kCancelled);
    EXPECT_EQ(sched.stats().forward_tokens, fed_before) << "stage " << stage << ": fed after the cancel";
    EXPECT_EQ(got.tokens.size(), tokens_before);
    EXPECT_FALSE(sched.has_work());
    EXPECT_EQ(cache.free_count(), cache.capacity());
  }
}

TEST(Scheduler, NewerRequestForTheSameDocumentSupersedesOlder) {
  FakeModel model;
  KvCache cache = FakeModel::make_cache(16);
  Scheduler sched(model, cache);
  Collected a, b, other;
  Request ra = make_request(random_prompt(30, 1), 50, &a);
  ra.document_key = "file:///a.py";
  Request ro = make_request(random_prompt(30, 2), 5, &other);
  ro.document_key = "file:///b.py";
  ASSERT_TRUE(sched.submit(std::move(ra)).ok());
  ASSERT_TRUE(sched.submit(std::move(ro)).ok());
  sched.step();
  sched.step();
  Request rb = make_request(random_prompt(31, 1), 5, &b);
  rb.document_key = "file:///a.py";
  ASSERT_TRUE(sched.submit(std::move(rb)).ok());
  sched.run_until_idle();
  ASSERT_TRUE(a.done && b.done && other.done);
  EXPECT_EQ(a.done->finish, FinishReason::kSuperseded);
  EXPECT_LT(a.tokens.size(), 50u);
  EXPECT_EQ(b.done->finish, FinishReason::kLength);
  EXPECT_EQ(other.done->finish, FinishReason::kLength);
}

TEST(Scheduler, InteractiveRequestsGoFirst) {
  FakeModel model;
  KvCache cache = FakeModel::make_cache(16);
  SchedulerOptions opt;
  opt.max_running = 1;
  Scheduler sched(model, cache, opt);
  std::vector<RequestId> order;
  auto track = [&](Request r) {
    r.on_event = [&order](const Event& e) {
      if (e.kind == Event::Kind::kDone) order.push_back(e.id);
    };
    return r;
  };
  Collected unused;
  Request bg = track(make_request(random_prompt(10, 1), 5, &unused));
  bg.priority = Priority::kBackground;
  Request agent = track(make_request(random_prompt(10, 2), 5, &unused));
  agent.priority = Priority::kAgent;
  Request fg = track(make_request(random_prompt(10, 3), 5, &unused));
  fg.priority = Priority::kInteractive;
  auto id_bg = sched.submit(std::move(bg));
  auto id_agent = sched.submit(std::move(agent));
  auto id_fg = sched.submit(std::move(fg));
  sched.run_until_idle();
  ASSERT_EQ(order.size(), 3u);
  EXPECT_EQ(order[0], *id_fg);
  EXPECT_EQ(order[1], *id_agent);
  EXPECT_EQ(order[2], *id_bg);
}

TEST(Scheduler, FullCachePreemptsLowerPriorityWhichResumesUnchanged) {
  FakeModel model;
  KvCache cache = FakeModel::make_cache(4);  // 256 tokens in all
  SchedulerOptions opt;
  opt.prefix_cache_blocks = 4;
  Scheduler sched(model, cache, opt);
  Collected bg, fg;
  auto pb = random_prompt(120, 5), pf = random_prompt(100, 6);
  Request rb = make_request(pb, 60, &bg);
  rb.priority = Priority::kBackground;
  ASSERT_TRUE(sched.submit(std::move(rb)).ok());
  for (int i = 0; i < 4; ++i) sched.step();
  Request rf = make_request(pf, 60, &fg);
  rf.priority = Priority::kInteractive;
  ASSERT_TRUE(sched.submit(std::move(rf)).ok());
  sched.run_until_idle();
  ASSERT_FALSE(bg.error) << bg.error->to_string();
  ASSERT_FALSE(fg.error) << fg.error->to_string();
  EXPECT_GT(sched.stats().preemptions, 0);
  EXPECT_EQ(fg.tokens, model.reference(pf, 60));
  EXPECT_EQ(bg.tokens, model.reference(pb, 60));
  sched.prefix_cache().clear();
  EXPECT_EQ(cache.free_count(), cache.capacity());
}

TEST(Scheduler, RejectsWhatCanNeverFitWithAClearError) {
  FakeModel model;
  KvCache cache = FakeModel::make_cache(2);
  Scheduler sched(model, cache);
  Collected c;
  auto r = sched.submit(make_request(random_prompt(200, 1), 4, &c));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kResourceExhausted);
  EXPECT_NE(r.error().message.find("needs 4 cache blocks, the cache has 2"), std::string::npos) << r.error().message;
  // Fits at first, then outgrows the cache while alone: an error event, never a crash.
  Collected grow;
  ASSERT_TRUE(sched.submit(make_request(random_prompt(100, 2), 100, &grow)).ok());
  sched.run_until_idle();
  ASSERT_TRUE(grow.error);
  EXPECT_EQ(grow.error->code, ErrorCode::kResourceExhausted);
  EXPECT_EQ(grow.tokens, model.reference(random_prompt(100, 2), static_cast<int>(grow.tokens.size())));
  sched.prefix_cache().clear();
  EXPECT_EQ(cache.free_count(), cache.capacity());

  auto bad = sched.submit(make_request({1, 2, 500}, 4, &c));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("prompt[2] = 500, expected [0, 97)"), std::string::npos);
}

TEST(Scheduler, TimeBudgetReturnsWhatItHas) {
  // A manual clock that moves 5 ms per forward: the budget is checked against steps, not against how busy the
  // machine is. 60 ms = 12 forwards: the prefill and 11 decodes, each adding one token before the check.
  FakeModel model;
  std::atomic<int64_t> clock_ms{0};
  model.on_forward = [&] { clock_ms += 5; };
  KvCache cache = FakeModel::make_cache(8);
  SchedulerOptions opt;
  const auto epoch = std::chrono::steady_clock::now();
  opt.clock = [&] { return epoch + std::chrono::milliseconds(clock_ms.load()); };
  Scheduler sched(model, cache, opt);
  Collected c;
  const auto prompt = random_prompt(10, 1);
  Request r = make_request(prompt, 10000, &c);
  r.stop.time_budget_ms = 60;
  ASSERT_TRUE(sched.submit(std::move(r)).ok());
  sched.run_until_idle();
  ASSERT_TRUE(c.done);
  EXPECT_EQ(c.done->finish, FinishReason::kTimeBudget);
  EXPECT_EQ(c.tokens.size(), 12u);
  EXPECT_EQ(c.tokens, model.reference(prompt, 12)) << "what it has is the right text";
  EXPECT_DOUBLE_EQ(c.done->timings.total_ms, 60.0);
}

// Lossless sampling: with temperature, the tokens produced with drafts (MTP or n-gram, verified by rejection
// sampling) follow the same distribution as plain decoding. A bias such as "accept the draft when it is the
// argmax" would move about 30% of the mass here.
TEST(Scheduler, SampledOutputHasTheSameDistributionWithSpeculation) {
  const auto prompt = random_prompt(12, 3);
  const int kRuns = 40000, kTokens = 4;  // sampling noise (TV between two plain runs) is about 0.02
  auto histogram = [&](SpecMode mode, int64_t* accepted, int seed_base = 1000) {
    FakeModel model(1);
    KvCache cache = FakeModel::make_cache(64);
    SchedulerOptions opt;
    opt.prefix_cache = false;
    Scheduler sched(model, cache, opt);
    std::vector<std::map<int32_t, int>> hist(kTokens);
    std::vector<Collected> got(kRuns);
    for (int i = 0; i < kRuns; ++i) {
      Request r = make_request(prompt, kTokens, &got[i]);
      r.sampling.temperature = 0.3f;
      r.sampling.seed = seed_base + i;
      r.spec.mode = mode;
      r.spec.mtp_depth = 2;
      r.context_ids = model.reference(prompt, 8);  // n-gram drafts: the greedy path
      EXPECT_TRUE(sched.submit(std::move(r)).ok());
      if (i % 500 == 499) sched.run_until_idle();
    }
    sched.run_until_idle();
    for (auto& g : got) {
      EXPECT_EQ(g.tokens.size(), static_cast<size_t>(kTokens));
      for (size_t k = 0; k < g.tokens.size() && k < static_cast<size_t>(kTokens); ++k) ++hist[k][g.tokens[k]];
    }
    *accepted = sched.stats().accepted;
    return hist;
  };
  int64_t acc_none = 0, acc_mtp = 0, acc_ngram = 0;
  auto base = histogram(SpecMode::kNone, &acc_none);
  auto mtp = histogram(SpecMode::kMtp, &acc_mtp);
  auto ngram = histogram(SpecMode::kNgram, &acc_ngram);
  int64_t unused = 0;
  auto base2 = histogram(SpecMode::kNone, &unused, 900000);
  EXPECT_GT(acc_mtp, kRuns / 4);
  EXPECT_GT(acc_ngram, kRuns / 4);
  auto tv = [&](const std::map<int32_t, int>& a, const std::map<int32_t, int>& b) {
    std::map<int32_t, double> d;
    for (auto [t, n] : a) d[t] += n;
    for (auto [t, n] : b) d[t] -= n;
    double s = 0;
    for (auto [t, x] : d) s += std::abs(x);
    return s / (2.0 * kRuns);
  };
  for (int k = 0; k < kTokens; ++k) {
    const double noise = tv(base[k], base2[k]);
    EXPECT_LT(noise, 0.035) << "token " << k;
    EXPECT_LT(tv(base[k], mtp[k]), 0.035) << "token " << k << " (noise " << noise << ")";
    EXPECT_LT(tv(base[k], ngram[k]), 0.035) << "token " << k << " (noise " << noise << ")";
  }
}

// "Same seed, same output" holds with speculative drafts: each position's draw depends on (seed, position)
// only, and a draft is accepted iff it is that draw, so MTP and n-gram runs emit exactly the plain run's tokens.
TEST(Scheduler, SameSeedSameOutputWithAndWithoutSpeculation) {
  const auto prompt = random_prompt(12, 3);
  const int kRuns = 300, kTokens = 12;
  auto outputs = [&](SpecMode mode, int64_t* accepted) {
    FakeModel model(1);
    KvCache cache = FakeModel::make_cache(64);
    SchedulerOptions opt;
    opt.prefix_cache = false;
    Scheduler sched(model, cache, opt);
    std::vector<Collected> got(kRuns);
    for (int i = 0; i < kRuns; ++i) {
      Request r = make_request(prompt, kTokens, &got[i]);
      r.sampling.temperature = 0.3f;
      r.sampling.seed = 7000 + i;
      r.spec.mode = mode;
      r.spec.mtp_depth = 2;
      r.context_ids = model.reference(prompt, 8);
      EXPECT_TRUE(sched.submit(std::move(r)).ok());
      if (i % 50 == 49) sched.run_until_idle();
    }
    sched.run_until_idle();
    *accepted = sched.stats().accepted;
    std::vector<std::vector<int32_t>> out;
    for (auto& g : got) out.push_back(g.tokens);
    return out;
  };
  int64_t acc_none = 0, acc_mtp = 0, acc_ngram = 0;
  const auto plain = outputs(SpecMode::kNone, &acc_none);
  const auto mtp = outputs(SpecMode::kMtp, &acc_mtp);
  const auto ngram = outputs(SpecMode::kNgram, &acc_ngram);
  EXPECT_GT(acc_mtp, kRuns) << "drafts were accepted";
  EXPECT_GT(acc_ngram, kRuns);
  std::set<std::vector<int32_t>> distinct(plain.begin(), plain.end());
  EXPECT_GT(distinct.size(), 10u) << "sampling, not greedy";
  for (int i = 0; i < kRuns; ++i) {
    ASSERT_EQ(plain[static_cast<size_t>(i)].size(), static_cast<size_t>(kTokens));
    EXPECT_EQ(mtp[static_cast<size_t>(i)], plain[static_cast<size_t>(i)]) << "seed " << 7000 + i << " (MTP)";
    EXPECT_EQ(ngram[static_cast<size_t>(i)], plain[static_cast<size_t>(i)]) << "seed " << 7000 + i << " (n-gram)";
  }
}

TEST(Scheduler, ManyThreadsSubmitAndCancelWhileTheEngineThreadRuns) {
  FakeModel model(0, true);
  KvCache cache = FakeModel::make_cache(48);
  Scheduler sched(model, cache);
  constexpr int kThreads = 4, kPerThread = 6;
  std::atomic<int> mismatches{0}, errors{0}, done{0};
  {
    EngineThread engine(sched);
    std::vector<std::thread> clients;
    for (int t = 0; t < kThreads; ++t) {
      clients.emplace_back([&, t] {
        std::mt19937 rng(100 + t);
        for (int i = 0; i < kPerThread; ++i) {
          Request r;
          r.prompt = random_prompt(10 + static_cast<int>(rng() % 100), rng());
          r.stop.max_tokens = 20;
          r.spec.mode = static_cast<SpecMode>(rng() % 4);
          r.priority = static_cast<Priority>(rng() % 3);
          auto prompt = r.prompt;
          auto sub = sched.submit_stream(std::move(r));
          if (!sub.ok()) {
            ++errors;
            continue;
          }
          const bool cancel = rng() % 4 == 0;
          if (cancel) sched.cancel(sub->first);
          std::vector<int32_t> toks;
          for (const Event& e : sub->second->drain()) {
            toks.insert(toks.end(), e.tokens.begin(), e.tokens.end());
            if (e.kind == Event::Kind::kError) ++errors;
            if (e.kind == Event::Kind::kDone) {
              ++done;
              if (e.finish == FinishReason::kLength && toks != model.reference(prompt, 20)) ++mismatches;
            }
          }
        }
      });
    }
    for (auto& c : clients) c.join();
    while (sched.has_work()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_EQ(done.load(), kThreads * kPerThread);
  sched.prefix_cache().clear();
  EXPECT_EQ(cache.free_count(), cache.capacity());
}

}  // namespace
}  // namespace latent
