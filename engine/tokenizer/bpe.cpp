#include "engine/tokenizer/bpe.h"

#include <algorithm>
#include <climits>
#include <cstdio>
#include <queue>

#include "engine/tokenizer/byte_level.h"

namespace latent::tok {
namespace {

Error bad(const std::string& what) { return make_error(ErrorCode::kInvalidArgument, "BPE model: " + what); }

inline uint64_t pair_key(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

}  // namespace

const BpeModel::Merge* BpeModel::find_merge(int32_t left, int32_t right) const {
  uint64_t key = pair_key(left, right);
  size_t mask = merges_.size() - 1;
  for (size_t i = (key * 0x9E3779B97F4A7C15ull) >> shift_;; i = (i + 1) & mask) {
    const Merge& m = merges_[i];
    if (m.key == key) return &m;
    if (m.key == ~0ull) return nullptr;
  }
}

Result<BpeModel> BpeModel::from_json(const nlohmann::json& j, bool byte_level) {
  std::vector<std::pair<std::string, int64_t>> vocab;
  std::vector<std::pair<std::string, std::string>> merges;
  try {
    if (!j.contains("vocab") || !j["vocab"].is_object()) return bad("expected \"vocab\" to be an object token -> id");
    for (const auto& [tok, id] : j["vocab"].items()) {
      if (!id.is_number_integer() || (id.is_number_unsigned() && id.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)))
        return bad("token '" + tok + "': expected an integer id, found " + id.dump());
      vocab.emplace_back(tok, id.get<int64_t>());
    }
    for (const auto& mj : j.value("merges", nlohmann::json::array())) {
      if (mj.is_string()) {
        const std::string& s = mj.get_ref<const std::string&>();
        size_t sp = s.find(' ');
        if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
          return bad("merge " + std::to_string(merges.size()) + " '" + s +
                     "': expected two tokens separated by one space");
        merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
      } else if (mj.is_array() && mj.size() == 2 && mj[0].is_string() && mj[1].is_string()) {
        merges.emplace_back(mj[0].get<std::string>(), mj[1].get<std::string>());
      } else {
        return bad("merge " + std::to_string(merges.size()) + ": expected \"a b\" or [\"a\", \"b\"], found " +
                   mj.dump());
      }
    }
  } catch (const nlohmann::json::exception& e) {
    return bad(e.what());
  }
  return from_parts(j, std::move(vocab), std::move(merges), byte_level);
}

Result<BpeModel> BpeModel::from_parts(const nlohmann::json& j, std::vector<std::pair<std::string, int64_t>> vocab,
                                      std::vector<std::pair<std::string, std::string>> merges, bool byte_level) {
  BpeModel m;
  m.byte_level_ = byte_level;
  try {
    if (j.value("type", std::string("BPE")) != "BPE")
      return make_error(ErrorCode::kUnsupported, "model type '" + j["type"].get<std::string>() +
                                                     "': expected BPE (WordPiece, Unigram, WordLevel are not "
                                                     "supported)");
    for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
      if (j.contains(key) && !j[key].is_null() && !j[key].get<std::string>().empty())
        return make_error(ErrorCode::kUnsupported, std::string("BPE model: ") + key + " is not supported");
    }
    if (j.contains("dropout") && !j["dropout"].is_null() && j["dropout"].get<double>() > 0)
      return make_error(ErrorCode::kUnsupported, "BPE model: dropout is not supported (encoding must be exact)");
    m.ignore_merges_ = j.value("ignore_merges", false);
    m.byte_fallback_ = j.value("byte_fallback", false);
    m.fuse_unk_ = j.value("fuse_unk", false);
    if (vocab.empty()) return bad("expected a non-empty \"vocab\"");

    m.vocab_.reserve(vocab.size());
    for (auto& [tok, id] : vocab) {
      if (id < 0 || id >= kMaxTokenIds) {
        return bad("token '" + tok + "': expected an id in [0, " + std::to_string(kMaxTokenIds) + "), found " +
                   std::to_string(id));
      }
      if (static_cast<size_t>(id) >= m.id_to_token_.size()) m.id_to_token_.resize(id + 1);
      m.id_to_token_[id] = tok;
      m.vocab_.emplace(std::move(tok), static_cast<int32_t>(id));
    }
    if (j.contains("unk_token") && j["unk_token"].is_string()) {
      m.unk_id_ = m.token_to_id(j["unk_token"].get<std::string>());
      if (m.unk_id_ < 0) return bad("unk_token '" + j["unk_token"].get<std::string>() + "' is not in the vocab");
    }
  } catch (const nlohmann::json::exception& e) {
    return bad(e.what());
  }
  for (int b = 0; b < 256; ++b) {
    std::string ch;
    append_utf8(ch, byte_to_codepoint()[b]);
    m.byte_ids_[b] = m.token_to_id(ch);
    char hex[8];
    std::snprintf(hex, sizeof(hex), "<0x%02X>", b);
    m.fallback_ids_[b] = m.token_to_id(hex);
    if (byte_level && m.byte_ids_[b] < 0)
      return bad("byte-level vocab lacks the token of byte " + std::to_string(b) + " ('" + ch + "')");
  }
  if (byte_level && m.ignore_merges_) {
    for (const auto& [tok, id] : m.vocab_) {
      std::string bytes;
      if (byte_level_decode(tok, bytes)) m.bytes_vocab_.emplace(std::move(bytes), id);
    }
  }

