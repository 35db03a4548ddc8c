#include "engine/chat/deepseek_chat.h"

#include <algorithm>

namespace latent::chat {
namespace {

std::string_view trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return {};
  size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

// Length of the longest suffix of s that is a proper prefix of marker: text that may still become it.
size_t partial_marker_suffix(std::string_view s, std::string_view marker) {
  size_t max = std::min(s.size(), marker.size() - 1);
  for (size_t n = max; n > 0; --n)
    if (s.substr(s.size() - n) == marker.substr(0, n)) return n;
  return 0;
}

// One call's body, between <｜tool▁call▁begin｜> and <｜tool▁call▁end｜>: TYPE<｜tool▁sep｜>NAME\n```json\nARGS\n```
// Lenient about whitespace and a missing fence; a body without a name is not a call.
std::optional<ToolCall> parse_call(std::string_view body) {
  ToolCall call;
  size_t sep = body.find(kToolSep);
  std::string_view rest = body;
  if (sep != std::string_view::npos) {
    std::string_view type = trim(body.substr(0, sep));
    if (!type.empty()) call.type = std::string(type);
    rest = body.substr(sep + kToolSep.size());
  }
  rest = rest.substr(std::min(rest.size(), rest.find_first_not_of(" \t")));
  size_t nl = rest.find('\n');
  std::string_view name = trim(rest.substr(0, nl));
  std::string_view args = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
  // A name written as NAME```json{...} (no newline) still parses.
  if (size_t fence = name.find("```"); fence != std::string_view::npos) {
    args = rest.substr(fence);
    name = trim(name.substr(0, fence));
  }
  if (name.empty()) return std::nullopt;
  call.name = std::string(name);
  args = trim(args);
  if (starts_with(args, "```")) {
    size_t line_end = args.find('\n');
    args = line_end == std::string_view::npos ? args.substr(3) : args.substr(line_end + 1);
    if (starts_with(args, "json")) args = args.substr(4);  // "```json{...}" on one line
  }
  args = trim(args);
  if (args.size() >= 3 && args.substr(args.size() - 3) == "```") args = trim(args.substr(0, args.size() - 3));
  call.arguments = args.empty() ? "{}" : std::string(args);
  return call;
}

const Tool* find_tool(const std::vector<Tool>& tools, const std::string& name) {
  for (const auto& t : tools)
    if (t.name == name) return &t;
  return nullptr;
}

}  // namespace

std::string render_tools_section(const std::vector<Tool>& tools) {
  std::string out = "## Tools\nYou have access to the following tools:\n";
  for (const auto& t : tools) {
    out += "\n### " + t.name + "\n";
    if (!t.description.empty()) out += "Description: " + t.description + "\n";
    out += "Parameters: " + (t.parameters.empty() ? std::string("{}") : t.parameters) + "\n";
  }
  out += "\nTo call tools, answer in exactly this format, one <｜tool▁call▁begin｜> block per call:\n";
  out.append(kCallsBegin);
  out.append(kCallBegin);
  out += "function";
  out.append(kToolSep);
  out += "TOOL_NAME\n```json\n{\"argument\": \"value\"}\n```";
  out.append(kCallEnd);
  out.append(kCallsEnd);
  out += "\nTOOL_NAME must be one of the tools above and the arguments must be JSON that matches its "
         "parameters.";
  return out;
}

Result<ChatPlan> plan_chat(const Conversation& conv) {
  using Kind = ToolChoice::Kind;
  const ToolChoice& choice = conv.tool_choice;
  if (choice.kind == Kind::kNamed && !find_tool(conv.tools, choice.name))
    return make_error(ErrorCode::kInvalidArgument,
                      "tool_choice: expected the name of one of the " + std::to_string(conv.tools.size()) +
                          " tools, found '" + choice.name + "'");
  if (choice.kind == Kind::kRequired && conv.tools.empty())
    return make_error(ErrorCode::kInvalidArgument, "tool_choice: 'required' expects tools, found none");
  for (size_t i = 0; i < conv.messages.size(); ++i) {
    const std::string& role = conv.messages[i].role;
    if (role != "system" && role != "user" && role != "assistant" && role != "tool")
      return make_error(ErrorCode::kInvalidArgument, "messages[" + std::to_string(i) +
                                                         "].role: expected system, user, assistant or tool, "
                                                         "found '" + role + "'");
  }

  ChatPlan plan;
  plan.messages = conv.messages;
  // The template joins every system message, wherever it is, with "\n\n": the tools go last among them.
  if (!conv.tools.empty() && choice.kind != Kind::kNone)
    plan.messages.push_back(ChatMessage{"system", render_tools_section(conv.tools), {}});
  if (choice.kind == Kind::kRequired || choice.kind == Kind::kNamed) {
    plan.prefill.append(kCallsBegin);
    plan.prefill.append(kCallBegin);
    plan.prefill += "function";
    plan.prefill.append(kToolSep);
    if (choice.kind == Kind::kNamed) plan.prefill += choice.name + "\n```json\n";
  }
  return plan;
}

StreamParser::Delta StreamParser::push(std::string_view text) {
  buf_.append(text);
  Delta d;
  while (true) {
    if (!in_calls_) {
      size_t at = buf_.find(kCallsBegin);
      if (at == std::string::npos) {
        size_t keep = partial_marker_suffix(buf_, kCallsBegin);
        d.content += buf_.substr(0, buf_.size() - keep);
        buf_.erase(0, buf_.size() - keep);
        return d;
      }
      d.content += buf_.substr(0, at);
      buf_.erase(0, at + kCallsBegin.size());
      in_calls_ = true;
      continue;
    }
    size_t begin = buf_.find(kCallBegin);
    size_t calls_end = buf_.find(kCallsEnd);
    if (calls_end != std::string::npos && (begin == std::string::npos || calls_end < begin)) {
      buf_.erase(0, calls_end + kCallsEnd.size());
      in_calls_ = false;  // whatever follows is plain text again (usually nothing: EOS comes next)
      continue;
    }
    if (begin == std::string::npos) return d;
    size_t end = buf_.find(kCallEnd, begin);
    if (end == std::string::npos) return d;
    std::string_view body = std::string_view(buf_).substr(begin + kCallBegin.size(),
                                                          end - begin - kCallBegin.size());
    if (auto call = parse_call(body)) {
      d.tool_calls.push_back(std::move(*call));
      ++n_calls_;
    } else {
      d.content += buf_.substr(begin, end + kCallEnd.size() - begin);
    }
    buf_.erase(0, end + kCallEnd.size());
  }
}

StreamParser::Delta StreamParser::finish() {
  Delta d;
  if (!in_calls_) {
    d.content = std::move(buf_);
  } else if (!trim(buf_).empty()) {
    // Cut off mid-call: show what the model wrote rather than drop it.
    if (n_calls_ == 0) d.content.append(kCallsBegin);
    d.content += buf_;
  }
  buf_.clear();
  in_calls_ = false;
  return d;
}

ParsedOutput parse_output(std::string_view text) {
  StreamParser parser;
  ParsedOutput out;
  for (auto d : {parser.push(text), parser.finish()}) {
    out.content += d.content;
    for (auto& c : d.tool_calls) out.tool_calls.push_back(std::move(c));
  }
  return out;
}

}  // namespace latent::chat
