#pragma once
// A fast reader of tokenizer.json: a SAX pass that keeps the BPE vocabulary and merges (about 250k entries,
// most of the file) in flat vectors instead of a JSON tree, and builds a tree only for the small rest.
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "kernels/base/result.h"

namespace latent::tok {

struct TokenizerJson {
  nlohmann::json rest;  // the whole file except model.vocab and model.merges
  std::vector<std::pair<std::string, int64_t>> vocab;
  std::vector<std::pair<std::string, std::string>> merges;  // "a b" and ["a", "b"] alike
  bool has_vocab = false;
  bool has_merges = false;
};

Result<TokenizerJson> parse_tokenizer_json(std::string_view text);

}  // namespace latent::tok
