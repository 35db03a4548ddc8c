// The agent loop in-process: the real AgentSession, tools, edit checker and DeepSeek tool-call parser, with a
// test double of the model only (ScriptedModel: fixed transcripts) and a recording client in place of the
// editor (it applies workspace edits to the files on disk, as the node tests' client does).
#include "lsp/agent/agent_session.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "lsp/agent/agent_tools.h"
#include "lsp/agent/scripted_model.h"
#include "lsp/uri.h"
#include "tests/lsp/test_files.h"

namespace latent::lsp::agent {
namespace {

namespace fs = std::filesystem;

std::string slurp(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string call(const std::string& name, const Json& args) {
  return "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>" + name + "\n```json\n" + args.dump() +
         "\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>";
}

// Applies workspace edits to disk (ASCII files: UTF-16 columns are bytes) and records everything.
class RecordingClient : public AgentClient {
 public:
  bool apply = true;
  Json command_reply = {{"exitCode", 0}, {"output", "ok\n"}, {"truncated", false}};

  void update(const std::string& task_id, const Json& u) override {
    std::lock_guard<std::mutex> lock(mu_);
    updates_.push_back(u);
    cv_.notify_all();
  }
  void apply_edit(const std::string& label, const Json& we, std::function<void(Result<bool>)> done) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      edits_.push_back(we);
    }
    if (apply) {
      Json changes = we.value("changes", Json::object()), document_changes = we.value("documentChanges", Json::array());
      for (auto& [uri, list] : changes.items()) apply_text_edits(uri, list);
      for (const auto& c : document_changes) {
        if (c.value("kind", "") == "delete") fs::remove(uri_to_path(c["uri"].get<std::string>()));
        else if (c.value("kind", "") == "create") {
          fs::path p = uri_to_path(c["uri"].get<std::string>());
          fs::create_directories(p.parent_path());  // as VS Code does
          std::ofstream(p.string());
        }
        else apply_text_edits(c["textDocument"]["uri"], c["edits"]);
      }
    }
    done(apply);
  }
  void run_command(const std::string&, const Json& request, std::function<void(Result<Json>)> done) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      commands_.push_back(request);
    }
    done(command_reply);
  }

  // Waits for an update matching `pred` (the tests' only synchronization: no sleeps).
  Json wait_for(const std::function<bool(const Json&)>& pred) {
    std::unique_lock<std::mutex> lock(mu_);
    Json found;
    bool ok = cv_.wait_for(lock, std::chrono::seconds(60), [&] {
      for (const auto& u : updates_) {
        if (pred(u)) {
          found = u;
          return true;
        }
      }
      return false;
    });
    EXPECT_TRUE(ok) << "no such update; got " << Json(updates_).dump();
    return found;
  }
  Json wait_status(const std::string& state) {
    return wait_for([&](const Json& u) { return u["kind"] == "status" && u["state"] == state; });
  }
  std::vector<Json> updates() {
    std::lock_guard<std::mutex> lock(mu_);
    return updates_;
  }
  std::vector<Json> edits() {
    std::lock_guard<std::mutex> lock(mu_);
    return edits_;
  }
  std::vector<Json> commands() {
    std::lock_guard<std::mutex> lock(mu_);
    return commands_;
  }

 private:
  static size_t offset(const std::string& text, const Json& pos) {
    size_t off = 0;
    for (int l = 0; l < pos["line"].get<int>(); ++l) off = text.find('\n', off) + 1;
    return off + pos["character"].get<size_t>();
  }
  void apply_text_edits(const std::string& uri, const Json& list) {
    std::string path = uri_to_path(uri);
    std::string text = slurp(path);
    for (const auto& e : list) {  // one edit per file in these tests
      size_t a = offset(text, e["range"]["start"]), b = offset(text, e["range"]["end"]);
      text = text.substr(0, a) + e["newText"].get<std::string>() + text.substr(b);
    }
    std::ofstream(path, std::ios::binary) << text;
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Json> updates_, edits_, commands_;
};

const char* kCalc = "class Calc:\n    def add(self, a, b):\n        return a - b\n\n    def neg(self, a):\n        return -a\n";

class AgentSessionTest : public ::testing::Test {
 protected:
  testing::TempTree tree;
  AssistantCore core{AssistantOptions{.index = IndexOptions{.background = false}}, nullptr};
  RecordingClient client;
  std::string file;
  void SetUp() override {
    file = tree.write("calc.py", kCalc);
    core.add_workspace_folder(tree.root());
  }
};

