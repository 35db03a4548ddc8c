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

  // Order ids by probability (descending, lower id first on ties: a strict order, so the head is unique), then
  // keep the allowed head. Only as much of the order as the filters read is made: `head(n)` sorts order[0, n)
  // by selecting the next ids (a partial sort, or nth_element and a sort of just those), so a top-k of 40 or a
  // nucleus of a few tokens costs a pass over the vocabulary, not a sort of it (that sort was 92 % of a sampled
  // row's time on a 100K+ vocabulary: bench/sampler_bench). The kept set, its order and so its sums are those
  // of a whole sort, bit for bit (Sampler.FiltersOverALargeVocabularyEqualTheWholeSort).
  std::vector<int32_t> order(vocab);
  std::iota(order.begin(), order.end(), 0);
  auto by_prob = [&](int32_t a, int32_t b) {
    return (*probs)[a] != (*probs)[b] ? (*probs)[a] > (*probs)[b] : a < b;
  };
  // With top-p, the tokens below eps = (1 - top_p) / (2 vocab) hold less than (1 - top_p) / 2 of the mass
  // together, so the nucleus ends among the others (unless rounding carries the walk past them): they come
  // first, order[0, candidates), and each of them ranks above every other token.
  size_t candidates = vocab;
  if (use_p) {
    const float eps = (1.0f - params_.top_p) / (2.0f * static_cast<float>(vocab));
    candidates = static_cast<size_t>(
        std::partition(order.begin(), order.end(), [&](int32_t i) { return (*probs)[i] >= eps; }) - order.begin());
  }
  size_t sorted = 0;  // order[0, sorted) is in by_prob order, and holds the `sorted` most likely ids
  auto head = [&](size_t n) {
    while (sorted < std::min(n, vocab)) {
      const size_t region_end = sorted < candidates ? candidates : vocab;  // never select across the partition
      size_t target = std::min(n, region_end);
      if (2 * target >= region_end) target = region_end;  // most of the region: one sort is cheaper
      const auto first = order.begin() + static_cast<long>(sorted), mid = order.begin() + static_cast<long>(target),
                 last = order.begin() + static_cast<long>(region_end);
      if (mid == last) {
        std::sort(first, last, by_prob);
      } else if (target - sorted <= 1024) {
        std::partial_sort(first, mid, last, by_prob);  // a small heap: most ids are refused by one comparison
      } else {
        std::nth_element(first, mid, last, by_prob);
        std::sort(first, mid, by_prob);
      }
      sorted = target;
    }
  };
  size_t keep = use_k ? static_cast<size_t>(params_.top_k) : vocab;
  // min-p: the ids at or above min_p times the top probability, at least the top one. They are the first ones
  // in the order, so counting them gives the cut at once, and the nucleus walk below needs to go no further.
  if (use_min_p) {
    head(1);
    const float floor = params_.min_p * (*probs)[order[0]];
    const size_t above =
        static_cast<size_t>(std::count_if(probs->begin(), probs->end(), [&](float p) { return p >= floor; }));
    keep = std::min(keep, std::max<size_t>(above, 1));
  }
  if (use_p) {  // the nucleus: the shortest head whose mass reaches top_p (within top-k and min-p)
    double cum = 0;
    size_t n = 0;
    while (n < keep) {
      if (n == sorted) {
        // Grow the sorted head eightfold, or at once to what the mass still missing needs: every later id has
        // at most the last one's probability (a flat distribution goes to one sort instead of several passes).
        size_t want = std::max<size_t>(64, 8 * n);
        const double last = n > 0 ? (*probs)[order[n - 1]] : 0.0;
        if (last > 0) {
          want = std::max(want, n + static_cast<size_t>(std::min<double>((params_.top_p - cum) / last, vocab)));
        }
        head(std::min(want, keep));
      }
      cum += (*probs)[order[n]];
      ++n;
      if (cum >= params_.top_p) break;
    }
    keep = std::max<size_t>(n, 1);
  }
  head(keep);
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
