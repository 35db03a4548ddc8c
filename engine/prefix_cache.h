#pragma once
// PrefixCache: a radix tree over latent-cache blocks, so that a prompt sharing a prefix with an earlier one
// reuses its cache instead of recomputing it.
//
// Each edge is one KvCache block: up to kBlockSize token ids and the block that holds their latents. Full
// blocks have children; a partial block (the tail of a sequence) is a leaf. A lookup may also end inside a
// block (full or partial) when only the first tokens agree: those tokens are reused too, and the Scheduler
// copies the block before writing into it (copy-on-write), so a keystroke that changes the last token of a
// prompt recomputes about one token. The tree holds one reference on each of its blocks; acquire() adds one for
// the caller. Least recently used leaves that no running request shares are evicted when blocks run out.
//
// MTP: the MTP module's cache slot i depends on token i+1 as well, so each node also records how many of its
// slots hold valid MTP latents; Match::mtp_tokens is the reusable MTP prefix.
//
// Not thread-safe: owned by the Scheduler on the engine thread.
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "engine/kv_cache.h"

namespace latent {

class PrefixCache {
 public:
  // max_blocks: the most blocks the tree may hold (<= cache capacity); insert() evicts beyond it.
  PrefixCache(KvCache& cache, int64_t max_blocks);
  ~PrefixCache();
  PrefixCache(const PrefixCache&) = delete;
  PrefixCache& operator=(const PrefixCache&) = delete;

  struct Match {
    std::vector<BlockId> blocks;  // one reference each, owned by the caller now
    int64_t n_tokens = 0;         // main-model latents valid for tokens[0, n_tokens)
    int64_t mtp_tokens = 0;       // MTP latents valid for slots [0, mtp_tokens)
  };
  // Longest cached prefix of `tokens`, at most max_tokens long.
  Match acquire(std::span<const int32_t> tokens, int64_t max_tokens);

  // Remembers the cache of tokens[0, n) held in `blocks` (a block table covering n tokens); the first
  // mtp_valid MTP slots are valid. Existing nodes are kept unless the new blocks hold more MTP slots.
  void insert(std::span<const int32_t> tokens, std::span<const BlockId> blocks, int64_t mtp_valid);

  // Drops least recently used leaves that only the tree references until n blocks went back to the free
  // list or nothing more can go. Returns the number freed.
  int64_t evict(int64_t n);
  void clear();

  int64_t held_blocks() const { return held_; }
  int64_t hits() const { return hits_; }          // lookups that reused at least one token
  int64_t lookups() const { return lookups_; }

 private:
  struct Node;
  void remove_leaf(Node* leaf);

  KvCache& cache_;
  int64_t max_blocks_;
  std::unique_ptr<Node> root_;
  int64_t held_ = 0;
  uint64_t tick_ = 0;
  int64_t hits_ = 0, lookups_ = 0;
};

}  // namespace latent
