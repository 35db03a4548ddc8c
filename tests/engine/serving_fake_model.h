#pragma once
// A test double for the Scheduler: a "model" whose next token is a hash of the sequence it READS BACK from
// the paged cache through the block table it is given. Any wrong block table, lost or overwritten block, or
// stale copy changes its output (and a position mismatch is reported as an error), so tests that compare
// outputs with a cache-free reference check the cache bookkeeping end to end.
//
// Cache layout (KvCache with 2 layers, token_dim 3): layer 0 slot p = {token p, p, 1}; layer 1 (MTP) slot
// i = {token i+1, i, 1}. MTP drafts are right about 3 times in 4.
#include <atomic>
#include <chrono>
#include <functional>
#include <random>
#include <thread>
#include <vector>

#include "engine/kv_cache.h"
#include "engine/scheduler_model.h"

namespace latent::testing {

inline uint64_t fake_hash(const std::vector<int32_t>& seq, int window) {
  uint64_t h = 1469598103934665603ull;
  size_t from = (window > 0 && seq.size() > static_cast<size_t>(window)) ? seq.size() - window : 0;
  for (size_t i = from; i < seq.size(); ++i) {
    h ^= static_cast<uint64_t>(seq[i]) + 0x9e3779b97f4a7c15ull;
    h *= 1099511628211ull;
    h ^= h >> 29;
  }
  return h;
}

class FakeModel : public ServingModel {
 public:
  static constexpr int64_t kVocab = 97;
  static constexpr int64_t kHidden = 4;
  // window 0: next token depends on the whole prefix; > 0: on the last `window` tokens (repetitive text).
  explicit FakeModel(int window = 0, bool mtp = true) : window_(window), mtp_(mtp) {}
  static KvCache make_cache(int64_t n_blocks) { return KvCache(2, 2, 1, n_blocks); }

  int64_t vocab_size() const override { return kVocab; }
  bool has_mtp() const override { return mtp_; }

  static int32_t next_token(const std::vector<int32_t>& seq, int window) {
    return static_cast<int32_t>(fake_hash(seq, window) % kVocab);
  }
  // Logits: a clear winner plus a spread so that sampling has something to choose from.
  static void logits_for(const std::vector<int32_t>& seq, int window, float* out) {
    uint64_t h = fake_hash(seq, window);
    for (int64_t v = 0; v < kVocab; ++v) out[v] = static_cast<float>((h >> (v % 13)) % 5) * 0.3f;
    out[h % kVocab] = 2.5f;
  }
  // The cache-free reference: greedy continuation.
  std::vector<int32_t> reference(std::vector<int32_t> seq, int n) const {
    std::vector<int32_t> out;
    for (int i = 0; i < n; ++i) {
      int32_t t = next_token(seq, window_);
      out.push_back(t);
      seq.push_back(t);
    }
    return out;
  }

