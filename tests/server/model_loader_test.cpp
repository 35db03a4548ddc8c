// latentd's model load on a thread of its own (server/model_loader.h): the daemon answers while the model
// loads, latent/status says the phase and the bytes, completions wait for the model (or are cancelled cleanly),
// a failed load is reported in the status and to every waiting request. A hook on the loading thread holds each
// phase until the test lets it go: nothing here waits on time, and nothing depends on how fast the load is.
#include "server/model_loader.h"

#include <gtest/gtest.h>

#include <atomic>

#include <condition_variable>
#include <filesystem>
#include <future>
#include <set>

#include "server/engine_completion_backend.h"
#include "tests/engine/model_test_util.h"

namespace latent::server {
namespace {

using namespace std::chrono_literals;

// The ModelLoader's on_phase hook: records each phase and blocks the loading thread while the test holds it.
class PhaseGate {
 public:
  std::function<void(LoadPhase)> hook() {
    return [this](LoadPhase p) {
      std::unique_lock<std::mutex> lock(mu_);
      seen_.insert(p);
      cv_.notify_all();
      cv_.wait(lock, [&] { return !held_.count(p); });
    };
  }
  void hold(LoadPhase p) {
    std::lock_guard<std::mutex> lock(mu_);
    held_.insert(p);
  }
  void release(LoadPhase p) {
    std::lock_guard<std::mutex> lock(mu_);
    held_.erase(p);
    cv_.notify_all();
  }
  void release_all() {
    std::lock_guard<std::mutex> lock(mu_);
    held_.clear();
    cv_.notify_all();
  }
  // Until the loading thread reached p (the bound only turns a hang into a failure).
  bool reached(LoadPhase p) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, 120s, [&] { return seen_.count(p) > 0; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::set<LoadPhase> seen_, held_;
};

// Every state the loader published, in order.
struct States {
  std::mutex mu;
  std::vector<LoadState> all;
  std::function<void(const LoadState&)> listener() {
    return [this](const LoadState& s) {
      std::lock_guard<std::mutex> lock(mu);
      all.push_back(s);
    };
  }
  std::vector<LoadState> copy() {
    std::lock_guard<std::mutex> lock(mu);
    return all;
  }
};

// One completion's outcome, shared with callbacks that may outlive a failed test's locals.
struct Outcome {
  std::mutex mu;
  std::string text;
  std::promise<Result<lsp::CompletionUsage>> done;
  std::shared_future<Result<lsp::CompletionUsage>> result = done.get_future().share();
  bool finished() const { return result.wait_for(0s) == std::future_status::ready; }
  Result<lsp::CompletionUsage> get() const {
    EXPECT_EQ(result.wait_for(120s), std::future_status::ready) << "the completion never ended";
    return result.get();
  }
};

lsp::CompletionBackend::Handle start(lsp::CompletionBackend& b, const std::shared_ptr<Outcome>& o) {
  lsp::CompletionJob job;
  job.fim = FimPrompt{"def add(a, b):\n    return ", "\n", "", {}};
  job.prompt = job.fim.prefix;
  job.doc_key = "file:///w/add.py";
  job.max_tokens = 4;
  return b.start(
      std::move(job),
      [o](std::string_view t) {
        std::lock_guard<std::mutex> lock(o->mu);
        o->text += t;
      },
      [o](Result<lsp::CompletionUsage> r) { o->done.set_value(std::move(r)); });
}

std::unique_ptr<EngineHost> open_host(const std::string& dir) {
  EngineHostOptions o;
  o.model_dir = dir;
  o.cache_bytes = size_t(8) << 20;
  auto h = EngineHost::open(o);
  EXPECT_TRUE(h.ok()) << (h.ok() ? "" : h.error().to_string());
  return h.ok() ? std::move(*h) : nullptr;
}

const std::string kModel = std::string(LATENT_TEST_DATA) + "/openai-tiny";

// An EngineHost on a model directory and a ModelLoader whose loading thread is held at one phase: each test then
// checks what the daemon answers there and lets it go.
struct HeldLoad {
  explicit HeldLoad(LoadPhase held, const std::string& dir = kModel, bool with_states = false,
                    std::string ready_message = "") {
    host = open_host(dir);
    if (!host) return;
    backend = std::make_unique<EngineCompletionBackend>(*host);
    gate.hold(held);
    ModelLoaderOptions lo;
    lo.on_phase = gate.hook();
    lo.ready_message = std::move(ready_message);
    loader = std::make_unique<ModelLoader>(*host, lo, with_states ? states.listener() : nullptr);
  }
  // A test that failed before letting its phase go: the loading thread is released, so the loader's destructor
  // joins instead of hanging until ctest's timeout.
  ~HeldLoad() { gate.release_all(); }
  std::unique_ptr<EngineHost> host;
  std::unique_ptr<EngineCompletionBackend> backend;
  PhaseGate gate;
  States states;
  std::unique_ptr<ModelLoader> loader;  // last: destroyed first, while the gate and host it uses still exist
};

TEST(ModelLoader, AnswersWhileLoadingThenServesTheWaitingCompletion) {
  HeldLoad h(LoadPhase::kLoading, kModel, /*with_states=*/true, "openai-tiny ready");
  ASSERT_TRUE(h.host);
  auto& [host, backend_ptr, gate, states, loader_ptr] = h;
  EngineCompletionBackend& backend = *backend_ptr;
  ModelLoader& loader = *loader_ptr;
  EXPECT_GT(host->context_length(), 0) << "known from config.json before the weights";
  ASSERT_TRUE(gate.reached(LoadPhase::kLoading));
  // Held before the weights: the state says so, and a completion waits (it cannot run without the scheduler).
  LoadState s = loader.state();
  EXPECT_EQ(s.phase, LoadPhase::kLoading);
  EXPECT_FALSE(s.serving());
  EXPECT_EQ(s.to_json()["state"], "loading");
  EXPECT_EQ(s.to_json()["phase"], "loading");
  EXPECT_FALSE(host->loaded());
  auto waiting = std::make_shared<Outcome>();
  const auto handle = start(backend, waiting);
  EXPECT_NE(handle, 0u);
  EXPECT_FALSE(waiting->finished());
  gate.release(LoadPhase::kLoading);
  ASSERT_TRUE(gate.reached(LoadPhase::kReady));
  auto r = waiting->get();
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_GE(r->completion_tokens, 1u);
  s = loader.state();
  EXPECT_EQ(s.phase, LoadPhase::kReady);
  EXPECT_EQ(s.to_json()["state"], "ready");
  EXPECT_EQ(s.to_json()["percent"], 100);
  EXPECT_EQ(s.to_json()["message"], "openai-tiny ready");
  // Published: loading, then warming with the checkpoint's bytes (the CPU uploads nothing), then ready; the
  // whole load's progress never goes back.
  const auto all = states.copy();
  ASSERT_GE(all.size(), 3u);
  EXPECT_EQ(all.front().phase, LoadPhase::kLoading);
  EXPECT_EQ(all.back().phase, LoadPhase::kReady);
  bool warmed = false;
  double last = 0;
  for (const LoadState& x : all) {
    EXPECT_NE(x.phase, LoadPhase::kUploading) << "nothing to copy on the CPU";
    if (x.phase == LoadPhase::kWarming && x.bytes_total > 0 && x.bytes_done == x.bytes_total) {
      warmed = true;
      EXPECT_EQ(x.to_json()["bytesTotal"], x.bytes_total);
      EXPECT_EQ(x.to_json()["percent"], 100);
    }
    EXPECT_GE(x.progress, last);
    last = x.progress;
  }
  EXPECT_TRUE(warmed) << "warming reported the checkpoint's bytes up to the total";
  // Once loaded, a completion starts at once as before.
  auto after = std::make_shared<Outcome>();
  start(backend, after);
  ASSERT_TRUE(after->get().ok());
}

// GET /health and latent/status say "serving" before the first generation can start: the loader marks it before
// the load's waiters run (a completion that waited, the HTTP API's engine_loaded). It was marked after them, so
// on a busy machine a completion could finish while /health still answered 503 (seen in node.openai_api).
TEST(ModelLoader, SaysServingBeforeTheWaitingGenerationsStart) {
  HeldLoad h(LoadPhase::kLoading);
  ASSERT_TRUE(h.host);
  auto& [host, backend, gate, states, loader_ptr] = h;
  ModelLoader& loader = *loader_ptr;
  ASSERT_TRUE(gate.reached(LoadPhase::kLoading));
  std::atomic<int> serving_when_loaded{-1};  // runs on the loading thread as the load ends
  host->when_loaded([&](const Status& st) { serving_when_loaded = st.ok() && loader.state().serving() ? 1 : 0; });
  gate.release(LoadPhase::kLoading);
  ASSERT_TRUE(gate.reached(LoadPhase::kReady));
  EXPECT_EQ(serving_when_loaded.load(), 1);
}

TEST(ModelLoader, ACompletionCancelledWhileLoadingNeverRunsAndEndsCancelled) {
  HeldLoad held(LoadPhase::kLoading);
  ASSERT_TRUE(held.host);
  auto& [host, backend_ptr, gate, states, loader] = held;
  EngineCompletionBackend& backend = *backend_ptr;
  ASSERT_TRUE(gate.reached(LoadPhase::kLoading));
  auto cancelled = std::make_shared<Outcome>(), kept = std::make_shared<Outcome>();
  const auto h = start(backend, cancelled);
  start(backend, kept);
  backend.cancel(h);
  // Not answered inside cancel(): AssistantCore calls it holding the job's lock, which on_done takes.
  EXPECT_FALSE(cancelled->finished());
  EXPECT_FALSE(kept->finished());
  gate.release(LoadPhase::kLoading);
  auto r = cancelled->get();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kCancelled) << r.error().to_string();
  EXPECT_TRUE(cancelled->text.empty()) << "it never ran";
  ASSERT_TRUE(kept->get().ok());
  backend.cancel(h);  // again, after the load: nothing to do, nothing breaks
  EXPECT_TRUE(host->wait_idle(120s));
}

TEST(ModelLoader, AFailedLoadIsInTheStatusAndInEveryWaitingRequestsError) {
  // config.json and the tokenizer are fine (the daemon starts), a tensor has the wrong shape (the load fails).
  test::Checkpoint c = test::Checkpoint::read(kModel);
  auto& norm = c.tensors.at("model.norm.weight");
  ASSERT_EQ(norm.shape.size(), 1u);
  norm.shape[0] += 1;
  norm.bytes.resize(norm.bytes.size() + dtype_size(norm.dtype));
  test::TempDir dir("loader_bad");
  c.write(dir.path());
  for (const char* f : {"tokenizer.json", "tokenizer_config.json"}) std::filesystem::copy_file(kModel + "/" + f, dir / f);
  HeldLoad h(LoadPhase::kLoading, dir.path(), /*with_states=*/true);
  ASSERT_TRUE(h.host);
  auto& [host, backend_ptr, gate, states, loader_ptr] = h;
  EngineCompletionBackend& backend = *backend_ptr;
  ModelLoader& loader = *loader_ptr;
  ASSERT_TRUE(gate.reached(LoadPhase::kLoading));
  auto waiting = std::make_shared<Outcome>();
  start(backend, waiting);
  gate.release(LoadPhase::kLoading);
  ASSERT_TRUE(gate.reached(LoadPhase::kFailed));
  const LoadState s = loader.state();
  EXPECT_EQ(s.phase, LoadPhase::kFailed);
  EXPECT_FALSE(s.serving());
  const std::string want = "model.norm.weight";
  EXPECT_EQ(s.to_json()["state"], "error");
  EXPECT_NE(s.message.find(want), std::string::npos) << s.message;
  EXPECT_NE(s.message.find("expected"), std::string::npos) << s.message;
  auto r = waiting->get();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("the model failed to load"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find(want), std::string::npos) << r.error().message;
  // A later request gets the same answer at once; the host stays (nothing crashes, nothing waits forever).
  auto later = std::make_shared<Outcome>();
  EXPECT_EQ(start(backend, later), 0u);
  ASSERT_TRUE(later->finished());
  EXPECT_FALSE(later->get().ok());
  EXPECT_FALSE(host->loaded());
  EXPECT_TRUE(host->wait_idle(1s));
  EXPECT_EQ(states.copy().back().to_json()["state"], "error");
}

TEST(ModelLoader, DestroyedWhileHeldStopsCleanly) {
  HeldLoad h(LoadPhase::kWarming);
  ASSERT_TRUE(h.host);
  auto waiting = std::make_shared<Outcome>();
  ASSERT_TRUE(h.gate.reached(LoadPhase::kWarming));
  EXPECT_TRUE(h.loader->state().serving()) << "loaded: requests are served while it warms";
  start(*h.backend, waiting);
  h.gate.release(LoadPhase::kWarming);
  h.loader.reset();  // stops the warm-up and joins
  ASSERT_TRUE(waiting->get().ok());
}

}  // namespace
}  // namespace latent::server
