#include "server/openai/protocol.h"

#include <cmath>
#include <random>


namespace latent::openai {
namespace {

using json = nlohmann::json;

// The first `n` bytes of `s` (a JSON string's text or dump, valid UTF-8), cut back to a character boundary: an
// error message quoting a clipped value must stay valid UTF-8, or dumping the error response throws
// (nlohmann's type_error 316; found by fuzz_openai: a text part of 80+ bytes cut inside a 2-byte character).
std::string clip(const std::string& s, size_t n) {
  if (s.size() <= n) return s;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return s.substr(0, n);
}

const char* json_type_name(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return "an integer";
    case json::value_t::number_float: return "a number";
    case json::value_t::string: return "a string";
    case json::value_t::array: return "an array";
    case json::value_t::object: return "an object";
    default: return "something else";
  }
}

// Reads optional fields of one JSON object; the first problem wins and names the field.
class Fields {
 public:
  Fields(const json& obj, std::string prefix = {}) : obj_(obj), prefix_(std::move(prefix)) {}

  std::optional<ApiError> error;

  const json* find(const char* name) const {
    auto it = obj_.find(name);
    if (it == obj_.end() || it->is_null()) return nullptr;
    return &*it;
  }
  std::string path(const char* name) const { return prefix_ + name; }

  void fail(const char* name, const std::string& expected, const json& found) {
    if (!error) error = bad_request(path(name), path(name) + ": expected " + expected + ", found " +
                                                    json_type_name(found));
  }
  void fail_value(const char* name, const std::string& message) {
    if (!error) error = bad_request(path(name), path(name) + ": " + message);
  }

  void get(const char* name, std::string* out) {
    if (const json* v = find(name)) {
      if (v->is_string()) *out = v->get<std::string>();
      else fail(name, "a string", *v);
    }
  }
  void get(const char* name, bool* out) {
    if (const json* v = find(name)) {
      if (v->is_boolean()) *out = v->get<bool>();
      else fail(name, "a boolean", *v);
    }
  }
  // Numbers in [lo, hi].
  void get(const char* name, double* out, double lo, double hi) {
    if (const json* v = find(name)) {
      if (!v->is_number()) return fail(name, "a number", *v);
      double d = v->get<double>();
      if (!(d >= lo && d <= hi))
        return fail_value(name, "expected a value in [" + num(lo) + ", " + num(hi) + "], found " + num(d));
      *out = d;
    }
  }
  void get(const char* name, int64_t* out, int64_t lo, int64_t hi) {
    if (const json* v = find(name)) {
      if (!v->is_number_integer() && !(v->is_number_float() && std::floor(v->get<double>()) == v->get<double>()))
        return fail(name, "an integer", *v);
      if (v->is_number_float()) {
        // Range-checked as a double first: outside int64 the cast is undefined (found by fuzz_http under UBSan:
        // a 39-digit integer, which JSON parsers read as a double, for /infill's n_predict).
        const double d = v->get<double>();
        if (!(d >= static_cast<double>(lo) && d <= static_cast<double>(hi) && std::fabs(d) < 9.2e18))
          return fail_value(name, "expected an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                                      "], found " + num(d));
      }
      if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {  // would wrap negative
        return fail_value(name, "expected an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                                    "], found " + v->dump());
      }
      int64_t n = v->is_number_float() ? static_cast<int64_t>(v->get<double>()) : v->get<int64_t>();
      if (n < lo || n > hi)
        return fail_value(name, "expected an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                                    "], found " + std::to_string(n));
      *out = n;
    }
  }

 private:
  static std::string num(double d) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", d);
    return buf;
  }
  const json& obj_;
  std::string prefix_;
};

// stop: a string or an array of strings.
void get_stop(Fields& f, const Limits& limits, std::vector<std::string>* out) {
  const json* v = f.find("stop");
  if (!v) return;
  if (v->is_string()) {
    out->push_back(v->get<std::string>());
  } else if (v->is_array()) {
    if (static_cast<int>(v->size()) > limits.max_stop_strings)
      return f.fail_value("stop", "expected at most " + std::to_string(limits.max_stop_strings) +
                                      " strings, found " + std::to_string(v->size()));
    for (const auto& s : *v) {
      if (!s.is_string()) return f.fail("stop", "a string or an array of strings", s);
      out->push_back(s.get<std::string>());
    }
  } else {
    f.fail("stop", "a string or an array of strings", *v);
  }
  std::erase(*out, std::string());
}

