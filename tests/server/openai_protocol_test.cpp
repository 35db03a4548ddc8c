// OpenAI / llama.cpp JSON <-> engine parameters, on fixed request bodies.
#include "server/openai/protocol.h"

#include <gtest/gtest.h>

namespace latent::openai {
namespace {

using json = nlohmann::json;

template <typename T>
const T& ok(const Parsed<T>& p) {
  if (auto* e = std::get_if<ApiError>(&p)) ADD_FAILURE() << "unexpected error: " << e->message;
  static T empty;
  return std::holds_alternative<T>(p) ? std::get<T>(p) : empty;
}

template <typename T>
ApiError err(const Parsed<T>& p) {
  EXPECT_TRUE(std::holds_alternative<ApiError>(p));
  return std::holds_alternative<ApiError>(p) ? std::get<ApiError>(p) : ApiError{};
}

TEST(OpenaiProtocol, CompletionFieldsMapToEngineParams) {
  auto body = json::parse(R"({"model":"demo","prompt":"def f(","suffix":"\n  return x","max_tokens":40,
    "temperature":0.2,"top_p":0.9,"stop":["\n\n","###"],"seed":7,"stream":true,
    "stream_options":{"include_usage":true}})");
  auto r = ok(parse_completion_request(body, Limits{}));
  EXPECT_EQ(r.gen.model, "demo");
  EXPECT_EQ(r.prompt, "def f(");
  ASSERT_TRUE(r.suffix.has_value());
  EXPECT_EQ(*r.suffix, "\n  return x");
  EXPECT_EQ(r.gen.max_tokens, 40);
  EXPECT_FLOAT_EQ(r.gen.sampling.temperature, 0.2f);
  EXPECT_FLOAT_EQ(r.gen.sampling.top_p, 0.9f);
  EXPECT_EQ(r.gen.stop, (std::vector<std::string>{"\n\n", "###"}));
  EXPECT_EQ(r.gen.sampling.seed, 7u);
  EXPECT_TRUE(r.gen.seeded);
  EXPECT_TRUE(r.gen.stream);
  EXPECT_TRUE(r.gen.include_usage);
}

TEST(OpenaiProtocol, CompletionDefaultsFollowOpenAI) {
  auto r = ok(parse_completion_request(json{{"prompt", "x"}, {"stop", "END"}, {"ignore_eos", true}}, Limits{}));
  EXPECT_TRUE(r.gen.ignore_eos);
  EXPECT_EQ(r.gen.max_tokens, 16);
  EXPECT_FLOAT_EQ(r.gen.sampling.temperature, 1.0f);
  EXPECT_EQ(r.gen.stop, std::vector<std::string>{"END"});
  EXPECT_FALSE(r.gen.stream);
  EXPECT_FALSE(r.gen.seeded);
  EXPECT_FALSE(r.suffix.has_value());
}

TEST(OpenaiProtocol, BadFieldsNameTheParamAndWhatWasFound) {
  auto e = err(parse_completion_request(json{{"prompt", "x"}, {"temperature", "hot"}}, Limits{}));
  EXPECT_EQ(e.status, 400);
  EXPECT_EQ(e.param, "temperature");
  EXPECT_EQ(e.message, "temperature: expected a number, found a string");

  e = err(parse_completion_request(json{{"prompt", "x"}, {"max_tokens", 2000000}}, Limits{}));
  EXPECT_EQ(e.param, "max_tokens");
  EXPECT_NE(e.message.find("found 2000000"), std::string::npos) << e.message;

  e = err(parse_completion_request(json{{"max_tokens", 3}}, Limits{}));
  EXPECT_EQ(e.param, "prompt");

  e = err(parse_completion_request(json{{"prompt", "x"}, {"n", 2}}, Limits{}));
  EXPECT_EQ(e.param, "n");

  e = err(parse_completion_request(json::array(), Limits{}));
  EXPECT_NE(e.message.find("expected a JSON object, found an array"), std::string::npos);

  json j = error_json(e);
  EXPECT_EQ(j["error"]["type"], "invalid_request_error");
  EXPECT_TRUE(j["error"]["param"].is_null());
  EXPECT_TRUE(j["error"]["code"].is_null());
  EXPECT_TRUE(j["error"]["message"].is_string());
}

TEST(OpenaiProtocol, ChatMessagesToolsAndToolChoice) {
  auto body = json::parse(R"({"model":"demo","max_completion_tokens":12,
    "messages":[{"role":"developer","content":"Be brief."},
                {"role":"user","content":[{"type":"text","text":"Weather in "},{"type":"text","text":"Paris?"}]},
                {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function",
                  "function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},
                {"role":"tool","tool_call_id":"call_1","content":"21C"}],
    "tools":[{"type":"function","function":{"name":"get_weather","description":"Weather now",
              "parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}],
    "tool_choice":{"type":"function","function":{"name":"get_weather"}}})");
  auto r = ok(parse_chat_request(body, Limits{}));
  EXPECT_EQ(r.gen.max_tokens, 12);
  const auto& c = r.conversation;
  ASSERT_EQ(c.messages.size(), 4u);
  EXPECT_EQ(c.messages[0].role, "system");
  EXPECT_EQ(*c.messages[1].content, "Weather in Paris?");
  EXPECT_FALSE(c.messages[2].content.has_value());
  ASSERT_EQ(c.messages[2].tool_calls.size(), 1u);
  EXPECT_EQ(c.messages[2].tool_calls[0].name, "get_weather");
  EXPECT_EQ(c.messages[2].tool_calls[0].arguments, "{\"city\":\"Paris\"}");
  EXPECT_EQ(c.messages[3].role, "tool");
  EXPECT_EQ(*c.messages[3].content, "21C");
  ASSERT_EQ(c.tools.size(), 1u);
  EXPECT_EQ(c.tools[0].parameters, R"({"properties":{"city":{"type":"string"}},"type":"object"})");
  EXPECT_EQ(c.tool_choice.kind, chat::ToolChoice::Kind::kNamed);
  EXPECT_EQ(c.tool_choice.name, "get_weather");
  EXPECT_EQ(r.gen.max_tokens, 12);
}

// An error quoting a clipped value cuts at a character boundary, so the error body dumps as valid UTF-8 (found by
// fuzz_openai: the 80-byte quote of a bad content part ended inside a 2-byte character and dump() threw).
TEST(OpenaiProtocol, ErrorsQuotingAClippedValueStayValidUtf8) {
  // The part's dump is {"text":"aaa...é...","type":"tex4"}: 9 bytes, 70 'a', then 'é' across bytes 79 and 80.
  const json part = {{"type", "tex4"}, {"text", std::string(70, 'a') + "\u00e9\u00e9 and more"}};
  ASSERT_EQ(static_cast<unsigned char>(part.dump()[79]), 0xC3u);
  auto e = err(parse_chat_request(json{{"messages", json::array({{{"role", "user"}, {"content", {part}}}})}}, Limits{}));
  EXPECT_NE(e.message.find("expected text parts"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find(std::string(70, 'a')), std::string::npos) << e.message;
  EXPECT_NO_THROW((void)error_json(e).dump()) << e.message;
}

// An integral number beyond int64 (JSON gives it as a double) is refused before any cast (found by fuzz_http:
// the cast was undefined behaviour, reported by UBSan).
TEST(OpenaiProtocol, IntegersBeyondInt64AreRefusedBeforeTheCast) {
  auto e = err(parse_completion_request(json::parse(R"({"prompt": "x", "max_tokens": 555555555555555555555555555555555555540})"),
                                        Limits{}));
  EXPECT_EQ(e.param, "max_tokens");
  EXPECT_NE(e.message.find("found 5.55556e+38"), std::string::npos) << e.message;
  // Between INT64_MAX and UINT64_MAX a literal is an unsigned integer (no double): refused as written, never
  // wrapped to a negative number.
  e = err(parse_completion_request(json::parse(R"({"prompt": "x", "max_tokens": 18446744073709551615})"), Limits{}));
  EXPECT_EQ(e.param, "max_tokens");
  EXPECT_NE(e.message.find("found 18446744073709551615"), std::string::npos) << e.message;
}

TEST(OpenaiProtocol, ChatRejectsUnknownRolesAndEmptyMessages) {
  auto e = err(parse_chat_request(json::parse(R"({"messages":[{"role":"wizard","content":"x"}]})"), Limits{}));
  EXPECT_EQ(e.param, "messages[0].role");
  EXPECT_NE(e.message.find("found 'wizard'"), std::string::npos);
  e = err(parse_chat_request(json::parse(R"({"messages":[]})"), Limits{}));
  EXPECT_EQ(e.param, "messages");
  e = err(parse_chat_request(json::parse(R"({"messages":[{"role":42}]})"), Limits{}));
  EXPECT_EQ(e.status, 400);  // a type error inside a field is still a 400, never an exception
  e = err(parse_chat_request(json::parse(R"({"messages":[{"role":"user","content":"x"}],"tool_choice":"maybe"})"),
                             Limits{}));
  EXPECT_EQ(e.param, "tool_choice");
}

TEST(OpenaiProtocol, InfillTakesLlamaVscodeRequestShape) {
  // The body llama.vscode (src/llama-server.ts createRequestPayload) sends for a completion.
  auto body = json::parse(R"({"input_prefix":"def add(a, b):\n","input_suffix":"\n\nprint(add(1, 2))\n",
    "input_extra":[{"text":"def sub(a, b):\n    return a - b\n","time":1732000000,"filename":"util.py"}],
    "prompt":"    return","n_predict":64,"top_k":40,"top_p":0.99,"stream":false,
    "samplers":["top_k","top_p","infill"],"cache_prompt":true,"t_max_prompt_ms":500,"t_max_predict_ms":1000})");
  auto r = ok(parse_infill_request(body, Limits{}));
  EXPECT_EQ(r.gen.max_tokens, 64);
  EXPECT_EQ(r.gen.time_budget_ms, 1000);
  EXPECT_EQ(r.gen.sampling.top_k, 40);
  EXPECT_FLOAT_EQ(r.gen.sampling.top_p, 0.99f);
  EXPECT_FLOAT_EQ(r.gen.sampling.temperature, 0.8f);  // llama.cpp's default
  EXPECT_TRUE(r.cache_prompt);
  ASSERT_EQ(r.input_extra.size(), 1u);
  EXPECT_EQ(r.input_extra[0].filename, "util.py");
  FimPrompt fim = infill_fim_prompt(r);
  EXPECT_EQ(render_fim(fim) + r.prompt,
            "<｜fim▁begin｜># util.py\ndef sub(a, b):\n    return a - b\n\n\ndef add(a, b):\n<｜fim▁hole｜>\n\n"
            "print(add(1, 2))\n<｜fim▁end｜>    return");

  // The cache-warming request: n_predict 0, empty prefix and suffix.
  auto warm = ok(parse_infill_request(json::parse(R"({"input_prefix":"","input_suffix":"","input_extra":[],
    "prompt":"","n_predict":0,"samplers":[],"cache_prompt":true,"t_max_prompt_ms":500,"t_max_predict_ms":1})"),
                                      Limits{}));
  EXPECT_EQ(warm.gen.max_tokens, 0);

  auto e = err(parse_infill_request(json::parse(R"({"input_extra":[{"text":5}]})"), Limits{}));
  EXPECT_EQ(e.param, "input_extra");
}

TEST(OpenaiProtocol, ResponsesCarryUsageWithCachedTokens) {
  Usage u;
  u.prompt_tokens = 30;
  u.cached_tokens = 24;
  u.completion_tokens = 5;
  ResponseMeta m{"cmpl-1", 1700000000, "demo"};
  json c = completion_response(m, "abc", "length", u);
  EXPECT_EQ(c["object"], "text_completion");
  EXPECT_EQ(c["choices"][0]["text"], "abc");
  EXPECT_EQ(c["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(c["usage"]["total_tokens"], 35);
  EXPECT_EQ(c["usage"]["prompt_tokens_details"]["cached_tokens"], 24);

  chat::ParsedOutput out;
  out.tool_calls.push_back({"call_x", "function", "get_weather", "{\"city\":\"Paris\"}"});
  json ch = chat_response(m, out, "tool_calls", u);
  EXPECT_TRUE(ch["choices"][0]["message"]["content"].is_null());
  EXPECT_EQ(ch["choices"][0]["message"]["tool_calls"][0]["function"]["name"], "get_weather");
  EXPECT_EQ(ch["choices"][0]["message"]["tool_calls"][0]["id"], "call_x");

  json chunk = chat_chunk(m, json{{"content", "hi"}}, "");
  EXPECT_EQ(chunk["object"], "chat.completion.chunk");
  EXPECT_TRUE(chunk["choices"][0]["finish_reason"].is_null());
  EXPECT_EQ(sse_data(json{{"a", 1}}), "data: {\"a\":1}\n\n");

  InfillResult ir;
  ir.content = "    return a + b";
  ir.finish = FinishReason::kStopToken;
  ir.usage = u;
  ir.timings = Timings{1.0, 11.0, 61.0};
  json inf = infill_response("demo", ir, 64);
  EXPECT_EQ(inf["content"], "    return a + b");
  EXPECT_EQ(inf["stop_type"], "eos");
  EXPECT_EQ(inf["tokens_cached"], 24);
  EXPECT_EQ(inf["timings"]["prompt_n"], 6);
  EXPECT_DOUBLE_EQ(inf["timings"]["predicted_ms"].get<double>(), 50.0);
  EXPECT_DOUBLE_EQ(inf["timings"]["predicted_per_second"].get<double>(), 100.0);

  EXPECT_EQ(finish_reason_text(FinishReason::kStopString, false), "stop");
  EXPECT_EQ(finish_reason_text(FinishReason::kTimeBudget, false), "length");
  EXPECT_EQ(finish_reason_text(FinishReason::kStopToken, true), "tool_calls");
  EXPECT_EQ(new_response_id("cmpl-").size(), 5u + 24u);
}

TEST(OpenaiProtocol, EngineErrorsMapToHttpStatus) {
  EXPECT_EQ(api_error_from(make_error(ErrorCode::kResourceExhausted, "queue full")).status, 429);
  EXPECT_EQ(api_error_from(make_error(ErrorCode::kInvalidArgument, "bad")).status, 400);
  EXPECT_EQ(api_error_from(make_error(ErrorCode::kInternal, "bug")).status, 500);
  EXPECT_EQ(api_error_from(make_error(ErrorCode::kInternal, "bug")).type, "server_error");
}

}  // namespace
}  // namespace latent::openai
