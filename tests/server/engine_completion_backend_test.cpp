#include "server/engine_completion_backend.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <future>
#include <mutex>
#include <thread>

#include "lsp/assistant_core.h"
#include "tests/test_paths.h"

namespace latent::server {
namespace {

using namespace std::chrono_literals;

// A real model with a real tokenizer: models/demo when trained, else tests/data/openai-tiny (random weights).
std::string model_dir() {
  for (std::string d : {std::string(LATENT_SOURCE_DIR) + "/models/demo", std::string(LATENT_TEST_DATA) + "/openai-tiny"}) {
    if (std::filesystem::exists(d + "/tokenizer.json")) return d;
  }
  return "";
}

class EngineBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string dir = model_dir();
    if (dir.empty()) GTEST_SKIP() << "no model with a tokenizer (models/demo, tests/data/openai-tiny)";
    EngineHostOptions o;
    o.model_dir = dir;
    o.cache_bytes = size_t(32) << 20;
    auto h = EngineHost::load(o);
    ASSERT_TRUE(h.ok()) << h.error().to_string();
    host_ = std::move(*h);
    backend_ = std::make_unique<EngineCompletionBackend>(*host_);
    lsp::AssistantOptions ao;
    ao.max_tokens = 24;
    ao.syntax = lsp::SyntaxMode::kOff;  // the backend's own streaming; the check has its test below
    core_ = std::make_unique<lsp::AssistantCore>(ao, backend_.get());
    ASSERT_TRUE(core_->open(kUri, "python", 1, "def mean(values):\n    total = 0\n    for v in values:\n        ").ok());
  }
  void TearDown() override {
    core_.reset();
    backend_.reset();
    host_.reset();
  }
  // Shared with the callbacks, which may outlive a failed test's locals.
  struct Outcome {
    std::mutex mu;
    std::vector<std::string> partials;
    std::promise<Result<lsp::CompletionOutcome>> done;
    std::shared_future<Result<lsp::CompletionOutcome>> result = done.get_future().share();
    bool finished() const { return result.wait_for(0s) == std::future_status::ready; }
  };
  using OutcomePtr = std::shared_ptr<Outcome>;
  Result<lsp::AssistantCore::Ticket> start(const OutcomePtr& o) {
    return core_->complete(lsp::CompletionRequest{kUri, {3, 8}, lsp::PositionEncoding::kUtf16},
                           [o](const std::string& t) {
                             std::lock_guard<std::mutex> lock(o->mu);
                             o->partials.push_back(t);
                           },
                           [o](Result<lsp::CompletionOutcome> r) { o->done.set_value(std::move(r)); });
  }
  static constexpr const char* kUri = "file:///w/stats.py";
  std::unique_ptr<EngineHost> host_;
  std::unique_ptr<EngineCompletionBackend> backend_;
  std::unique_ptr<lsp::AssistantCore> core_;
};

// The prefill cost model is measured through the real scheduler and engine; the context is then sized by it.
TEST_F(EngineBackendTest, MeasuresThePrefillCostModelAndSizesTheContextByIt) {
  EXPECT_FALSE(backend_->prefill_cost().has_value());  // not before it is measured
  std::atomic<bool> stop{false};
  auto cost = backend_->measure_prefill_cost(stop);
  ASSERT_TRUE(cost.ok()) << cost.error().to_string();
  EXPECT_GT(cost->per_token_ms, 0.0);
  EXPECT_GE(cost->fixed_ms, 0.0);
  ASSERT_TRUE(backend_->prefill_cost().has_value());
  EXPECT_EQ(backend_->prefill_cost()->per_token_ms, cost->per_token_ms);

  // With that model, a budget of 1 ms leaves the floor: the prompt is cut to it, and the completion still works.
  lsp::AssistantOptions ao;
  ao.max_tokens = 8;
  ao.time_budget = std::chrono::milliseconds(1);
  ao.min_time_tokens = 48;
  lsp::AssistantCore core(ao, backend_.get());
  ASSERT_TRUE(core.open(kUri, "python", 1, "def mean(values):\n    total = 0\n    for v in values:\n        ").ok());
  auto limit = core.time_limit();
  ASSERT_TRUE(limit.has_value());
  EXPECT_EQ(limit->tokens, 48u);
  auto ctx = core.context_at(kUri, {3, 8}, lsp::PositionEncoding::kUtf16);
  ASSERT_TRUE(ctx.ok());
  EXPECT_LE(ctx->prompt_tokens, 48u);
}

