#include "engine/tokenizer/added_vocab.h"

#include "engine/tokenizer/bpe.h"

#include "engine/tokenizer/byte_level.h"
#include "engine/tokenizer/normalizer.h"
#include "engine/tokenizer/regex.h"

namespace latent::tok {
namespace {

bool is_word_char_at_end(std::string_view s) {
  if (s.empty()) return false;
  size_t start = s.size() - 1;
  while (start > 0 && (static_cast<uint8_t>(s[start]) & 0xC0) == 0x80) --start;
  static const Result<Regex> word = Regex::compile(R"(\A[\w])");
  size_t b, e;
  return word->find(s.substr(start), 0, &b, &e);
}

bool is_word_char_at_start(std::string_view s) {
  if (s.empty()) return false;
  static const Result<Regex> word = Regex::compile(R"(\A[\w])");
  size_t b, e;
  return word->find(s.substr(0, utf8_len(static_cast<uint8_t>(s[0]))), 0, &b, &e);
}

}  // namespace

Result<AddedVocabulary> AddedVocabulary::from_json(const nlohmann::json& list) {
  AddedVocabulary v;
  for (auto& t : v.trie_) t.emplace_back();
  if (list.is_null()) return v;
  try {
    for (const auto& j : list) {
      AddedToken t;
      // An integer in range, checked before any conversion: a float id (2.6e52) cast to int64 is undefined
      // (found by the tokenizer fuzz target under UBSan), an unsigned one above INT64_MAX would wrap.
      const nlohmann::json& jid = j.at("id");
      const bool integer = jid.is_number_integer() &&
                           !(jid.is_number_unsigned() && jid.get<uint64_t>() >= static_cast<uint64_t>(kMaxTokenIds));
      const int64_t id = integer ? jid.get<int64_t>() : -1;
      if (id < 0 || id >= kMaxTokenIds) {
        return make_error(ErrorCode::kInvalidArgument, "added token " + j.value("content", nlohmann::json()).dump() +
                                                           ": expected an integer id in [0, " +
                                                           std::to_string(kMaxTokenIds) + "), found " + jid.dump());
      }
      t.id = static_cast<int32_t>(id);
      t.content = j.at("content").get<std::string>();
      t.special = j.value("special", false);
      t.lstrip = j.value("lstrip", false);
      t.rstrip = j.value("rstrip", false);
      t.normalized = j.value("normalized", !t.special);
      t.single_word = j.value("single_word", false);
      if (t.content.empty())
        return make_error(ErrorCode::kInvalidArgument, "added token " + std::to_string(t.id) + " is empty");
      v.by_id_[t.id] = v.tokens_.size();
      v.tokens_.push_back(std::move(t));
    }
  } catch (const nlohmann::json::exception& e) {
    return make_error(ErrorCode::kInvalidArgument, std::string("added_tokens: ") + e.what());
  }
  for (size_t k = 0; k < v.tokens_.size(); ++k) {
    const AddedToken& t = v.tokens_[k];
    int flag = t.normalized ? 1 : 0;
    auto& trie = v.trie_[flag];
    v.first_[flag][static_cast<uint8_t>(t.content[0])] = true;
    int32_t node = 0;
    for (unsigned char c : t.content) {
      int32_t next = -1;
      for (auto& [b, n] : trie[node].kids)
        if (b == c) next = n;
      if (next < 0) {
        next = static_cast<int32_t>(trie.size());
        trie[node].kids.emplace_back(c, next);
        trie.emplace_back();
      }
      node = next;
    }
    if (trie[node].token < 0) trie[node].token = static_cast<int32_t>(k);  // a duplicate keeps the first
  }
  return v;
}

const AddedToken* AddedVocabulary::by_id(int32_t id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &tokens_[it->second];
}

const AddedToken* AddedVocabulary::by_content(std::string_view content) const {
  for (const auto& t : tokens_)
    if (t.content == content) return &t;
  return nullptr;
}

bool AddedVocabulary::find(std::string_view text, size_t pos, size_t floor, bool normalized, bool skip_special,
                           Match* m) const {
  int flag = normalized ? 1 : 0;
  const auto& trie = trie_[flag];
  if (trie.size() <= 1) return false;
  for (size_t i = pos; i < text.size(); ++i) {
    if (!first_[flag][static_cast<uint8_t>(text[i])]) continue;
    int32_t node = 0, best = -1;
    size_t best_end = 0;
    for (size_t k = i; k < text.size(); ++k) {
      int32_t next = -1;
      for (auto& [b, n] : trie[node].kids)
        if (b == static_cast<uint8_t>(text[k])) {
          next = n;
          break;
        }
      if (next < 0) break;
      node = next;
      if (trie[node].token >= 0) {
        best = trie[node].token;
        best_end = k + 1;
      }
    }
    if (best < 0) continue;
    const AddedToken& t = tokens_[best];
    if (skip_special && t.special) {
      i = best_end - 1;  // consumed by the automaton, then dropped
      continue;
    }
    size_t begin = i, end = best_end;
    if (t.single_word &&
        (is_word_char_at_end(text.substr(0, begin)) || is_word_char_at_start(text.substr(end)))) {
      i = best_end - 1;
      continue;
    }
    if (t.lstrip) {
      while (begin > floor) {
        size_t s = begin - 1;
        while (s > floor && (static_cast<uint8_t>(text[s]) & 0xC0) == 0x80) --s;
        size_t q = s;
        if (!is_white_space(next_codepoint(text, q))) break;
        begin = s;
      }
    }
    if (t.rstrip) {
      while (end < text.size()) {
        size_t q = end;
        if (!is_white_space(next_codepoint(text, q))) break;
        end = q;
      }
    }
    *m = Match{begin, end, t.id};
    return true;
  }
  return false;
}

}  // namespace latent::tok
