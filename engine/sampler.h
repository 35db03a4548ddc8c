#pragma once
// Sampler: logits -> next token for one request, reproducible from its seed.
//
// The pipeline is: repetition penalty (over prompt + generated ids) -> greedy argmax, or temperature ->
// top-k -> top-p -> min-p -> draw. The draw for the token at sequence position n (= history.size(), prompt
// included) uses one uniform number u(seed, n) derived from the seed and n alone, by inverse CDF. So the
// token at each position depends only on (seed, n, the distribution there), not on how many draws came
// before: "same seed, same output" holds with and without speculative drafts.
//
// verify() couples the draft check to that same draw: a deterministic draft d (an MTP argmax or an n-gram
// lookup) is accepted iff the token drawn with u(seed, n) is d, else that drawn token is emitted instead. The
// emitted token is exactly the one sample() would give (so exactly distributed as p), and d is accepted with
// probability p(d), the optimum for a one-hot proposal. Greedy: accept iff d = argmax.
//
// Not thread-safe (scratch space); each request owns one Sampler, used only on the engine thread.
#include <cstdint>
#include <span>
#include <vector>

#include "engine/request.h"

namespace latent {

class Sampler {
 public:
  explicit Sampler(const SamplingParams& params);

  bool greedy() const { return params_.temperature <= 0.0f; }
  const SamplingParams& params() const { return params_; }

  // probs[vocab]: the distribution this request draws from after every filter (one-hot for greedy).
  void distribution(std::span<const float> logits, std::span<const int32_t> history,
                    std::vector<float>* probs) const;

  // Draws the token at position history.size() from logits [vocab].
  int32_t sample(std::span<const float> logits, std::span<const int32_t> history);

  // Verifies a deterministic draft against the target logits at the same position. Returns true when the
  // draft is accepted (*token = draft); otherwise *token is the corrected token to emit instead.
  bool verify(std::span<const float> logits, std::span<const int32_t> history, int32_t draft, int32_t* token);

 private:
  void penalized(std::span<const float> logits, std::span<const int32_t> history, std::vector<float>* out) const;
  SamplingParams params_;
  mutable std::vector<float> scratch_;
};

// The uniform number in [0, 1) of sequence position `position` under `seed` (SplitMix64 of both, 53 bits).
double position_uniform(uint64_t seed, uint64_t position);
// Inverse CDF: the first token whose cumulative probability exceeds u (the last positive one on rounding).
int32_t draw_at(const std::vector<float>& probs, double u);

// Index of the largest value; the lowest index wins ties (matches numpy argmax).
int32_t argmax(std::span<const float> values);

}  // namespace latent
