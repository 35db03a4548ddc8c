#pragma once
// OpenAiApi: the HTTP front door to the Scheduler. Parses a request (protocol.h), renders the prompt
// (DeepSeek chat format, FIM), tokenizes, submits one engine Request and turns its events into an OpenAI or
// llama.cpp response, whole or streamed as server-sent events. A client that disconnects cancels its
// request. Every request is counted in the metrics registry (GET /metrics).
//
//   GET  /v1/models            POST /v1/completions      POST /v1/chat/completions
//   POST /infill               GET  /metrics
//
// Thread-safety: handle() may be called from any number of network threads at once. Engine events arrive on
// the engine thread and are turned into writes there (cheap: JSON of one delta); nothing here blocks.
#include <atomic>
#include <mutex>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/request.h"
#include "kernels/base/result.h"
#include "lsp/syntax_check.h"
#include "server/metrics.h"
#include "server/openai/exchange.h"
#include "server/openai/protocol.h"

namespace latent {
class Scheduler;
class Tokenizer;
namespace server {
class HttpRouter;
}
}  // namespace latent

namespace latent::openai {

struct ApiMetrics;
class Generation;
class SyntaxGate;

// How the API reaches the engine; the daemon fills it in from the model (EngineHost::open: all but the
// scheduler, which exists once the weights are loaded).
struct EngineAccess {
  // submit() and cancel() from any thread. Null with `loading`: generation requests wait for engine_loaded().
  Scheduler* scheduler = nullptr;
  bool loading = false;  // a model is being loaded (latentd loads it while it serves)
  std::shared_ptr<const Tokenizer> tokenizer;    // prompts: chat and FIM formats, plain text
  std::shared_ptr<const TokenTextSource> text;  // ids -> text for deltas and stop strings
  std::vector<int32_t> stop_ids;                // end of sequence
  int64_t context_length = 0;                   // prompt + completion limit (0 = none)
  // Optional: runs on the engine thread with each event, to sample engine state for /metrics.
  std::function<void()> sample_engine;
};

struct ApiOptions {
  std::string model_id = "latent";  // what /v1/models lists and responses name
  int64_t created = 0;              // unix seconds the model was loaded
  Limits limits;
  Priority priority = Priority::kAgent;  // HTTP requests; /infill uses kInteractive
  SpecParams spec;                       // speculative decoding for every HTTP request (latentd --spec)
  // latentd --users: charges each finished generation's tokens to its user (server/quota.h); may be empty.
  std::function<void(const std::string& user, int64_t tokens)> charge_user;
  // latentd --users: a user's fair-share weight (Request::tenant_weight), looked up per request; unset: 1.
  std::function<double(const std::string& user)> user_weight;
  // Code completions that name their "language" are checked (server/openai/syntax_gate.h; latentd --syntax-check).
  lsp::SyntaxMode syntax = lsp::SyntaxMode::kTrim;
  lsp::SyntaxStats* syntax_stats = nullptr;  // counted in /metrics when set; must outlive the API
  int rank_candidates = 4;                   // rank: sequences decoded per completion (server/openai/rank.h)
};

class OpenAiApi {
 public:
  OpenAiApi(EngineAccess engine, MetricsRegistry& metrics, ApiOptions options);
  ~OpenAiApi();

  // Serves method + target (path, maybe with a query) if it is one of the routes above; false otherwise.
  // `user`: who sent it (latentd --users; per-user /metrics), empty when unknown.
  bool handle(const std::string& method, const std::string& target, std::string body,
              std::shared_ptr<HttpExchange> exchange, const std::string& user = "");

  // Routes this API serves, for a router that registers handlers one by one.
  struct Route {
    const char* method;
    const char* path;
  };
  static const std::vector<Route>& routes();

  // The model's load ended (EngineAccess::loading; any thread, once): waiting generations start on `scheduler`,
  // or are answered 503 with the load's error, as are later ones.
  void engine_loaded(Result<Scheduler*> scheduler);

  MetricsRegistry& metrics() { return metrics_; }
  int64_t in_flight() const { return in_flight_->load(); }

 private:
  void models(HttpExchange& ex);
  void completions(const std::string& body, std::shared_ptr<HttpExchange> ex, const std::string& user);
  void chat(const std::string& body, std::shared_ptr<HttpExchange> ex, const std::string& user);
  void infill(const std::string& body, std::shared_ptr<HttpExchange> ex, const std::string& user);
  void reply_error(HttpExchange& ex, const std::string& endpoint, const ApiError& e);
  // The syntax check for a completion at prefix|suffix, or null (off, or no language named).
  // `candidates`: set to how many sequences to decode (rank) or 1.
  std::shared_ptr<SyntaxGate> syntax_gate(const SyntaxRequest& r, std::string prefix, std::string suffix,
                                          int* candidates) const;

  struct Job;  // one submitted generation: prompt, how to answer, endpoint
  void start(Job job, std::shared_ptr<HttpExchange> ex);
  void start_ranked(Scheduler* sched, int n, Request req, std::shared_ptr<Generation> gen,
                    std::shared_ptr<SyntaxGate> gate, std::shared_ptr<HttpExchange> ex);
  // The scheduler, or null with *answer set: queued until the load ends (true), or the error to send.
  Scheduler* scheduler_or_wait(Job& job, const std::shared_ptr<HttpExchange>& ex, bool* queued, ApiError* refusal);

  EngineAccess engine_;
  MetricsRegistry& metrics_;
  ApiOptions options_;
  std::shared_ptr<std::atomic<int64_t>> in_flight_;  // submitted, not yet done (shared with live generations)
  std::shared_ptr<ApiMetrics> m_;  // shared with live generations, which may end after the API is gone
  // Generations waiting for the model (engine_.loading), and the load's outcome once known.
  struct Waiting;
  std::shared_ptr<Waiting> waiting_;
};

// Registers every route of `api` on the daemon's router; the handlers answer through the session's connection
// (HttpResponse::deferred), so streaming and slow generations never block a network thread.
void add_routes(server::HttpRouter& router, std::shared_ptr<OpenAiApi> api);

}  // namespace latent::openai
