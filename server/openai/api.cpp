#include "server/openai/api.h"

#include <chrono>
#include <map>
#include <optional>
#include <random>

#include "engine/scheduler.h"
#include "engine/tokenizer/prompt_format.h"
#include "engine/tokenizer/tokenizer.h"
#include "kernels/base/log.h"
#include "server/http_router.h"
#include "server/openai/generation.h"
#include "server/openai/json_body.h"
#include "server/openai/rank.h"
#include "server/openai/syntax_gate.h"

namespace latent::openai {
namespace {

using json = nlohmann::json;

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

uint64_t random_seed() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return rng();
}

// Parses JSON; an unparsable body is OpenAI's 400 with the parser's position.
std::optional<json> parse_body(const std::string& body, ApiError* err) {
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    *err = bad_request("", "request body: expected JSON, found " +
                               (body.empty() ? std::string("an empty body") : "'" + body.substr(0, 40) + "'"));
    return std::nullopt;
  }
  return j;
}

std::string path_of(const std::string& target) { return target.substr(0, target.find('?')); }

// Text in which marker strings (<｜User｜>, <｜fim▁hole｜>, ...) are the tokens they name; BOS first, once.
Result<std::vector<int32_t>> encode_text(const Tokenizer& tok, std::string_view text) {
  bool has_bos = !tok.bos_token().empty() && text.substr(0, tok.bos_token().size()) == tok.bos_token();
  auto ids = tok.encode(text, EncodeOptions{.add_special_tokens = !has_bos, .match_added_tokens = true});
  if (ids.empty()) return make_error(ErrorCode::kInvalidArgument, "prompt: expected text, found an empty prompt");
  return ids;
}

}  // namespace

struct OpenAiApi::Job {
  GenerationSpec spec;
  GenerationParams gen;
  // Prompt ids from the model's tokenizer (chat and FIM formats are the tokenizer's: prompt_format.h).
  std::function<Result<std::vector<int32_t>>(const Tokenizer&)> encode;
  std::vector<std::string> extra_stops;
  Priority priority = Priority::kAgent;
  std::string suffix_text;  // FIM: the code after the cursor; generation stops when the model reaches it
  int candidates = 1;       // --syntax-check rank: sequences decoded side by side (rank.h)
};

struct OpenAiApi::Waiting {
  std::mutex mu;
  bool ended = false;               // the load ended: `sched` or `error`
  Scheduler* sched = nullptr;
  std::optional<Error> error;
  uint64_t next = 1;
  std::map<uint64_t, std::pair<Job, std::shared_ptr<HttpExchange>>> jobs;  // by arrival
};

const std::vector<OpenAiApi::Route>& OpenAiApi::routes() {
  static const std::vector<Route> kRoutes = {{"GET", "/v1/models"},
                                             {"POST", "/v1/completions"},
                                             {"POST", "/v1/chat/completions"},
                                             {"POST", "/infill"},
                                             {"GET", "/metrics"}};
  return kRoutes;
}

OpenAiApi::OpenAiApi(EngineAccess engine, MetricsRegistry& metrics, ApiOptions options)
    : engine_(std::move(engine)),
      metrics_(metrics),
      options_(std::move(options)),
      in_flight_(std::make_shared<std::atomic<int64_t>>(0)),
      m_(std::make_shared<ApiMetrics>(metrics)),
      waiting_(std::make_shared<Waiting>()) {
  m_->charge_user = options_.charge_user;
  if (options_.created == 0) options_.created = unix_now();
  // Ratios Prometheus could compute too, but that a person reading /metrics wants to see directly.
  metrics_.add_collector([](MetricsRegistry& r) {
    double prompt = r.counter("latent_prompt_tokens_total", "").value();
    double cached = r.counter("latent_prompt_tokens_cached_total", "").value();
    r.gauge("latent_prefix_cache_hit_rate", "Cached prompt tokens / prompt tokens, since start")
        .set(prompt > 0 ? cached / prompt : 0);
    double drafted = r.counter("latent_draft_tokens_total", "").value();
    double accepted = r.counter("latent_draft_tokens_accepted_total", "").value();
    r.gauge("latent_draft_acceptance_rate", "Accepted / proposed speculative draft tokens, since start")
        .set(drafted > 0 ? accepted / drafted : 0);
  });
}