// The sampling and length fields OpenAI's endpoints share.
void get_syntax(Fields& f, SyntaxRequest* out) {
  f.get("language", &out->language);
  f.get("syntax_check", &out->mode);
  if (!out->mode.empty() && out->mode != "off" && out->mode != "trim" && out->mode != "rank" && !f.error) {
    f.fail_value("syntax_check", "expected off, trim or rank, found '" + clip(out->mode, 40) + "'");
  }
}

void get_common(Fields& f, const Limits& limits, GenerationParams* g, int default_max_tokens) {
  f.get("model", &g->model);
  double temperature = 1.0, top_p = 1.0;
  f.get("temperature", &temperature, 0.0, 2.0);
  f.get("top_p", &top_p, 0.0, 1.0);
  if (top_p <= 0.0) top_p = 1e-6;  // OpenAI accepts 0: keep only the most likely token
  g->sampling.temperature = static_cast<float>(temperature);
  g->sampling.top_p = static_cast<float>(top_p);
  int64_t seed = 0;
  if (f.find("seed")) {
    f.get("seed", &seed, INT64_MIN, INT64_MAX);
    g->sampling.seed = static_cast<uint64_t>(seed);
    g->seeded = true;
  }
  int64_t max_tokens = default_max_tokens;
  f.get("max_tokens", &max_tokens, 0, limits.max_tokens_cap);
  f.get("max_completion_tokens", &max_tokens, 0, limits.max_tokens_cap);
  g->max_tokens = static_cast<int>(max_tokens);
  int64_t n = 1;
  f.get("n", &n, 1, 1);  // one choice per request: the scheduler batches requests, not choices
  get_stop(f, limits, &g->stop);
  f.get("ignore_eos", &g->ignore_eos);
  f.get("stream", &g->stream);
  if (const json* so = f.find("stream_options")) {
    if (!so->is_object()) return f.fail("stream_options", "an object", *so);
    Fields sf(*so, "stream_options.");
    sf.get("include_usage", &g->include_usage);
    if (sf.error && !f.error) f.error = sf.error;
  }
  if (const json* lp = f.find("logprobs"); lp && !(lp->is_boolean() && !lp->get<bool>()))
    f.fail_value("logprobs", "log probabilities are not supported by this server");
  if (const json* echo = f.find("echo"); echo && echo->is_boolean() && echo->get<bool>())
    f.fail_value("echo", "echo is not supported by this server");
}

// "content": a string, or an array of {type: "text", text} parts (joined).
bool get_content(const json& msg, std::optional<std::string>* out, std::string* err) {
  auto it = msg.find("content");
  if (it == msg.end() || it->is_null()) return true;
  if (it->is_string()) {
    *out = it->get<std::string>();
    return true;
  }
  if (it->is_array()) {
    std::string text;
    for (const auto& part : *it) {
      if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") || !part["text"].is_string()) {
        *err = "expected text parts {\"type\": \"text\", \"text\": ...}, found " + clip(part.dump(), 80);
        return false;
      }
      text += part["text"].get<std::string>();
    }
    *out = std::move(text);
    return true;
  }
  *err = std::string("expected a string or an array of text parts, found ") + json_type_name(*it);
  return false;
}

