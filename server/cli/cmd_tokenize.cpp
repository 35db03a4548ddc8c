// latent tokenize / latent detokenize: text <-> token ids with a model's tokenizer.json, for scripts and tests.
//   echo -n 'def f():' | latent tokenize --model DIR          -> [3465,282,8472]
//   echo '[3465,282,8472]' | latent detokenize --model DIR    -> def f():
// --jsonl: one JSON string (tokenize) or id array (detokenize) per line in, one result per line out.
// --chat / --fim: the model's chat or fill-in-the-middle prompt from a JSON description (--render: its text).
#include <cstdio>
#include <iostream>
#include <iterator>
#include <string>

#include <nlohmann/json.hpp>

#include "engine/tokenizer/prompt_format.h"
#include "engine/tokenizer/tokenizer.h"
#include "server/args.h"
#include "server/cli/command.h"

namespace latent::cli {
namespace {

const std::vector<OptionSpec> kCommon = {
    {"model", "DIR", "model directory with tokenizer.json (and tokenizer_config.json)", ""},
    {"tokenizer", "FILE", "a tokenizer.json (tokenizer_config.json is read from its directory)", ""},
    {"jsonl", "", "one JSON value per line in, one result per line out", ""},
    {"help", "", "show this help", ""},
};

std::vector<OptionSpec> with(std::vector<OptionSpec> extra) {
  std::vector<OptionSpec> all = kCommon;
  all.insert(all.end(), extra.begin(), extra.end());
  return all;
}

// Parses argv and loads the tokenizer; on failure prints the reason and sets *rc.
Result<Tokenizer> open(const Args& args) {
  if (args.has("tokenizer")) return Tokenizer::load_file(args.get("tokenizer"));
  if (args.has("model")) return Tokenizer::load(args.get("model"));
  return make_error(ErrorCode::kInvalidArgument, "expected --model DIR or --tokenizer FILE, found neither");
}

std::string ids_json(const std::vector<int32_t>& ids) {
  std::string out = "[";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) out += ',';
    out += std::to_string(ids[i]);
  }
  return out + "]";
}

// One input -> one output line. Plain: text -> ids. --chat: {"messages": [...], "add_generation_prompt": bool}
// -> ids of the model's chat format. --fim: {"prefix", "suffix", "path", "files": [{"path", "text"}]} -> ids.
// --render: the prompt text (a JSON string) instead of ids.
Result<std::string> tokenize_one(const Tokenizer& tok, const Args& args, const std::string& input,
                                 const EncodeOptions& opt) {
  bool render = args.has("render");
  if (!args.has("chat") && !args.has("fim")) {
    if (render) return make_error(ErrorCode::kInvalidArgument, "--render needs --chat or --fim");
    return ids_json(tok.encode(input, opt));
  }
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(input);
  } catch (const nlohmann::json::exception& e) {
    return make_error(ErrorCode::kInvalidArgument, std::string("expected a JSON object: ") + e.what());
  }
  if (args.has("chat")) {
    LATENT_ASSIGN_OR_RETURN(auto messages, chat_messages_from_json(j.value("messages", nlohmann::json())));
    bool gen = j.value("add_generation_prompt", false);
    if (render) {
      LATENT_ASSIGN_OR_RETURN(std::string text, render_chat(tok, messages, gen));
      return nlohmann::json(text).dump();
    }
    LATENT_ASSIGN_OR_RETURN(auto ids, encode_chat(tok, messages, gen));
    return ids_json(ids);
  }
  FimPrompt p;
  try {
    p.prefix = j.value("prefix", std::string());
    p.suffix = j.value("suffix", std::string());
    p.path = j.value("path", std::string());
    for (const auto& f : j.value("files", nlohmann::json::array()))
      p.context.push_back({f.at("path").get<std::string>(), f.at("text").get<std::string>()});
  } catch (const nlohmann::json::exception& e) {
    return make_error(ErrorCode::kInvalidArgument, std::string("--fim input: ") + e.what());
  }
  if (render) return nlohmann::json(render_fim(p)).dump();
  LATENT_ASSIGN_OR_RETURN(auto ids, encode_fim(tok, p));
  return ids_json(ids);
}

