#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace latent {

int32_t argmax(std::span<const float> values) {
  int32_t best = 0;
  for (size_t i = 1; i < values.size(); ++i)
    if (values[i] > values[best]) best = static_cast<int32_t>(i);
  return best;
}

Sampler::Sampler(const SamplingParams& params) : params_(params) {}

namespace {
uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
}  // namespace

double position_uniform(uint64_t seed, uint64_t position) {
  const uint64_t bits = splitmix64(splitmix64(seed) ^ position);
  return static_cast<double>(bits >> 11) * 0x1.0p-53;
}

void Sampler::penalized(std::span<const float> logits, std::span<const int32_t> history,
                        std::vector<float>* out) const {
  out->assign(logits.begin(), logits.end());
  if (params_.repetition_penalty == 1.0f || history.empty()) return;
  const float pen = params_.repetition_penalty;
  const int64_t vocab = static_cast<int64_t>(out->size());
  // Each distinct id is penalised once, however often it occurs (CTRL / HF convention).
  std::vector<int32_t> ids(history.begin(), history.end());
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab) continue;
    float& l = (*out)[id];
    l = l > 0 ? l / pen : l * pen;
  }
}

void Sampler::distribution(std::span<const float> logits, std::span<const int32_t> history,
                           std::vector<float>* probs) const {
  penalized(logits, history, &scratch_);
  const size_t vocab = scratch_.size();
  probs->assign(vocab, 0.0f);
  if (vocab == 0) return;
  if (greedy()) {
    (*probs)[argmax(scratch_)] = 1.0f;
    return;
  }
  // Softmax at temperature, in double for a stable sum over large vocabularies.
  const float inv_t = 1.0f / params_.temperature;
  float mx = *std::max_element(scratch_.begin(), scratch_.end());
  double sum = 0;
  for (size_t i = 0; i < vocab; ++i) {
    float e = std::exp((scratch_[i] - mx) * inv_t);
    (*probs)[i] = e;
    sum += e;
  }
  for (float& p : *probs) p = static_cast<float>(p / sum);

  const bool use_k = params_.top_k > 0 && static_cast<size_t>(params_.top_k) < vocab;
  const bool use_p = params_.top_p < 1.0f;
  const bool use_min_p = params_.min_p > 0.0f;
  if (!use_k && !use_p && !use_min_p) return;

  // Order ids by probability (descending, lower id first on ties), then keep the allowed head.
  std::vector<int32_t> order(vocab);
  std::iota(order.begin(), order.end(), 0);
  auto by_prob = [&](int32_t a, int32_t b) {
    return (*probs)[a] != (*probs)[b] ? (*probs)[a] > (*probs)[b] : a < b;
  };
  size_t keep = use_k ? static_cast<size_t>(params_.top_k) : vocab;
  size_t sorted = vocab;  // order[0, sorted) is in by_prob order
  if (use_k && !use_p) {
    std::partial_sort(order.begin(), order.begin() + keep, order.end(), by_prob);
    sorted = keep;
  } else if (use_p && !use_k) {
    // Top-p alone: the tokens below eps = (1 - top_p) / (2 vocab) hold less than (1 - top_p) / 2 of the mass
    // together, so the nucleus ends among the others; sort those first (a vocabulary of 100K+ sorted whole was
    // most of a sampled token's time), and the rest only if rounding carries the walk past them.
    const float eps = (1.0f - params_.top_p) / (2.0f * static_cast<float>(vocab));
    const auto mid = std::partition(order.begin(), order.end(), [&](int32_t i) { return (*probs)[i] >= eps; });
    std::sort(order.begin(), mid, by_prob);
    sorted = static_cast<size_t>(mid - order.begin());
  } else {
    std::sort(order.begin(), order.end(), by_prob);
  }
  if (use_p) {
    double cum = 0;
    size_t n = 0;
    while (n < keep) {
      if (n == sorted) {  // past the candidates (rounding): order the rest too, then go on
        std::sort(order.begin() + static_cast<long>(sorted), order.end(), by_prob);
        sorted = vocab;
      }
      cum += (*probs)[order[n]];
      ++n;
      if (cum >= params_.top_p) break;
    }
    keep = std::max<size_t>(n, 1);
  }
  if (use_min_p) {
    const float floor = params_.min_p * (*probs)[order[0]];
    size_t n = 1;
    while (n < keep && (*probs)[order[n]] >= floor) ++n;
    keep = n;
  }
  std::vector<float> kept(vocab, 0.0f);
  double total = 0;
  for (size_t i = 0; i < keep; ++i) total += (*probs)[order[i]];
  for (size_t i = 0; i < keep; ++i) kept[order[i]] = static_cast<float>((*probs)[order[i]] / total);
  probs->swap(kept);
}

int32_t draw_at(const std::vector<float>& probs, double u) {
  double cum = 0;
  int32_t last = 0;
  for (size_t i = 0; i < probs.size(); ++i) {
    if (probs[i] <= 0) continue;
    cum += probs[i];
    last = static_cast<int32_t>(i);
    if (u < cum) return last;
  }
  return last;  // rounding: the sum fell just short of 1
}

int32_t Sampler::sample(std::span<const float> logits, std::span<const int32_t> history) {
  if (greedy()) {
    if (params_.repetition_penalty == 1.0f) return argmax(logits);
    penalized(logits, history, &scratch_);
    return argmax(scratch_);
  }
  std::vector<float> probs;
  distribution(logits, history, &probs);
  return draw_at(probs, position_uniform(params_.seed, history.size()));
}

bool Sampler::verify(std::span<const float> logits, std::span<const int32_t> history, int32_t draft,
                     int32_t* token) {
  // Coupled with sample(): the same draw at the same position, accepted iff it is the draft. Marginally the
  // emitted token follows p and the acceptance probability is p(draft), as with rejection sampling.
  *token = sample(logits, history);
  return *token == draft;
}

}  // namespace latent
