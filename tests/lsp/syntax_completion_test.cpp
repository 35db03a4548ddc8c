// The syntax check on the LSP completion path: AssistantCore with a scripted backend (no model) streams only
// checked whole lines, answers with the checked text, stops decoding at a loop, and LspServer exposes the
// verdict through latent/explainContext and the mode through initializationOptions.latent.syntaxCheck.
#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "lsp/assistant_core.h"
#include "lsp/lsp_server.h"
#include "lsp/scripted_backend.h"
#include "lsp/transport_memory.h"

namespace latent::lsp {
namespace {

using namespace std::chrono_literals;

// Runs one completion and waits for its end (a condition, not a sleep).
struct Completion {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  std::vector<std::string> partials;
  Result<CompletionOutcome> outcome = make_error(ErrorCode::kInternal, "not finished");

  void start(AssistantCore& core, const std::string& uri, Position at) {
    CompletionRequest req{uri, at, PositionEncoding::kUtf8, 0};
    auto t = core.complete(
        req,
        [this](const std::string& text) {
          std::lock_guard<std::mutex> lock(mu);
          partials.push_back(text);
        },
        [this](Result<CompletionOutcome> r) {
          std::lock_guard<std::mutex> lock(mu);
          outcome = std::move(r);
          done = true;
          cv.notify_all();
        });
    ASSERT_TRUE(t.ok()) << t.error().message;
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, 30s, [&] { return done; }));
  }
};

const char* kDoc = "import os\n\n\ndef add(a, b):\n\n\ndef other():\n    return 1\n";
const Position kBody{4, 0};  // the empty line of add's body

TEST(SyntaxCompletion, CutsBackWhatBreaksTheFileAndSaysWhy) {
  ScriptedBackend backend({"    total = a + b\n", "    return total\n", "    for i in ", "range(len(a)):\n"}, 1ms);
  SyntaxStats stats;
  AssistantOptions options;
  options.syntax_stats = &stats;
  AssistantCore core(options, &backend);
  ASSERT_TRUE(core.open("file:///w/m.py", "python", 1, kDoc).ok());
  Completion run;
  run.start(core, "file:///w/m.py", kBody);
  ASSERT_TRUE(run.outcome.ok()) << run.outcome.error().message;
  EXPECT_EQ(run.outcome->text, "    total = a + b\n    return total");
  ASSERT_TRUE(run.outcome->syntax.has_value());
  EXPECT_EQ(run.outcome->syntax->action, SyntaxAction::kCut);
  EXPECT_NE(run.outcome->syntax->reason.find("parse error"), std::string::npos) << run.outcome->syntax->reason;
  // Partial results were checked whole lines: never the broken `for` line.
  for (const auto& p : run.partials) EXPECT_EQ(p.find("for i"), std::string::npos) << p;  // an empty loop body
  ASSERT_FALSE(run.partials.empty());
  auto last = core.last_syntax("file:///w/m.py");
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(last->text, run.outcome->text);
  EXPECT_EQ(stats.snapshot().actions["cut"], 1u);
}

TEST(SyntaxCompletion, RefusesABrokenSuggestionAndOffShowsIt) {
  ScriptedBackend backend({"    return a +* b )\n"}, 1ms);
  AssistantCore core(AssistantOptions{}, &backend);
  ASSERT_TRUE(core.open("file:///w/m.py", "python", 1, kDoc).ok());
  Completion refused;
  refused.start(core, "file:///w/m.py", kBody);
  ASSERT_TRUE(refused.outcome.ok());
  EXPECT_EQ(refused.outcome->text, "");
  EXPECT_EQ(refused.outcome->syntax->action, SyntaxAction::kRefused);

  core.set_syntax_mode(SyntaxMode::kOff);
  Completion off;
  off.start(core, "file:///w/m.py", kBody);
  ASSERT_TRUE(off.outcome.ok());
  EXPECT_EQ(off.outcome->text, "    return a +* b )");
  EXPECT_FALSE(off.outcome->syntax.has_value());
}