std::optional<ApiError> parse_messages(const json& body, chat::Conversation* conv) {
  auto it = body.find("messages");
  if (it == body.end() || !it->is_array() || it->empty())
    return bad_request("messages", "messages: expected a non-empty array of messages, found " +
                                       std::string(it == body.end() ? "none" : json_type_name(*it)));
  for (size_t i = 0; i < it->size(); ++i) {
    const json& m = (*it)[i];
    std::string where = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) return bad_request(where, where + ": expected an object, found " + json_type_name(m));
    std::string role = m.value("role", "");
    ChatMessage msg;
    if (role == "system" || role == "developer") msg.role = "system";
    else if (role == "user" || role == "assistant" || role == "tool") msg.role = role;
    else
      return bad_request(where + ".role", where + ".role: expected system, developer, user, assistant or tool, "
                                                  "found '" + role + "'");
    std::string err;
    if (!get_content(m, &msg.content, &err)) return bad_request(where + ".content", where + ".content: " + err);
    if (msg.role == "assistant") {
      if (auto tc = m.find("tool_calls"); tc != m.end() && !tc->is_null()) {
        if (!tc->is_array()) return bad_request(where + ".tool_calls", where + ".tool_calls: expected an array");
        for (size_t k = 0; k < tc->size(); ++k) {
          const json& c = (*tc)[k];
          std::string cw = where + ".tool_calls[" + std::to_string(k) + "]";
          if (!c.is_object() || !c.contains("function") || !c["function"].is_object() ||
              !c["function"].value("name", json()).is_string())
            return bad_request(cw, cw + ": expected {id, type: \"function\", function: {name, arguments}}");
          ChatToolCall call;  // the call's id is not part of DeepSeek's format: outputs follow calls in order
          call.type = c.value("type", "function");
          call.name = c["function"]["name"].get<std::string>();
          const json& args = c["function"].value("arguments", json("{}"));
          call.arguments = args.is_string() ? args.get<std::string>() : args.dump();
          msg.tool_calls.push_back(std::move(call));
        }
      }
      if (!msg.content && msg.tool_calls.empty()) msg.content = "";
    } else if (!msg.content) {
      return bad_request(where + ".content", where + ".content: expected a string, found none");
    }
    conv->messages.push_back(std::move(msg));
  }
  return std::nullopt;
}

std::optional<ApiError> parse_tools(const json& body, chat::Conversation* conv) {
  if (auto it = body.find("tools"); it != body.end() && !it->is_null()) {
    if (!it->is_array()) return bad_request("tools", std::string("tools: expected an array, found ") + json_type_name(*it));
    for (size_t i = 0; i < it->size(); ++i) {
      const json& t = (*it)[i];
      std::string where = "tools[" + std::to_string(i) + "]";
      if (!t.is_object() || t.value("type", "function") != "function" || !t.contains("function") ||
          !t["function"].is_object() || !t["function"].value("name", json()).is_string())
        return bad_request(where, where + ": expected {type: \"function\", function: {name, description, "
                                          "parameters}}");
      const json& fn = t["function"];
      chat::Tool tool;
      tool.name = fn["name"].get<std::string>();
      if (fn.contains("description") && fn["description"].is_string()) tool.description = fn["description"];
      if (fn.contains("parameters") && !fn["parameters"].is_null()) tool.parameters = fn["parameters"].dump();
      conv->tools.push_back(std::move(tool));
    }
  }
  conv->tool_choice.kind = conv->tools.empty() ? chat::ToolChoice::Kind::kNone : chat::ToolChoice::Kind::kAuto;
  if (auto it = body.find("tool_choice"); it != body.end() && !it->is_null()) {
    if (it->is_string()) {
      std::string s = it->get<std::string>();
      if (s == "none") conv->tool_choice.kind = chat::ToolChoice::Kind::kNone;
      else if (s == "auto") conv->tool_choice.kind = chat::ToolChoice::Kind::kAuto;
      else if (s == "required") conv->tool_choice.kind = chat::ToolChoice::Kind::kRequired;
      else return bad_request("tool_choice", "tool_choice: expected none, auto, required or an object, found '" + s + "'");
    } else if (it->is_object() && it->contains("function") && (*it)["function"].is_object() &&
               (*it)["function"].value("name", json()).is_string()) {
      conv->tool_choice.kind = chat::ToolChoice::Kind::kNamed;
      conv->tool_choice.name = (*it)["function"]["name"].get<std::string>();
    } else {
      return bad_request("tool_choice", "tool_choice: expected none, auto, required or {type: \"function\", "
                                        "function: {name}}, found " + clip(it->dump(), 80));
    }
  }
  return std::nullopt;
}

template <typename T>
Parsed<T> need_object(const json& body) {
  return bad_request("", std::string("request body: expected a JSON object, found ") + json_type_name(body));
}

}  // namespace

json error_json(const ApiError& e) {
  return json{{"error",
               {{"message", e.message},
                {"type", e.type},
                {"param", e.param.empty() ? json() : json(e.param)},
                {"code", e.code.empty() ? json() : json(e.code)}}}};
}

