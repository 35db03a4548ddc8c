// The daemon never crashes on bad input: every method with malformed params of every JSON type, positions out
// of range, reversed ranges, huge numbers, invalid UTF-8, unknown documents. After each, the server must still
// answer a well-formed request.
#include <gtest/gtest.h>

#include <random>
#include <thread>

#include "kernels/base/log.h"
#include "lsp/lsp_server.h"
#include "lsp/scripted_backend.h"
#include "lsp/transport_memory.h"

namespace latent::lsp {
namespace {

using namespace std::chrono_literals;

TEST(LspServerFuzz, MalformedParamsNeverStopTheServer) {
  LogLevel saved = log_level();
  set_log_level(LogLevel::kError);  // hundreds of expected "invalid params" warnings
  ScriptedBackend backend({"x", "y"}, 1ms);
  InMemoryTransport t;
  AssistantCore core(AssistantOptions{}, &backend);
  LspServer server(t, core);
  std::thread loop([&] { server.run(); });
  auto call = [&](int id, const std::string& method, Json params) {
    t.client_send(Json{{"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", std::move(params)}});
  };
  auto notify = [&](const std::string& method, Json params) {
    t.client_send(Json{{"jsonrpc", "2.0"}, {"method", method}, {"params", std::move(params)}});
  };
  // Waits for the answer to `id`, skipping everything else.
  auto answer = [&](int id) -> Json {
    for (;;) {
      auto m = t.client_receive(10s);
      if (!m) return Json();
      if (m->contains("id") && (*m)["id"] == id && !m->contains("method")) return *m;
    }
  };
  call(0, "initialize", {{"capabilities", Json::object()}});
  ASSERT_TRUE(answer(0).contains("result"));
  notify("initialized", Json::object());
  const std::string uri = "file:///w/f.py";
  notify("textDocument/didOpen", {{"textDocument", {{"uri", uri}, {"languageId", "python"}, {"version", 1}, {"text", "héllo = 1\n"}}}});

  const std::vector<Json> values = {
      nullptr, 0, -1, 4294967296LL, 1.5, "", "x", Json::array(), Json::object(), true,
      Json{{"uri", 3}}, Json{{"uri", uri}}, Json{{"line", -5}, {"character", -1}},
      Json{{"line", 1u << 30}, {"character", 1u << 30}}, std::string("\xff\xfe bad utf-8"),
  };
  const std::vector<std::string> methods = {
      "textDocument/didOpen", "textDocument/didChange", "textDocument/didClose", "textDocument/didSave",
      "workspace/didChangeWatchedFiles", "workspace/didChangeWorkspaceFolders", "$/cancelRequest",
      "textDocument/inlineCompletion", "latent/explainContext", "initialize", "$/setTrace"};
  std::mt19937 rng(7);
  int id = 100;
  for (int round = 0; round < 400; ++round) {
    const std::string& method = methods[rng() % methods.size()];
    Json params;
    switch (rng() % 4) {
      case 0: params = values[rng() % values.size()]; break;
      case 1: params = {{"textDocument", values[rng() % values.size()]}, {"position", values[rng() % values.size()]}}; break;
      case 2:
        params = {{"textDocument", {{"uri", uri}, {"version", values[rng() % values.size()]}}},
                  {"position", {{"line", values[rng() % values.size()]}, {"character", values[rng() % values.size()]}}},
                  {"contentChanges", Json::array({{{"range", {{"start", {{"line", rng() % 5}, {"character", rng() % 50}}},
                                                             {"end", {{"line", rng() % 5}, {"character", rng() % 50}}}}},
                                                   {"text", values[rng() % values.size()].is_string() ? values[rng() % values.size()] : Json("é\n")}}})},
                  {"changes", values[rng() % values.size()]},
                  {"event", {{"added", values[rng() % values.size()]}, {"removed", Json::array()}}}};
        break;
      default: params = Json{{"id", values[rng() % values.size()]}}; break;
    }
    if (rng() % 2) {
      notify(method, params);
    } else {
      call(++id, method, params);
      Json a = answer(id);
      ASSERT_FALSE(a.is_null()) << "no answer to " << method << " " << params.dump();
    }
    if (round % 50 == 0) {  // still serving well-formed requests, and the document is still usable
      call(++id, "latent/explainContext", {{"textDocument", {{"uri", uri}}}, {"position", {{"line", 0}, {"character", 0}}}});
      Json a = answer(id);
      ASSERT_FALSE(a.is_null());
      if (a.contains("error")) {
        EXPECT_NE(a["error"]["message"].get<std::string>().find("expected an open document"), std::string::npos) << a.dump();
        notify("textDocument/didOpen", {{"textDocument", {{"uri", uri}, {"languageId", "python"}, {"version", 1}, {"text", "x = 1\n"}}}});
      }
    }
  }
  call(++id, "shutdown", nullptr);
  EXPECT_TRUE(answer(id).contains("result"));
  t.client_close();
  loop.join();
  set_log_level(saved);
}

}  // namespace
}  // namespace latent::lsp
