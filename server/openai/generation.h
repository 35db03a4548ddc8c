#pragma once
// One HTTP generation in flight: engine events in, OpenAI / llama.cpp response bytes out.
//
//   completion  text deltas -> text_completion chunks, or one text_completion at the end
//   chat        text deltas -> chat::StreamParser -> content / tool_calls deltas, or one chat.completion
//               (a forced tool_choice {"function": {"name"}} pre-fills the call, so the whole output is the
//               arguments: streamed as argument deltas of tool call 0)
//   infill      text deltas -> {"content", "stop": false} chunks, then llama.cpp's final object
// Thread-safety: on_event() runs on the engine thread, disconnected() on a network thread; a mutex orders them.
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "engine/chat/deepseek_chat.h"
#include "engine/request.h"
#include "server/metrics.h"
#include "server/openai/exchange.h"
#include "server/openai/protocol.h"
#include "server/openai/syntax_gate.h"

namespace latent::openai {

// The registry entries one generation updates, looked up once per API.
struct ApiMetrics {
  explicit ApiMetrics(MetricsRegistry& r);
  MetricsRegistry& registry;
  Counter& prompt_tokens;
  Counter& cached_tokens;
  Counter& completion_tokens;
  Counter& drafted_tokens;
  Counter& accepted_tokens;
  Counter& cancelled_disconnect;
  Histogram& ttft;
  Histogram& token_time;
  Histogram& duration;
  Gauge& in_flight;
  Counter& requests(const std::string& endpoint, int status);  // latent_http_requests_total
  // latentd --users: a finished generation's prompt + completion tokens against its user's quota.
  std::function<void(const std::string& user, int64_t tokens)> charge_user;
};

struct GenerationSpec {
  enum class Kind { kCompletion, kChat, kInfill };
  Kind kind = Kind::kCompletion;
  std::string endpoint;   // metrics label: "/v1/completions", ...
  std::string user;       // latentd --users: per-user metrics (server/user_metrics.h); empty: none
  bool stream = false;
  bool include_usage = false;
  ResponseMeta meta;
  std::string prefill;                      // chat: text the prompt already holds of the assistant turn
  std::optional<std::string> forced_tool;   // chat: the named tool_choice
  int n_predict = 0;                        // infill: as requested (0 = warm the cache, show nothing)
  std::shared_ptr<SyntaxGate> syntax;       // completion with a suffix, infill: the syntax check (null: off)
};

class Generation {
 public:
  Generation(GenerationSpec spec, std::shared_ptr<HttpExchange> ex, std::shared_ptr<ApiMetrics> metrics);

  // Stream headers and the opening chunk (chat: the assistant role). Call before submitting.
  void begin();
  void on_event(const Event& e);
  // The client went away: no more writes; true when the caller should cancel the engine request.
  bool disconnected();
  bool finished() const;
  // How to stop the engine request when the syntax check sees a loop (set once it is submitted).
  void set_stop(std::function<void()> stop);

 private:
  void on_text(const std::string& text);
  void on_done(const Event& e);
  void on_error(const Event& e);
  void write_chunk(const nlohmann::json& j);
  void emit_chat_delta(const chat::StreamParser::Delta& d);

  GenerationSpec spec_;
  std::shared_ptr<HttpExchange> ex_;
  std::shared_ptr<ApiMetrics> m_;  // outlives the API when the engine ends a generation after it
  mutable std::mutex mu_;
  bool done_ = false;
  bool gone_ = false;
  std::string text_;  // all output text so far (non-forced chat: before parsing)
  chat::StreamParser parser_;
  chat::ParsedOutput parsed_;  // chat: accumulated content and calls
  std::string forced_call_id_;
  std::chrono::steady_clock::time_point last_token_;
  bool seen_token_ = false;
  std::function<void()> stop_;
  bool stop_wanted_ = false;  // the syntax check asked to stop decoding
};

}  // namespace latent::openai
