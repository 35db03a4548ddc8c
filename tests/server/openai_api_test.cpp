// OpenAiApi routing and error answers in process, through a recording HttpExchange; and one real generation on
// tests/data/openai-tiny (EngineHost: real model, real tokenizer) to check streaming and disconnects without
// sockets. The socket path is covered by tests/node/openai_api.test.mjs.
#include "server/openai/api.h"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "server/engine_host.h"
#include "tests/engine/model_test_util.h"
#include "tests/test_paths.h"

namespace latent::openai {
namespace {

using json = nlohmann::json;

class RecordingExchange : public HttpExchange {
 public:
  void respond(int status, std::string content_type, std::string body) override {
    std::lock_guard lock(mu_);
    status_ = status;
    content_type_ = std::move(content_type);
    body_ = std::move(body);
    done_ = true;
    on_gone_ = nullptr;  // as BeastExchange: once the response is whole, a close is no longer a disconnect
    cv_.notify_all();
  }
  void begin_stream(int status, std::string content_type) override {
    std::lock_guard lock(mu_);
    status_ = status;
    content_type_ = std::move(content_type);
  }
  void write(std::string chunk) override {
    std::lock_guard lock(mu_);
    body_ += chunk;
    cv_.notify_all();
  }
  void end_stream() override {
    std::lock_guard lock(mu_);
    done_ = true;
    on_gone_ = nullptr;
    cv_.notify_all();
  }
  void on_disconnect(std::function<void()> fn) override {
    std::lock_guard lock(mu_);
    // A response already whole (the engine can finish before the API registers this) has no disconnect to
    // report; keeping fn would also keep the generation, which holds this exchange: a cycle LeakSanitizer reports.
    if (!done_) on_gone_ = std::move(fn);
  }
  void disconnect() {
    std::function<void()> fn;
    {
      std::lock_guard lock(mu_);
      fn = std::move(on_gone_);
    }
    if (fn) fn();
  }
  bool wait(std::function<bool(const RecordingExchange&)> pred, int ms = 20000) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, std::chrono::milliseconds(ms), [&] { return pred(*this); });
  }
  int status() const { return status_; }
  std::string body() const { return body_; }
  std::string content_type() const { return content_type_; }
  bool done() const { return done_; }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int status_ = 0;
  std::string content_type_, body_;
  bool done_ = false;
  std::function<void()> on_gone_;
};