TEST_F(EngineBackendTest, PrefillCostStopsWhenAsked) {
  std::atomic<bool> stop{true};
  auto cost = backend_->measure_prefill_cost(stop);
  ASSERT_FALSE(cost.ok());
  EXPECT_EQ(cost.error().code, ErrorCode::kCancelled);
  EXPECT_FALSE(backend_->prefill_cost().has_value());
}

TEST_F(EngineBackendTest, StreamsEngineTextAndCountsTokensWithTheTokenizer) {
  EXPECT_EQ(*backend_->count_tokens("def f(x):\n    return x"),
            host_->tokenizer().encode("def f(x):\n    return x").size());
  auto o = std::make_shared<Outcome>();
  ASSERT_TRUE(start(o).ok());
  ASSERT_EQ(o->result.wait_for(60s), std::future_status::ready);
  auto r = o->result.get();
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_FALSE(r->raw.empty()) << "the engine generated no text";
  EXPECT_FALSE(o->partials.empty());
  EXPECT_LE(r->usage.completion_tokens, 24u);
  EXPECT_EQ(r->raw.substr(0, r->text.size()), r->text);  // post-processing only cuts what the engine wrote
  // The prompt the engine saw was this document in FIM form: its token count is the tokenizer's.
  auto ctx = core_->context_at(kUri, {3, 8}, lsp::PositionEncoding::kUtf16);
  ASSERT_TRUE(ctx.ok());
  if (r->usage.prompt_tokens > 0) {
    EXPECT_EQ(r->usage.prompt_tokens, encode_fim(host_->tokenizer(), ctx->fim)->size());
  }
}

// The syntax check on the real path (engine, tokenizer, AssistantCore): a verdict comes with every answer, and
// what is shown is the engine's own text cut back, plus at most closing quotes or brackets.
TEST_F(EngineBackendTest, TheSyntaxCheckActsOnTheEnginesText) {
  core_->set_syntax_mode(lsp::SyntaxMode::kTrim);
  auto o = std::make_shared<Outcome>();
  ASSERT_TRUE(start(o).ok());
  ASSERT_EQ(o->result.wait_for(60s), std::future_status::ready);
  auto r = o->result.get();
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  ASSERT_TRUE(r->syntax.has_value());
  const auto& v = *r->syntax;
  EXPECT_NE(v.action, lsp::SyntaxAction::kUnchecked) << v.reason;  // Python has a grammar
  ASSERT_GE(r->text.size(), v.closer.size());
  std::string own = r->text.substr(0, r->text.size() - v.closer.size());
  EXPECT_EQ(r->raw.substr(0, own.size()), own) << v.reason;
  EXPECT_LE(v.errors_with, v.errors_without) << v.reason;
  if (v.action == lsp::SyntaxAction::kRefused) {
    EXPECT_EQ(r->text, "");
  }
  auto last = core_->last_syntax(kUri);
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(last->reason, v.reason);
}

