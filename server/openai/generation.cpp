#include "server/openai/generation.h"

#include "server/openai/json_body.h"
#include "server/user_metrics.h"

#include "kernels/base/log.h"

namespace latent::openai {
namespace {

using json = nlohmann::json;
using Kind = GenerationSpec::Kind;

const char* kSse = "text/event-stream";
}  // namespace

ApiMetrics::ApiMetrics(MetricsRegistry& r)
    : registry(r),
      prompt_tokens(r.counter("latent_prompt_tokens_total", "Prompt tokens of HTTP generations")),
      cached_tokens(r.counter("latent_prompt_tokens_cached_total",
                              "Prompt tokens whose latent cache came from the prefix cache")),
      completion_tokens(r.counter("latent_completion_tokens_total", "Generated tokens of HTTP generations")),
      drafted_tokens(r.counter("latent_draft_tokens_total", "Speculative draft tokens proposed")),
      accepted_tokens(r.counter("latent_draft_tokens_accepted_total", "Speculative draft tokens accepted")),
      cancelled_disconnect(r.counter("latent_requests_cancelled_total",
                                     "Generations cancelled because the client went away",
                                     {{"reason", "client_disconnect"}})),
      ttft(r.histogram("latent_time_to_first_token_seconds", "Submit to first generated token",
                       kLatencyBuckets)),
      token_time(r.histogram("latent_time_per_output_token_seconds",
                             "Time between generated tokens (after the first)", kTokenTimeBuckets)),
      duration(r.histogram("latent_request_duration_seconds", "Submit to last token", kLatencyBuckets)),
      in_flight(r.gauge("latent_http_generations_in_flight",
                        "HTTP generations submitted to the scheduler and not yet finished")) {}

Counter& ApiMetrics::requests(const std::string& endpoint, int status) {
  return registry.counter("latent_http_requests_total", "HTTP requests by endpoint and status",
                          {{"endpoint", endpoint}, {"status", std::to_string(status)}});
}

Generation::Generation(GenerationSpec spec, std::shared_ptr<HttpExchange> ex, std::shared_ptr<ApiMetrics> metrics)
    : spec_(std::move(spec)), ex_(std::move(ex)), m_(std::move(metrics)) {
  if (spec_.forced_tool) forced_call_id_ = new_response_id("call_");
  if (!spec_.prefill.empty() && !spec_.forced_tool) parser_.push(spec_.prefill);  // held: starts with a marker
}

void Generation::begin() {
  std::lock_guard lock(mu_);
  if (!spec_.stream) return;
  ex_->begin_stream(200, kSse);
  if (spec_.kind == Kind::kChat) {
    json delta = {{"role", "assistant"}, {"content", spec_.forced_tool ? json() : json("")}};
    if (spec_.forced_tool)
      delta["tool_calls"] = json::array({{{"index", 0}, {"id", forced_call_id_}, {"type", "function"},
                                          {"function", {{"name", *spec_.forced_tool}, {"arguments", ""}}}}});
    write_chunk(chat_chunk(spec_.meta, delta, ""));
  }
}

bool Generation::disconnected() {
  std::lock_guard lock(mu_);
  gone_ = true;
  if (done_) return false;
  m_->cancelled_disconnect.inc();
  return true;
}

void Generation::set_stop(std::function<void()> stop) {
  std::lock_guard lock(mu_);
  stop_ = std::move(stop);
  if (stop_wanted_ && !done_) stop_();
}

bool Generation::finished() const {
  std::lock_guard lock(mu_);
  return done_;
}

void Generation::write_chunk(const json& j) {
  if (!gone_) ex_->write(sse_data(j));
}

void Generation::on_event(const Event& e) {
  std::lock_guard lock(mu_);
  if (done_) return;
  switch (e.kind) {
    case Event::Kind::kToken: {
      auto now = std::chrono::steady_clock::now();
      if (seen_token_ && !e.tokens.empty()) {
        double per = std::chrono::duration<double>(now - last_token_).count() / e.tokens.size();
        for (size_t i = 0; i < e.tokens.size(); ++i) m_->token_time.observe(per);
      }
      if (!e.tokens.empty()) {
        seen_token_ = true;
        last_token_ = now;
      }
      if (!e.text.empty()) on_text(e.text);
      break;
    }
    case Event::Kind::kDone:
      on_done(e);
      break;
    case Event::Kind::kError:
      on_error(e);
      break;
  }
}

void Generation::emit_chat_delta(const chat::StreamParser::Delta& d) {
  parsed_.content += d.content;
  for (const auto& c : d.tool_calls) {
    chat::ToolCall call = c;
    call.id = new_response_id("call_");
    parsed_.tool_calls.push_back(call);
    if (spec_.stream) {
      json tc = tool_call_json(call);
      tc["index"] = parsed_.tool_calls.size() - 1;
      write_chunk(chat_chunk(spec_.meta, json{{"tool_calls", json::array({tc})}}, ""));
    }
  }
  if (spec_.stream && !d.content.empty()) write_chunk(chat_chunk(spec_.meta, json{{"content", d.content}}, ""));
}

void Generation::on_text(const std::string& text) {
  if (spec_.kind == Kind::kInfill && spec_.n_predict == 0) return;  // cache warm-up: nothing to show
  text_ += text;
  if (spec_.syntax) {  // checked at the end; a loop stops decoding now
    if (!stop_wanted_ && spec_.syntax->degenerated(text_)) {
      stop_wanted_ = true;
      if (stop_) stop_();
    }
    return;
  }
  if (!spec_.stream && spec_.kind != Kind::kChat) return;
  switch (spec_.kind) {
    case Kind::kCompletion:
      write_chunk(completion_chunk(spec_.meta, text, ""));
      break;
    case Kind::kInfill:
      write_chunk(infill_chunk(text));
      break;
    case Kind::kChat:
      if (spec_.forced_tool) {
        if (spec_.stream)
          write_chunk(chat_chunk(spec_.meta,
                                 json{{"tool_calls", json::array({{{"index", 0}, {"function", {{"arguments", text}}}}})}},
                                 ""));
      } else {
        emit_chat_delta(parser_.push(text));
      }
      break;
  }
}

void Generation::on_done(const Event& e) {
  done_ = true;
  m_->in_flight.add(-1);
  const Usage& u = e.usage;
  m_->prompt_tokens.inc(u.prompt_tokens);
  m_->cached_tokens.inc(u.cached_tokens);
  m_->completion_tokens.inc(u.completion_tokens);
  m_->drafted_tokens.inc(u.drafted_tokens);
  m_->accepted_tokens.inc(u.accepted_tokens);
  if (u.completion_tokens > 0) m_->ttft.observe(e.timings.ttft_ms / 1000.0);
  m_->duration.observe(e.timings.total_ms / 1000.0);
  m_->requests(spec_.endpoint, 200).inc();
  record_user_usage(m_->registry, UserUsage{spec_.user, spec_.endpoint, 200, u.prompt_tokens, u.completion_tokens,
                                           u.completion_tokens > 0 ? e.timings.ttft_ms / 1000.0 : 0,
                                           e.timings.total_ms / 1000.0});
  if (m_->charge_user && !spec_.user.empty()) m_->charge_user(spec_.user, u.prompt_tokens + u.completion_tokens);
  if (gone_) return;
  FinishReason finish_reason = e.finish;
  nlohmann::json syntax;
  if (spec_.syntax && !(spec_.kind == Kind::kInfill && spec_.n_predict == 0)) {
    lsp::SyntaxVerdict v = spec_.syntax->finish(text_);
    text_ = v.text;
    syntax = syntax_json(v);
    if (stop_wanted_) finish_reason = FinishReason::kStopString;  // stopped by the check, not by the client
    if (spec_.stream && !text_.empty()) {
      write_chunk(spec_.kind == Kind::kInfill ? infill_chunk(text_) : completion_chunk(spec_.meta, text_, ""));
    }
  }

  switch (spec_.kind) {
    case Kind::kCompletion: {
      std::string finish = finish_reason_text(finish_reason, false);
      if (!spec_.stream) {
        json body = completion_response(spec_.meta, text_, finish, u);
        if (!syntax.is_null()) body["latent_syntax"] = syntax;
        ex_->respond(200, kJsonContentType, dump_body(body));
        return;
      }
      json last = completion_chunk(spec_.meta, "", finish);
      if (!syntax.is_null()) last["latent_syntax"] = syntax;
      write_chunk(last);
      if (spec_.include_usage) write_chunk(usage_chunk(spec_.meta, "text_completion", u));
      ex_->write(kSseDone);
      ex_->end_stream();
      return;
    }
    case Kind::kChat: {
      std::string finish;
      if (spec_.forced_tool) {
        // OpenAI answers a forced function call with finish_reason "stop".
        std::string args = text_;
        while (!args.empty() && (args.back() == '\n' || args.back() == ' ')) args.pop_back();
        parsed_.tool_calls = {chat::ToolCall{forced_call_id_, "function", *spec_.forced_tool, args}};
        finish = finish_reason_text(e.finish, false);
      } else {
        emit_chat_delta(parser_.finish());
        finish = finish_reason_text(e.finish, !parsed_.tool_calls.empty());
      }
      if (!spec_.stream) {
        ex_->respond(200, kJsonContentType, dump_body(chat_response(spec_.meta, parsed_, finish, u)));
        return;
      }
      write_chunk(chat_chunk(spec_.meta, json::object(), finish));
      if (spec_.include_usage) write_chunk(usage_chunk(spec_.meta, "chat.completion.chunk", u));
      ex_->write(kSseDone);
      ex_->end_stream();
      return;
    }
    case Kind::kInfill: {
      InfillResult r{spec_.stream ? std::string() : text_, finish_reason, u, e.timings};
      json final = infill_response(spec_.meta.model, r, spec_.n_predict);
      if (!syntax.is_null()) final["latent_syntax"] = syntax;
      if (!spec_.stream) {
        ex_->respond(200, kJsonContentType, dump_body(final));
        return;
      }
      write_chunk(final);
      ex_->end_stream();
      return;
    }
  }
}

void Generation::on_error(const Event& e) {
  done_ = true;
  m_->in_flight.add(-1);
  ApiError err = api_error_from(e.error);
  m_->requests(spec_.endpoint, err.status).inc();
  record_user_usage(m_->registry, UserUsage{spec_.user, spec_.endpoint, err.status, 0, 0, 0, -1});
  LATENT_LOG_WARN("%s: generation failed: %s", spec_.endpoint.c_str(), e.error.to_string().c_str());
  if (gone_) return;
  if (!spec_.stream) {
    ex_->respond(err.status, kJsonContentType, dump_body(error_json(err)));
    return;
  }
  // Headers are gone already: the error travels as an event, as OpenAI's streams do.
  write_chunk(error_json(err));
  ex_->end_stream();
}

}  // namespace latent::openai