TEST_F(AgentSessionTest, EditWaitsForApprovalThenAppliesAndReverts) {
  ScriptedModel model({call("read_file", {{"path", "calc.py"}, {"startLine", 2}, {"endLine", 3}}),
                       call("edit", {{"path", "calc.py"}, {"symbol", "Calc.add"},
                                     {"new", "def add(self, a, b):\n        return a + b"}}),
                       "Done: add adds."});
  AgentSession session(core, &model, client);
  auto id = session.start(TaskRequest{"fix add", {path_to_uri(file)}, std::nullopt, Approval::kEachEdit});
  ASSERT_TRUE(id.ok());
  auto proposed = client.wait_for([](const Json& u) { return u["kind"] == "edit" && u["state"] == "proposed"; });
  EXPECT_EQ(proposed["oldText"], "def add(self, a, b):\n        return a - b");
  client.wait_status("waiting");
  EXPECT_EQ(slurp(file), kCalc);  // nothing written before approval
  auto read = client.wait_for([](const Json& u) { return u["kind"] == "toolResult" && u["name"] == "read_file"; });
  EXPECT_EQ(read["result"]["text"], "    def add(self, a, b):\n        return a - b\n");
  EXPECT_EQ(read["result"]["totalLines"], 6);
  ASSERT_TRUE(session.respond(*id, TaskResponse{true, ""}).ok());
  auto done = client.wait_status("done");
  EXPECT_EQ(done["message"], "Done: add adds.");
  EXPECT_EQ(slurp(file), std::string(kCalc).replace(std::string(kCalc).find("a - b"), 5, "a + b"));
  // The first prompt is DeepSeek's chat format with the tools and the attached file.
  auto prompts = model.prompts();
  ASSERT_EQ(prompts.size(), 3u);
  EXPECT_NE(prompts[0].find("<｜User｜>fix add"), std::string::npos);
  EXPECT_NE(prompts[0].find("read_file"), std::string::npos);
  EXPECT_NE(prompts[0].find("File calc.py (version h:"), std::string::npos);
  EXPECT_NE(prompts[1].find("<｜Assistant｜><｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>read_file"),
            std::string::npos) << prompts[1];
  EXPECT_NE(prompts[1].find("<｜tool▁output▁begin｜>{\"endLine\":3"), std::string::npos) << prompts[1];
  EXPECT_NE(prompts[2].find("<｜tool▁output▁begin｜>"), std::string::npos);
  ASSERT_TRUE(session.revert(*id).ok());
  client.wait_for([](const Json& u) { return u["kind"] == "edit" && u["state"] == "reverted"; });
  EXPECT_EQ(slurp(file), kCalc);
  // The revert replaced only the span that differs.
  auto edits = client.edits();
  ASSERT_EQ(edits.size(), 2u);
  EXPECT_EQ(edits[1]["documentChanges"][0]["edits"][0]["newText"], "-");
}

// latentd --users: every model turn is the user's work (Request::tenant and its weight), shared fairly with
// other users' completions.
TEST_F(AgentSessionTest, ModelTurnsCarryTheUsersTenantAndWeight) {
  ScriptedModel model({call("read_file", {{"path", "calc.py"}, {"startLine", 1}, {"endLine", 2}}), "Read it."});
  AgentSession session(core, &model, client, AgentOptions{.tenant = "ada", .tenant_weight = 2.5});
  auto id = session.start(TaskRequest{"look", {}, std::nullopt, Approval::kEachEdit});
  ASSERT_TRUE(id.ok());
  client.wait_status("done");
  using Tenants = std::vector<std::pair<std::string, double>>;
  EXPECT_EQ(model.tenants(), (Tenants{{"ada", 2.5}, {"ada", 2.5}}));
  ScriptedModel anonymous({"ok"});
  AgentSession plain(core, &anonymous, client);
  ASSERT_TRUE(plain.start(TaskRequest{"hi", {}, std::nullopt, Approval::kEachEdit}).ok());
  client.wait_for([](const Json& u) { return u["kind"] == "status" && u["state"] == "done" && u["message"] == "ok"; });
  EXPECT_EQ(anonymous.tenants(), (Tenants{{"", 1.0}}));
}

