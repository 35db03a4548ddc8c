// multi_rank_bench: the model on several in-process CPU ranks (LocalRanks) next to one rank. Per layout
// (--tp/--ep): bytes through rank 0's Collective per prefill token and per decoded token (payload, split by
// call), weight bytes each rank holds, prefill and decode tokens/s (wall, and per CPU-second: the machine is
// shared). Prints one JSON object.
//   multi_rank_bench [--model DIR] [--prefill N] [--decode N] [--layouts 1:1,2:2,2:1,4:4]
#include <algorithm>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/bench_util.h"
#include "engine/local_ranks.h"

using namespace latent;

namespace {

nlohmann::json bytes_json(const CollectiveStats& a, const CollectiveStats& b, double tokens) {
  return {{"total_per_token", static_cast<double>(b.total() - a.total()) / tokens},
          {"all_reduce_per_token", static_cast<double>(b.all_reduce_bytes - a.all_reduce_bytes) / tokens},
          {"all_gather_per_token", static_cast<double>(b.all_gather_bytes - a.all_gather_bytes) / tokens},
          {"broadcast_per_token", static_cast<double>(b.broadcast_bytes - a.broadcast_bytes) / tokens},
          {"calls_per_token", static_cast<double>(b.calls - a.calls) / tokens}};
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = "models/demo", layouts = "1:1,2:2,2:1,4:4";  // run from the source tree
  int64_t n_prefill = 64, n_decode = 32;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--model") dir = argv[i + 1];
    else if (a == "--prefill") n_prefill = std::atoll(argv[i + 1]);
    else if (a == "--decode") n_decode = std::atoll(argv[i + 1]);
    else if (a == "--layouts") layouts = argv[i + 1];
    else {
      std::fprintf(stderr, "multi_rank_bench: unknown option %s\n", a.c_str());
      return 2;
    }
  }
  nlohmann::json out;
  out["bench"] = "multi_rank_bench";
  out["model"] = dir;
  out["cpu"] = bench::cpu_model_name();
  out["cpus"] = cpu::ThreadPool::default_threads();
  out["load_average_before"] = bench::load_average();
  std::stringstream ls(layouts);
  std::string item;
  while (std::getline(ls, item, ',')) {
    const auto colon = item.find(':');
    ParallelOptions p{std::atoi(item.substr(0, colon).c_str()), std::atoi(item.substr(colon + 1).c_str())};
    ModelOptions mo;
    mo.weights.progress = false;
    mo.load_mtp = false;
    auto ranks = LocalRanks::load(dir, mo, p);
    if (!ranks.ok()) {
      std::fprintf(stderr, "multi_rank_bench: tp %d ep %d: %s\n", p.tp, p.ep, ranks.error().to_string().c_str());
      return 1;
    }
    DeepseekModel& m = (*ranks)->model();
    const int64_t V = m.config().vocab_size;
    auto cache = KvCache::for_model(m.config(), KvCache::blocks_needed(n_prefill + n_decode) + 1);
    std::vector<BlockId> blocks = *cache->allocate(KvCache::blocks_needed(n_prefill + n_decode));
    std::vector<int32_t> prompt;
    for (int64_t i = 0; i < n_prefill; ++i) prompt.push_back(static_cast<int32_t>((i * 7919 + 13) % V));
    const Collective& comm = (*ranks)->comm(0);
    // Warm-up prefill (buffers at their steady size), then the measured one over the same blocks.
    SequenceInput warm{prompt, 0, blocks, false};
    (void)m.forward(std::span<const SequenceInput>(&warm, 1), *cache);
    CollectiveStats s0 = comm.stats();
    double t0 = bench::now_s(), c0 = bench::cpu_seconds();
    auto r = m.forward(std::span<const SequenceInput>(&warm, 1), *cache);
    const double prefill_s = bench::now_s() - t0, prefill_cpu = bench::cpu_seconds() - c0;
    CollectiveStats s1 = comm.stats();
    int32_t next = 0;
    if (r.ok()) next = static_cast<int32_t>(std::max_element(r->logits.begin(), r->logits.end()) - r->logits.begin());
    t0 = bench::now_s();
    c0 = bench::cpu_seconds();
    for (int64_t j = 0; j < n_decode && r.ok(); ++j) {
      std::vector<int32_t> tok = {next};
      SequenceInput in{tok, n_prefill + j, blocks, false};
      r = m.forward(std::span<const SequenceInput>(&in, 1), *cache);
      if (r.ok()) next = static_cast<int32_t>(std::max_element(r->logits.begin(), r->logits.end()) - r->logits.begin());
    }
    const double decode_s = bench::now_s() - t0, decode_cpu = bench::cpu_seconds() - c0;
    if (!r.ok()) {
      std::fprintf(stderr, "multi_rank_bench: %s\n", r.error().to_string().c_str());
      return 1;
    }
    CollectiveStats s2 = comm.stats();
    nlohmann::json weights = nlohmann::json::array();
    for (int q = 0; q < (*ranks)->size(); ++q) weights.push_back((*ranks)->weight_bytes(q));
    out["layouts"].push_back({{"tp", p.tp},
                              {"ep", p.ep},
                              {"weight_bytes_per_rank", weights},
                              {"prefill", {{"tokens", n_prefill},
                                           {"tok_per_s", n_prefill / prefill_s},
                                           {"tok_per_cpu_s", n_prefill / prefill_cpu},
                                           {"bytes", bytes_json(s0, s1, static_cast<double>(n_prefill))}}},
                              {"decode", {{"tokens", n_decode},
                                          {"tok_per_s", n_decode / decode_s},
                                          {"tok_per_cpu_s", n_decode / decode_cpu},
                                          {"bytes", bytes_json(s1, s2, static_cast<double>(n_decode))}}}});
  }
  out["load_average_after"] = bench::load_average();
  std::printf("%s\n", out.dump(2).c_str());
  return 0;
}