TEST(OpenaiApi, WithoutAModelListsNothingAndAnswers503) {
  MetricsRegistry metrics;
  OpenAiApi api(EngineAccess{}, metrics, ApiOptions{});
  auto ex = std::make_shared<RecordingExchange>();
  ASSERT_TRUE(api.handle("GET", "/v1/models", "", ex));
  EXPECT_EQ(ex->status(), 200);
  EXPECT_EQ(json::parse(ex->body())["data"].size(), 0u);

  ex = std::make_shared<RecordingExchange>();
  ASSERT_TRUE(api.handle("POST", "/v1/completions", R"({"prompt":"x"})", ex));
  EXPECT_EQ(ex->status(), 503);
  EXPECT_EQ(json::parse(ex->body())["error"]["code"], "model_not_loaded");

  // Field errors come before the missing model: the client learns what to fix first.
  ex = std::make_shared<RecordingExchange>();
  ASSERT_TRUE(api.handle("POST", "/v1/chat/completions", R"({"messages":"hi"})", ex));
  EXPECT_EQ(ex->status(), 400);
  EXPECT_EQ(json::parse(ex->body())["error"]["param"], "messages");

  ex = std::make_shared<RecordingExchange>();
  ASSERT_TRUE(api.handle("GET", "/infill", "", ex));
  EXPECT_EQ(ex->status(), 405);

  EXPECT_FALSE(api.handle("GET", "/v2/whatever", "", std::make_shared<RecordingExchange>()));

  ex = std::make_shared<RecordingExchange>();
  ASSERT_TRUE(api.handle("GET", "/metrics?x=1", "", ex));
  EXPECT_EQ(ex->content_type(), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_NE(ex->body().find("latent_http_requests_total{endpoint=\"/v1/completions\",status=\"503\"} 1"),
            std::string::npos)
      << ex->body();
}

// A model still loading (latentd loads it while it serves): /v1/models lists it with its context length already,
// generations wait for it and run once it is loaded; one whose client left is dropped, unanswered. The test
// runs the load itself, when it chooses: nothing depends on timing.
struct LoadingApi {
  explicit LoadingApi(const std::string& dir) {
    EngineHostOptions o;
    o.model_dir = dir;
    o.cache_bytes = size_t(16) << 20;
    auto h = EngineHost::open(o);
    EXPECT_TRUE(h.ok()) << (h.ok() ? "" : h.error().to_string());
    if (!h.ok()) return;
    host = std::move(*h);
    EngineAccess e;
    e.loading = true;
    e.tokenizer = host->shared_tokenizer();
    e.text = host->text();
    e.stop_ids = host->stop_ids();
    e.context_length = host->context_length();
    ApiOptions ao;
    ao.model_id = host->model_id();
    api = std::make_shared<OpenAiApi>(e, metrics, ao);
    host->when_loaded([a = api, h = host.get()](const Status& st) {
      a->engine_loaded(st.ok() ? Result<Scheduler*>(&h->scheduler()) : Result<Scheduler*>(st.error()));
    });
  }
  std::shared_ptr<RecordingExchange> post(const std::string& body) {
    auto ex = std::make_shared<RecordingExchange>();
    EXPECT_TRUE(api->handle("POST", "/v1/completions", body, ex));
    return ex;
  }
  Status load() {
    Status st;
    std::thread t([&] { st = host->load_model(); });  // as latentd's loading thread
    t.join();
    return st;
  }
  MetricsRegistry metrics;
  std::unique_ptr<EngineHost> host;
  std::shared_ptr<OpenAiApi> api;
};

TEST(OpenaiApiLoading, GenerationsWaitForTheModelThenRun) {
  LoadingApi l(std::string(LATENT_TEST_DATA) + "/openai-tiny");
  ASSERT_TRUE(l.api);
  auto models = std::make_shared<RecordingExchange>();
  ASSERT_TRUE(l.api->handle("GET", "/v1/models", "", models));
  auto listed = json::parse(models->body());
  ASSERT_EQ(listed["data"].size(), 1u) << "the model being loaded is listed";
  EXPECT_EQ(listed["data"][0]["max_model_len"], l.host->context_length());

  const std::string body = R"({"prompt":"int x = ","max_tokens":3,"temperature":0,"ignore_eos":true})";
  auto waiting = l.post(body);
  auto gone = l.post(body);
  EXPECT_FALSE(waiting->done()) << "no scheduler yet: it waits";
  gone->disconnect();  // its client left while the model loaded
  ASSERT_TRUE(l.load().ok());
  ASSERT_TRUE(waiting->wait([](const RecordingExchange& e) { return e.done(); }));
  EXPECT_EQ(waiting->status(), 200) << waiting->body();
  EXPECT_EQ(json::parse(waiting->body())["usage"]["completion_tokens"], 3);
  EXPECT_EQ(gone->status(), 0) << "dropped from the queue, never answered";
  auto after = l.post(body);
  ASSERT_TRUE(after->wait([](const RecordingExchange& e) { return e.done(); }));
  EXPECT_EQ(after->status(), 200);
}

TEST(OpenaiApiLoading, AFailedLoadAnswersWaitingAndLaterGenerations503WithItsError) {
  test::Checkpoint c = test::Checkpoint::read(std::string(LATENT_TEST_DATA) + "/openai-tiny");
  c.tensors.erase("model.norm.weight");
  test::TempDir dir("api_bad_load");
  c.write(dir.path());
  for (const char* f : {"tokenizer.json", "tokenizer_config.json"}) {
    std::filesystem::copy_file(std::string(LATENT_TEST_DATA) + "/openai-tiny/" + f, dir / f);
  }
  LoadingApi l(dir.path());
  ASSERT_TRUE(l.api);
  const std::string body = R"({"prompt":"int x = ","max_tokens":3})";
  auto waiting = l.post(body);
  EXPECT_FALSE(waiting->done());
  ASSERT_FALSE(l.load().ok());
  for (auto ex : {waiting, l.post(body)}) {
    ASSERT_TRUE(ex->wait([](const RecordingExchange& e) { return e.done(); }));
    EXPECT_EQ(ex->status(), 503);
    auto err = json::parse(ex->body())["error"];
    EXPECT_EQ(err["code"], "model_load_failed");
    EXPECT_NE(err["message"].get<std::string>().find("model.norm.weight"), std::string::npos) << err;
  }
}

class OpenaiApiEngine : public ::testing::Test {
 protected:
  void SetUp() override {
    EngineHostOptions o;
    o.model_dir = std::string(LATENT_TEST_DATA) + "/openai-tiny";
    o.cache_bytes = size_t(16) << 20;
    auto h = EngineHost::load(o);
    ASSERT_TRUE(h.ok()) << h.error().message;
    host_ = std::move(*h);
    host_->add_metrics(metrics_);
    api_ = std::make_unique<OpenAiApi>(access(), metrics_, ApiOptions{});
  }
  EngineAccess access() {
    EngineAccess e;
    e.scheduler = &host_->scheduler();
    e.tokenizer = host_->shared_tokenizer();
    e.text = host_->text();
    e.stop_ids = host_->stop_ids();
    e.context_length = host_->config().max_position_embeddings;
    e.sample_engine = [h = host_.get()] { h->sample(); };
    return e;
  }
  void TearDown() override {
    api_.reset();
    host_.reset();
  }
  MetricsRegistry metrics_;
  std::unique_ptr<EngineHost> host_;
  std::unique_ptr<OpenAiApi> api_;
};

TEST_F(OpenaiApiEngine, StreamsChunksThenDone) {
  auto ex = std::make_shared<RecordingExchange>();
  ASSERT_TRUE(api_->handle("POST", "/v1/completions",
                           R"({"prompt":"int x = ","max_tokens":5,"temperature":0,"stream":true,"ignore_eos":true})",
                           ex));
  ASSERT_TRUE(ex->wait([](const RecordingExchange& e) { return e.done(); }));
  EXPECT_EQ(ex->status(), 200);
  EXPECT_EQ(ex->content_type(), "text/event-stream");
  std::string body = ex->body();
  EXPECT_EQ(body.substr(body.size() - 14), "data: [DONE]\n\n");
  EXPECT_NE(body.find("\"finish_reason\":\"length\""), std::string::npos) << body;
  EXPECT_EQ(api_->in_flight(), 0);
}

// latentd --users: each generation looks up its user's weight (the users file's "weight") for fair queueing;
// a request without a user asks nothing.
TEST_F(OpenaiApiEngine, AUsersRequestsLookUpTheirWeight) {
  auto asked = std::make_shared<std::vector<std::string>>();
  ApiOptions options;
  options.user_weight = [asked](const std::string& user) {
    asked->push_back(user);
    return 2.0;
  };
  MetricsRegistry metrics;
  auto engine = std::make_unique<OpenAiApi>(access(), metrics, options);
  for (const std::string user : {"ada", ""}) {
    auto ex = std::make_shared<RecordingExchange>();
    ASSERT_TRUE(engine->handle("POST", "/v1/completions", R"({"prompt":"int x = ","max_tokens":2,"ignore_eos":true})",
                               ex, user));
    ASSERT_TRUE(ex->wait([](const RecordingExchange& e) { return e.done(); }));
    EXPECT_EQ(ex->status(), 200);
  }
  EXPECT_EQ(*asked, std::vector<std::string>{"ada"});
}

TEST_F(OpenaiApiEngine, DisconnectCancelsAndFreesTheRequestsBlocks) {
  auto ex = std::make_shared<RecordingExchange>();
  ASSERT_TRUE(api_->handle("POST", "/v1/completions",
                           R"({"prompt":"while True:","max_tokens":20000,"stream":true,"ignore_eos":true})", ex));
  ASSERT_TRUE(ex->wait([](const RecordingExchange& e) { return e.body().find("\"text\"") != std::string::npos; }));
  ex->disconnect();
  // Waits on the condition (the cancellation counted and the blocks sampled after the request ended, which come
  // after in_flight() drops); the bound only turns a hang into a failure.
  const std::string cancelled = "latent_requests_cancelled_total{reason=\"client_disconnect\"} 1\n";
  const std::string freed = "latent_kv_cache_blocks{state=\"requests\"} 0\n";
  std::string m = metrics_.render();
  for (auto end = std::chrono::steady_clock::now() + std::chrono::seconds(120);
       (api_->in_flight() != 0 || m.find(cancelled) == std::string::npos || m.find(freed) == std::string::npos) &&
       std::chrono::steady_clock::now() < end;
       m = metrics_.render()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_EQ(api_->in_flight(), 0);
  EXPECT_FALSE(ex->done()) << "no response after the client left";
  EXPECT_NE(m.find("latent_requests_cancelled_total{reason=\"client_disconnect\"} 1\n"), std::string::npos) << m;
  EXPECT_NE(m.find("latent_kv_cache_blocks{state=\"requests\"} 0\n"), std::string::npos) << m;
}

}  // namespace
}  // namespace latent::openai