TEST_F(AgentSessionTest, RefusedEditsTellTheModelWhichCheckFailed) {
  ScriptedModel model({call("edit", {{"path", "calc.py"}, {"old", "return"}, {"new", "yield"}}),
                       call("edit", {{"path", "calc.py"}, {"old", "return -a"}, {"new", "return -(a"}}),
                       call("edit", {{"path", "calc.py"}, {"old", "return -a"}, {"new", "return 0"}, {"version", 3}}),
                       call("edit", {{"path", "../x.py"}, {"old", "a"}, {"new", "b"}}),
                       call("nonexistent_tool", {{"x", 1}}),
                       "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>edit\n```json\n{not json\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>",
                       "I give up."});
  AgentSession session(core, &model, client);
  auto id = session.start(TaskRequest{"break things", {}, std::nullopt, Approval::kEachEdit});
  ASSERT_TRUE(id.ok());
  client.wait_status("done");
  std::vector<std::string> errors;
  for (const auto& u : client.updates()) {
    if (u["kind"] == "toolResult") {
      EXPECT_FALSE(u["ok"].get<bool>());
      errors.push_back(u["result"]["error"]);
    }
  }
  ASSERT_EQ(errors.size(), 6u);
  EXPECT_NE(errors[0].find("refused (ambiguous)"), std::string::npos) << errors[0];
  EXPECT_NE(errors[1].find("refused (syntax)"), std::string::npos) << errors[1];
  EXPECT_NE(errors[2].find("refused (stale)"), std::string::npos) << errors[2];
  EXPECT_NE(errors[3].find("'..' component"), std::string::npos) << errors[3];
  EXPECT_NE(errors[4].find("unknown tool 'nonexistent_tool'"), std::string::npos) << errors[4];
  EXPECT_NE(errors[5].find("expected the arguments as JSON"), std::string::npos) << errors[5];
  EXPECT_TRUE(client.edits().empty());
  EXPECT_EQ(slurp(file), kCalc);
}

TEST_F(AgentSessionTest, RejectCancelStepLimitAndTaskApproval) {
  {  // rejected: the model hears it, the file stays
    ScriptedModel model({call("edit", {{"path", "calc.py"}, {"old", "return -a"}, {"new", "return 0"}}), "ok"});
    AgentSession session(core, &model, client);
    auto id = session.start(TaskRequest{"t", {}, std::nullopt, Approval::kEachEdit});
    client.wait_status("waiting");
    ASSERT_TRUE(session.respond(*id, TaskResponse{false, "keep it"}).ok());
    client.wait_status("done");
    auto r = client.wait_for([](const Json& u) { return u["kind"] == "toolResult"; });
    EXPECT_EQ(r["result"]["message"], "keep it");
    EXPECT_EQ(slurp(file), kCalc);
    EXPECT_FALSE(session.revert(*id).ok());  // nothing to revert
  }
  RecordingClient c2;
  {  // cancelled while waiting for approval
    ScriptedModel model({call("edit", {{"path", "calc.py"}, {"old", "return -a"}, {"new", "return 0"}})});
    AgentSession session(core, &model, c2);
    auto id = session.start(TaskRequest{"t", {}, std::nullopt, Approval::kEachEdit});
    c2.wait_status("waiting");
    ASSERT_TRUE(session.cancel(*id).ok());
    c2.wait_status("cancelled");
    EXPECT_TRUE(session.wait(*id, std::chrono::seconds(60)));
    EXPECT_TRUE(c2.edits().empty());
  }
  RecordingClient c3;
  {  // the step limit
    std::vector<std::string> turns(5, call("list_files", Json::object()));
    ScriptedModel model(turns);
    AgentOptions o;
    o.max_steps = 3;
    AgentSession session(core, &model, c3, o);
    auto id = session.start(TaskRequest{"t", {}, std::nullopt, Approval::kEachEdit});
    auto st = c3.wait_status("stopped");
    EXPECT_NE(st["message"].get<std::string>().find("step limit (3)"), std::string::npos);
    EXPECT_EQ(model.prompts().size(), 3u);
  }
  RecordingClient c4;
  {  // approval per task: asked once, then later edits apply; a command goes to the client
    ScriptedModel model({call("edit", {{"path", "calc.py"}, {"old", "return -a"}, {"new", "return 0 - a"}}),
                         call("create_file", {{"path", "new/mod.py"}, {"content", "X = 1\n"}}),
                         call("run_command", {{"command", "make test"}, {"cwd", "new"}}), "done"});
    AgentSession session(core, &model, c4);
    auto id = session.start(TaskRequest{"t", {}, std::nullopt, Approval::kTask});
    c4.wait_status("waiting");
    ASSERT_TRUE(session.respond(*id, TaskResponse{true, ""}).ok());
    c4.wait_status("done");
    EXPECT_EQ(c4.edits().size(), 2u);
    EXPECT_EQ(slurp(tree.root() + "/new/mod.py"), "X = 1\n");
    ASSERT_EQ(c4.commands().size(), 1u);
    EXPECT_EQ(c4.commands()[0]["command"], "make test");
    EXPECT_EQ(c4.commands()[0]["cwd"], fs::canonical(tree.root() + "/new").string());
    int waits = 0;
    for (const auto& u : c4.updates()) waits += u["kind"] == "status" && u["state"] == "waiting" ? 1 : 0;
    EXPECT_EQ(waits, 2);  // the first edit, and the command (the client asks the user itself)
    ASSERT_TRUE(session.revert(*id).ok());
    EXPECT_EQ(slurp(file), kCalc);
    EXPECT_FALSE(fs::exists(tree.root() + "/new/mod.py"));
  }
}