int run_tokenize(int argc, char** argv) {
  auto specs = with({{"bos", "", "add BOS/EOS as tokenizer_config.json says (add_bos_token, add_eos_token)", ""},
                     {"no-added-tokens", "", "treat added-token text (e.g. <｜fim▁hole｜>) as plain text", ""},
                     {"chat", "", "stdin is {\"messages\": [...], \"add_generation_prompt\": bool}: the chat prompt", ""},
                     {"fim", "", "stdin is {\"prefix\", \"suffix\", \"path\", \"files\": [{\"path\", \"text\"}]}: FIM", ""},
                     {"render", "", "with --chat/--fim: print the prompt text (JSON string), not ids", ""}});
  auto args = Args::parse(argc, argv, 2, specs);
  if (!args.ok() || args->has("help")) {
    std::fputs(format_help("latent tokenize (--model DIR | --tokenizer FILE) [--bos] < text",
                           "Reads UTF-8 text on stdin and prints its token ids as a JSON array.", specs)
                   .c_str(),
               args.ok() ? stdout : stderr);
    if (!args.ok()) std::fprintf(stderr, "latent tokenize: %s\n", args.error().message.c_str());
    return args.ok() ? 0 : 2;
  }
  auto tok = open(*args);
  if (!tok.ok()) {
    std::fprintf(stderr, "latent tokenize: %s\n", tok.error().to_string().c_str());
    return 1;
  }
  EncodeOptions opt;
  opt.add_special_tokens = args->has("bos");
  opt.match_added_tokens = !args->has("no-added-tokens");
  auto emit = [&](const std::string& input) -> bool {
    auto out = tokenize_one(*tok, *args, input, opt);
    if (!out.ok()) {
      std::fprintf(stderr, "latent tokenize: %s\n", out.error().to_string().c_str());
      return false;
    }
    std::string line = *out + "\n";
    std::fwrite(line.data(), 1, line.size(), stdout);
    return true;
  };
  if (args->has("jsonl")) {
    bool structured = args->has("chat") || args->has("fim");
    std::string line;
    while (std::getline(std::cin, line)) {
      if (line.empty()) continue;
      std::string input = line;
      if (!structured) {
        try {
          input = nlohmann::json::parse(line).get<std::string>();
        } catch (const nlohmann::json::exception& e) {
          std::fprintf(stderr, "latent tokenize: expected a JSON string per line: %s\n", e.what());
          return 2;
        }
      }
      if (!emit(input)) return 2;
    }
    return 0;
  }
  std::string text((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  return emit(text) ? 0 : 2;
}

Result<std::vector<int32_t>> parse_ids(const std::string& text) {
  try {
    auto j = nlohmann::json::parse(text);
    if (!j.is_array()) return make_error(ErrorCode::kInvalidArgument, "expected a JSON array of ids");
    std::vector<int32_t> ids;
    for (const auto& v : j) {
      if (!v.is_number_integer())
        return make_error(ErrorCode::kInvalidArgument, "expected integer ids, found " + v.dump());
      ids.push_back(v.get<int32_t>());
    }
    return ids;
  } catch (const nlohmann::json::exception& e) {
    return make_error(ErrorCode::kInvalidArgument, std::string("expected a JSON array of ids: ") + e.what());
  }
}

int run_detokenize(int argc, char** argv) {
  auto specs = with({{"skip-special", "", "drop special tokens (BOS, EOS, ...)", ""}});
  auto args = Args::parse(argc, argv, 2, specs);
  if (!args.ok() || args->has("help")) {
    std::fputs(format_help("latent detokenize (--model DIR | --tokenizer FILE) < ids.json",
                           "Reads a JSON array of token ids on stdin and prints their text (with --jsonl, one "
                           "JSON string per line).",
                           specs)
                   .c_str(),
               args.ok() ? stdout : stderr);
    if (!args.ok()) std::fprintf(stderr, "latent detokenize: %s\n", args.error().message.c_str());
    return args.ok() ? 0 : 2;
  }
  auto tok = open(*args);
  if (!tok.ok()) {
    std::fprintf(stderr, "latent detokenize: %s\n", tok.error().to_string().c_str());
    return 1;
  }
  bool skip = args->has("skip-special");
  auto one = [&](const std::string& text, bool jsonl) -> bool {
    auto ids = parse_ids(text);
    if (!ids.ok()) {
      std::fprintf(stderr, "latent detokenize: %s\n", ids.error().message.c_str());
      return false;
    }
    std::string out = tok->decode(*ids, skip);
    if (jsonl) out = nlohmann::json(out).dump() + "\n";
    std::fwrite(out.data(), 1, out.size(), stdout);
    return true;
  };
  if (args->has("jsonl")) {
    std::string line;
    while (std::getline(std::cin, line))
      if (!line.empty() && !one(line, true)) return 2;
    return 0;
  }
  std::string text((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  return one(text, false) ? 0 : 2;
}

const CommandRegistration kTok{"tokenize", "text on stdin -> token ids (JSON)", run_tokenize};
const CommandRegistration kDetok{"detokenize", "token ids (JSON) on stdin -> text", run_detokenize};

}  // namespace
}  // namespace latent::cli