ApiError bad_request(std::string param, std::string message) {
  ApiError e;
  e.status = 400;
  e.param = std::move(param);
  e.message = std::move(message);
  return e;
}

ApiError api_error_from(const Error& err) {
  ApiError e;
  e.message = err.message;
  switch (err.code) {
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kUnsupported:
      e.status = 400;
      break;
    case ErrorCode::kNotFound:
      e.status = 404;
      e.type = "not_found_error";
      break;
    case ErrorCode::kResourceExhausted:
      e.status = 429;
      e.type = "rate_limit_error";
      e.code = "resource_exhausted";
      break;
    case ErrorCode::kCancelled:
      e.status = 400;
      e.code = "cancelled";
      break;
    default:
      e.status = 500;
      e.type = "server_error";
      break;
  }
  return e;
}

static Parsed<CompletionRequest> parse_completion_request_impl(const json& body, const Limits& limits) {
  if (!body.is_object()) return need_object<CompletionRequest>(body);
  CompletionRequest r;
  Fields f(body);
  get_common(f, limits, &r.gen, 16);  // OpenAI's default max_tokens for completions
  const json* p = f.find("prompt");
  if (!p) return bad_request("prompt", "prompt: expected a string, found none");
  if (p->is_string()) {
    r.prompt = p->get<std::string>();
  } else if (p->is_array() && p->size() == 1 && (*p)[0].is_string()) {
    r.prompt = (*p)[0].get<std::string>();
  } else {
    return bad_request("prompt", std::string("prompt: expected a string (or an array of one string), found ") +
                                     (p->is_array() ? "an array of " + std::to_string(p->size()) + " items"
                                                    : json_type_name(*p)));
  }
  if (const json* s = f.find("suffix")) {
    if (!s->is_string()) f.fail("suffix", "a string", *s);
    else r.suffix = s->get<std::string>();
  }
  get_syntax(f, &r.syntax);
  if (f.error) return *f.error;
  return r;
}

static Parsed<ChatRequest> parse_chat_request_impl(const json& body, const Limits& limits) {
  if (!body.is_object()) return need_object<ChatRequest>(body);
  ChatRequest r;
  Fields f(body);
  get_common(f, limits, &r.gen, limits.default_max_tokens);
  if (f.error) return *f.error;
  if (auto e = parse_messages(body, &r.conversation)) return *e;
  if (auto e = parse_tools(body, &r.conversation)) return *e;
  if (const json* rf = f.find("response_format"); rf && rf->is_object() && rf->value("type", "text") != "text")
    return bad_request("response_format", "response_format: only {\"type\": \"text\"} is supported, found " +
                                              clip(rf->dump(), 80));
  return r;
}

static Parsed<InfillRequest> parse_infill_request_impl(const json& body, const Limits& limits) {
  if (!body.is_object()) return need_object<InfillRequest>(body);
  InfillRequest r;
  Fields f(body);
  f.get("model", &r.gen.model);
  f.get("input_prefix", &r.input_prefix);
  f.get("input_suffix", &r.input_suffix);
  f.get("prompt", &r.prompt);
  f.get("cache_prompt", &r.cache_prompt);
  f.get("stream", &r.gen.stream);
  // llama.cpp's sampling defaults: temperature 0.8, top_k 40, top_p 0.95, min_p 0.05.
  double temperature = 0.8, top_p = 0.95, min_p = 0.05, repeat_penalty = 1.0;
  int64_t top_k = 40, n_predict = -1, t_max_predict_ms = 0, seed = -1;
  f.get("temperature", &temperature, 0.0, 100.0);
  f.get("top_p", &top_p, 0.0, 1.0);
  f.get("min_p", &min_p, 0.0, 1.0);
  f.get("repeat_penalty", &repeat_penalty, 0.0, 100.0);
  f.get("top_k", &top_k, 0, 1 << 30);
  f.get("n_predict", &n_predict, -1, limits.max_tokens_cap);
  f.get("t_max_predict_ms", &t_max_predict_ms, 0, 3600 * 1000);
  f.get("seed", &seed, INT64_MIN, INT64_MAX);
  r.gen.sampling.temperature = static_cast<float>(temperature);
  r.gen.sampling.top_p = static_cast<float>(top_p);
  r.gen.sampling.min_p = static_cast<float>(min_p);
  r.gen.sampling.top_k = static_cast<int>(top_k);
  r.gen.sampling.repetition_penalty = static_cast<float>(repeat_penalty == 0.0 ? 1.0 : repeat_penalty);
  if (seed >= 0) {  // llama.cpp: -1 = random
    r.gen.sampling.seed = static_cast<uint64_t>(seed);
    r.gen.seeded = true;
  }
  r.gen.max_tokens = n_predict < 0 ? limits.default_max_tokens : static_cast<int>(n_predict);
  r.gen.time_budget_ms = t_max_predict_ms;
  get_stop(f, limits, &r.gen.stop);
  f.get("ignore_eos", &r.gen.ignore_eos);
  get_syntax(f, &r.syntax);
  if (const json* extra = f.find("input_extra")) {
    if (!extra->is_array()) {
      f.fail("input_extra", "an array of {filename, text}", *extra);
    } else {
      for (size_t i = 0; i < extra->size(); ++i) {
        const json& c = (*extra)[i];
        if (!c.is_object() || (c.contains("text") && !c["text"].is_string()) ||
            (c.contains("filename") && !c["filename"].is_string())) {
          f.fail_value("input_extra", "expected [{filename, text}] with string fields, item " + std::to_string(i) +
                                          " is " + clip(c.dump(), 80));
          break;
        }
        r.input_extra.push_back({c.value("filename", ""), c.value("text", "")});
      }
    }
  }
  if (f.error) return *f.error;
  return r;
}

