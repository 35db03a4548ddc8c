#pragma once
// DeepSeek-V3's tool calling in text, on top of the chat rendering in engine/tokenizer/prompt_format.h
// (which reproduces tokenizer_config.json's chat_template, tool calls and outputs included):
//   plan_chat():   OpenAI-style tools and tool_choice -> the messages to render (tool definitions added to
//                  the system prompt: DeepSeek-V3's template has no place for them) and, for a forced
//                  tool_choice, the start of the assistant turn to pre-fill
//   parse_output() / StreamParser: the model's output -> content and tool calls
// The format:
//   <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME\n```json\nARGS\n```<｜tool▁call▁end｜>
//   [\n<｜tool▁call▁begin｜>...<｜tool▁call▁end｜>]<｜tool▁calls▁end｜>
// Pure text, so the daemon's HTTP API and the CLI share it; the tokenizer maps the marker strings to their ids
// where the vocabulary has them, and to plain text pieces where it does not (the demo model), which
// round-trips through decode unchanged.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/tokenizer/prompt_format.h"
#include "kernels/base/result.h"

namespace latent::chat {

inline constexpr std::string_view kBos = "<｜begin▁of▁sentence｜>";
inline constexpr std::string_view kEos = "<｜end▁of▁sentence｜>";
inline constexpr std::string_view kUser = "<｜User｜>";
inline constexpr std::string_view kAssistant = "<｜Assistant｜>";
inline constexpr std::string_view kCallsBegin = "<｜tool▁calls▁begin｜>";
inline constexpr std::string_view kCallsEnd = "<｜tool▁calls▁end｜>";
inline constexpr std::string_view kCallBegin = "<｜tool▁call▁begin｜>";
inline constexpr std::string_view kCallEnd = "<｜tool▁call▁end｜>";
inline constexpr std::string_view kToolSep = "<｜tool▁sep｜>";
inline constexpr std::string_view kOutputsBegin = "<｜tool▁outputs▁begin｜>";
inline constexpr std::string_view kOutputsEnd = "<｜tool▁outputs▁end｜>";
inline constexpr std::string_view kOutputBegin = "<｜tool▁output▁begin｜>";
inline constexpr std::string_view kOutputEnd = "<｜tool▁output▁end｜>";

struct ToolCall {
  std::string id;         // OpenAI's call id ("call_..."); not part of DeepSeek's format
  std::string type = "function";
  std::string name;
  std::string arguments;  // JSON text, as the model wrote it (OpenAI passes it on as a string)
};

struct Tool {
  std::string name;
  std::string description;
  std::string parameters;  // JSON Schema as JSON text; empty = none
};

// OpenAI's tool_choice: "none" hides the tools, "auto" lets the model decide, "required" forces some call,
// {"type":"function","function":{"name":N}} forces a call of N.
struct ToolChoice {
  enum class Kind { kNone, kAuto, kRequired, kNamed };
  Kind kind = Kind::kAuto;
  std::string name;  // kNamed
};

struct Conversation {
  std::vector<ChatMessage> messages;  // engine/tokenizer/prompt_format.h
  std::vector<Tool> tools;
  ToolChoice tool_choice;
};

// What to render: `messages` go to render_chat(); with a forced tool choice the assistant turn is pre-filled
// with the opening of a call (and the name, for kNamed), so the model writes the rest; `prefill` is appended
// to the rendered prompt, and must be prepended to the output before parse_output() sees it.
struct ChatPlan {
  std::vector<ChatMessage> messages;
  std::string prefill;
};
Result<ChatPlan> plan_chat(const Conversation& conv);

// The system-prompt section plan_chat() adds for the tools (exposed for tests).
std::string render_tools_section(const std::vector<Tool>& tools);

// An assistant turn split into text content and tool calls. Text before <｜tool▁calls▁begin｜> is content;
// each complete call becomes a ToolCall (ids are left empty for the caller); an unterminated call at the end
// (max_tokens hit mid-call) is kept as content so nothing the model wrote is lost.
struct ParsedOutput {
  std::string content;
  std::vector<ToolCall> tool_calls;
};
ParsedOutput parse_output(std::string_view text);

// The same split for a stream of text deltas: push() returns what can be shown now. Text that might be the
// start of <｜tool▁calls▁begin｜> is held back until it cannot be; each tool call is reported once, when its
// <｜tool▁call▁end｜> arrives. Not thread-safe.
class StreamParser {
 public:
  struct Delta {
    std::string content;
    std::vector<ToolCall> tool_calls;
    bool empty() const { return content.empty() && tool_calls.empty(); }
  };
  Delta push(std::string_view text);
  Delta finish();  // end of output: flushes held-back text and an unterminated call as content
  int n_tool_calls() const { return n_calls_; }

 private:
  std::string buf_;      // not yet reported
  bool in_calls_ = false;
  int n_calls_ = 0;
};

}  // namespace latent::chat