TEST(SyntaxCompletion, ALoopStopsDecoding) {
  // Twenty copies of the same two lines: the check stops the backend after the first repeat.
  std::vector<std::string> pieces;
  for (int i = 0; i < 20; ++i) {
    pieces.push_back("    if a:\n");
    pieces.push_back("        a = a[1:]\n");
  }
  ScriptedBackend backend(pieces, 1ms);
  AssistantCore core(AssistantOptions{}, &backend);
  ASSERT_TRUE(core.open("file:///w/m.py", "python", 1, kDoc).ok());
  Completion run;
  run.start(core, "file:///w/m.py", kBody);
  ASSERT_TRUE(run.outcome.ok());
  EXPECT_EQ(run.outcome->text, "    if a:\n        a = a[1:]");
  EXPECT_EQ(run.outcome->usage.finish_reason, "loop");
  EXPECT_LT(run.outcome->raw.size(), 200u);  // decoding stopped long before the 20 copies
  EXPECT_GE(backend.cancelled(), 1u);
}

TEST(SyntaxCompletion, JavaScriptToo) {
  ScriptedBackend backend({"  const s = a + b;\n", "  return s;\n", "  if (s > 1 {\n"}, 1ms);
  AssistantCore core(AssistantOptions{}, &backend);
  ASSERT_TRUE(core.open("file:///w/m.js", "javascript", 1, "function add(a, b) {\n\n}\n").ok());
  Completion run;
  run.start(core, "file:///w/m.js", Position{1, 0});
  ASSERT_TRUE(run.outcome.ok());
  EXPECT_EQ(run.outcome->text, "  const s = a + b;\n  return s;");
}

// Through the protocol: the mode from initializationOptions, the verdict in latent/explainContext.
TEST(SyntaxCompletion, InitializationOptionAndExplainContext) {
  ScriptedBackend backend({"    total = a + b\n", "    return total\n", "    while total = 1:\n"}, 1ms);
  AssistantCore core(AssistantOptions{}, &backend);
  InMemoryTransport transport;
  LspServer server(transport, core, LspServerOptions{});
  std::thread loop([&] { server.run(); });
  auto send = [&](const Json& m) { transport.client_send(m); };
  auto response = [&](int id) {
    for (;;) {
      auto m = transport.client_receive(30s);
      if (!m) return Json();
      if (m->contains("id") && (*m)["id"] == id && !m->contains("method")) return *m;
    }
  };
  // A bad value is an error that names what was expected.
  send({{"jsonrpc", "2.0"}, {"id", 1}, {"method", "initialize"},
        {"params", {{"capabilities", Json::object()}, {"initializationOptions", {{"latent", {{"syntaxCheck", "on"}}}}}}}});
  Json bad = response(1);
  ASSERT_TRUE(bad.contains("error")) << bad.dump();
  EXPECT_NE(bad["error"]["message"].get<std::string>().find("expected \"off\", \"trim\" or \"rank\""), std::string::npos);
  send({{"jsonrpc", "2.0"}, {"id", 2}, {"method", "initialize"},
        {"params", {{"capabilities", Json::object()}, {"initializationOptions", {{"latent", {{"syntaxCheck", "trim"}}}}}}}});
  ASSERT_TRUE(response(2).contains("result"));
  send({{"jsonrpc", "2.0"}, {"method", "textDocument/didOpen"},
        {"params", {{"textDocument", {{"uri", "file:///w/m.py"}, {"languageId", "python"}, {"version", 1}, {"text", kDoc}}}}}});
  Json pos = {{"line", kBody.line}, {"character", kBody.character}};
  send({{"jsonrpc", "2.0"}, {"id", 3}, {"method", "textDocument/inlineCompletion"},
        {"params", {{"textDocument", {{"uri", "file:///w/m.py"}}}, {"position", pos}, {"context", {{"triggerKind", 1}}}}}});
  Json r = response(3);
  ASSERT_TRUE(r.contains("result")) << r.dump();
  EXPECT_EQ(r["result"]["items"][0]["insertText"], "    total = a + b\n    return total");
  send({{"jsonrpc", "2.0"}, {"id", 4}, {"method", "latent/explainContext"},
        {"params", {{"textDocument", {{"uri", "file:///w/m.py"}}}, {"position", pos}}}});
  Json e = response(4);
  ASSERT_TRUE(e.contains("result")) << e.dump();
  const Json& sc = e["result"]["syntaxCheck"];
  EXPECT_EQ(sc["mode"], "trim");
  EXPECT_EQ(sc["last"]["action"], "cut");
  EXPECT_NE(sc["last"]["reason"].get<std::string>().find("later lines add parse errors"), std::string::npos) << sc.dump();
  transport.client_close();
  loop.join();
}

