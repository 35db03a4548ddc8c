#include "lsp/lsp_server.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "kernels/base/log.h"
#include "lsp/scripted_backend.h"
#include "lsp/transport_memory.h"

namespace latent::lsp {
namespace {

using namespace std::chrono_literals;

// A client over the in-memory transport, with the server's loop on a thread (clangd's LSPClient).
class Client {
 public:
  explicit Client(CompletionBackend* backend, LspServerOptions options = {}, AssistantOptions core_options = {})
      : core_(std::move(core_options), backend), server_(transport_, core_, options) {
    thread_ = std::thread([this] { clean_exit_ = server_.run(); });
  }
  ~Client() {
    transport_.client_close();
    thread_.join();
  }
  void notify(const std::string& method, Json params) {
    transport_.client_send(Json{{"jsonrpc", "2.0"}, {"method", method}, {"params", std::move(params)}});
  }
  void call(int id, const std::string& method, Json params) {
    transport_.client_send(Json{{"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", std::move(params)}});
  }
  void raw(const std::string& text) { transport_.client_send(text); }
  // Messages until the response with `id`; notifications on the way are kept in `seen`.
  Json response(int id, std::vector<Json>* seen = nullptr) {
    for (auto it = stash_.begin(); it != stash_.end(); ++it) {
      if ((*it)["id"] == id) {
        Json m = *it;
        stash_.erase(it);
        return m;
      }
    }
    for (;;) {
      auto m = transport_.client_receive(5s);
      if (!m) {
        ADD_FAILURE() << "no response with id " << id;
        return Json();
      }
      bool is_response = m->contains("id") && !m->contains("method");
      if (is_response && (*m)["id"] == id) return *m;
      if (is_response) {
        stash_.push_back(*m);  // another request's answer: kept for its own response() call
      } else if (seen) {
        seen->push_back(*m);
      }
    }
  }
  Json next() { return transport_.client_receive(5s).value_or(Json()); }
  void initialize(Json caps = Json::object()) {
    call(0, "initialize", {{"capabilities", caps}});
    ASSERT_TRUE(response(0).contains("result"));
    notify("initialized", Json::object());
    ASSERT_EQ(next()["method"], "latent/status");
  }
  void open(const std::string& uri, const std::string& text) {
    notify("textDocument/didOpen", {{"textDocument", {{"uri", uri}, {"languageId", "python"}, {"version", 1}, {"text", text}}}});
  }
  Json complete_params(const std::string& uri, int line, int ch) {
    return {{"textDocument", {{"uri", uri}}}, {"position", {{"line", line}, {"character", ch}}}, {"context", {{"triggerKind", 1}}}};
  }
  AssistantCore& core() { return core_; }

