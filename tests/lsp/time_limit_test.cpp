// Sizing the context for time: AssistantCore turns the backend's prefill cost model and the latency budget into
// a cap on prompt tokens (AssistantCore::time_limit), which the completion's prompt and explainContext obey.
// The backend double reports a fixed cost model, so nothing here depends on this machine's speed.
#include <gtest/gtest.h>

#include "lsp/assistant_core.h"

namespace latent::lsp {
namespace {

class CostedBackend : public CompletionBackend {
 public:
  Handle start(CompletionJob job, OnDelta, OnDone) override {  // never answers: only the prompt matters here
    jobs.push_back(std::move(job));
    return jobs.size();
  }
  void cancel(Handle) override {}
  std::string describe() const override { return "costed test backend"; }
  std::optional<PrefillCost> prefill_cost() const override { return cost; }
  std::optional<PrefillCost> cost;
  std::vector<CompletionJob> jobs;
};

std::string long_file() {
  std::string text;
  for (int i = 0; i < 400; ++i) text += "value_" + std::to_string(i) + " = transform(" + std::to_string(i) + ")\n";
  return text + "def finish(values):\n    return ";
}

TEST(TimeLimit, NoCostModelMeansNoLimit) {
  CostedBackend b;
  AssistantCore core(AssistantOptions{}, &b);
  EXPECT_FALSE(core.time_limit().has_value());
}

TEST(TimeLimit, TokensFromTheCostModelAndTheBudget) {
  CostedBackend b;
  b.cost = PrefillCost{10.0, 2.0};  // 10 ms + 2 ms per token
  AssistantOptions o;
  o.time_budget = std::chrono::milliseconds(1000);
  o.prefill_share = 0.5;  // 500 ms for the prompt: (500 - 10) / 2 = 245 tokens
  o.min_time_tokens = 64;
  AssistantCore core(o, &b);
  auto limit = core.time_limit();
  ASSERT_TRUE(limit.has_value());
  EXPECT_EQ(limit->tokens, 245u);
  EXPECT_NE(limit->why.find("2.000 ms/token"), std::string::npos) << limit->why;

  // Never below the floor, however slow the engine.
  b.cost = PrefillCost{900.0, 50.0};
  limit = core.time_limit();
  ASSERT_TRUE(limit.has_value());
  EXPECT_EQ(limit->tokens, 64u);
  EXPECT_NE(limit->why.find("the floor"), std::string::npos) << limit->why;
}

TEST(TimeLimit, TheCompletionsPromptAndExplainContextObeyIt) {
  CostedBackend b;
  AssistantOptions o;
  o.context.budget_tokens = 2048;
  o.time_budget = std::chrono::milliseconds(1000);
  o.min_time_tokens = 64;
  AssistantCore core(o, &b);
  const std::string uri = "file:///w/long.py";
  ASSERT_TRUE(core.open(uri, "python", 1, long_file()).ok());
  const Position end{401, 11};

  // Fast prefill: the token budget binds, not time.
  b.cost = PrefillCost{1.0, 0.01};
  auto fast = core.context_at(uri, end, PositionEncoding::kUtf16);
  ASSERT_TRUE(fast.ok());
  EXPECT_EQ(fast->time_tokens, 0u);
  EXPECT_GT(fast->prompt_tokens, 1000u);

  // Slow prefill (4 ms/token: 124 tokens in 500 ms): the prompt shrinks to fit, and says why.
  b.cost = PrefillCost{4.0, 4.0};
  auto slow = core.context_at(uri, end, PositionEncoding::kUtf16);
  ASSERT_TRUE(slow.ok());
  EXPECT_EQ(slow->time_tokens, 124u);
  EXPECT_LE(slow->prompt_tokens, 124u);
  EXPECT_NE(slow->items[0].reason.find("shortened for time"), std::string::npos) << slow->items[0].reason;
  ASSERT_TRUE(core.complete(CompletionRequest{uri, end, PositionEncoding::kUtf16}, nullptr,
                            [](Result<CompletionOutcome>) {}).ok());
  ASSERT_EQ(b.jobs.size(), 1u);
  EXPECT_EQ(b.jobs[0].prompt, slow->prompt);  // the completion used the same cut prompt
}

}  // namespace
}  // namespace latent::lsp
