#pragma once
// tokenizer.json's "model" of type BPE: vocab, merges (as "a b" strings or ["a", "b"] pairs), ignore_merges,
// byte_fallback, unk_token, fuse_unk. With a ByteLevel pre-tokenizer the model works on raw bytes: each byte
// starts as the token of its GPT-2 alphabet character.
// Thread-safety: immutable after from_json(); encode_piece() may be called concurrently.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "kernels/base/result.h"

namespace latent::tok {

// Token ids (vocabulary and added tokens) are below 2^24, config.json's bound on vocab_size: a table indexed by
// id is at most that long, whatever a crafted tokenizer.json claims.
inline constexpr int64_t kMaxTokenIds = int64_t{1} << 24;

class BpeModel {
 public:
  static Result<BpeModel> from_json(const nlohmann::json& model, bool byte_level);
  // The same with the vocabulary and merges already read (json_loader.h); `model` holds the other fields.
  static Result<BpeModel> from_parts(const nlohmann::json& model,
                                     std::vector<std::pair<std::string, int64_t>> vocab,
                                     std::vector<std::pair<std::string, std::string>> merges, bool byte_level);

  // Appends the ids of one pre-tokenized piece (raw bytes when byte-level), merging pairs lowest rank first,
  // leftmost first among equal ranks, as the tokenizers crate does.
  void encode_piece(std::string_view piece, std::vector<int32_t>& out) const;

  int32_t token_to_id(std::string_view token) const;  // -1 when absent
  const std::string& id_to_token(int32_t id) const;   // "" when absent
  size_t size() const { return id_to_token_.size(); }  // ids 0..size()-1 (holes have "")
  bool byte_level() const { return byte_level_; }

 private:
  struct Merge {
    uint64_t key = ~0ull;  // (left id << 32) | right id; ~0 = empty slot
    int32_t rank = 0;
    int32_t new_id = 0;
  };
  const Merge* find_merge(int32_t left, int32_t right) const;
  void initial_symbols(std::string_view piece, std::vector<int32_t>& sym) const;
  void merge_small(std::vector<int32_t>& sym, std::string_view bytes) const;
  void merge_large(std::vector<int32_t>& sym) const;

  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> vocab_;
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> bytes_vocab_;  // ignore_merges + byte-level
  std::vector<std::string> id_to_token_;
  std::vector<Merge> merges_;  // open addressing, power-of-two size
  // Byte-level: the merge of two single-byte tokens, [256 * left byte + right byte] -> (rank << 32 | new id),
  // ~0 when none; the first round of lookups of every piece hits this 512 KB table instead of the hash.
  std::vector<uint64_t> byte_pairs_;
  int shift_ = 64;
  std::array<int32_t, 256> byte_ids_{};      // byte-level: byte -> id of its alphabet character
  std::array<int32_t, 256> fallback_ids_{};  // byte_fallback: byte -> id of "<0xAB>"
  bool byte_level_ = false;
  bool ignore_merges_ = false;
  bool byte_fallback_ = false;
  bool fuse_unk_ = false;
  int32_t unk_id_ = -1;
};

}  // namespace latent::tok