OpenAiApi::~OpenAiApi() = default;

std::shared_ptr<SyntaxGate> OpenAiApi::syntax_gate(const SyntaxRequest& r, std::string prefix,
                                                   std::string suffix, int* candidates) const {
  lsp::SyntaxMode mode = options_.syntax;
  if (!r.mode.empty()) lsp::parse_syntax_mode(r.mode, &mode);  // validated by the parser
  *candidates = 1;
  if (mode == lsp::SyntaxMode::kOff || r.language.empty()) return nullptr;
  if (mode == lsp::SyntaxMode::kRank) *candidates = std::max(1, options_.rank_candidates);
  return std::make_shared<SyntaxGate>(r.language, std::move(prefix), std::move(suffix), options_.syntax_stats);
}

bool OpenAiApi::handle(const std::string& method, const std::string& target, std::string body,
                       std::shared_ptr<HttpExchange> ex, const std::string& user) {
  std::string path = path_of(target);
  bool known = false;
  for (const auto& r : routes()) known |= path == r.path;
  if (!known) return false;
  for (const auto& r : routes()) {
    if (path != r.path || method != r.method) continue;
    if (path == "/v1/models") models(*ex);
    else if (path == "/v1/completions") completions(body, std::move(ex), user);
    else if (path == "/v1/chat/completions") chat(body, std::move(ex), user);
    else if (path == "/infill") infill(body, std::move(ex), user);
    else if (path == "/metrics") {
      m_->requests(path, 200).inc();
      ex->respond(200, "text/plain; version=0.0.4; charset=utf-8", metrics_.render());
    }
    return true;
  }
  ApiError e;
  e.status = 405;
  e.message = path + ": method " + method + " is not allowed";
  reply_error(*ex, path, e);
  return true;
}

void OpenAiApi::reply_error(HttpExchange& ex, const std::string& endpoint, const ApiError& e) {
  m_->requests(endpoint, e.status).inc();
  ex.respond(e.status, kJsonContentType, dump_body(error_json(e)));
}

void OpenAiApi::models(HttpExchange& ex) {
  m_->requests("/v1/models", 200).inc();
  std::vector<std::string> ids;
  if (engine_.scheduler || engine_.loading) ids.push_back(options_.model_id);  // no model: an empty list
  json body = models_response(ids, options_.created);
  if (!ids.empty() && engine_.context_length > 0) body["data"][0]["max_model_len"] = engine_.context_length;
  ex.respond(200, kJsonContentType, dump_body(body));
}

void OpenAiApi::completions(const std::string& body, std::shared_ptr<HttpExchange> ex, const std::string& user) {
  const std::string endpoint = "/v1/completions";
  ApiError err;
  auto j = parse_body(body, &err);
  if (!j) return reply_error(*ex, endpoint, err);
  auto parsed = parse_completion_request(*j, options_.limits);
  if (auto* e = std::get_if<ApiError>(&parsed)) return reply_error(*ex, endpoint, *e);
  auto& r = std::get<CompletionRequest>(parsed);
  Job job;
  job.spec.kind = GenerationSpec::Kind::kCompletion;
  job.spec.user = user;
  job.spec.endpoint = endpoint;
  job.spec.meta = ResponseMeta{new_response_id("cmpl-"), unix_now(), options_.model_id};
  if (r.suffix) {
    job.suffix_text = *r.suffix;
    job.spec.syntax = syntax_gate(r.syntax, r.prompt, *r.suffix, &job.candidates);
    job.encode = [fim = FimPrompt{r.prompt, *r.suffix, "", {}}](const Tokenizer& tok) { return encode_fim(tok, fim); };
  } else {
    job.encode = [prompt = r.prompt](const Tokenizer& tok) { return encode_text(tok, prompt); };
  }
  job.gen = std::move(r.gen);
  job.priority = options_.priority;
  start(std::move(job), std::move(ex));
}