TEST_F(EngineBackendTest, SpeculativeDecodingGivesTheSameText) {
  // Greedy decoding with n-gram or MTP drafts must produce exactly the text of plain decoding.
  std::vector<std::string> raws;
  for (SpecMode mode : {SpecMode::kNone, SpecMode::kNgram, SpecMode::kMtp}) {
    EngineBackendOptions bo;
    bo.spec.mode = mode;
    EngineCompletionBackend backend(*host_, bo);
    lsp::CompletionJob job;
    auto ctx = core_->context_at(kUri, {3, 8}, lsp::PositionEncoding::kUtf16);
    ASSERT_TRUE(ctx.ok());
    job.fim = ctx->fim;
    job.prompt = ctx->prompt;
    job.doc_key = std::string("spec-") + spec_mode_name(mode);
    job.max_tokens = 16;
    std::string raw;
    std::promise<Result<lsp::CompletionUsage>> done;
    backend.start(job, [&raw](std::string_view d) { raw.append(d); },
                  [&done](Result<lsp::CompletionUsage> u) { done.set_value(std::move(u)); });
    auto fut = done.get_future();
    ASSERT_EQ(fut.wait_for(60s), std::future_status::ready);
    auto u = fut.get();
    ASSERT_TRUE(u.ok()) << spec_mode_name(mode) << ": " << u.error().to_string();
    EXPECT_GT(u->completion_tokens, 0u);
    raws.push_back(raw);
  }
  EXPECT_EQ(raws[1], raws[0]);
  EXPECT_EQ(raws[2], raws[0]);
}

