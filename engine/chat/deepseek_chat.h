#pragma once
// DeepSeek-V3's chat format in text: messages (+ tools) -> prompt, and the model's output -> content and
// tool calls. Pure text, so the daemon's HTTP API and the CLI share it; the tokenizer maps the marker
// strings (<｜User｜>, <｜tool▁calls▁begin｜>, ...) to their ids where the vocabulary has them, and to plain
// text pieces where it does not (the demo model), which round-trips through decode unchanged.
//
// Rendering follows the chat_template shipped in DeepSeek-V3's tokenizer_config.json:
//   BOS + system prompts joined by "\n\n"
//   user:       <｜User｜>CONTENT
//   assistant:  <｜Assistant｜>CONTENT<｜end▁of▁sentence｜>
//   tool calls: <｜Assistant｜>[CONTENT]<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME\n
//               ```json\nARGS\n```<｜tool▁call▁end｜>[\n<｜tool▁call▁begin｜>...]<｜tool▁calls▁end｜>
//               <｜end▁of▁sentence｜>
//   tool:       <｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>OUT<｜tool▁output▁end｜>[\n<｜tool▁output▁begin｜>
//               ...]<｜tool▁outputs▁end｜>   (an assistant reply right after tool outputs gets no
//               <｜Assistant｜>, and neither does the generation prompt)
//   generation prompt: <｜Assistant｜>
// Where that template is wrong, this follows DeepSeek-V3-0324's fix and says so: a single tool call is
// closed with <｜tool▁calls▁end｜><｜end▁of▁sentence｜> (the V3 template closes only from the second call on,
// and never resets its per-conversation flags, so a second tool-calling turn lost its opening markers).
// The V3 template does not render tool definitions at all; render() adds a "## Tools" section to the system
// prompt that lists them and shows the exact call format.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

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

struct Message {
  enum class Role { kSystem, kUser, kAssistant, kTool };
  Role role = Role::kUser;
  std::optional<std::string> content;  // assistant: none when it only calls tools
  std::vector<ToolCall> tool_calls;    // assistant only
  std::string tool_call_id;            // tool only (not rendered: DeepSeek's format matches outputs by order)
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
  std::vector<Message> messages;
  std::vector<Tool> tools;
  ToolChoice tool_choice;
  bool add_generation_prompt = true;
};

// The prompt text, ending where the model continues. With a forced tool choice the assistant turn is
// pre-filled with the opening of a call (and the name, for kNamed), so the model writes the rest; the
// returned prefill must be prepended to the output before parse_output() sees it.
struct RenderedPrompt {
  std::string text;
  std::string prefill;  // already the tail of text
};
Result<RenderedPrompt> render(const Conversation& conv);

// The tools section render() appends to the system prompt (exposed for tests).
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