  size_t cap = 16;
  while (cap < merges.size() * 2) cap <<= 1;
  m.merges_.assign(cap, Merge{});
  m.shift_ = 64 - __builtin_ctzll(cap);
  std::string joined;
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [a, b] = merges[rank];
    joined.assign(a).append(b);
    int32_t ia = m.token_to_id(a), ib = m.token_to_id(b), in = m.token_to_id(joined);
    if (ia < 0 || ib < 0 || in < 0)
      return bad("merge " + std::to_string(rank) + " ('" + a + "', '" + b + "'): " +
                 (ia < 0 ? a : ib < 0 ? b : joined) + " is not in the vocab");
    uint64_t key = pair_key(ia, ib);
    size_t mask = cap - 1;
    size_t i = (key * 0x9E3779B97F4A7C15ull) >> m.shift_;
    while (m.merges_[i].key != ~0ull && m.merges_[i].key != key) i = (i + 1) & mask;
    if (m.merges_[i].key == ~0ull)  // a repeated pair keeps its first rank
      m.merges_[i] = Merge{key, static_cast<int32_t>(rank), in};
  }
  if (byte_level) {
    m.byte_pairs_.assign(256 * 256, ~0ull);
    for (int a = 0; a < 256; ++a)
      for (int b = 0; b < 256; ++b)
        if (const Merge* mg = m.find_merge(m.byte_ids_[a], m.byte_ids_[b]))
          m.byte_pairs_[a * 256 + b] = (static_cast<uint64_t>(mg->rank) << 32) | static_cast<uint32_t>(mg->new_id);
  }
  return m;
}

int32_t BpeModel::token_to_id(std::string_view token) const {
  auto it = vocab_.find(token);
  return it == vocab_.end() ? -1 : it->second;
}

const std::string& BpeModel::id_to_token(int32_t id) const {
  static const std::string kEmpty;
  return id >= 0 && static_cast<size_t>(id) < id_to_token_.size() ? id_to_token_[id] : kEmpty;
}

void BpeModel::initial_symbols(std::string_view piece, std::vector<int32_t>& sym) const {
  sym.clear();
  if (byte_level_) {
    for (unsigned char c : piece) sym.push_back(byte_ids_[c]);
    return;
  }
  bool prev_unk = false;
  for (size_t i = 0; i < piece.size();) {
    size_t n = std::min(utf8_len(static_cast<uint8_t>(piece[i])), piece.size() - i);
    int32_t id = token_to_id(piece.substr(i, n));
    if (id >= 0) {
      sym.push_back(id);
      prev_unk = false;
    } else if (byte_fallback_ && fallback_ids_[static_cast<uint8_t>(piece[i])] >= 0) {
      for (size_t k = 0; k < n; ++k) sym.push_back(fallback_ids_[static_cast<uint8_t>(piece[i + k])]);
      prev_unk = false;
    } else if (unk_id_ >= 0) {
      if (!(fuse_unk_ && prev_unk)) sym.push_back(unk_id_);
      prev_unk = true;
    }
    i += n;
  }
}