// A document whose text before the cursor is only indentation (latent eval replay's "none" setting, or a file
// begun with blanks): the indentation is the user's, and any statement there breaks Python's indentation rule,
// so the rule does not blame the completion for it (it used to refuse the exact suggestion).
TEST(SyntaxCompletion, IndentationTheUserTypedIsNotTheCompletionsError) {
  ScriptedBackend backend({"return dict(pairs)"}, 0ms);
  AssistantCore core(AssistantOptions{}, &backend);  // the default check
  ASSERT_NE(core.syntax_mode(), SyntaxMode::kOff);
  ASSERT_TRUE(core.open("file:///w/main.py", "", 1, "    ").ok());
  Completion run;
  run.start(core, "file:///w/main.py", Position{0, 4});
  ASSERT_TRUE(run.outcome.ok()) << run.outcome.error().message;
  EXPECT_EQ(run.outcome->text, "return dict(pairs)");
  ASSERT_TRUE(run.outcome->syntax.has_value());
  EXPECT_EQ(run.outcome->syntax->action, SyntaxAction::kKept) << run.outcome->syntax->reason;
}

// rank on the LSP path: the greedy completion and sampled ones decoded side by side (real threads of the
// scripted backend); the one that parses is shown, and the verdict says which.
TEST(SyntaxCompletion, RankShowsTheCandidateThatParses) {
  ScriptedBackend backend({"    return a +* b )\n"}, 1ms);
  backend.set_sample_pieces(1, {"    return a ", "- b\n"});
  backend.set_sample_pieces(2, {"    # add them\n"});
  SyntaxStats stats;
  AssistantOptions options;
  options.syntax = SyntaxMode::kRank;
  options.rank_candidates = 3;
  options.syntax_stats = &stats;
  AssistantCore core(options, &backend);
  ASSERT_TRUE(core.open("file:///w/m.py", "python", 1, kDoc).ok());
  Completion run;
  run.start(core, "file:///w/m.py", kBody);
  ASSERT_TRUE(run.outcome.ok()) << run.outcome.error().message;
  EXPECT_EQ(run.outcome->text, "    return a - b");
  ASSERT_TRUE(run.outcome->syntax.has_value());
  EXPECT_EQ(run.outcome->syntax->candidates, 3);
  EXPECT_EQ(run.outcome->syntax->chosen, 1);
  EXPECT_EQ(run.outcome->syntax->action, SyntaxAction::kKept) << run.outcome->syntax->reason;
  EXPECT_EQ(backend.jobs().size(), 3u);
  EXPECT_EQ(stats.snapshot().actions["kept"], 1u);  // one verdict per completion, not per candidate
  // trim: the same backend, one job, and the greedy suggestion refused.
  core.set_syntax_mode(SyntaxMode::kTrim);
  Completion trim;
  trim.start(core, "file:///w/m.py", Position{4, 0});
  ASSERT_TRUE(trim.outcome.ok());
  EXPECT_EQ(trim.outcome->text, "");
  EXPECT_EQ(backend.jobs().size(), 4u);
}

// rank: the request's usage callback hears the shown completion's account once and every sampled candidate's
// (marked candidate), so that quotas and per-user metrics see the work rank adds.
TEST(SyntaxCompletion, RankReportsEveryCandidatesUsage) {
  ScriptedBackend backend({"    return a +* b )\n"}, 1ms);
  backend.set_sample_pieces(1, {"    return a ", "- b\n"});
  backend.set_sample_pieces(2, {"    # add them\n"});
  AssistantOptions options;
  options.syntax = SyntaxMode::kRank;
  options.rank_candidates = 3;
  AssistantCore core(options, &backend);
  ASSERT_TRUE(core.open("file:///w/m.py", "python", 1, kDoc).ok());
  std::mutex mu;
  std::condition_variable cv;
  std::vector<CompletionUsage> usages;
  bool done = false;
  CompletionRequest req{"file:///w/m.py", kBody, PositionEncoding::kUtf8, 0};
  req.on_usage = [&](const CompletionUsage& u) {
    std::lock_guard<std::mutex> lock(mu);
    usages.push_back(u);
    cv.notify_all();
  };
  auto t = core.complete(req, [](const std::string&) {}, [&](Result<CompletionOutcome>) {
    std::lock_guard<std::mutex> lock(mu);
    done = true;
    cv.notify_all();
  });
  ASSERT_TRUE(t.ok()) << t.error().message;
  std::unique_lock<std::mutex> lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, 30s, [&] { return done && usages.size() >= 3; })) << usages.size() << " reports";
  size_t own = 0, candidates = 0, candidate_tokens = 0;
  for (const auto& u : usages) {
    if (u.candidate) ++candidates, candidate_tokens += u.completion_tokens;
    else ++own;
  }
  EXPECT_EQ(own, 1u);
  EXPECT_EQ(candidates, 2u);
  EXPECT_EQ(candidate_tokens, 3u) << "2 pieces of candidate 1, 1 of candidate 2";
}

