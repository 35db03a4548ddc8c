// latent tokenize / latent detokenize: text <-> token ids with a model's tokenizer.json, for scripts and tests.
//   echo -n 'def f():' | latent tokenize --model DIR          -> [3465,282,8472]
//   echo '[3465,282,8472]' | latent detokenize --model DIR    -> def f():
// --jsonl: one JSON string (tokenize) or id array (detokenize) per line in, one result per line out.
#include <cstdio>
#include <iostream>
#include <iterator>
#include <string>

#include <nlohmann/json.hpp>

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

int run_tokenize(int argc, char** argv) {
  auto specs = with({{"bos", "", "add BOS/EOS as tokenizer_config.json says (add_bos_token, add_eos_token)", ""},
                     {"no-added-tokens", "", "treat added-token text (e.g. <｜fim▁hole｜>) as plain text", ""}});
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
  if (args->has("jsonl")) {
    std::string line;
    while (std::getline(std::cin, line)) {
      if (line.empty()) continue;
      std::string text;
      try {
        text = nlohmann::json::parse(line).get<std::string>();
      } catch (const nlohmann::json::exception& e) {
        std::fprintf(stderr, "latent tokenize: expected a JSON string per line: %s\n", e.what());
        return 2;
      }
      std::string out = ids_json(tok->encode(text, opt)) + "\n";
      std::fwrite(out.data(), 1, out.size(), stdout);
    }
    return 0;
  }
  std::string text((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  std::string out = ids_json(tok->encode(text, opt)) + "\n";
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
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
