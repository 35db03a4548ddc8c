#pragma once
// Prompt formats of DeepSeek models, rendered in C++ (no Jinja at run time) and checked against the
// chat_template of tokenizer_config.json rendered by a Jinja implementation (tests/node/tokenizer.test.mjs).
//
// Chat:
//   kDeepseekV2: DeepSeek-V2-Chat, DeepSeek-Coder-V2-Instruct
//     <BOS>{system}\n\nUser: {user}\n\nAssistant: {assistant}<EOS>User: ...\n\nAssistant:
//   kDeepseekV3: DeepSeek-V3 (and V2.5; the thinking templates of R1/V3.1 are refused):
//     <BOS>{system}<｜User｜>{user}<｜Assistant｜>{assistant}<EOS>..., with
//     tool calls (<｜tool▁calls▁begin｜>...) and tool outputs (<｜tool▁outputs▁begin｜>...), reproducing the
//     template's quirks exactly (e.g. <｜tool▁calls▁end｜> only after a second call).
// Fill-in-the-middle (DeepSeek-Coder, -V2, -V3):
//   <BOS><｜fim▁begin｜>{context files}{# path\n}{prefix}<｜fim▁hole｜>{suffix}<｜fim▁end｜>
//   Repository-level context: each file as "# {path}\n{text}\n\n" before the current file, the convention of
//   DeepSeek-Coder's repository-level completion (a path comment heading each file).
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/tokenizer/tokenizer.h"
#include "kernels/base/result.h"

namespace latent {

struct ChatToolCall {
  std::string type = "function";
  std::string name;
  std::string arguments;  // JSON text, as the model writes it
};

struct ChatMessage {
  std::string role;                    // "system", "user", "assistant" or "tool"
  std::optional<std::string> content;  // nullopt: an assistant turn that only calls tools
  std::vector<ChatToolCall> tool_calls;
};

enum class ChatFormat { kDeepseekV2, kDeepseekV3 };

// Recognizes the chat_template of tokenizer_config.json; kUnsupported names what it found otherwise.
Result<ChatFormat> chat_format_from_template(const std::string& chat_template);

// OpenAI-style messages: [{"role", "content" (string or null), "tool_calls": [{"type", "function":
// {"name", "arguments"}}]}].
Result<std::vector<ChatMessage>> chat_messages_from_json(const nlohmann::json& messages);

std::string render_chat(ChatFormat format, std::span<const ChatMessage> messages, bool add_generation_prompt,
                        const std::string& bos_token, const std::string& eos_token);
// With the tokenizer's template, BOS and EOS.
Result<std::string> render_chat(const Tokenizer& tok, std::span<const ChatMessage> messages,
                                bool add_generation_prompt);
// Ids of render_chat() (its BOS text becomes the BOS id; no second BOS).
Result<std::vector<int32_t>> encode_chat(const Tokenizer& tok, std::span<const ChatMessage> messages,
                                         bool add_generation_prompt);

struct FimFile {
  std::string path;
  std::string text;
};

struct FimPrompt {
  std::string prefix;             // code before the cursor
  std::string suffix;             // code after the cursor
  std::string path;               // the current file's path ("" = no header)
  std::vector<FimFile> context;   // other files of the repository, most relevant last
};

// The prompt text without BOS.
std::string render_fim(const FimPrompt& prompt);
// BOS + the ids of render_fim(); the user's text is encoded with added-token matching off, so code that
// contains "<｜fim▁hole｜>" cannot inject the token. Equal to encode(render_fim(p), true) otherwise.
Result<std::vector<int32_t>> encode_fim(const Tokenizer& tok, const FimPrompt& prompt);

inline constexpr const char* kFimBegin = "<｜fim▁begin｜>";
inline constexpr const char* kFimHole = "<｜fim▁hole｜>";
inline constexpr const char* kFimEnd = "<｜fim▁end｜>";

}  // namespace latent