void OpenAiApi::chat(const std::string& body, std::shared_ptr<HttpExchange> ex, const std::string& user) {
  const std::string endpoint = "/v1/chat/completions";
  ApiError err;
  auto j = parse_body(body, &err);
  if (!j) return reply_error(*ex, endpoint, err);
  auto parsed = parse_chat_request(*j, options_.limits);
  if (auto* e = std::get_if<ApiError>(&parsed)) return reply_error(*ex, endpoint, *e);
  auto& r = std::get<ChatRequest>(parsed);
  auto plan = chat::plan_chat(r.conversation);
  if (!plan.ok()) return reply_error(*ex, endpoint, bad_request("tool_choice", plan.error().message));
  Job job;
  job.spec.kind = GenerationSpec::Kind::kChat;
  job.spec.user = user;
  job.spec.endpoint = endpoint;
  job.spec.meta = ResponseMeta{new_response_id("chatcmpl-"), unix_now(), options_.model_id};
  job.spec.prefill = plan->prefill;
  if (r.conversation.tool_choice.kind == chat::ToolChoice::Kind::kNamed) {
    job.spec.forced_tool = r.conversation.tool_choice.name;
    // The arguments end where the model closes the fence or the call.
    job.extra_stops = {"\n```", std::string(chat::kCallEnd)};
  } else if (r.conversation.tool_choice.kind != chat::ToolChoice::Kind::kNone && !r.conversation.tools.empty()) {
    job.extra_stops = {std::string(chat::kCallsEnd)};
  }
  // Rendered turns end with EOS as text; a model whose vocabulary lacks it as one id still stops there.
  job.extra_stops.push_back(std::string(chat::kEos));
  job.encode = [plan = std::move(*plan)](const Tokenizer& tok) -> Result<std::vector<int32_t>> {
    std::string text;
    if (!tok.chat_template().empty()) {
      LATENT_ASSIGN_OR_RETURN(text, render_chat(tok, plan.messages, /*add_generation_prompt=*/true));
    } else {
      // No chat_template (the demo model's tokenizer): its vocabulary was built for DeepSeek-V3's format.
      text = render_chat(ChatFormat::kDeepseekV3, plan.messages, true, tok.bos_token(), tok.eos_token());
    }
    return encode_text(tok, text + plan.prefill);
  };
  job.gen = std::move(r.gen);
  job.priority = options_.priority;
  start(std::move(job), std::move(ex));
}

void OpenAiApi::infill(const std::string& body, std::shared_ptr<HttpExchange> ex, const std::string& user) {
  const std::string endpoint = "/infill";
  ApiError err;
  auto j = parse_body(body, &err);
  if (!j) return reply_error(*ex, endpoint, err);
  auto parsed = parse_infill_request(*j, options_.limits);
  if (auto* e = std::get_if<ApiError>(&parsed)) return reply_error(*ex, endpoint, *e);
  auto& r = std::get<InfillRequest>(parsed);
  Job job;
  job.spec.kind = GenerationSpec::Kind::kInfill;
  job.spec.user = user;
  job.spec.endpoint = endpoint;
  job.spec.meta = ResponseMeta{"", unix_now(), options_.model_id};
  job.spec.n_predict = r.gen.max_tokens;
  job.suffix_text = r.input_suffix;
  job.spec.syntax = syntax_gate(r.syntax, r.input_prefix + r.prompt, r.input_suffix, &job.candidates);
  if (r.gen.max_tokens == 0) job.candidates = 1;  // a cache warm-up
  job.encode = [fim = infill_fim_prompt(r), middle = r.prompt](const Tokenizer& tok) -> Result<std::vector<int32_t>> {
    LATENT_ASSIGN_OR_RETURN(std::vector<int32_t> ids, encode_fim(tok, fim));
    tok.encode_into(middle, /*match_added_tokens=*/false, ids);  // llama.cpp: `prompt` starts the middle
    return ids;
  };
  job.gen = std::move(r.gen);
  // n_predict 0 (llama.vscode's cache warm-up) still runs the prompt through the model; the scheduler needs
  // at least one token to do that, which is then not shown.
  if (job.gen.max_tokens == 0) job.gen.max_tokens = 1;
  job.priority = Priority::kInteractive;
  start(std::move(job), std::move(ex));
}