TEST_F(EngineBackendTest, CountsEditorCompletionsInTheMetrics) {
  MetricsRegistry metrics;
  EngineBackendOptions bo;
  bo.metrics = &metrics;
  EngineCompletionBackend backend(*host_, bo);
  lsp::CompletionJob job;
  auto ctx = core_->context_at(kUri, {3, 8}, lsp::PositionEncoding::kUtf16);
  ASSERT_TRUE(ctx.ok());
  job.fim = ctx->fim;
  job.prompt = ctx->prompt;
  job.doc_key = "metrics";
  job.max_tokens = 8;
  std::promise<Result<lsp::CompletionUsage>> done;
  backend.start(job, [](std::string_view) {}, [&done](Result<lsp::CompletionUsage> u) { done.set_value(std::move(u)); });
  auto fut = done.get_future();
  ASSERT_EQ(fut.wait_for(60s), std::future_status::ready);
  auto u = fut.get();
  ASSERT_TRUE(u.ok()) << u.error().to_string();
  // Counted before the completion is answered, so it is visible now.
  const std::string text = metrics.render();
  EXPECT_NE(text.find("latent_lsp_completions_total{outcome=\"completed\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("latent_lsp_completions_in_flight 0\n"), std::string::npos) << text;
  EXPECT_NE(text.find("latent_lsp_prompt_tokens_total " + std::to_string(u->prompt_tokens) + "\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("latent_lsp_completion_tokens_total " + std::to_string(u->completion_tokens) + "\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("latent_lsp_time_to_first_token_seconds_count 1\n"), std::string::npos) << text;
}

TEST_F(EngineBackendTest, SupersedeAndCancelStopTheEngine) {
  // A tiny model may finish a completion before the next call arrives; so each case is tried until the first
  // completion was still running (prefill alone takes a while). A completion either ends normally or with
  // kCancelled; never anything else, and never twice (a promise set twice throws).
  bool superseded = false, cancelled = false;
  for (int attempt = 0; attempt < 50 && !superseded; ++attempt) {
    auto a = std::make_shared<Outcome>(), b = std::make_shared<Outcome>();
    ASSERT_TRUE(start(a).ok());
    ASSERT_TRUE(start(b).ok());  // same document
    ASSERT_EQ(a->result.wait_for(60s), std::future_status::ready);
    ASSERT_EQ(b->result.wait_for(60s), std::future_status::ready);
    EXPECT_TRUE(b->result.get().ok());
    const auto& ra = a->result.get();
    if (!ra.ok()) {
      ASSERT_EQ(ra.error().code, ErrorCode::kCancelled) << ra.error().to_string();
      EXPECT_NE(ra.error().message.find("superseded"), std::string::npos) << ra.error().message;
      superseded = true;
    }
  }
  EXPECT_TRUE(superseded) << "the first completion always finished before the second started";
  for (int attempt = 0; attempt < 50 && !cancelled; ++attempt) {
    auto c = std::make_shared<Outcome>();
    auto t = start(c);
    ASSERT_TRUE(t.ok());
    core_->cancel(*t);
    ASSERT_EQ(c->result.wait_for(60s), std::future_status::ready);
    const auto& rc = c->result.get();
    if (!rc.ok()) {
      ASSERT_EQ(rc.error().code, ErrorCode::kCancelled) << rc.error().to_string();
      cancelled = true;
    }
  }
  EXPECT_TRUE(cancelled) << "every completion finished before cancel() reached it";
  // Nothing keeps running in the engine.
  // Waits on the condition; the bound only turns a hang into a failure.
  for (auto end = std::chrono::steady_clock::now() + 120s; host_->scheduler().has_work() && std::chrono::steady_clock::now() < end;) {
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_FALSE(host_->scheduler().has_work());
  EXPECT_EQ(core_->running(), 0u);
}

// rank with the constrained continuation, through the real engine: an answer from the first round alone has
// code or is empty (a first round whose best has no code, e.g. a docstring, is decoded on after it), and one
// from the second round says so. The demo model writes docstrings at function starts: the second round runs on
// at least one of these (each case is the same seeded candidates every time).
TEST_F(EngineBackendTest, RankDecodesOnAfterADocstringThroughTheEngine) {
  lsp::AssistantOptions ao;
  ao.max_tokens = 32;
  ao.syntax = lsp::SyntaxMode::kRank;
  ao.rank_candidates = 4;
  ao.time_budget = std::chrono::hours(1);  // a loaded machine never skips the second round here
  lsp::AssistantCore core(ao, backend_.get());
  const char* starts[] = {
      "import os\n\n\ndef list_python_files(root):\n",
      "class Config:\n    def load(self, path):\n",
      "def parse_args(argv):\n",
      "import re\n\n\ndef split_words(text):\n",
      "def read_lines(path):\n",
      "class Stack:\n    def push(self, item):\n",
  };
  int continued = 0;
  for (const char* start : starts) {
    SCOPED_TRACE(start);
    const std::string doc = std::string(start) + "\n\n\ndef main():\n    return 0\n";
    const std::string uri = "file:///w/rank.py";
    ASSERT_TRUE(core.open(uri, "python", 1, doc).ok());
    uint32_t line = 0;
    for (const char* c = start; *c; ++c) line += *c == '\n';
    auto o = std::make_shared<Outcome>();
    auto t = core.complete(lsp::CompletionRequest{uri, {line, 0}, lsp::PositionEncoding::kUtf16}, nullptr,
                           [o](Result<lsp::CompletionOutcome> r) { o->done.set_value(std::move(r)); });
    ASSERT_TRUE(t.ok()) << t.error().to_string();
    ASSERT_EQ(o->result.wait_for(120s), std::future_status::ready);
    auto r = o->result.get();
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    ASSERT_TRUE(r->syntax.has_value());
    const auto& v = *r->syntax;
    const bool second = std::find(v.rules.begin(), v.rules.end(), "continued") != v.rules.end();
    if (v.candidates == 4) {
      EXPECT_TRUE(v.has_code || r->text.empty()) << "a first-round answer without code: " << r->text;
      EXPECT_FALSE(second);
    } else {
      EXPECT_EQ(v.candidates, 8) << v.reason;
      ++continued;
    }
    if (second) {
      EXPECT_TRUE(v.has_code) << r->text;
    }
    EXPECT_LE(v.errors_with, v.errors_without) << v.reason;
    ASSERT_TRUE(core.close(uri).ok());
  }
  if (model_dir().find("models/demo") != std::string::npos) {
    EXPECT_GE(continued, 1);
  }
}

}  // namespace
}  // namespace latent::server