FimPrompt infill_fim_prompt(const InfillRequest& r) {
  FimPrompt p;
  p.prefix = r.input_prefix;
  p.suffix = r.input_suffix;
  for (const auto& c : r.input_extra)
    if (!c.text.empty()) p.context.push_back(FimFile{c.filename, c.text});
  return p;
}

std::string finish_reason_text(FinishReason r, bool tool_calls) {
  if (tool_calls) return "tool_calls";
  switch (r) {
    case FinishReason::kLength:
    case FinishReason::kTimeBudget:
    case FinishReason::kPreempted:
      return "length";
    default:
      return "stop";
  }
}

json usage_json(const Usage& u) {
  return json{{"prompt_tokens", u.prompt_tokens},
              {"completion_tokens", u.completion_tokens},
              {"total_tokens", u.prompt_tokens + u.completion_tokens},
              {"prompt_tokens_details", {{"cached_tokens", u.cached_tokens}}},
              {"completion_tokens_details",
               {{"accepted_prediction_tokens", u.accepted_tokens},
                {"rejected_prediction_tokens", u.drafted_tokens - u.accepted_tokens}}}};
}

std::string new_response_id(const std::string& prefix) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* kHex = "0123456789abcdef";
  std::string id = prefix;
  for (int i = 0; i < 24; ++i) id += kHex[rng() & 15];
  return id;
}

json completion_response(const ResponseMeta& m, const std::string& text, const std::string& finish,
                         const Usage& u) {
  return json{{"id", m.id},
              {"object", "text_completion"},
              {"created", m.created},
              {"model", m.model},
              {"choices", json::array({{{"index", 0}, {"text", text}, {"logprobs", nullptr}, {"finish_reason", finish}}})},
              {"usage", usage_json(u)}};
}

json completion_chunk(const ResponseMeta& m, const std::string& text, const std::string& finish) {
  return json{{"id", m.id},
              {"object", "text_completion"},
              {"created", m.created},
              {"model", m.model},
              {"choices", json::array({{{"index", 0},
                                        {"text", text},
                                        {"logprobs", nullptr},
                                        {"finish_reason", finish.empty() ? json() : json(finish)}}})}};
}

json tool_call_json(const chat::ToolCall& c) {
  return json{{"id", c.id}, {"type", c.type}, {"function", {{"name", c.name}, {"arguments", c.arguments}}}};
}