void OpenAiApi::engine_loaded(Result<Scheduler*> scheduler) {
  std::map<uint64_t, std::pair<Job, std::shared_ptr<HttpExchange>>> jobs;
  {
    std::lock_guard<std::mutex> lock(waiting_->mu);
    if (waiting_->ended) return;
    waiting_->ended = true;
    if (scheduler.ok()) {
      waiting_->sched = *scheduler;
    } else {
      waiting_->error = scheduler.error();
    }
    jobs.swap(waiting_->jobs);
  }
  if (!jobs.empty()) LATENT_LOG_INFO("model load ended: %zu HTTP generations were waiting", jobs.size());
  for (auto& [id, w] : jobs) start(std::move(w.first), std::move(w.second));
}

Scheduler* OpenAiApi::scheduler_or_wait(Job& job, const std::shared_ptr<HttpExchange>& ex, bool* queued,
                                        ApiError* refusal) {
  *queued = false;
  if (engine_.scheduler) return engine_.scheduler;
  refusal->status = 503;
  refusal->type = "server_error";
  refusal->code = "model_not_loaded";
  refusal->message = "no model is loaded: start latentd with --model DIR";
  if (!engine_.loading) return nullptr;
  uint64_t id = 0;
  {
    std::lock_guard<std::mutex> lock(waiting_->mu);
    if (waiting_->sched) return waiting_->sched;
    if (waiting_->error) {
      refusal->code = "model_load_failed";
      refusal->message = "the model failed to load: " + waiting_->error->message;
      return nullptr;
    }
    // Loading: the request waits in arrival order; a client that goes away leaves the queue (answered by nobody).
    id = waiting_->next++;
    waiting_->jobs.emplace(id, std::make_pair(std::move(job), ex));
  }
  ex->on_disconnect([w = std::weak_ptr<Waiting>(waiting_), id] {  // outside the lock: it may run at once
    if (auto s = w.lock()) {
      std::lock_guard<std::mutex> lock(s->mu);
      s->jobs.erase(id);
    }
  });
  *queued = true;
  return nullptr;
}