TEST_F(AgentSessionTest, AFileChangedWhileWaitingIsNotOverwritten) {
  ScriptedModel model({call("edit", {{"path", "calc.py"}, {"old", "return -a"}, {"new", "return 0"}}), "ok"});
  AgentSession session(core, &model, client);
  auto id = session.start(TaskRequest{"t", {}, std::nullopt, Approval::kEachEdit});
  client.wait_status("waiting");
  std::string changed = std::string(kCalc) + "# the user typed this\n";
  std::ofstream(file, std::ios::binary) << changed;
  ASSERT_TRUE(session.respond(*id, TaskResponse{true, ""}).ok());
  client.wait_status("done");
  auto r = client.wait_for([](const Json& u) { return u["kind"] == "toolResult"; });
  EXPECT_NE(r["result"]["error"].get<std::string>().find("changed while waiting for approval"), std::string::npos);
  EXPECT_EQ(slurp(file), changed);
  EXPECT_TRUE(client.edits().empty());
}

TEST_F(AgentSessionTest, EditsOfOpenDocumentsCarryTheirVersion) {
  ASSERT_TRUE(core.open(path_to_uri(file), "python", 5, kCalc).ok());
  ScriptedModel model({call("edit", {{"path", "calc.py"}, {"old", "return -a"}, {"new", "return 0"}, {"version", 5}}), "ok"});
  AgentSession session(core, &model, client);
  auto id = session.start(TaskRequest{"t", {}, std::nullopt, Approval::kEachEdit});
  client.wait_status("waiting");
  ASSERT_TRUE(session.respond(*id, TaskResponse{true, ""}).ok());
  client.wait_status("done");
  auto edits = client.edits();
  ASSERT_EQ(edits.size(), 1u);
  EXPECT_EQ(edits[0]["documentChanges"][0]["textDocument"]["version"], 5);  // the editor refuses it at another version
}

