#include "server/openai/api.h"

#include <chrono>
#include <random>

#include "engine/scheduler.h"
#include "kernels/base/log.h"
#include "server/http_router.h"
#include "server/openai/generation.h"

namespace latent::openai {
namespace {

using json = nlohmann::json;

const char* kJson = "application/json";

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

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

}  // namespace

struct OpenAiApi::Job {
  GenerationSpec spec;
  GenerationParams gen;
  std::string prompt_text;
  std::vector<std::string> extra_stops;
  Priority priority = Priority::kAgent;
  std::string document_key;
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
      m_(std::make_unique<ApiMetrics>(metrics)) {
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

bool OpenAiApi::handle(const std::string& method, const std::string& target, std::string body,
                       std::shared_ptr<HttpExchange> ex) {
  std::string path = path_of(target);
  bool known = false;
  for (const auto& r : routes()) known |= path == r.path;
  if (!known) return false;
  for (const auto& r : routes()) {
    if (path != r.path || method != r.method) continue;
    if (path == "/v1/models") models(*ex);
    else if (path == "/v1/completions") completions(body, std::move(ex));
    else if (path == "/v1/chat/completions") chat(body, std::move(ex));
    else if (path == "/infill") infill(body, std::move(ex));
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
  ex.respond(e.status, kJson, dump(error_json(e)));
}

void OpenAiApi::models(HttpExchange& ex) {
  m_->requests("/v1/models", 200).inc();
  std::vector<std::string> ids;
  if (engine_.scheduler) ids.push_back(options_.model_id);  // no model loaded: an empty list
  ex.respond(200, kJson, dump(models_response(ids, options_.created)));
}

void OpenAiApi::completions(const std::string& body, std::shared_ptr<HttpExchange> ex) {
  const std::string endpoint = "/v1/completions";
  ApiError err;
  auto j = parse_body(body, &err);
  if (!j) return reply_error(*ex, endpoint, err);
  auto parsed = parse_completion_request(*j, options_.limits);
  if (auto* e = std::get_if<ApiError>(&parsed)) return reply_error(*ex, endpoint, *e);
  auto& r = std::get<CompletionRequest>(parsed);
  Job job;
  job.spec.kind = GenerationSpec::Kind::kCompletion;
  job.spec.endpoint = endpoint;
  job.spec.meta = ResponseMeta{new_response_id("cmpl-"), unix_now(), options_.model_id};
  job.prompt_text = r.suffix ? render_fim_prompt(r.prompt, *r.suffix) : r.prompt;
  job.gen = std::move(r.gen);
  job.priority = options_.priority;
  start(std::move(job), std::move(ex));
}

void OpenAiApi::chat(const std::string& body, std::shared_ptr<HttpExchange> ex) {
  const std::string endpoint = "/v1/chat/completions";
  ApiError err;
  auto j = parse_body(body, &err);
  if (!j) return reply_error(*ex, endpoint, err);
  auto parsed = parse_chat_request(*j, options_.limits);
  if (auto* e = std::get_if<ApiError>(&parsed)) return reply_error(*ex, endpoint, *e);
  auto& r = std::get<ChatRequest>(parsed);
  auto rendered = chat::render(r.conversation);
  if (!rendered.ok()) return reply_error(*ex, endpoint, bad_request("tool_choice", rendered.error().message));
  Job job;
  job.spec.kind = GenerationSpec::Kind::kChat;
  job.spec.endpoint = endpoint;
  job.spec.meta = ResponseMeta{new_response_id("chatcmpl-"), unix_now(), options_.model_id};
  job.spec.prefill = rendered->prefill;
  if (r.conversation.tool_choice.kind == chat::ToolChoice::Kind::kNamed) {
    job.spec.forced_tool = r.conversation.tool_choice.name;
    // The arguments end where the model closes the fence or the call.
    job.extra_stops = {"\n```", std::string(chat::kCallEnd)};
  } else if (r.conversation.tool_choice.kind != chat::ToolChoice::Kind::kNone && !r.conversation.tools.empty()) {
    job.extra_stops = {std::string(chat::kCallsEnd)};
  }
  // Rendered turns end with EOS as text; a model whose vocabulary lacks it as one id still stops there.
  job.extra_stops.push_back(std::string(chat::kEos));
  job.prompt_text = std::move(rendered->text);
  job.gen = std::move(r.gen);
  job.priority = options_.priority;
  start(std::move(job), std::move(ex));
}

void OpenAiApi::infill(const std::string& body, std::shared_ptr<HttpExchange> ex) {
  const std::string endpoint = "/infill";
  ApiError err;
  auto j = parse_body(body, &err);
  if (!j) return reply_error(*ex, endpoint, err);
  auto parsed = parse_infill_request(*j, options_.limits);
  if (auto* e = std::get_if<ApiError>(&parsed)) return reply_error(*ex, endpoint, *e);
  auto& r = std::get<InfillRequest>(parsed);
  Job job;
  job.spec.kind = GenerationSpec::Kind::kInfill;
  job.spec.endpoint = endpoint;
  job.spec.meta = ResponseMeta{"", unix_now(), options_.model_id};
  job.spec.n_predict = r.gen.max_tokens;
  job.prompt_text = render_infill_prompt(r);
  job.gen = std::move(r.gen);
  // n_predict 0 (llama.vscode's cache warm-up) still runs the prompt through the model; the scheduler needs
  // at least one token to do that, which is then not shown.
  if (job.gen.max_tokens == 0) job.gen.max_tokens = 1;
  job.priority = Priority::kInteractive;
  start(std::move(job), std::move(ex));
}

void OpenAiApi::start(Job job, std::shared_ptr<HttpExchange> ex) {
  const std::string endpoint = job.spec.endpoint;
  if (!engine_.scheduler || !engine_.encode) {
    ApiError e;
    e.status = 503;
    e.type = "server_error";
    e.code = "model_not_loaded";
    e.message = "no model is loaded: start latentd with --model DIR";
    return reply_error(*ex, endpoint, e);
  }
  if (job.gen.max_tokens == 0) {
    return reply_error(*ex, endpoint, bad_request("max_tokens", "max_tokens: expected at least 1, found 0"));
  }
  job.spec.stream = job.gen.stream;
  job.spec.include_usage = job.gen.include_usage;
  auto ids = engine_.encode(job.prompt_text);
  if (!ids.ok()) return reply_error(*ex, endpoint, api_error_from(ids.error()));

  Request req;
  req.prompt = std::move(*ids);
  req.priority = job.priority;
  req.sampling = job.gen.sampling;
  if (!job.gen.seeded) req.sampling.seed = random_seed();
  req.stop.max_tokens = job.gen.max_tokens;
  req.stop.stop_token_ids = engine_.stop_ids;
  req.stop.stop_strings = job.gen.stop;
  for (auto& s : job.extra_stops) req.stop.stop_strings.push_back(std::move(s));
  req.stop.time_budget_ms = job.gen.time_budget_ms;
  req.text = engine_.text;

  auto gen = std::make_shared<Generation>(std::move(job.spec), ex, *m_);
  auto sample = engine_.sample_engine;
  auto counter = in_flight_;
  req.on_event = [gen, sample, counter](const Event& e) {
    if (e.kind != Event::Kind::kToken) counter->fetch_sub(1);
    gen->on_event(e);
    if (sample) sample();  // after the event: at kDone the scheduler has released the request's blocks
  };

  gen->begin();
  in_flight_->fetch_add(1);
  m_->in_flight.add(1);
  auto id = engine_.scheduler->submit(std::move(req));
  if (!id.ok()) {
    in_flight_->fetch_sub(1);
    Event e;
    e.kind = Event::Kind::kError;
    e.error = id.error();
    gen->on_event(e);  // answers with the error (as an event when streaming) and balances the gauge
    return;
  }
  Scheduler* sched = engine_.scheduler;
  RequestId rid = *id;
  ex->on_disconnect([gen, sched, rid] {
    if (gen->disconnected()) sched->cancel(rid);
  });
}

void add_routes(server::HttpRouter& router, std::shared_ptr<OpenAiApi> api) {
  for (const auto& route : OpenAiApi::routes()) {
    std::string method = route.method;
    router.add(method, route.path, [api, method](const server::HttpRequest& r) {
      server::HttpResponse res;
      res.deferred = [api, method, target = r.target, body = r.body](std::shared_ptr<HttpExchange> ex) {
        api->handle(method, target, body, std::move(ex));
      };
      return res;
    });
  }
}

}  // namespace latent::openai