 private:
  InMemoryTransport transport_;
  AssistantCore core_;
  LspServer server_;
  std::thread thread_;
  bool clean_exit_ = false;
  std::vector<Json> stash_;
};

TEST(LspServer, InitializeAdvertisesInlineCompletionAndNegotiatesUtf8) {
  Client c(nullptr);
  c.call(1, "textDocument/inlineCompletion", Json::object());
  EXPECT_EQ(c.response(1)["error"]["code"], rpc_error::kServerNotInitialized);
  c.call(2, "initialize", {{"capabilities", {{"general", {{"positionEncodings", {"utf-8", "utf-16"}}}}}}});
  Json r = c.response(2)["result"];
  EXPECT_EQ(r["capabilities"]["inlineCompletionProvider"], true);
  EXPECT_EQ(r["capabilities"]["textDocumentSync"]["change"], 2);
  EXPECT_EQ(r["capabilities"]["positionEncoding"], "utf-8");
  EXPECT_EQ(r["serverInfo"]["name"], "latentd");
}

TEST(LspServer, RegistersFileWatchersAndIndexesWorkspaceFolders) {
  Client c(nullptr);
  char tmpl[] = "/tmp/latent_lsp_ws_XXXXXX";
  std::string root = mkdtemp(tmpl);
  { std::ofstream(root + "/lib.py") << "def from_disk(x):\n    return x\n"; }
  c.call(1, "initialize", {{"capabilities", {{"workspace", {{"didChangeWatchedFiles", {{"dynamicRegistration", true}}}}}}},
                           {"workspaceFolders", {{{"uri", "file://" + root}, {"name", "w"}}}}});
  ASSERT_TRUE(c.response(1).contains("result"));
  c.notify("initialized", Json::object());
  Json reg = c.next();
  EXPECT_EQ(reg["method"], "client/registerCapability");
  EXPECT_EQ(reg["params"]["registrations"][0]["method"], "workspace/didChangeWatchedFiles");
  c.raw(Json{{"jsonrpc", "2.0"}, {"id", reg["id"]}, {"result", nullptr}}.dump());  // the client's answer
  EXPECT_EQ(c.next()["method"], "latent/status");
  ASSERT_TRUE(c.core().index().wait_idle(10000));
  EXPECT_EQ(c.core().index().lookup("from_disk").size(), 1u);
  // A file changed on disk: re-indexed from the watcher notification.
  { std::ofstream(root + "/lib.py") << "def renamed(x):\n    return x\n"; }
  c.notify("workspace/didChangeWatchedFiles", {{"changes", {{{"uri", "file://" + root + "/lib.py"}, {"type", 2}}}}});
  c.call(2, "shutdown", Json());  // a round trip: the notification was handled
  c.response(2);
  ASSERT_TRUE(c.core().index().wait_idle(10000));
  EXPECT_TRUE(c.core().index().lookup("from_disk").empty());
  EXPECT_EQ(c.core().index().lookup("renamed").size(), 1u);
  std::filesystem::remove_all(root);
}

// Only what lies under the folders the client opened is indexed; every other path is refused with a logged
// reason: watcher events outside the folder (directly, through "..", through a symlink), non-file URIs, and
// symlinks inside the folder that point out of it.
TEST(LspServer, WorkspacePathsAreConfinedToTheOpenedFolders) {
  std::vector<std::string> warnings;
  std::mutex mu;
  set_log_sink([&](LogLevel level, const std::string& text) {
    std::lock_guard<std::mutex> lock(mu);
    if (level == LogLevel::kWarn) warnings.push_back(text);
  });
  char tmpl[] = "/tmp/latent_lsp_conf_XXXXXX";
  const std::string base = std::filesystem::canonical(mkdtemp(tmpl)).string();
  const std::string root = base + "/ws", outside = base + "/outside";
  std::filesystem::create_directories(root);
  std::filesystem::create_directories(outside);
  { std::ofstream(root + "/inside.py") << "def inside_fn(x):\n    return x\n"; }
  { std::ofstream(outside + "/secret.py") << "def secret_fn(x):\n    return x\n"; }
  std::filesystem::create_symlink(outside + "/secret.py", root + "/link.py");
  {
    Client c(nullptr);
    c.call(1, "initialize", {{"capabilities", Json::object()},
                             {"workspaceFolders", {{{"uri", "file://" + root}, {"name", "w"}},
                                                   {{"uri", "https://example.com/repo"}, {"name", "web"}}}}});
    ASSERT_TRUE(c.response(1).contains("result"));
    ASSERT_TRUE(c.core().index().wait_idle(10000));
    EXPECT_EQ(c.core().index().roots(), std::vector<std::string>{root});
    EXPECT_EQ(c.core().index().lookup("inside_fn").size(), 1u);
    EXPECT_TRUE(c.core().index().lookup("secret_fn").empty()) << "the symlink out of the folder was followed";
    for (const std::string& uri : {"file://" + outside + "/secret.py", "file://" + root + "/../outside/secret.py",
                                   "file://" + root + "/link.py", std::string("untitled:Untitled-1")}) {
      c.notify("workspace/didChangeWatchedFiles", {{"changes", {{{"uri", uri}, {"type", 1}}}}});
    }
    c.call(2, "shutdown", Json());  // a round trip: the notifications were handled
    c.response(2);
    ASSERT_TRUE(c.core().index().wait_idle(10000));
    EXPECT_TRUE(c.core().index().lookup("secret_fn").empty());
    // A file created inside the folder is still picked up.
    { std::ofstream(root + "/later.py") << "def later_fn():\n    pass\n"; }
    c.notify("workspace/didChangeWatchedFiles", {{"changes", {{{"uri", "file://" + root + "/later.py"}, {"type", 1}}}}});
    c.call(3, "textDocument/inlineCompletion", Json::object());  // any round trip
    c.response(3);
    ASSERT_TRUE(c.core().index().wait_idle(10000));
    EXPECT_EQ(c.core().index().lookup("later_fn").size(), 1u);
  }
  set_log_sink(nullptr);
  auto logged = [&](const std::string& needle) {
    for (const auto& w : warnings) {
      if (w.find(needle) != std::string::npos) return true;
    }
    return false;
  };
  EXPECT_TRUE(logged("workspace folder https://example.com/repo refused: expected an absolute path"));
  EXPECT_TRUE(logged(outside + "/secret.py refused: it lies outside the workspace folders"));
  EXPECT_TRUE(logged(root + "/../outside/secret.py refused: it lies outside the workspace folders"));
  EXPECT_TRUE(logged(root + "/link.py refused: it lies outside the workspace folders"));
  EXPECT_TRUE(logged("untitled:Untitled-1 refused: expected an absolute path"));
  std::filesystem::remove_all(base);
}

TEST(WorkspacePaths, PathIsUnderComparesWholeComponents) {
  EXPECT_TRUE(path_is_under("/w/a.py", "/w"));
  EXPECT_TRUE(path_is_under("/w", "/w"));
  EXPECT_TRUE(path_is_under("/w/a.py", "/"));
  EXPECT_FALSE(path_is_under("/wx/a.py", "/w"));
  EXPECT_FALSE(path_is_under("/a.py", "/w"));
  EXPECT_FALSE(path_is_under("/a.py", ""));
}

TEST(LspServer, SendsTheStatusFeedAfterInitializedAndEveryChange) {
  ScriptedBackend backend({"x"});
  StatusFeed feed(Json{{"state", "loading"}, {"progress", 0.25}});
  LspServerOptions options;
  options.status = &feed;
  Client c(&backend, options);
  c.call(0, "initialize", {{"capabilities", Json::object()}});
  ASSERT_TRUE(c.response(0).contains("result"));
  c.notify("initialized", Json::object());
  Json first = c.next();
  ASSERT_EQ(first["method"], "latent/status");
  EXPECT_EQ(first["params"]["state"], "loading");
  EXPECT_DOUBLE_EQ(first["params"]["progress"].get<double>(), 0.25);
  feed.publish(Json{{"state", "loading"}, {"progress", 0.5}});
  Json second = c.next();
  EXPECT_EQ(second["params"]["progress"], 0.5);
  feed.publish(Json{{"state", "ready"}, {"message", "scripted"}});
  EXPECT_EQ(c.next()["params"]["state"], "ready");
}

TEST(LspServer, ErrorsKeepTheServerServing) {
  Client c(nullptr);
  c.initialize();
  c.raw("{not json");
  Json e = c.next();
  EXPECT_EQ(e["error"]["code"], rpc_error::kParseError);
  EXPECT_TRUE(e["id"].is_null());
  c.raw("[1, 2]");
  EXPECT_EQ(c.next()["error"]["code"], rpc_error::kInvalidRequest);
  c.call(3, "no/such/method", Json::object());
  EXPECT_EQ(c.response(3)["error"]["code"], rpc_error::kMethodNotFound);
  c.call(4, "textDocument/inlineCompletion", {{"textDocument", 7}});
  EXPECT_EQ(c.response(4)["error"]["code"], rpc_error::kInvalidParams);
  c.call(5, "latent/explainContext", "nope");
  EXPECT_EQ(c.response(5)["error"]["code"], rpc_error::kInvalidParams);
  c.notify("textDocument/didChange", {{"bad", true}});  // logged, no answer
  // Without a model, completions say so.
  c.open("file:///w/a.py", "x = ");
  c.call(6, "textDocument/inlineCompletion", c.complete_params("file:///w/a.py", 0, 4));
  Json r = c.response(6);
  EXPECT_EQ(r["error"]["code"], rpc_error::kRequestFailed);
  EXPECT_NE(r["error"]["message"].get<std::string>().find("no model is loaded"), std::string::npos);
  c.call(7, "shutdown", Json());
  EXPECT_TRUE(c.response(7)["result"].is_null());
  c.call(8, "textDocument/inlineCompletion", c.complete_params("file:///w/a.py", 0, 4));
  EXPECT_EQ(c.response(8)["error"]["code"], rpc_error::kInvalidRequest);
}

TEST(LspServer, MaxTokensFromTheRequestOrTheSessionReachTheBackend) {
  ScriptedBackend backend({"x"}, 1ms);
  Client c(&backend);
  c.call(0, "initialize", {{"capabilities", Json::object()}, {"initializationOptions", {{"maxTokens", 40}}}});
  ASSERT_TRUE(c.response(0).contains("result"));
  c.notify("initialized", Json::object());
  c.open("file:///w/t.py", "x = ");
  c.call(1, "textDocument/inlineCompletion", c.complete_params("file:///w/t.py", 0, 4));
  ASSERT_TRUE(c.response(1).contains("result"));
  auto p = c.complete_params("file:///w/t.py", 0, 4);
  p["latent"] = {{"maxTokens", 7}};
  c.call(2, "textDocument/inlineCompletion", p);
  ASSERT_TRUE(c.response(2).contains("result"));
  p["latent"] = {{"maxTokens", -3}};  // not a positive integer: the session's limit applies
  c.call(3, "textDocument/inlineCompletion", p);
  ASSERT_TRUE(c.response(3).contains("result"));
  auto jobs = backend.jobs();
  ASSERT_EQ(jobs.size(), 3u);
  EXPECT_EQ(jobs[0].max_tokens, 40);
  EXPECT_EQ(jobs[1].max_tokens, 7);
  EXPECT_EQ(jobs[2].max_tokens, 40);
}

// latentd --users: a connection's completions are its user's work (tenant and weight reach the engine's Request).
TEST(LspServer, CompletionsCarryTheConnectionsTenantAndWeight) {
  ScriptedBackend backend({"x"}, 1ms);
  Client c(&backend, {}, AssistantOptions{.tenant = "ada", .tenant_weight = 3});
  c.initialize();
  c.open("file:///w/t.py", "x = ");
  c.call(1, "textDocument/inlineCompletion", c.complete_params("file:///w/t.py", 0, 4));
  ASSERT_TRUE(c.response(1).contains("result"));
  auto jobs = backend.jobs();
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].tenant, "ada");
  EXPECT_EQ(jobs[0].tenant_weight, 3.0);
}

