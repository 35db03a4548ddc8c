// The agent loop on the real engine (no test double): a task's model turn is rendered in the model's chat
// format, tokenized with its tokenizer, run by the Scheduler at agent priority and parsed by the DeepSeek
// tool-call parser. The demo model does not solve tasks; the test checks that the turn runs and the task ends
// cleanly (done, or stopped at the step limit when the model happens to write a tool call), never "error".
#include <gtest/gtest.h>

#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <optional>

#include "lsp/agent/agent_session.h"
#include "server/engine_completion_backend.h"
#include "tests/lsp/test_files.h"
#include "tests/test_paths.h"

namespace latent::server {
namespace {

std::string model_dir() {
  for (std::string d : {std::string(LATENT_SOURCE_DIR) + "/models/demo", std::string(LATENT_TEST_DATA) + "/openai-tiny"}) {
    if (std::filesystem::exists(d + "/tokenizer.json")) return d;
  }
  return "";
}

class Client : public lsp::agent::AgentClient {
 public:
  void update(const std::string&, const lsp::agent::Json& u) override {
    std::lock_guard<std::mutex> lock(mu);
    updates.push_back(u);
    if (u["kind"] == "status" && u["step"] == 0) ended = u;
    cv.notify_all();
  }
  void apply_edit(const std::string&, const lsp::agent::Json&, std::function<void(Result<bool>)> done) override { done(false); }
  void run_command(const std::string&, const lsp::agent::Json&, std::function<void(Result<lsp::agent::Json>)> done) override {
    done(make_error(ErrorCode::kCancelled, "rejected"));
  }
  std::mutex mu;
  std::condition_variable cv;
  std::vector<lsp::agent::Json> updates;
  lsp::agent::Json ended;
};

TEST(AgentEngine, ATurnRunsOnTheRealModelAndTheTaskEnds) {
  std::string dir = model_dir();
  if (dir.empty()) GTEST_SKIP() << "no model with a tokenizer (models/demo, tests/data/openai-tiny)";
  EngineHostOptions o;
  o.model_dir = dir;
  o.cache_bytes = size_t(32) << 20;
  auto host = EngineHost::load(o);
  ASSERT_TRUE(host.ok()) << host.error().to_string();
  EngineCompletionBackend backend(**host);
  lsp::testing::TempTree tree;
  tree.write("calc.py", "def add(a, b):\n    return a - b\n");
  lsp::AssistantCore core(lsp::AssistantOptions{.index = lsp::IndexOptions{.background = false}}, nullptr);
  core.add_workspace_folder(tree.root());
  Client client;
  lsp::agent::AgentOptions ao;
  ao.max_steps = 1;
  ao.max_tokens = 16;
  {
    lsp::agent::AgentSession session(core, &backend, client, ao);
    auto id = session.start(lsp::agent::TaskRequest{"Make add return a + b.", {}, std::nullopt, lsp::agent::Approval::kEachEdit});
    ASSERT_TRUE(id.ok());
    std::unique_lock<std::mutex> lock(client.mu);
    ASSERT_TRUE(client.cv.wait_for(lock, std::chrono::seconds(300), [&] { return !client.ended.is_null(); }));
    EXPECT_TRUE(client.ended["state"] == "done" || client.ended["state"] == "stopped") << client.ended.dump();
  }
  bool ran = false;
  for (const auto& u : client.updates) ran |= u["kind"] == "status" && u["state"] == "running";
  EXPECT_TRUE(ran);
}

// A keystroke pre-empts agent work: a completion that arrives while an agent turn decodes runs its prompt and
// first token in steps of its own (the agent sits out), then the agent resumes and the task ends cleanly. The
// completion is submitted from the engine thread's step observer at the agent's first decoded token, so it
// always arrives mid-turn, however loaded the machine; batch membership is read from the same observer.
TEST(AgentEngine, AKeystrokeCompletionDoesNotShareStepsWithARunningAgentTurn) {
  std::string dir = model_dir();
  if (dir.empty()) GTEST_SKIP() << "no model with a tokenizer (models/demo, tests/data/openai-tiny)";
  std::mutex mu;
  std::vector<StepBatch> steps;
  EngineCompletionBackend* backend_ptr = nullptr;
  bool submitted = false;
  std::mutex cmu;  // the completion's answer (a failed submit answers inside on_step: not `mu`)
  std::condition_variable completion_cv;
  std::optional<Result<lsp::CompletionUsage>> completion;
  EngineHostOptions o;
  o.model_dir = dir;
  o.cache_bytes = size_t(32) << 20;
  o.scheduler.on_step = [&](const StepBatch& b) {  // engine thread
    std::lock_guard<std::mutex> lock(mu);
    steps.push_back(b);
    bool agent_decoding = false;
    for (const auto& m : b.members) agent_decoding |= m.priority == Priority::kAgent && m.generated >= 1;
    if (!agent_decoding || submitted || backend_ptr == nullptr) return;
    submitted = true;
    lsp::CompletionJob job;
    job.fim.prefix = "def add(a, b):\n    return ";
    job.fim.suffix = "\n";
    job.fim.path = "calc.py";
    job.doc_key = "file:///calc.py";
    job.max_tokens = 4;
    job.time_budget = std::chrono::milliseconds(0);
    backend_ptr->start(job, [](std::string_view) {}, [&](Result<lsp::CompletionUsage> r) {
      std::lock_guard<std::mutex> l(cmu);
      completion = std::move(r);
      completion_cv.notify_all();
    });
  };
  auto host = EngineHost::load(o);
  ASSERT_TRUE(host.ok()) << host.error().to_string();
  EngineCompletionBackend backend(**host);
  {
    std::lock_guard<std::mutex> lock(mu);
    backend_ptr = &backend;
  }
  lsp::testing::TempTree tree;
  tree.write("calc.py", "def add(a, b):\n    return a - b\n");
  lsp::AssistantCore core(lsp::AssistantOptions{.index = lsp::IndexOptions{.background = false}}, nullptr);
  core.add_workspace_folder(tree.root());
  Client client;
  lsp::agent::AgentOptions ao;
  ao.max_steps = 1;
  ao.max_tokens = 48;
  {
    lsp::agent::AgentSession session(core, &backend, client, ao);
    auto id = session.start(lsp::agent::TaskRequest{"Make add return a + b.", {}, std::nullopt, lsp::agent::Approval::kEachEdit});
    ASSERT_TRUE(id.ok());
    std::unique_lock<std::mutex> lock(client.mu);
    ASSERT_TRUE(client.cv.wait_for(lock, std::chrono::seconds(300), [&] { return !client.ended.is_null(); }));
    EXPECT_TRUE(client.ended["state"] == "done" || client.ended["state"] == "stopped") << client.ended.dump();
  }
  {
    std::unique_lock<std::mutex> lock(cmu);
    ASSERT_TRUE(completion_cv.wait_for(lock, std::chrono::seconds(300), [&] { return completion.has_value(); }))
        << "no completion: was it submitted? (the agent turn may have ended at its first token)";
    ASSERT_TRUE(completion->ok()) << completion->error().to_string();
  }
  std::unique_lock<std::mutex> lock(mu);
  // The completion's steps up to its first token: it alone, the agent paused beside it.
  int alone = 0;
  bool agent_after = false, key_seen = false;
  for (const auto& b : steps) {
    bool key_first = false, agent = false;
    for (const auto& m : b.members) {
      key_first |= m.priority == Priority::kInteractive && m.generated == 0;
      key_seen |= m.priority == Priority::kInteractive;
      agent |= m.priority == Priority::kAgent;
    }
    if (key_first) {
      EXPECT_EQ(b.members.size(), 1u) << "step " << b.step << " shares the keystroke's prompt with other work";
      EXPECT_EQ(b.paused, 1) << "step " << b.step;
      ++alone;
    }
    agent_after |= key_seen && agent && !key_first;
  }
  EXPECT_GE(alone, 1);
  EXPECT_TRUE(agent_after) << "the agent turn did not resume after the keystroke";
}

}  // namespace
}  // namespace latent::server
