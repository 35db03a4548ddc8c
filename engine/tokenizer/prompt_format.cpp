#include "engine/tokenizer/prompt_format.h"

namespace latent {

Result<ChatFormat> chat_format_from_template(const std::string& t) {
  // DeepSeek-R1 and V3.1 templates share V3's role tokens but add thinking (<think>) rules this renderer
  // does not reproduce: refuse rather than render them subtly wrong.
  if (t.find("<think>") != std::string::npos)
    return make_error(ErrorCode::kUnsupported,
                      "chat_template: a thinking template (<think>, DeepSeek-R1/V3.1) is not supported; expected "
                      "the DeepSeek-V2 or DeepSeek-V3 format");
  if (t.find("<｜User｜>") != std::string::npos && t.find("<｜Assistant｜>") != std::string::npos)
    return ChatFormat::kDeepseekV3;
  if (t.find("'User: '") != std::string::npos && t.find("'Assistant: '") != std::string::npos)
    return ChatFormat::kDeepseekV2;
  if (t.empty()) return make_error(ErrorCode::kUnsupported, "the tokenizer has no chat_template");
  return make_error(ErrorCode::kUnsupported,
                    "chat_template: expected DeepSeek-V2 ('User: '/'Assistant: ') or DeepSeek-V3 (<｜User｜>/"
                    "<｜Assistant｜>) format, found: " +
                        t.substr(0, 120) + (t.size() > 120 ? "..." : ""));
}

Result<std::vector<ChatMessage>> chat_messages_from_json(const nlohmann::json& j) {
  if (!j.is_array()) return make_error(ErrorCode::kInvalidArgument, "messages: expected an array");
  std::vector<ChatMessage> out;
  try {
    for (const auto& m : j) {
      ChatMessage msg;
      msg.role = m.at("role").get<std::string>();
      if (msg.role != "system" && msg.role != "user" && msg.role != "assistant" && msg.role != "tool")
        return make_error(ErrorCode::kInvalidArgument,
                          "message role: expected system, user, assistant or tool, found '" + msg.role + "'");
      if (m.contains("content") && !m["content"].is_null()) msg.content = m["content"].get<std::string>();
      if (m.contains("tool_calls") && m["tool_calls"].is_array()) {
        for (const auto& c : m["tool_calls"]) {
          ChatToolCall call;
          call.type = c.value("type", std::string("function"));
          const auto& f = c.at("function");
          call.name = f.at("name").get<std::string>();
          const auto& args = f.at("arguments");
          call.arguments = args.is_string() ? args.get<std::string>() : args.dump();
          msg.tool_calls.push_back(std::move(call));
        }
      }
      if (!msg.content && msg.role != "assistant")
        return make_error(ErrorCode::kInvalidArgument, "a " + msg.role + " message needs a string \"content\"");
      out.push_back(std::move(msg));
    }
  } catch (const nlohmann::json::exception& e) {
    return make_error(ErrorCode::kInvalidArgument, std::string("messages: ") + e.what());
  }
  return out;
}

namespace {

std::string render_v2(std::span<const ChatMessage> messages, bool add_generation_prompt, const std::string& bos,
                      const std::string& eos) {
  std::string out = bos;
  for (const auto& m : messages) {
    const std::string content = m.content.value_or("");
    if (m.role == "user") out += "User: " + content + "\n\n";
    else if (m.role == "assistant") out += "Assistant: " + content + eos;
    else if (m.role == "system") out += content + "\n\n";
  }
  if (add_generation_prompt) out += "Assistant:";
  return out;
}

// The DeepSeek-V3 template, statement by statement (its namespace flags never reset, as in the original).
std::string render_v3(std::span<const ChatMessage> messages, bool add_generation_prompt, const std::string& bos) {
  bool is_first = false, is_tool = false, is_output_first = true, is_first_sp = true;
  std::string system_prompt;
  for (const auto& m : messages) {
    if (m.role != "system") continue;
    system_prompt += (is_first_sp ? "" : "\n\n") + m.content.value_or("");
    is_first_sp = false;
  }
  std::string out = bos + system_prompt;
  for (const auto& m : messages) {
    if (m.role == "user") {
      is_tool = false;
      out += "<｜User｜>" + m.content.value_or("");
    }
    if (m.role == "assistant" && !m.content) {
      is_tool = false;
      for (const auto& t : m.tool_calls) {
        std::string call = t.type + "<｜tool▁sep｜>" + t.name + "\n```json\n" + t.arguments + "\n```<｜tool▁call▁end｜>";
        if (!is_first) {
          out += "<｜Assistant｜><｜tool▁calls▁begin｜><｜tool▁call▁begin｜>" + call;
          is_first = true;
        } else {
          out += "\n<｜tool▁call▁begin｜>" + call + "<｜tool▁calls▁end｜><｜end▁of▁sentence｜>";
        }
      }
    }
    if (m.role == "assistant" && m.content) {
      if (is_tool) {
        out += "<｜tool▁outputs▁end｜>" + *m.content + "<｜end▁of▁sentence｜>";
        is_tool = false;
      } else {
        out += "<｜Assistant｜>" + *m.content + "<｜end▁of▁sentence｜>";
      }
    }
    if (m.role == "tool") {
      is_tool = true;
      if (is_output_first) {
        out += "<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>" + m.content.value_or("") + "<｜tool▁output▁end｜>";
        is_output_first = false;
      } else {
        out += "\n<｜tool▁output▁begin｜>" + m.content.value_or("") + "<｜tool▁output▁end｜>";
      }
    }
  }
  if (is_tool) out += "<｜tool▁outputs▁end｜>";
  if (add_generation_prompt && !is_tool) out += "<｜Assistant｜>";
  return out;
}

}  // namespace

std::string render_chat(ChatFormat format, std::span<const ChatMessage> messages, bool add_generation_prompt,
                        const std::string& bos_token, const std::string& eos_token) {
  return format == ChatFormat::kDeepseekV2 ? render_v2(messages, add_generation_prompt, bos_token, eos_token)
                                           : render_v3(messages, add_generation_prompt, bos_token);
}

Result<std::string> render_chat(const Tokenizer& tok, std::span<const ChatMessage> messages,
                                bool add_generation_prompt) {
  LATENT_ASSIGN_OR_RETURN(ChatFormat f, chat_format_from_template(tok.chat_template()));
  return render_chat(f, messages, add_generation_prompt, tok.bos_token(), tok.eos_token());
}

Result<std::vector<int32_t>> encode_chat(const Tokenizer& tok, std::span<const ChatMessage> messages,
                                         bool add_generation_prompt) {
  LATENT_ASSIGN_OR_RETURN(std::string text, render_chat(tok, messages, add_generation_prompt));
  return tok.encode(text, /*add_special_tokens=*/false);
}

namespace {

std::string context_text(const FimPrompt& p) {
  std::string out;
  for (const auto& f : p.context) out += "# " + f.path + "\n" + f.text + "\n\n";
  if (!p.path.empty()) out += "# " + p.path + "\n";
  return out;
}

}  // namespace

std::string render_fim(const FimPrompt& p) {
  return std::string(kFimBegin) + context_text(p) + p.prefix + kFimHole + p.suffix + kFimEnd;
}

Result<std::vector<int32_t>> encode_fim(const Tokenizer& tok, const FimPrompt& p) {
  int32_t begin = tok.token_to_id(kFimBegin), hole = tok.token_to_id(kFimHole), end = tok.token_to_id(kFimEnd);
  if (begin < 0 || hole < 0 || end < 0)
    return make_error(ErrorCode::kUnsupported, std::string("fill-in-the-middle: the tokenizer lacks ") +
                                                   (begin < 0 ? kFimBegin : hole < 0 ? kFimHole : kFimEnd));
  std::vector<int32_t> ids;
  if (tok.bos_id() >= 0) ids.push_back(tok.bos_id());
  ids.push_back(begin);
  tok.encode_into(context_text(p) + p.prefix, /*match_added_tokens=*/false, ids);
  ids.push_back(hole);
  tok.encode_into(p.suffix, /*match_added_tokens=*/false, ids);
  ids.push_back(end);
  return ids;
}

}  // namespace latent