TEST(LspServer, IncrementalChangesThenStreamedCompletion) {
  ScriptedBackend backend({"a", " +", " b", "\n", "\ndef other():\n"}, 10ms);
  Client c(&backend);
  c.initialize();
  c.open("file:///w/m.py", "def add(a, b):\n    pass\n");
  // Replace "pass" with "return " using UTF-16 ranges.
  c.notify("textDocument/didChange",
           {{"textDocument", {{"uri", "file:///w/m.py"}, {"version", 2}}},
            {"contentChanges", {{{"range", {{"start", {{"line", 1}, {"character", 4}}}, {"end", {{"line", 1}, {"character", 8}}}}},
                                 {"text", "return "}}}}});
  auto p = c.complete_params("file:///w/m.py", 1, 11);
  p["partialResultToken"] = "tok-1";
  c.call(10, "textDocument/inlineCompletion", p);
  std::vector<Json> seen;
  Json r = c.response(10, &seen);
  ASSERT_TRUE(r.contains("result")) << r.dump();
  ASSERT_EQ(r["result"]["items"].size(), 1u);
  EXPECT_EQ(r["result"]["items"][0]["insertText"], "a + b");  // cut at the block end
  EXPECT_EQ(r["result"]["items"][0]["range"]["start"]["character"], 11);
  std::vector<std::string> partials;
  for (const auto& m : seen) {
    if (m["method"] == "$/progress" && m["params"]["token"] == "tok-1") {
      partials.push_back(m["params"]["value"]["items"][0]["insertText"]);
    }
  }
  EXPECT_GE(partials.size(), 1u);  // the syntax check lets whole lines through (lsp/syntax_check.h)
  EXPECT_EQ(partials.back(), "a + b");
  // The backend saw the edited document in FIM form.
  auto jobs = backend.jobs();
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_NE(jobs[0].prompt.find("def add(a, b):\n    return <｜fim▁hole｜>"), std::string::npos) << jobs[0].prompt;
  // Keyed by connection (this core) and document: "core<N>:<uri>".
  EXPECT_TRUE(jobs[0].doc_key.starts_with("core") && jobs[0].doc_key.ends_with(":file:///w/m.py")) << jobs[0].doc_key;
}

