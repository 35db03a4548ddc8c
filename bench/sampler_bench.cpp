// The host sampler's cost per logit row (Sampler::sample: softmax at temperature, then top-k / top-p / min-p)
// against the reference it must equal bit for bit: the softmax, a sort of the whole vocabulary, then the
// filters. With --syntax-check rank (the default) every ghost-text step samples 15 rows with T 0.8, top-k 40,
// top-p 0.95 (server/engine_completion_backend.cpp), so on a 100K+ vocabulary this is keystroke latency.
//
//   build/bin/sampler_bench [--rows N]     one JSON line per (vocabulary, logits, parameters); single thread
//
// Logits: "peaked" (normal, sd 3, one token 12 above: a confident next token, as in code) and "flat" (sd 0.5,
// no leader: an uncertain position, the nucleus holds a large part of the vocabulary).
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "engine/sampler.h"

using namespace latent;

namespace {

// The reference: every filter over a sort of the whole vocabulary (descending probability, lower id first).
std::vector<float> whole_sort(const SamplingParams& sp, const std::vector<float>& logits) {
  SamplingParams all = sp;
  all.top_k = 0, all.top_p = 1.0f, all.min_p = 0.0f;
  std::vector<float> probs;
  Sampler(all).distribution(logits, {}, &probs);
  const size_t V = probs.size();
  std::vector<int32_t> order(V);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](int32_t a, int32_t b) { return probs[a] != probs[b] ? probs[a] > probs[b] : a < b; });
  size_t keep = sp.top_k > 0 ? std::min<size_t>(V, static_cast<size_t>(sp.top_k)) : V;
  if (sp.top_p < 1.0f) {
    double cum = 0;
    size_t n = 0;
    while (n < keep) {
      cum += probs[order[n++]];
      if (cum >= sp.top_p) break;
    }
    keep = std::max<size_t>(n, 1);
  }
  if (sp.min_p > 0) {
    size_t n = 1;
    while (n < keep && probs[order[n]] >= sp.min_p * probs[order[0]]) ++n;
    keep = n;
  }
  std::vector<float> want(V, 0.0f);
  double total = 0;
  for (size_t i = 0; i < keep; ++i) total += probs[order[i]];
  for (size_t i = 0; i < keep; ++i) want[order[i]] = static_cast<float>(probs[order[i]] / total);
  return want;
}

}  // namespace

int main(int argc, char** argv) {
  int rows = 40;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--rows") && i + 1 < argc) {
      rows = std::max(1, std::atoi(argv[++i]));
    } else {
      std::fprintf(stderr, "usage: sampler_bench [--rows N]\n  expected --rows N, found '%s'\n", argv[i]);
      return 2;
    }
  }
  struct Case {
    const char* name;
    float temperature;
    int top_k;
    float top_p, min_p;
  };
  const Case cases[] = {{"rank sample: T 0.8, top-k 40, top-p 0.95", 0.8f, 40, 0.95f, 0.0f},
                        {"top-p 0.95", 0.8f, 0, 0.95f, 0.0f},
                        {"top-p 0.9, min-p 0.05", 1.0f, 0, 0.9f, 0.05f},
                        {"min-p 0.1", 1.0f, 0, 1.0f, 0.1f},
                        {"top-k 40", 0.8f, 40, 1.0f, 0.0f}};
  const std::string cpu = bench::cpu_model_name();
  for (const size_t V : {size_t{102400}, size_t{129280}}) {
    for (const bool peaked : {true, false}) {
      std::mt19937 rng(11);
      std::normal_distribution<float> normal(0.f, peaked ? 3.f : 0.5f);
      std::vector<std::vector<float>> logits(static_cast<size_t>(rows), std::vector<float>(V));
      for (auto& row : logits) {
        for (auto& x : row) x = normal(rng);
        if (peaked) row[rng() % V] += 12.f;
      }
      for (const Case& c : cases) {
        SamplingParams sp;
        sp.temperature = c.temperature, sp.top_k = c.top_k, sp.top_p = c.top_p, sp.min_p = c.min_p;
        bool same = true;
        size_t kept = 0;
        std::vector<float> got;
        for (const auto& row : logits) {  // equality first (and a warm-up)
          Sampler(sp).distribution(row, {}, &got);
          same = same && got == whole_sort(sp, row);
          kept += static_cast<size_t>(std::count_if(got.begin(), got.end(), [](float p) { return p > 0; }));
        }
        // Interleaved rounds, the fastest of each: the figure a quiet core gives.
        double ours = 1e30, ref = 1e30;
        volatile int64_t sink = 0;
        for (int round = 0; round < 3; ++round) {
          double t0 = bench::now_s();
          Sampler s(sp);
          for (const auto& row : logits) {
            s.distribution(row, {}, &got);
            sink = sink + static_cast<int64_t>(got[0] > 0);
          }
          ours = std::min(ours, bench::now_s() - t0);
          t0 = bench::now_s();
          for (const auto& row : logits) sink = sink + static_cast<int64_t>(whole_sort(sp, row)[0] > 0);
          ref = std::min(ref, bench::now_s() - t0);
        }
        std::printf("{\"bench\": \"sampler\", \"cpu\": \"%s\", \"vocab\": %zu, \"logits\": \"%s\", \"params\": \"%s\", "
                    "\"rows\": %d, \"mean_kept\": %.1f, \"us_per_row\": %.1f, \"whole_sort_us_per_row\": %.1f, "
                    "\"speedup\": %.2f, \"same\": %s}\n",
                    cpu.c_str(), V, peaked ? "peaked" : "flat", c.name, rows,
                    static_cast<double>(kept) / rows, ours * 1e6 / rows, ref * 1e6 / rows, ref / ours,
                    same ? "true" : "false");
        std::fflush(stdout);
      }
    }
  }
  return 0;
}