TEST(AgentTools, ReadListSearchFindAndConfine) {
  testing::TempTree tree;
  tree.write(".gitignore", "build/\n");
  tree.write("src/calc.py", kCalc);
  tree.write("src/use.py", "from calc import Calc\nCalc().add(1, 2)\nadder = 3\n");
  tree.write("build/gen.py", "Calc = None\n");
  AssistantCore core{AssistantOptions{.index = IndexOptions{.background = false}}, nullptr};
  core.add_workspace_folder(tree.root());
  ToolContext ctx{core.index().roots(), &core.documents(), &core.index()};
  auto list = run_tool(ctx, "list_files", Json::object());
  ASSERT_TRUE(list.ok) << list.result.dump();
  EXPECT_EQ(list.result["files"], Json::array({".gitignore", "src/", "src/calc.py", "src/use.py"}));
  auto search = run_tool(ctx, "search_text", {{"query", "Calc"}});
  ASSERT_TRUE(search.ok);
  EXPECT_EQ(search.result["matches"].size(), 3u);  // not build/gen.py
  auto refs = run_tool(ctx, "references", {{"name", "add"}});
  ASSERT_EQ(refs.result["matches"].size(), 2u) << refs.result.dump();  // not "adder"
  auto sym = run_tool(ctx, "find_symbol", {{"name", "Calc.add"}});
  ASSERT_TRUE(sym.ok) << sym.result.dump();
  EXPECT_EQ(sym.result["symbols"][0]["path"], "src/calc.py");
  EXPECT_EQ(sym.result["symbols"][0]["line"], 2);
  auto def = run_tool(ctx, "definition", {{"name", "neg"}});
  EXPECT_EQ(def.result["symbols"][0]["text"], "def neg(self, a):\n        return -a");
  auto open = core.open(path_to_uri(tree.root() + "/src/calc.py"), "python", 7, "x = 1\n");
  ASSERT_TRUE(open.ok());
  auto live = run_tool(ctx, "read_file", {{"path", "src/calc.py"}});
  EXPECT_EQ(live.result["text"], "x = 1\n");  // the editor's buffer, not the disk
  EXPECT_EQ(live.result["version"], 7);
  for (const char* bad : {"../x", "/etc/passwd", "src/../../x"}) {
    auto r = run_tool(ctx, "read_file", {{"path", bad}});
    EXPECT_FALSE(r.ok);
    EXPECT_NE(r.result["error"].get<std::string>().find("expected a path inside the workspace"), std::string::npos);
  }
  EXPECT_FALSE(run_tool(ctx, "read_file", {{"path", 3}}).ok);
  EXPECT_FALSE(run_tool(ctx, "create_file", {{"path", "src/use.py"}, {"content", "x"}}).ok);  // exists
  EXPECT_FALSE(run_tool(ctx, "create_file", {{"path", "src/bad.py"}, {"content", "def ("}}).ok);
  auto cmd = run_tool(ctx, "run_command", {{"command", "ls"}, {"cwd", "../"}});
  EXPECT_FALSE(cmd.ok);
}

TEST(AgentTools, QualifiedNamesMatchOnlyInsideTheirEnclosingDefinition) {
  testing::TempTree tree;
  tree.write("a.py",
             "class Outer:\n"
             "    def inner(self):\n"
             "        return 1\n"
             "\n"
             "class Other:\n"
             "    @staticmethod\n"
             "    def inner():\n"
             "        return 2\n"
             "\n"
             "def inner():\n"
             "    return 3\n");
  tree.write("b.py", "class Outer:\n    pass\n\ndef inner():\n    return 4\n");
  AssistantCore core{AssistantOptions{.index = IndexOptions{.background = false}}, nullptr};
  core.add_workspace_folder(tree.root());
  ToolContext ctx{core.index().roots(), &core.documents(), &core.index()};
  auto lines_of = [&](const char* tool, const char* name) {
    auto r = run_tool(ctx, tool, {{"name", name}});
    std::vector<std::string> out;
    for (const auto& s : r.result.value("symbols", Json::array()))
      out.push_back(s["path"].get<std::string>() + ":" + std::to_string(s["line"].get<int>()));
    std::sort(out.begin(), out.end());
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(lines_of("find_symbol", "inner"), (V{"a.py:10", "a.py:2", "a.py:7", "b.py:4"}));
  EXPECT_EQ(lines_of("find_symbol", "Outer.inner"), (V{"a.py:2"}));  // not Other's, not the top-level ones
  EXPECT_EQ(lines_of("find_symbol", "Other.inner"), (V{"a.py:7"}));  // decorated: still inside Other
  EXPECT_EQ(lines_of("find_symbol", "Outer::inner"), (V{"a.py:2"}));
  EXPECT_EQ(lines_of("definition", "Outer.inner"), (V{"a.py:2"}));
  auto def = run_tool(ctx, "definition", {{"name", "Outer.inner"}});
  EXPECT_EQ(def.result["symbols"][0]["text"], "def inner(self):\n        return 1");
  auto missing = run_tool(ctx, "find_symbol", {{"name", "Nowhere.inner"}});
  EXPECT_FALSE(missing.ok);
  EXPECT_NE(missing.result["error"].get<std::string>().find("no definition of 'Nowhere.inner'"), std::string::npos);
  // The open buffer decides: once Outer's method is renamed in the editor, Outer.inner names nothing there.
  ASSERT_TRUE(core.open(path_to_uri(tree.root() + "/b.py"), "python", 2,
                        "class Outer:\n    def inner(self):\n        return 5\n").ok());
  EXPECT_EQ(lines_of("find_symbol", "Outer.inner"), (V{"a.py:2", "b.py:2"}));
}

}  // namespace
}  // namespace latent::lsp::agent