TEST(LspServer, CancelAnswersRequestCancelledAndStopsTheBackend) {
  ScriptedBackend backend({"a", "b", "c", "d", "e", "f"}, 200ms);
  backend.hold();  // the completion cannot finish before the cancel reaches it, however slow this machine is
  Client c(&backend);
  c.initialize();
  c.open("file:///w/m.py", "x = ");
  c.call(20, "textDocument/inlineCompletion", c.complete_params("file:///w/m.py", 0, 4));
  c.notify("$/cancelRequest", {{"id", 20}});
  Json r = c.response(20);
  EXPECT_EQ(r["error"]["code"], rpc_error::kRequestCancelled);
  // The generation outlives its request until the next keystroke (type-through); one that it did not predict
  // stops it. (The scripted suggestion starts with "a".)
  c.notify("textDocument/didChange", {{"textDocument", {{"uri", "file:///w/m.py"}, {"version", 2}}},
                                      {"contentChanges", Json::array({{{"range", {{"start", {{"line", 0}, {"character", 4}}},
                                                                                 {"end", {{"line", 0}, {"character", 4}}}}},
                                                                      {"text", "z"}}})}});
  // Waits on the condition; the bound only turns a hang into a failure.
  for (auto end = std::chrono::steady_clock::now() + 120s; backend.cancelled() == 0 && std::chrono::steady_clock::now() < end;) {
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_EQ(backend.cancelled(), 1u);
}

TEST(LspServer, NewerRequestSupersedesAndPendingLimit) {
  ScriptedBackend backend({"a", "b", "c"}, 100ms);
  backend.hold();  // nothing finishes until release(): supersession and the limit do not race the clock
  LspServerOptions o;
  o.max_pending_requests = 2;
  Client c(&backend, o);
  c.initialize();
  c.open("file:///w/m.py", "x = ");
  c.open("file:///w/n.py", "y = ");
  c.call(30, "textDocument/inlineCompletion", c.complete_params("file:///w/m.py", 0, 4));
  c.call(31, "textDocument/inlineCompletion", c.complete_params("file:///w/m.py", 0, 4));
  Json first = c.response(30);
  EXPECT_EQ(first["error"]["code"], rpc_error::kRequestCancelled);
  EXPECT_NE(first["error"]["message"].get<std::string>().find("superseded"), std::string::npos);
  c.call(32, "textDocument/inlineCompletion", c.complete_params("file:///w/n.py", 0, 4));
  c.call(33, "textDocument/inlineCompletion", c.complete_params("file:///w/n.py", 0, 4));  // over the limit of 2
  Json limited = c.response(33);
  EXPECT_EQ(limited["error"]["code"], rpc_error::kRequestFailed);
  EXPECT_NE(limited["error"]["message"].get<std::string>().find("too many pending requests"), std::string::npos);
  backend.release();
  EXPECT_EQ(c.response(31)["result"]["items"][0]["insertText"], "abc");
  EXPECT_EQ(c.response(32)["result"]["items"][0]["insertText"], "abc");
}

TEST(LspServer, ContextOptionsFromInitializationOptions) {
  Client c(nullptr);
  c.call(1, "initialize", {{"capabilities", Json::object()},
                           {"initializationOptions", {{"latent", {{"context", {{"budgetTokens", 300}, {"prefixShare", 0.5},
                                                                              {"windowShare", "bad"}}}}}}}});
  ASSERT_TRUE(c.response(1).contains("result"));
  EXPECT_EQ(c.core().context_options().budget_tokens, 300u);
  EXPECT_DOUBLE_EQ(c.core().context_options().prefix_share, 0.5);
  EXPECT_DOUBLE_EQ(c.core().context_options().window_share, ContextOptions{}.window_share);  // invalid: kept
}

TEST(LspServer, ExplainContextAudit) {
  Client c(nullptr);
  c.initialize();
  c.open("file:///w/m.py", "import os\n\ndef f():\n    return ");
  c.call(40, "latent/explainContext", {{"textDocument", {{"uri", "file:///w/m.py"}}}, {"position", {{"line", 3}, {"character", 11}}}});
  Json r = c.response(40)["result"];
  EXPECT_NE(r["prompt"].get<std::string>().find("<｜fim▁hole｜>"), std::string::npos);
  EXPECT_EQ(r["items"][0]["kind"], "prefix");
  EXPECT_LE(r["promptTokens"].get<size_t>(), r["budgetTokens"].get<size_t>());
  c.call(41, "latent/explainContext", {{"textDocument", {{"uri", "file:///w/none.py"}}}, {"position", {{"line", 0}, {"character", 0}}}});
  EXPECT_EQ(c.response(41)["error"]["code"], rpc_error::kRequestFailed);
}

}  // namespace
}  // namespace latent::lsp