void OpenAiApi::start(Job job, std::shared_ptr<HttpExchange> ex) {
  const std::string endpoint = job.spec.endpoint;
  bool queued = false;
  ApiError refusal;
  Scheduler* const sched = engine_.tokenizer ? scheduler_or_wait(job, ex, &queued, &refusal) : nullptr;
  if (queued) return;
  if (!sched) {
    if (!engine_.tokenizer) {
      refusal.status = 503;
      refusal.type = "server_error";
      refusal.code = "model_not_loaded";
      refusal.message = "no model is loaded: start latentd with --model DIR";
    }
    return reply_error(*ex, endpoint, refusal);
  }
  if (job.gen.max_tokens == 0) {
    return reply_error(*ex, endpoint, bad_request("max_tokens", "max_tokens: expected at least 1, found 0"));
  }
  job.spec.stream = job.gen.stream;
  job.spec.include_usage = job.gen.include_usage;
  auto ids = job.encode(*engine_.tokenizer);
  if (!ids.ok()) return reply_error(*ex, endpoint, api_error_from(ids.error()));
  const int64_t n_prompt = static_cast<int64_t>(ids->size());
  if (engine_.context_length > 0 && n_prompt + job.gen.max_tokens > engine_.context_length) {
    if (job.spec.kind == GenerationSpec::Kind::kInfill && n_prompt < engine_.context_length) {
      job.gen.max_tokens = static_cast<int>(engine_.context_length - n_prompt);  // llama.cpp clamps n_predict
    } else {
      ApiError e = bad_request("max_tokens", "this model's maximum context length is " +
                                                 std::to_string(engine_.context_length) + " tokens; expected prompt + "
                                                 "max_tokens within it, found " + std::to_string(n_prompt) + " + " +
                                                 std::to_string(job.gen.max_tokens));
      e.code = "context_length_exceeded";
      return reply_error(*ex, endpoint, e);
    }
  }

  Request req;
  req.prompt = std::move(*ids);
  req.priority = job.priority;
  req.tenant = job.spec.user;  // fair sharing between users (latentd --users)
  if (options_.user_weight && !req.tenant.empty()) req.tenant_weight = options_.user_weight(req.tenant);
  req.sampling = job.gen.sampling;
  req.spec = options_.spec;
  if (!job.gen.seeded) req.sampling.seed = random_seed();
  req.stop.max_tokens = job.gen.max_tokens;
  if (!job.gen.ignore_eos) req.stop.stop_token_ids = engine_.stop_ids;
  req.stop.stop_strings = job.gen.stop;
  for (auto& s : job.extra_stops) req.stop.stop_strings.push_back(std::move(s));
  req.stop.time_budget_ms = job.gen.time_budget_ms;
  req.stop.suffix_text = std::move(job.suffix_text);
  req.text = engine_.text;

  auto gate = job.spec.syntax;
  auto gen = std::make_shared<Generation>(std::move(job.spec), ex, m_);
  auto sample = engine_.sample_engine;
  auto counter = in_flight_;
  if (job.candidates > 1) return start_ranked(sched, job.candidates, std::move(req), gen, gate, std::move(ex));
  req.on_event = [gen, sample, counter](const Event& e) {
    // First: once the client has its whole answer, in_flight() no longer counts it (the metrics below may be
    // updated a moment later; a generation keeps them alive, so that is safe after the API is gone).
    if (e.kind != Event::Kind::kToken) counter->fetch_sub(1);
    gen->on_event(e);
    if (sample) sample();  // after the event: at kDone the scheduler has released the request's blocks
  };

  gen->begin();
  in_flight_->fetch_add(1);
  m_->in_flight.add(1);
  auto id = sched->submit(std::move(req));
  if (!id.ok()) {
    in_flight_->fetch_sub(1);
    Event e;
    e.kind = Event::Kind::kError;
    e.error = id.error();
    gen->on_event(e);  // answers with the error (as an event when streaming) and balances the gauge
    return;
  }
  RequestId rid = *id;
  gen->set_stop([sched, rid] { sched->cancel(rid); });
  ex->on_disconnect([gen, sched, rid] {
    if (gen->disconnected()) sched->cancel(rid);
  });
}

void OpenAiApi::start_ranked(Scheduler* sched, int n, Request req, std::shared_ptr<Generation> gen,
                             std::shared_ptr<SyntaxGate> gate, std::shared_ptr<HttpExchange> ex) {
  auto group = std::make_shared<RankGroup>(n, gen, std::move(gate), sched);
  auto sample = engine_.sample_engine;
  auto counter = in_flight_;
  gen->begin();
  m_->in_flight.add(1);  // one generation, whatever the number of candidates
  for (int k = 0; k < n; ++k) {
    in_flight_->fetch_add(1);
    Request r = group->candidate(req, k, [group, sample, counter](const Event&) {
      counter->fetch_sub(1);
      if (sample) sample();
    });
    auto id = sched->submit(std::move(r));
    if (!id.ok()) {  // answered as this candidate's error; the others still count
      in_flight_->fetch_sub(1);
      Event e;
      e.kind = Event::Kind::kError;
      e.error = id.error();
      group->on_event(k, e);
      continue;
    }
    group->submitted(k, *id);
  }
  ex->on_disconnect([gen, group] {
    if (gen->disconnected()) group->cancel_all();
  });
}

void add_routes(server::HttpRouter& router, std::shared_ptr<OpenAiApi> api) {
  for (const auto& route : OpenAiApi::routes()) {
    std::string method = route.method;
    router.add(method, route.path, [api, method](const server::HttpRequest& r) {
      server::HttpResponse res;
      res.deferred = [api, method, target = r.target, body = r.body, user = r.user](std::shared_ptr<HttpExchange> ex) {
        api->handle(method, target, body, std::move(ex), user);
      };
      return res;
    });
  }
}

}  // namespace latent::openai