void BpeModel::merge_small(std::vector<int32_t>& sym, std::string_view bytes) const {
  // O(n^2) over a few symbols beats a heap: find the lowest-rank pair, merge it, repeat.
  int32_t rank[64];
  int32_t next_id[64];
  std::fill(rank, rank + 64, INT32_MAX);
  size_t n = sym.size();
  if (!byte_pairs_.empty() && bytes.size() == n) {  // symbols are still the bytes of the piece
    for (size_t i = 0; i + 1 < n; ++i) {
      uint64_t e = byte_pairs_[static_cast<uint8_t>(bytes[i]) * 256 + static_cast<uint8_t>(bytes[i + 1])];
      rank[i] = e == ~0ull ? INT32_MAX : static_cast<int32_t>(e >> 32);
      next_id[i] = static_cast<int32_t>(e & 0xFFFFFFFFu);
    }
  } else {
    for (size_t i = 0; i + 1 < n; ++i) {
      const Merge* m = find_merge(sym[i], sym[i + 1]);
      rank[i] = m ? m->rank : INT32_MAX;
      next_id[i] = m ? m->new_id : -1;
    }
  }
  while (n > 1) {
    size_t best = 0;
    for (size_t i = 1; i + 1 < n; ++i)
      if (rank[i] < rank[best]) best = i;
    if (rank[best] == INT32_MAX) break;
    sym[best] = next_id[best];
    for (size_t i = best + 1; i + 1 < n; ++i) {
      sym[i] = sym[i + 1];
      rank[i] = rank[i + 1];
      next_id[i] = next_id[i + 1];
    }
    --n;
    auto set_pair = [&](size_t i) {
      const Merge* m = find_merge(sym[i], sym[i + 1]);
      rank[i] = m ? m->rank : INT32_MAX;
      next_id[i] = m ? m->new_id : -1;
    };
    if (best > 0) set_pair(best - 1);
    if (best + 1 < n) set_pair(best);
    else rank[best] = INT32_MAX;
  }
  sym.resize(n);
}

void BpeModel::merge_large(std::vector<int32_t>& sym) const {
  // Symbols in a linked list, candidate pairs in a min-heap on (rank, left position); stale entries are
  // skipped when popped.
  int32_t n = static_cast<int32_t>(sym.size());
  std::vector<int32_t> prev(n), next(n);
  for (int32_t i = 0; i < n; ++i) {
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }
  using Entry = std::pair<int32_t, int32_t>;  // (rank, left position)
  std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> heap;
  for (int32_t i = 0; i + 1 < n; ++i)
    if (const Merge* m = find_merge(sym[i], sym[i + 1])) heap.push({m->rank, i});
  std::vector<bool> dead(n, false);
  while (!heap.empty()) {
    auto [r, left] = heap.top();
    heap.pop();
    if (dead[left]) continue;
    int32_t right = next[left];
    if (right < 0) continue;
    const Merge* m = find_merge(sym[left], sym[right]);
    if (!m || m->rank != r) continue;  // the pair changed since this entry was pushed
    sym[left] = m->new_id;
    dead[right] = true;
    next[left] = next[right];
    if (next[right] >= 0) prev[next[right]] = left;
    if (prev[left] >= 0)
      if (const Merge* pm = find_merge(sym[prev[left]], sym[left])) heap.push({pm->rank, prev[left]});
    if (next[left] >= 0)
      if (const Merge* nm = find_merge(sym[left], sym[next[left]])) heap.push({nm->rank, left});
  }
  size_t w = 0;
  for (int32_t i = 0; i >= 0; i = next[i]) sym[w++] = sym[i];
  sym.resize(w);
}

void BpeModel::encode_piece(std::string_view piece, std::vector<int32_t>& out) const {
  if (piece.empty()) return;
  if (byte_level_ && piece.size() == 1) {
    out.push_back(byte_ids_[static_cast<uint8_t>(piece[0])]);
    return;
  }
  if (ignore_merges_) {
    int32_t id = byte_level_ ? [&] {
      auto it = bytes_vocab_.find(piece);
      return it == bytes_vocab_.end() ? -1 : it->second;
    }()
                             : token_to_id(piece);
    if (id >= 0) {
      out.push_back(id);
      return;
    }
  }
  thread_local std::vector<int32_t> sym;
  initial_symbols(piece, sym);
  if (sym.size() <= 64) merge_small(sym, byte_level_ ? piece : std::string_view());
  else merge_large(sym);
  out.insert(out.end(), sym.begin(), sym.end());
}

}  // namespace latent::tok
