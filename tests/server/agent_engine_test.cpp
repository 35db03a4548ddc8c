// The agent loop on the real engine (no test double): a task's model turn is rendered in the model's chat
// format, tokenized with its tokenizer, run by the Scheduler at agent priority and parsed by the DeepSeek
// tool-call parser. The demo model does not solve tasks; the test checks that the turn runs and the task ends
// cleanly (done, or stopped at the step limit when the model happens to write a tool call), never "error".
#include <gtest/gtest.h>

#include <condition_variable>
#include <filesystem>
#include <mutex>

#include "lsp/agent/agent_session.h"
#include "server/engine_completion_backend.h"
#include "tests/lsp/test_files.h"

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

}  // namespace
}  // namespace latent::server
