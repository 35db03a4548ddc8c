#include "server/engine_completion_backend.h"

#include <algorithm>
#include <condition_variable>
#include <map>
#include <optional>

#include "engine/chat/deepseek_chat.h"
#include "engine/tokenizer/prompt_format.h"
#include "kernels/base/log.h"

namespace latent::server {
namespace {

// An agent turn as the model's chat template renders it (DeepSeek-V3's when the tokenizer has none, as the demo
// model's vocabulary was built for it), markers as their token ids, BOS once.
Result<std::vector<int32_t>> encode_agent_turn(const Tokenizer& tok, const lsp::CompletionJob& job) {
  std::string text;
  if (!tok.chat_template().empty()) {
    LATENT_ASSIGN_OR_RETURN(ChatFormat format, chat_format_from_template(tok.chat_template()));
    // DeepSeek-V2's template (DeepSeek-Coder-V2-Instruct) has no tool turns: the calls stay in the assistant's
    // text, as the model wrote them, and each tool output becomes a user turn.
    std::vector<ChatMessage> messages = job.chat;
    if (format == ChatFormat::kDeepseekV2) {
      for (auto& m : messages) {
        if (m.role == "tool") {
          m = ChatMessage{"user", "Tool output:\n" + m.content.value_or(""), {}};
        } else if (m.role == "assistant" && !m.tool_calls.empty()) {
          std::string calls(chat::kCallsBegin);
          for (const auto& c : m.tool_calls) {
            calls += std::string(chat::kCallBegin) + c.type + std::string(chat::kToolSep) + c.name + "\n```json\n" +
                     c.arguments + "\n```" + std::string(chat::kCallEnd);
          }
          m = ChatMessage{"assistant", m.content.value_or("") + calls + std::string(chat::kCallsEnd), {}};
        }
      }
    }
    text = render_chat(format, messages, /*add_generation_prompt=*/true, tok.bos_token(), tok.eos_token());
  } else {
    text = render_chat(ChatFormat::kDeepseekV3, job.chat, true, tok.bos_token(), tok.eos_token());
  }
  text += job.prefill;
  bool has_bos = !tok.bos_token().empty() && text.compare(0, tok.bos_token().size(), tok.bos_token()) == 0;
  auto ids = tok.encode(text, EncodeOptions{.add_special_tokens = !has_bos, .match_added_tokens = true});
  if (ids.empty()) return make_error(ErrorCode::kInvalidArgument, "agent turn: expected a prompt, found none");
  return ids;
}

}  // namespace

struct EngineCompletionBackend::Metrics {
  explicit Metrics(MetricsRegistry& r)
      : registry(r),
        in_flight(r.gauge("latent_lsp_completions_in_flight", "Editor completions submitted and not yet finished")),
        ttft(r.histogram("latent_lsp_time_to_first_token_seconds", "Editor completions: submit to first token",
                         kLatencyBuckets)),
        token_time(r.histogram("latent_lsp_time_per_output_token_seconds",
                               "Editor completions: mean time between generated tokens (after the first)",
                               kTokenTimeBuckets)),
        prompt_tokens(r.counter("latent_lsp_prompt_tokens_total", "Prompt tokens of editor completions")),
        cached_tokens(r.counter("latent_lsp_prompt_tokens_cached_total",
                                "Editor completions' prompt tokens whose latent cache came from the prefix cache")),
        completion_tokens(r.counter("latent_lsp_completion_tokens_total", "Generated tokens of editor completions")) {}
  Counter& outcome(const char* what) {
    return registry.counter("latent_lsp_completions_total", "Editor completions by outcome", {{"outcome", what}});
  }
  // One finished request (engine thread).
  void done(const Event& e) {
    in_flight.add(-1);
    if (e.kind == Event::Kind::kError) {
      outcome("error").inc();
      return;
    }
    const bool cancelled = e.finish == FinishReason::kCancelled || e.finish == FinishReason::kSuperseded ||
                           e.finish == FinishReason::kPreempted;
    outcome(cancelled ? "cancelled" : "completed").inc();
    prompt_tokens.inc(e.usage.prompt_tokens);
    cached_tokens.inc(e.usage.cached_tokens);
    completion_tokens.inc(e.usage.completion_tokens);
    if (e.usage.completion_tokens > 0 && e.timings.ttft_ms > 0) ttft.observe(e.timings.ttft_ms / 1000.0);
    if (e.usage.completion_tokens > 1 && e.timings.total_ms > e.timings.ttft_ms) {
      const double per = (e.timings.total_ms - e.timings.ttft_ms) / 1000.0 / (e.usage.completion_tokens - 1);
      for (int i = 1; i < e.usage.completion_tokens; ++i) token_time.observe(per);
    }
  }
  MetricsRegistry& registry;
  Gauge& in_flight;
  Histogram& ttft;
  Histogram& token_time;
  Counter& prompt_tokens;
  Counter& cached_tokens;
  Counter& completion_tokens;
};

// Jobs that arrived while the model was loading. Handles of waiting jobs have the top bit set (request ids do
// not); once a waiting job is submitted, its handle maps to its request id.
struct EngineCompletionBackend::Waiting {
  static constexpr Handle kWaitingBit = Handle{1} << 63;
  struct Job {
    lsp::CompletionJob job;
    OnDelta on_delta;
    OnDone on_done;
  };
  std::mutex mu;
  bool ended = false;              // the load ended
  std::optional<Error> error;      // how, when it failed
  Handle next = kWaitingBit | 1;
  std::map<Handle, Job> jobs;      // by arrival
  std::vector<Job> cancelled;      // cancelled while waiting: answered kCancelled when the load ends (never inside
                                   // cancel(), whose caller may hold the lock its on_done takes)
  std::map<Handle, Handle> started;  // waiting handle -> request id
};

struct EngineCompletionBackend::Submit {
  EngineHost& host;
  EngineBackendOptions options;
  std::shared_ptr<Metrics> m;
  Handle operator()(lsp::CompletionJob job, OnDelta on_delta, OnDone on_done) const;
};

EngineCompletionBackend::EngineCompletionBackend(EngineHost& host, EngineBackendOptions options)
    : host_(host), options_(options), waiting_(std::make_shared<Waiting>()) {
  if (options_.metrics) m_ = std::make_shared<Metrics>(*options_.metrics);
  // Runs at once when the model is loaded already; else on the loading thread, possibly after this backend is
  // gone (it holds only the host, which outlives its load, and shared state).
  host_.when_loaded([w = waiting_, submit = Submit{host_, options_, m_}](const Status& st) {
    std::map<Handle, Waiting::Job> jobs;
    std::vector<Waiting::Job> cancelled;
    {
      std::lock_guard<std::mutex> lock(w->mu);
      w->ended = true;
      if (!st.ok()) w->error = st.error();
      jobs.swap(w->jobs);
      cancelled.swap(w->cancelled);
    }
    for (auto& j : cancelled) j.on_done(make_error(ErrorCode::kCancelled, "cancelled while the model was loading"));
    for (auto& [handle, j] : jobs) {
      if (!st.ok()) {
        j.on_done(make_error(st.error().code, "the model failed to load: " + st.error().message));
        continue;
      }
      const Handle id = submit(std::move(j.job), std::move(j.on_delta), std::move(j.on_done));
      std::lock_guard<std::mutex> lock(w->mu);
      if (id != 0) w->started[handle] = id;
    }
  });
}

lsp::CompletionBackend::Handle EngineCompletionBackend::start(lsp::CompletionJob job, OnDelta on_delta,
                                                              OnDone on_done) {
  std::optional<Error> failed;
  {
    std::lock_guard<std::mutex> lock(waiting_->mu);
    if (!waiting_->ended) {
      const Handle h = waiting_->next++;
      waiting_->jobs.emplace(h, Waiting::Job{std::move(job), std::move(on_delta), std::move(on_done)});
      return h;
    }
    failed = waiting_->error;
  }
  if (failed) {  // outside the lock: on_done may call back into this backend
    on_done(make_error(failed->code, "the model failed to load: " + failed->message));
    return 0;
  }
  return Submit{host_, options_, m_}(std::move(job), std::move(on_delta), std::move(on_done));
}

lsp::CompletionBackend::Handle EngineCompletionBackend::Submit::operator()(lsp::CompletionJob job, OnDelta on_delta,
                                                                           OnDone on_done) const {
  EngineHost& host_ = host;
  const EngineBackendOptions& options_ = options;
  const std::shared_ptr<Metrics>& m_ = m;
  bool agent = !job.chat.empty();
  auto ids = agent ? encode_agent_turn(host_.tokenizer(), job) : encode_fim(host_.tokenizer(), job.fim);
  if (!ids.ok()) {
    on_done(ids.error());
    return 0;
  }
  Request req;
  req.prompt = std::move(*ids);
  // Agent turns yield to keystrokes: interactive prompt chunks go first, and agent requests are preempted first.
  req.priority = agent ? Priority::kAgent : Priority::kInteractive;
  req.document_key = job.doc_key;
  req.tenant = job.tenant;
  req.tenant_weight = job.tenant_weight;
  req.sampling.temperature = 0.0f;  // ghost text: the most likely continuation
  if (job.sample > 0) {  // a ranked completion's other candidates (as server/openai/rank.cpp samples them)
    req.sampling.temperature = 0.8f;
    req.sampling.top_k = 40;
    req.sampling.top_p = 0.95f;
    req.sampling.seed = static_cast<uint64_t>(job.sample) * 0x9E3779B97F4A7C15ull;
    req.yields_first_tokens = true;  // the greedy one streams: its first token goes first, alone
  }
  req.stop.max_tokens = job.max_tokens;
  req.stop.stop_token_ids = host_.stop_ids();
  req.stop.stop_strings = job.stop;
  req.stop.time_budget_ms = job.time_budget.count();
  req.text = host_.text();
  req.spec = options_.spec;
  if (!agent && (options_.spec.mode == SpecMode::kNgram || options_.spec.mode == SpecMode::kAuto)) {
    host_.tokenizer().encode_into(job.fim.suffix, /*match_added_tokens=*/false, req.context_ids);
  }
  auto t0 = std::chrono::steady_clock::now();
  auto done = std::make_shared<OnDone>(std::move(on_done));  // also answers a failed submit below
  // The callback may run after this backend is gone (a cancelled request's last event, at shutdown): it holds
  // the host, whose engine thread is the one calling it, and nothing of the backend.
  req.on_event = [host = &host_, on_delta = std::move(on_delta), done, t0, m = m_,
                  on_usage = std::move(job.on_usage)](const Event& e) {
    const OnDone& on_done = *done;
    if (m && e.kind != Event::Kind::kToken) m->done(e);
    auto usage_of = [&](const Event& ev) {
      lsp::CompletionUsage u;
      u.prompt_tokens = static_cast<size_t>(ev.usage.prompt_tokens);
      u.cached_tokens = static_cast<size_t>(ev.usage.cached_tokens);
      u.completion_tokens = static_cast<size_t>(ev.usage.completion_tokens);
      u.forward_tokens = static_cast<size_t>(ev.usage.forward_tokens);
      u.ttft_ms = ev.timings.ttft_ms;
      u.milliseconds = ev.timings.total_ms > 0
                           ? ev.timings.total_ms
                           : std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      u.finish_reason = ev.kind == Event::Kind::kError ? "error" : finish_reason_name(ev.finish);
      return u;
    };
    switch (e.kind) {
      case Event::Kind::kToken:
        if (!e.text.empty()) on_delta(e.text);
        return;
      case Event::Kind::kDone: {
        host->sample();  // engine thread: refresh the /metrics snapshot
        if (on_usage) on_usage(usage_of(e));
        if (e.finish == FinishReason::kCancelled || e.finish == FinishReason::kSuperseded ||
            e.finish == FinishReason::kPreempted) {
          // What a vanished client's cancel stopped (tests/node/disconnect.test.mjs reads this over stdio).
          LATENT_LOG_DEBUG("completion %s: %d prompt tokens (%d cached), %d fed, %d generated",
                           finish_reason_name(e.finish), e.usage.prompt_tokens, e.usage.cached_tokens,
                           e.usage.forward_tokens, e.usage.completion_tokens);
          on_done(make_error(ErrorCode::kCancelled, std::string("engine: ") + finish_reason_name(e.finish)));
          return;
        }
        lsp::CompletionUsage u = usage_of(e);
        LATENT_LOG_DEBUG("completion: %d prompt tokens (%d cached), %d generated, ttft %.1f ms, total %.1f ms (%s)",
                         e.usage.prompt_tokens, e.usage.cached_tokens, e.usage.completion_tokens, e.timings.ttft_ms,
                         e.timings.total_ms, u.finish_reason.c_str());
        on_done(u);
        return;
      }
      case Event::Kind::kError:
        if (on_usage) on_usage(usage_of(e));
        on_done(e.error);
        return;
    }
  };
  if (m_) m_->in_flight.add(1);
  auto id = host_.scheduler().submit(std::move(req));
  if (!id.ok()) {
    if (m_) {
      m_->in_flight.add(-1);
      m_->outcome("refused").inc();
    }
    LATENT_LOG_WARN("completion not submitted: %s", id.error().message.c_str());
    (*done)(id.error());  // the request (and its callback) was not queued: answer here
    return 0;
  }
  return *id;
}

void EngineCompletionBackend::cancel(Handle handle) {
  if (handle == 0) return;
  if (handle & Waiting::kWaitingBit) {
    std::lock_guard<std::mutex> lock(waiting_->mu);
    if (auto it = waiting_->jobs.find(handle); it != waiting_->jobs.end()) {
      waiting_->cancelled.push_back(std::move(it->second));  // never runs; answered when the load ends
      waiting_->jobs.erase(it);
      return;
    }
    auto s = waiting_->started.find(handle);
    if (s == waiting_->started.end()) return;  // answered already
    handle = s->second;  // submitted since: cancel the request
    waiting_->started.erase(s);
  }
  host_.scheduler().cancel(handle);
}

std::optional<size_t> EngineCompletionBackend::count_tokens(std::string_view text) const {
  std::vector<int32_t> ids;
  host_.tokenizer().encode_into(text, /*match_added_tokens=*/false, ids);
  return ids.size();
}

std::string EngineCompletionBackend::describe() const { return host_.model_id(); }

std::optional<lsp::PrefillCost> EngineCompletionBackend::prefill_cost() const {
  std::lock_guard<std::mutex> lock(cost_mu_);
  return cost_;
}

Result<lsp::PrefillCost> EngineCompletionBackend::measure_prefill_cost(const std::atomic<bool>& stop) {
  const int64_t vocab = host_.config().vocab_size;
  const int64_t longest = std::min<int64_t>(512, host_.context_length() - 8);
  const int64_t shortest = std::min<int64_t>(32, longest / 2);
  if (vocab < 2 || shortest < 1) {
    return make_error(ErrorCode::kInvalidArgument, "prefill cost: expected a vocabulary and a cache of at least "
                                                   "16 tokens, found vocab_size " + std::to_string(vocab) +
                                                       " and a context of " + std::to_string(host_.context_length()));
  }
  // One prompt of n random ids, one token generated; its prefill time (engine clock, queueing excluded).
  uint64_t seed = 0x9e3779b97f4a7c15ull;
  auto probe = [&](int64_t n) -> Result<double> {
    struct Wait {
      std::mutex mu;
      std::condition_variable cv;
      bool done = false;
      Result<double> ms = 0.0;
    };
    auto w = std::make_shared<Wait>();
    Request req;
    const int64_t lo = std::min<int64_t>(256, vocab / 2), span = std::min<int64_t>(vocab, 32000) - lo;
    for (int64_t i = 0; i < n; ++i) {
      seed = seed * 6364136223846793005ull + 1442695040888963407ull;
      req.prompt.push_back(static_cast<int32_t>(lo + static_cast<int64_t>((seed >> 33) % static_cast<uint64_t>(span))));
    }
    req.priority = Priority::kBackground;
    req.stop.max_tokens = 1;
    req.on_event = [w](const Event& e) {
      if (e.kind == Event::Kind::kToken) return;
      std::lock_guard<std::mutex> lock(w->mu);
      if (e.kind == Event::Kind::kError) {
        w->ms = e.error;
      } else if (e.finish == FinishReason::kCancelled || e.finish == FinishReason::kPreempted) {
        w->ms = make_error(ErrorCode::kCancelled, "prefill cost: the probe was cancelled");
      } else {
        w->ms = std::max(0.0, e.timings.ttft_ms - e.timings.queue_ms);
      }
      w->done = true;
      w->cv.notify_all();
    };
    auto id = host_.scheduler().submit(std::move(req));
    if (!id.ok()) return id.error();
    std::unique_lock<std::mutex> lock(w->mu);
    while (!w->done) {
      if (stop.load()) {
        lock.unlock();
        host_.scheduler().cancel(*id);
        return make_error(ErrorCode::kCancelled, "prefill cost: stopped");
      }
      w->cv.wait_for(lock, std::chrono::milliseconds(50));  // wakes on the event; the timeout only polls `stop`
    }
    return w->ms;
  };
  LATENT_ASSIGN_OR_RETURN(double small1, probe(shortest));
  LATENT_ASSIGN_OR_RETURN(double large, probe(longest));
  LATENT_ASSIGN_OR_RETURN(double small2, probe(shortest));
  const double small = std::min(small1, small2);
  lsp::PrefillCost c;
  c.per_token_ms = (large - small) / static_cast<double>(longest - shortest);
  if (c.per_token_ms <= 0) {  // noise swamped the difference: charge everything per token
    c.per_token_ms = std::max(large, 1e-3) / static_cast<double>(longest);
    c.fixed_ms = 0;
  } else {
    c.fixed_ms = std::max(0.0, small - c.per_token_ms * static_cast<double>(shortest));
  }
  LATENT_LOG_INFO("prefill cost: %.4f ms/token + %.2f ms (probes of %lld tokens: %.2f/%.2f ms, %lld tokens: %.2f ms)",
                  c.per_token_ms, c.fixed_ms, static_cast<long long>(shortest), small1, small2,
                  static_cast<long long>(longest), large);
  std::lock_guard<std::mutex> lock(cost_mu_);
  cost_ = c;
  return c;
}

}  // namespace latent::server
