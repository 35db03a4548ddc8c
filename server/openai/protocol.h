#pragma once
// The OpenAI-compatible API and llama.cpp's /infill in JSON: request bodies -> what to generate, and engine
// results -> response bodies, stream chunks and error objects. No sockets and no engine here, so every field
// mapping is unit-tested on fixed JSON (tests/server/openai_protocol_test.cpp).
//
//   POST /v1/completions       {model, prompt, suffix, max_tokens, temperature, top_p, stop, seed, stream,
//                               stream_options.include_usage}
//   POST /v1/chat/completions  {model, messages, tools, tool_choice, max_tokens|max_completion_tokens, ...}
//   POST /infill               llama.cpp: {input_prefix, input_suffix, input_extra [{filename, text}], prompt,
//                               n_predict, t_max_predict_ms, cache_prompt, temperature, top_k, top_p, ...}
// Errors are OpenAI's {"error": {"message", "type", "param", "code"}} with the HTTP status that goes with them.
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/chat/deepseek_chat.h"
#include "engine/request.h"
#include "engine/tokenizer/prompt_format.h"
#include "kernels/base/result.h"

namespace latent::openai {

struct ApiError {
  int status = 400;
  std::string message;
  std::string type = "invalid_request_error";  // invalid_request_error | not_found_error | server_error | ...
  std::string param;                           // the offending request field, or empty (-> null)
  std::string code;                            // machine-readable, or empty (-> null)
};
nlohmann::json error_json(const ApiError& e);
ApiError bad_request(std::string param, std::string message);
// An engine error as the client should see it: kInvalidArgument -> 400, kResourceExhausted -> 429,
// kUnsupported -> 400, kNotFound -> 404, kCancelled -> 499-style 400, everything else -> 500.
ApiError api_error_from(const Error& e);

template <typename T>
using Parsed = std::variant<T, ApiError>;

// Server-side caps applied while parsing.
struct Limits {
  int max_tokens_cap = 1 << 20;   // the most completion tokens one request may ask for (the model's
                                  // context length is checked once the prompt is tokenized)
  int default_max_tokens = 256;   // chat and infill when the client does not say (completions: OpenAI's 16)
  int max_stop_strings = 16;
};

// What every endpoint asks of the engine, after defaults.
struct GenerationParams {
  std::string model;
  SamplingParams sampling;
  int max_tokens = 16;
  std::vector<std::string> stop;
  int64_t time_budget_ms = 0;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  bool seeded = false;         // seed given by the client (else the handler draws one)
  bool ignore_eos = false;     // vLLM's and llama.cpp's extension: generate past end-of-sequence
};

// Latent's extension for code completions (/infill, and /v1/completions with a suffix): "language" (an LSP
// languageId, e.g. "python") turns on the syntax check of lsp/syntax_check.h; "syntax_check" ("off", "trim",
// "rank") overrides latentd's --syntax-check for this request.
struct SyntaxRequest {
  std::string language;
  std::string mode;  // empty: the server's default
};

struct CompletionRequest {
  GenerationParams gen;
  std::string prompt;
  std::optional<std::string> suffix;  // present: fill-in-the-middle
  SyntaxRequest syntax;
};
Parsed<CompletionRequest> parse_completion_request(const nlohmann::json& body, const Limits& limits);

struct ChatRequest {
  GenerationParams gen;
  chat::Conversation conversation;
};
Parsed<ChatRequest> parse_chat_request(const nlohmann::json& body, const Limits& limits);

struct InfillChunk {
  std::string filename;
  std::string text;
};
struct InfillRequest {
  GenerationParams gen;
  std::string input_prefix;
  std::string input_suffix;
  std::string prompt;                // llama.cpp: text after the FIM middle marker (llama.vscode: the cursor line)
  std::vector<InfillChunk> input_extra;
  bool cache_prompt = true;          // accepted; Latent's prefix cache is always on
  SyntaxRequest syntax;
};
Parsed<InfillRequest> parse_infill_request(const nlohmann::json& body, const Limits& limits);

// /infill's fill-in-the-middle prompt (engine/tokenizer/prompt_format.h renders and encodes it): input_extra
// as repository context files, then <｜fim▁begin｜>prefix<｜fim▁hole｜>suffix<｜fim▁end｜>; llama.cpp puts
// `prompt` after that, as the start of the middle (encode it after encode_fim()).
FimPrompt infill_fim_prompt(const InfillRequest& r);

// ---- responses ---------------------------------------------------------------------------------
// "stop", "length" or "tool_calls", as OpenAI reports it.
std::string finish_reason_text(FinishReason r, bool tool_calls);
// {prompt_tokens, completion_tokens, total_tokens, prompt_tokens_details: {cached_tokens}}
nlohmann::json usage_json(const Usage& u);

struct ResponseMeta {
  std::string id;       // cmpl-... / chatcmpl-...
  int64_t created = 0;  // unix seconds
  std::string model;
};
std::string new_response_id(const std::string& prefix);  // prefix + 24 random hex digits

nlohmann::json completion_response(const ResponseMeta& m, const std::string& text, const std::string& finish,
                                   const Usage& u);
// One streamed choice delta; finish empty -> null.
nlohmann::json completion_chunk(const ResponseMeta& m, const std::string& text, const std::string& finish);

nlohmann::json tool_call_json(const chat::ToolCall& c);
nlohmann::json chat_response(const ResponseMeta& m, const chat::ParsedOutput& out, const std::string& finish,
                             const Usage& u);
// delta: {"role": "assistant"} first, then {"content": ...} and {"tool_calls": [{index, id, type,
// function}]}; the last chunk has an empty delta and the finish reason.
nlohmann::json chat_chunk(const ResponseMeta& m, const nlohmann::json& delta, const std::string& finish);
// The stream_options.include_usage chunk: choices [] and usage.
nlohmann::json usage_chunk(const ResponseMeta& m, const std::string& object, const Usage& u);

// llama.cpp's /infill answer (also each streamed chunk, with stop=false and no timings until the last):
// {content, stop, stop_type, tokens_predicted, tokens_evaluated, tokens_cached, truncated, timings{...}}
struct InfillResult {
  std::string content;
  FinishReason finish = FinishReason::kLength;
  Usage usage;
  Timings timings;
};
nlohmann::json infill_response(const std::string& model, const InfillResult& r, int n_predict);
nlohmann::json infill_chunk(const std::string& content);

// Server-sent events framing: "data: <json>\n\n"; the OpenAI stream ends with "data: [DONE]\n\n".
std::string sse_data(const nlohmann::json& j);
inline constexpr const char* kSseDone = "data: [DONE]\n\n";

// GET /v1/models
nlohmann::json models_response(const std::vector<std::string>& ids, int64_t created);

}  // namespace latent::openai