  Result<ForwardResult> forward(std::span<const SequenceInput> batch, KvCache& cache,
                                const ForwardOptions& options) override {
    if (delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    if (on_forward) on_forward();
    ForwardResult r;
    r.vocab_size = kVocab;
    r.hidden_size = kHidden;
    r.logit_offset.push_back(0);
    r.token_offset.push_back(0);
    ++calls;
    for (const auto& s : batch) {
      const int64_t n = static_cast<int64_t>(s.tokens.size());
      if (KvCache::blocks_needed(s.n_cached + n) > static_cast<int64_t>(s.block_table.size()))
        return make_error(ErrorCode::kInvalidArgument, "fake: block table too short");
      tokens_fed += n;
      for (int64_t i = 0; i < n; ++i) {
        const int64_t p = s.n_cached + i;
        float* t = cache.token(0, s.block_table[p / KvCache::kBlockSize], p % KvCache::kBlockSize);
        t[0] = static_cast<float>(s.tokens[i]);
        t[1] = static_cast<float>(p);
        t[2] = 1;
      }
      for (int64_t i = s.all_logits ? 0 : n - 1; i < n; ++i) {
        std::vector<int32_t> seq;
        for (int64_t q = 0; q <= s.n_cached + i; ++q) {
          const float* t = cache.token(0, s.block_table[q / KvCache::kBlockSize], q % KvCache::kBlockSize);
          if (t[1] != static_cast<float>(q) || t[2] != 1)
            return make_error(ErrorCode::kInternal, "fake: cache slot " + std::to_string(q) + " is corrupt");
          seq.push_back(static_cast<int32_t>(t[0]));
        }
        r.logits.resize(r.logits.size() + kVocab);
        logits_for(seq, window_, r.logits.data() + r.logits.size() - kVocab);
      }
      r.logit_offset.push_back(static_cast<int64_t>(r.logits.size() / kVocab));
      if (options.return_hidden) r.hidden.resize(r.hidden.size() + n * kHidden, 0.5f);
      r.token_offset.push_back(r.token_offset.back() + n);
    }
    return r;
  }

  Result<ForwardResult> forward_mtp(std::span<const MtpSequenceInput> batch, KvCache& cache,
                                    const ForwardOptions& options) override {
    if (!mtp_) return make_error(ErrorCode::kUnsupported, "fake: no MTP");
    ForwardResult r;
    r.vocab_size = kVocab;
    r.hidden_size = kHidden;
    r.logit_offset.push_back(0);
    r.token_offset.push_back(0);
    for (const auto& s : batch) {
      const int64_t n = static_cast<int64_t>(s.next_tokens.size());
      mtp_fed += n;
      for (int64_t i = 0; i < n; ++i) {
        const int64_t p = s.n_cached + i;
        float* t = cache.token(1, s.block_table[p / KvCache::kBlockSize], p % KvCache::kBlockSize);
        t[0] = static_cast<float>(s.next_tokens[i]);
        t[1] = static_cast<float>(p);
        t[2] = 1;
      }
      // Sequence of the last slot: token 0 from the main cache, then t[1..] from the MTP slots.
      const int64_t last = s.n_cached + n - 1;
      std::vector<int32_t> seq{static_cast<int32_t>(cache.token(0, s.block_table[0], 0)[0])};
      for (int64_t q = 0; q <= last; ++q) {
        const float* t = cache.token(1, s.block_table[q / KvCache::kBlockSize], q % KvCache::kBlockSize);
        if (t[1] != static_cast<float>(q) || t[2] != 1)
          return make_error(ErrorCode::kInternal, "fake: MTP slot " + std::to_string(q) + " is corrupt");
        seq.push_back(static_cast<int32_t>(t[0]));
      }
      uint64_t h = fake_hash(seq, window_);
      int32_t truth = static_cast<int32_t>(h % kVocab);
      int32_t draft = (h >> 40) % 4 == 0 ? static_cast<int32_t>((truth + 1) % kVocab) : truth;
      std::vector<float> l(kVocab, 0.0f);
      l[draft] = 1.0f;
      r.logits.insert(r.logits.end(), l.begin(), l.end());
      r.logit_offset.push_back(static_cast<int64_t>(r.logits.size() / kVocab));
      if (options.return_hidden) r.hidden.resize(r.hidden.size() + n * kHidden, 0.25f);
      r.token_offset.push_back(r.token_offset.back() + n);
    }
    return r;
  }

  int window_;
  bool mtp_;
  int delay_ms = 0;
  std::function<void()> on_forward;  // called at the start of every main-model forward (e.g. to advance a test clock)
  int64_t calls = 0;
  int64_t tokens_fed = 0;
  int64_t mtp_fed = 0;
};

// n ids below FakeModel::kVocab, the same for the same seed.
inline std::vector<int32_t> random_prompt(int n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> p(n);
  for (auto& t : p) t = static_cast<int32_t>(rng() % FakeModel::kVocab);
  return p;
}

}  // namespace latent::testing
