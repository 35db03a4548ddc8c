#pragma once
// Sampler: logits -> next token for one request, with its own seeded RNG.
//
// The pipeline is: repetition penalty (over prompt + generated ids) -> greedy argmax, or temperature ->
// top-k -> top-p -> min-p -> draw. distribution() exposes the final probabilities so that speculative
// verification (verify()) is lossless: a deterministic draft d (an MTP argmax or an n-gram lookup) is
// accepted with probability p(d); on rejection the token is drawn from p with d removed, renormalised.
// Marginally that is exactly p (rejection sampling with a one-hot proposal). Greedy: accept iff d = argmax.
//
// Not thread-safe; each request owns one Sampler, used only on the engine thread.
#include <cstdint>
#include <random>
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

  // Draws the next token from logits [vocab].
  int32_t sample(std::span<const float> logits, std::span<const int32_t> history);

  // Verifies a deterministic draft against the target logits at the same position. Returns true when the
  // draft is accepted (*token = draft); otherwise *token is the corrected token to emit instead.
  bool verify(std::span<const float> logits, std::span<const int32_t> history, int32_t draft, int32_t* token);

 private:
  void penalized(std::span<const float> logits, std::span<const int32_t> history, std::vector<float>* out) const;
  int32_t draw(const std::vector<float>& probs);

  SamplingParams params_;
  std::mt19937_64 rng_;
  mutable std::vector<float> scratch_;
};

// Index of the largest value; the lowest index wins ties (matches numpy argmax).
int32_t argmax(std::span<const float> values);

}  // namespace latent
