#include "engine/prefix_cache.h"

#include <algorithm>

#include "kernels/base/log.h"

namespace latent {

struct PrefixCache::Node {
  std::vector<int32_t> tokens;  // <= kBlockSize; < kBlockSize only for a leaf
  BlockId block = -1;
  int64_t mtp_slots = 0;        // MTP slots [0, mtp_slots) of this block are valid
  uint64_t last_use = 0;
  Node* parent = nullptr;
  std::vector<std::unique_ptr<Node>> children;
  bool full() const { return static_cast<int64_t>(tokens.size()) == KvCache::kBlockSize; }
};

namespace {

size_t common_prefix(std::span<const int32_t> a, std::span<const int32_t> b) {
  size_t n = std::min(a.size(), b.size()), i = 0;
  while (i < n && a[i] == b[i]) ++i;
  return i;
}

}  // namespace

PrefixCache::PrefixCache(KvCache& cache, int64_t max_blocks)
    : cache_(cache), max_blocks_(std::min(max_blocks, cache.capacity())), root_(std::make_unique<Node>()) {}

PrefixCache::~PrefixCache() { clear(); }

PrefixCache::Match PrefixCache::acquire(std::span<const int32_t> tokens, int64_t max_tokens) {
  Match m;
  ++lookups_;
  ++tick_;
  const int64_t limit = std::min<int64_t>(max_tokens, static_cast<int64_t>(tokens.size()));
  Node* node = root_.get();
  int64_t mtp_run = 0;
  bool mtp_contiguous = true;
  while (m.n_tokens < limit) {
    auto want = tokens.subspan(m.n_tokens, std::min<int64_t>(KvCache::kBlockSize, limit - m.n_tokens));
    Node* best = nullptr;
    size_t best_len = 0;
    for (auto& c : node->children) {
      size_t l = common_prefix(c->tokens, want);
      if (l > best_len || (l == best_len && best && l > 0 && c->full() && !best->full())) {
        best = c.get();
        best_len = l;
      }
    }
    if (best == nullptr || best_len == 0) break;
    best->last_use = tick_;
    if (!cache_.ref(best->block).ok()) break;  // cannot happen: the tree holds a reference
    m.blocks.push_back(best->block);
    m.n_tokens += static_cast<int64_t>(best_len);
    if (mtp_contiguous) {
      mtp_run += std::min<int64_t>(best->mtp_slots, static_cast<int64_t>(best_len));
      mtp_contiguous = best->mtp_slots == KvCache::kBlockSize;
    }
    if (!best->full() || best_len < best->tokens.size()) break;
    node = best;
  }
  // MTP slot i was computed from token i+1: valid only while that token matched too.
  m.mtp_tokens = std::max<int64_t>(0, std::min(mtp_run, m.n_tokens - 1));
  if (m.n_tokens > 0) ++hits_;
  return m;
}

void PrefixCache::insert(std::span<const int32_t> tokens, std::span<const BlockId> blocks, int64_t mtp_valid) {
  ++tick_;
  const int64_t n = static_cast<int64_t>(tokens.size());
  Node* node = root_.get();
  for (int64_t j = 0; j * KvCache::kBlockSize < n && j < static_cast<int64_t>(blocks.size()); ++j) {
    const int64_t begin = j * KvCache::kBlockSize;
    auto chunk = tokens.subspan(begin, std::min<int64_t>(KvCache::kBlockSize, n - begin));
    const int64_t mtp = std::clamp<int64_t>(mtp_valid - begin, 0, static_cast<int64_t>(chunk.size()));
    const bool full = static_cast<int64_t>(chunk.size()) == KvCache::kBlockSize;
    Node* found = nullptr;
    for (size_t i = 0; i < node->children.size();) {
      Node* c = node->children[i].get();
      if (c->tokens.size() == chunk.size() && std::equal(chunk.begin(), chunk.end(), c->tokens.begin())) {
        found = c;
        ++i;
        continue;
      }
      // A partial leaf that is a prefix of this chunk is subsumed by it.
      if (!c->full() && c->children.empty() && c->tokens.size() < chunk.size() &&
          std::equal(c->tokens.begin(), c->tokens.end(), chunk.begin())) {
        (void)cache_.unref(c->block);
        --held_;
        node->children.erase(node->children.begin() + static_cast<int64_t>(i));
        continue;
      }
      // This chunk is a prefix of a longer cached partial block: nothing new to store.
      if (!full && !c->full() && c->tokens.size() > chunk.size() &&
          std::equal(chunk.begin(), chunk.end(), c->tokens.begin()) && c->mtp_slots >= mtp) {
        c->last_use = tick_;
        return;
      }
      ++i;
    }
    if (found != nullptr) {
      found->last_use = tick_;
      if (mtp > found->mtp_slots && found->block != blocks[j] && cache_.ref(blocks[j]).ok()) {
        (void)cache_.unref(found->block);
        found->block = blocks[j];
        found->mtp_slots = mtp;
      }
    } else {
      if (!cache_.ref(blocks[j]).ok()) return;
      auto c = std::make_unique<Node>();
      c->tokens.assign(chunk.begin(), chunk.end());
      c->block = blocks[j];
      c->mtp_slots = mtp;
      c->last_use = tick_;
      c->parent = node;
      found = c.get();
      node->children.push_back(std::move(c));
      ++held_;
    }
    if (!full) break;
    node = found;
  }
  if (held_ > max_blocks_) {
    // Only blocks the tree alone holds go back to the free list; shrink the tree itself regardless.
    evict(held_ - max_blocks_);
  }
}

void PrefixCache::remove_leaf(Node* leaf) {
  Node* parent = leaf->parent;
  (void)cache_.unref(leaf->block);
  --held_;
  auto& sib = parent->children;
  sib.erase(std::find_if(sib.begin(), sib.end(), [&](const auto& p) { return p.get() == leaf; }));
}

int64_t PrefixCache::evict(int64_t n) {
  int64_t freed = 0;
  while (freed < n) {
    // The least recently used leaf whose block no request shares.
    Node* victim = nullptr;
    std::vector<Node*> stack{root_.get()};
    while (!stack.empty()) {
      Node* x = stack.back();
      stack.pop_back();
      for (auto& c : x->children) {
        if (!c->children.empty()) {
          stack.push_back(c.get());
        } else if (cache_.ref_count(c->block) == 1 && (!victim || c->last_use < victim->last_use)) {
          victim = c.get();
        }
      }
    }
    if (victim == nullptr) break;
    remove_leaf(victim);
    ++freed;
  }
  if (freed > 0) LATENT_LOG_DEBUG("prefix cache: evicted %lld blocks", static_cast<long long>(freed));
  return freed;
}

void PrefixCache::clear() {
  std::vector<Node*> stack{root_.get()};
  while (!stack.empty()) {
    Node* x = stack.back();
    stack.pop_back();
    for (auto& c : x->children) {
      (void)cache_.unref(c->block);
      stack.push_back(c.get());
    }
  }
  root_ = std::make_unique<Node>();
  held_ = 0;
}

}  // namespace latent
