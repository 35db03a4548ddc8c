#include "server/transport_stdio.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <thread>

#include "lsp/json_rpc.h"

namespace latent::server {
namespace {

std::vector<std::string> drain(ContentLengthFramer& f, std::vector<std::string>* errors = nullptr) {
  std::vector<std::string> out;
  for (;;) {
    auto m = f.next();
    if (!m.ok()) {
      if (errors) errors->push_back(m.error().message);
      continue;
    }
    if (!m->has_value()) return out;
    out.push_back(**m);
  }
}

TEST(ContentLengthFramer, SplitAnywhere) {
  std::string stream = frame_message("{\"a\":1}") + "Content-Type: application/vscode-jsonrpc; charset=utf-8\r\n" +
                       frame_message("{\"b\":\"é\"}");
  for (size_t cut = 0; cut <= stream.size(); ++cut) {
    ContentLengthFramer f(1 << 20);
    f.feed(stream.substr(0, cut));
    auto got = drain(f);
    f.feed(stream.substr(cut));
    auto rest = drain(f);
    got.insert(got.end(), rest.begin(), rest.end());
    ASSERT_EQ(got.size(), 2u) << "cut at " << cut;
    EXPECT_EQ(got[0], "{\"a\":1}");
    EXPECT_EQ(got[1], "{\"b\":\"é\"}");
  }
}

TEST(ContentLengthFramer, OversizedMessageIsSkippedAndTheStreamGoesOn) {
  ContentLengthFramer f(16);
  std::vector<std::string> errors;
  f.feed(frame_message(std::string(100, 'x')).substr(0, 50));
  EXPECT_TRUE(drain(f, &errors).empty());
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("expected at most 16 bytes, found Content-Length 100"), std::string::npos);
  f.feed(frame_message(std::string(100, 'x')).substr(50) + frame_message("{}"));
  auto got = drain(f, &errors);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], "{}");
}

TEST(ContentLengthFramer, HeaderWithoutLengthIsAnError) {
  ContentLengthFramer f(1 << 20);
  std::vector<std::string> errors;
  f.feed("Content-Type: x\r\n\r\n" + frame_message("{}") + "Content-Length: abc\r\n\r\n");
  auto got = drain(f, &errors);
  ASSERT_EQ(got.size(), 1u);
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_NE(errors[0].find("expected a 'Content-Length: N' header"), std::string::npos);
}

class Recorder : public lsp::MessageHandler {
 public:
  bool on_notify(std::string_view method, lsp::Json) override {
    methods.emplace_back(method);
    return method != "exit";
  }
  bool on_call(std::string_view method, lsp::Json, lsp::Json) override {
    methods.emplace_back(method);
    return true;
  }
  bool on_reply(lsp::Json, lsp::RpcResult) override { return true; }
  std::vector<std::string> methods;
};

TEST(StdioTransport, LoopOverPipesAnswersGarbageAndStopsAtExit) {
  int in[2], out[2];
  ASSERT_EQ(pipe(in), 0);
  ASSERT_EQ(pipe(out), 0);
  auto t_ptr = std::make_unique<StdioTransport>(in[0], out[1], 1 << 20);
  StdioTransport& t = *t_ptr;
  std::string input = frame_message(R"({"jsonrpc":"2.0","method":"a"})") + frame_message("garbage") +
                      frame_message(R"({"jsonrpc":"2.0","id":1,"method":"b"})") +
                      frame_message(R"({"jsonrpc":"2.0","method":"exit"})") +
                      frame_message(R"({"jsonrpc":"2.0","method":"after"})");
  ASSERT_EQ(write(in[1], input.data(), input.size()), static_cast<ssize_t>(input.size()));
  close(in[1]);
  Recorder r;
  ASSERT_TRUE(t.loop(r).ok());
  EXPECT_EQ(r.methods, (std::vector<std::string>{"a", "b", "exit"}));
  t.notify("n", lsp::Json{{"k", 1}});
  t_ptr.reset();  // flushes the writer's queue
  close(out[1]);
  std::string written;
  char buf[4096];
  ssize_t n;
  while ((n = read(out[0], buf, sizeof buf)) > 0) written.append(buf, static_cast<size_t>(n));
  close(out[0]);
  close(in[0]);
  ContentLengthFramer f(1 << 20);
  f.feed(written);
  auto msgs = drain(f);
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(lsp::Json::parse(msgs[0])["error"]["code"], lsp::rpc_error::kParseError);
  EXPECT_EQ(lsp::Json::parse(msgs[1])["method"], "n");
}

}  // namespace
}  // namespace latent::server