// rank, constrained continuation: every first-round candidate is only a docstring or a comment, so the daemon
// decodes on after the best one (its docstring closed by the check) and shows the docstring and the code after it.
TEST(SyntaxCompletion, RankDecodesOnAfterADocstringThatTheCheckClosed) {
  for (bool on : {true, false}) {
    SCOPED_TRACE(on ? "continue_after_text" : "off");
    ScriptedBackend backend({"    \"\"\"Add a and b.\n", "\n    More text"}, 1ms);
    backend.set_sample_pieces(1, {"    # a comment\n"});
    backend.set_sample_pieces(2, {"    \"\"\"Add.\"\"\"\n"});
    backend.set_prompt_pieces("More text\"\"\"\n", {"    return a + b\n"});
    SyntaxStats stats;
    AssistantOptions options;
    options.syntax = SyntaxMode::kRank;
    options.rank_candidates = 3;
    options.continue_after_text = on;
    options.time_budget = std::chrono::hours(1);  // the round's time check never decides here
    options.syntax_stats = &stats;
    AssistantCore core(options, &backend);
    ASSERT_TRUE(core.open("file:///w/m.py", "python", 1, kDoc).ok());
    Completion run;
    run.start(core, "file:///w/m.py", kBody);
    ASSERT_TRUE(run.outcome.ok()) << run.outcome.error().message;
    ASSERT_TRUE(run.outcome->syntax.has_value());
    const auto& v = *run.outcome->syntax;
    const std::string docstring = "    \"\"\"Add a and b.\n\n    More text\"\"\"";
    if (!on) {
      EXPECT_EQ(run.outcome->text, docstring);
      EXPECT_EQ(backend.jobs().size(), 3u);
      continue;
    }
    EXPECT_EQ(run.outcome->text, docstring + "\n    return a + b") << v.reason;
    EXPECT_TRUE(v.has_code);
    EXPECT_EQ(v.candidates, 6);
    EXPECT_GE(v.chosen, 3);
    EXPECT_NE(std::find(v.rules.begin(), v.rules.end(), "continued"), v.rules.end());
    EXPECT_EQ(stats.snapshot().rules["continued"], 1u);
    auto jobs = backend.jobs();
    ASSERT_EQ(jobs.size(), 6u);  // 3 candidates, then 3 more after the docstring
    for (size_t k = 3; k < 6; ++k) {
      EXPECT_EQ(jobs[k].sample, static_cast<int>(k - 3));
      const std::string& prefix = jobs[k].fim.prefix;
      EXPECT_EQ(prefix.substr(prefix.size() - docstring.size() - 1), docstring + "\n");
    }
  }
}

// A first round with code in it is shown as it is: no second round.
TEST(SyntaxCompletion, RankDoesNotDecodeOnAfterCode) {
  ScriptedBackend backend({"    \"\"\"Add.\"\"\"\n"}, 1ms);
  backend.set_sample_pieces(1, {"    return a - b\n"});
  backend.set_sample_pieces(2, {"    # a comment\n"});
  AssistantOptions options;
  options.syntax = SyntaxMode::kRank;
  options.rank_candidates = 3;
  options.time_budget = std::chrono::hours(1);
  AssistantCore core(options, &backend);
  ASSERT_TRUE(core.open("file:///w/m.py", "python", 1, kDoc).ok());
  Completion run;
  run.start(core, "file:///w/m.py", kBody);
  ASSERT_TRUE(run.outcome.ok()) << run.outcome.error().message;
  EXPECT_EQ(run.outcome->text, "    return a - b");
  EXPECT_EQ(backend.jobs().size(), 3u);
}

}  // namespace
}  // namespace latent::lsp
