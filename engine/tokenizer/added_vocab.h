#pragma once
// tokenizer.json's "added_tokens": matched in the text before pre-tokenization, leftmost-longest (the
// tokenizers crate uses Aho-Corasick with that match kind), first the tokens with normalized=false on the raw
// text, then those with normalized=true on the normalized remainder. lstrip/rstrip swallow neighbouring
// Unicode white space; single_word rejects a match inside a word.
// Thread-safety: immutable after from_json().
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "kernels/base/result.h"

namespace latent::tok {

struct AddedToken {
  int32_t id = -1;
  std::string content;
  bool special = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = false;
  bool single_word = false;
};

class AddedVocabulary {
 public:
  static Result<AddedVocabulary> from_json(const nlohmann::json& added_tokens);

  // Walks `text`: on_text(segment) for each non-empty stretch between matches, on_token(id) for each match of
  // a token whose `normalized` flag equals `normalized`. With `skip_special`, special tokens are not matched.
  template <class OnText, class OnToken>
  void split(std::string_view text, bool normalized, bool skip_special, OnText&& on_text,
             OnToken&& on_token) const {
    size_t done = 0;  // text before `done` is emitted
    size_t pos = 0;
    while (pos < text.size()) {
      Match m;
      if (!find(text, pos, done, normalized, skip_special, &m)) break;
      if (m.begin > done) on_text(text.substr(done, m.begin - done));
      on_token(m.id);
      done = pos = m.end;
    }
    if (done < text.size()) on_text(text.substr(done));
  }

  const AddedToken* by_id(int32_t id) const;
  const AddedToken* by_content(std::string_view content) const;
  const std::vector<AddedToken>& tokens() const { return tokens_; }
  bool empty() const { return tokens_.empty(); }

 private:
  struct Match {
    size_t begin, end;
    int32_t id;
  };
  struct Node {
    int32_t token = -1;  // index into tokens_ ending here
    std::vector<std::pair<uint8_t, int32_t>> kids;
  };
  bool find(std::string_view text, size_t pos, size_t floor, bool normalized, bool skip_special,
            Match* m) const;

  std::vector<AddedToken> tokens_;
  std::unordered_map<int32_t, size_t> by_id_;
  // One trie per `normalized` flag; node 0 is the root. first_[flag][byte]: some token starts with byte.
  std::vector<Node> trie_[2];
  bool first_[2][256] = {};
};

}  // namespace latent::tok