json chat_response(const ResponseMeta& m, const chat::ParsedOutput& out, const std::string& finish,
                   const Usage& u) {
  json message = {{"role", "assistant"}, {"content", out.content}, {"refusal", nullptr}};
  if (!out.tool_calls.empty()) {
    json calls = json::array();
    for (const auto& c : out.tool_calls) calls.push_back(tool_call_json(c));
    message["tool_calls"] = std::move(calls);
    if (out.content.empty()) message["content"] = nullptr;  // as OpenAI answers a pure tool call
  }
  return json{{"id", m.id},
              {"object", "chat.completion"},
              {"created", m.created},
              {"model", m.model},
              {"choices", json::array({{{"index", 0}, {"message", std::move(message)}, {"logprobs", nullptr},
                                        {"finish_reason", finish}}})},
              {"usage", usage_json(u)}};
}

json chat_chunk(const ResponseMeta& m, const json& delta, const std::string& finish) {
  return json{{"id", m.id},
              {"object", "chat.completion.chunk"},
              {"created", m.created},
              {"model", m.model},
              {"choices", json::array({{{"index", 0},
                                        {"delta", delta},
                                        {"logprobs", nullptr},
                                        {"finish_reason", finish.empty() ? json() : json(finish)}}})}};
}

json usage_chunk(const ResponseMeta& m, const std::string& object, const Usage& u) {
  return json{{"id", m.id}, {"object", object}, {"created", m.created}, {"model", m.model},
              {"choices", json::array()}, {"usage", usage_json(u)}};
}

json infill_response(const std::string& model, const InfillResult& r, int n_predict) {
  const char* stop_type = "limit";
  switch (r.finish) {
    case FinishReason::kStopToken: stop_type = "eos"; break;
    case FinishReason::kStopString:
    case FinishReason::kBlockEnd:
    case FinishReason::kSuffix: stop_type = "word"; break;
    default: break;
  }
  int evaluated = r.usage.prompt_tokens - r.usage.cached_tokens;
  double prompt_ms = std::max(0.0, r.timings.ttft_ms - r.timings.queue_ms);
  double predicted_ms = std::max(0.0, r.timings.total_ms - r.timings.ttft_ms);
  auto per_second = [](int n, double ms) { return ms > 0 ? 1000.0 * n / ms : 0.0; };
  return json{{"content", r.content},
              {"model", model},
              {"index", 0},
              {"stop", true},
              {"stop_type", stop_type},
              {"finish_reason", finish_reason_text(r.finish, false)},
              {"tokens_predicted", r.usage.completion_tokens},
              {"tokens_evaluated", r.usage.prompt_tokens},
              {"tokens_cached", r.usage.cached_tokens},
              {"truncated", false},
              {"generation_settings", {{"n_predict", n_predict}}},
              {"timings",
               {{"prompt_n", evaluated},
                {"prompt_ms", prompt_ms},
                {"prompt_per_second", per_second(evaluated, prompt_ms)},
                {"predicted_n", r.usage.completion_tokens},
                {"predicted_ms", predicted_ms},
                {"predicted_per_second", per_second(r.usage.completion_tokens, predicted_ms)},
                {"cache_n", r.usage.cached_tokens}}}};
}

json infill_chunk(const std::string& content) {
  return json{{"content", content}, {"stop", false}, {"index", 0}};
}

std::string sse_data(const json& j) {
  return "data: " + j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
}

json models_response(const std::vector<std::string>& ids, int64_t created) {
  json data = json::array();
  for (const auto& id : ids)
    data.push_back({{"id", id}, {"object", "model"}, {"created", created}, {"owned_by", "latent"}});
  return json{{"object", "list"}, {"data", std::move(data)}};
}

Parsed<CompletionRequest> parse_completion_request(const json& body, const Limits& limits) {
  try {
    return parse_completion_request_impl(body, limits);
  } catch (const json::exception& e) {  // a field of an unexpected type that a value() call met
    return bad_request("", std::string("request body: ") + e.what());
  }
}

Parsed<ChatRequest> parse_chat_request(const json& body, const Limits& limits) {
  try {
    return parse_chat_request_impl(body, limits);
  } catch (const json::exception& e) {  // a field of an unexpected type that a value() call met
    return bad_request("", std::string("request body: ") + e.what());
  }
}

Parsed<InfillRequest> parse_infill_request(const json& body, const Limits& limits) {
  try {
    return parse_infill_request_impl(body, limits);
  } catch (const json::exception& e) {  // a field of an unexpected type that a value() call met
    return bad_request("", std::string("request body: ") + e.what());
  }
}

}  // namespace latent::openai
