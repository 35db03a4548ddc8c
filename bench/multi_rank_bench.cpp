// multi_rank_bench: the model on several in-process CPU ranks (LocalRanks) next to one rank. Per layout
// (tp:ep[:pp]): bytes through rank 0's tensor-parallel Collective per prefill token and per decoded token
// (payload, split by call), bytes sent between pipeline stages (all ranks), weight bytes each rank holds, the
// process's resident memory, prefill and decode tokens/s (wall, and per CPU-second: the machine is shared).
// Prints one JSON object.
//   multi_rank_bench [--model DIR] [--prefill N] [--decode N] [--layouts 1:1,2:2,2:1,4:4,1:1:2,2:2:2]
// Under mpirun (one layout, -np = tp x pp) each process is one rank and prints one JSON line with its own weight
// bytes and resident memory (VmRSS, VmHWM): the memory per rank that in-process ranks cannot separate.
//   mpirun -np 4 multi_rank_bench --layouts 2:2:2
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/bench_util.h"
#include "engine/local_ranks.h"
#include "engine/ranked_model.h"

using namespace latent;

namespace {

nlohmann::json bytes_json(const CollectiveStats& a, const CollectiveStats& b, double tokens) {
  return {{"total_per_token", static_cast<double>(b.total() - a.total()) / tokens},
          {"all_reduce_per_token", static_cast<double>(b.all_reduce_bytes - a.all_reduce_bytes) / tokens},
          {"all_gather_per_token", static_cast<double>(b.all_gather_bytes - a.all_gather_bytes) / tokens},
          {"broadcast_per_token", static_cast<double>(b.broadcast_bytes - a.broadcast_bytes) / tokens},
          {"calls_per_token", static_cast<double>(b.calls - a.calls) / tokens}};
}

// /proc/self/status field (VmRSS, VmHWM) in bytes.
int64_t proc_status_bytes(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::atoll(line.c_str() + field.size() + 1) * 1024;
  }
  return -1;
}

ParallelOptions parse_layout(const std::string& item) {
  ParallelOptions p;
  std::sscanf(item.c_str(), "%d:%d:%d", &p.tp, &p.ep, &p.pp);
  return p;
}

struct Run {
  double prefill_s = 0, prefill_cpu = 0, decode_s = 0, decode_cpu = 0;
};

// Warm-up prefill (buffers at their steady size), then the measured prefill over the same blocks and n_decode
// greedy decodes. `mark(i)` is called before the prefill (0), before the decodes (1) and at the end (2).
Result<Run> run_model(DeepseekModel& m, int64_t n_prefill, int64_t n_decode, const std::function<void(int)>& mark) {
  const int64_t V = m.config().vocab_size;
  auto cache = KvCache::for_model(m.config(), KvCache::blocks_needed(n_prefill + n_decode) + 1);
  if (!cache.ok()) return cache.error();
  std::vector<BlockId> blocks = *cache->allocate(KvCache::blocks_needed(n_prefill + n_decode));
  std::vector<int32_t> prompt;
  for (int64_t i = 0; i < n_prefill; ++i) prompt.push_back(static_cast<int32_t>((i * 7919 + 13) % V));
  SequenceInput warm{prompt, 0, blocks, false};
  if (auto w = m.forward(std::span<const SequenceInput>(&warm, 1), *cache); !w.ok()) return w.error();
  Run run;
  mark(0);
  double t0 = bench::now_s(), c0 = bench::cpu_seconds();
  auto r = m.forward(std::span<const SequenceInput>(&warm, 1), *cache);
  run.prefill_s = bench::now_s() - t0;
  run.prefill_cpu = bench::cpu_seconds() - c0;
  mark(1);
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
  run.decode_s = bench::now_s() - t0;
  run.decode_cpu = bench::cpu_seconds() - c0;
  if (!r.ok()) return r.error();
  mark(2);
  return run;
}

// One process per rank under mpirun: rank 0 runs the model, every rank prints its memory.
int run_mpi(const std::string& dir, const std::string& layout, int64_t n_prefill, int64_t n_decode) {
  const ParallelOptions p = parse_layout(layout);
  ModelOptions mo;
  mo.weights.progress = false;
  mo.load_mtp = false;
  auto ranked = RankedModel::load(dir, mo, p);
  if (!ranked.ok()) {
    std::fprintf(stderr, "multi_rank_bench: %s\n", ranked.error().to_string().c_str());
    return 1;
  }
  nlohmann::json out = {{"bench", "multi_rank_bench"}, {"transport", "mpi"}, {"model", dir},
                        {"tp", p.tp}, {"ep", p.ep}, {"pp", p.pp}, {"rank", (*ranked)->rank()},
                        {"weight_bytes", (*ranked)->weight_bytes()}};
  if (DeepseekModel* m = (*ranked)->driver()) {
    auto run = run_model(*m, n_prefill, n_decode, [](int) {});
    if (!run.ok()) {
      std::fprintf(stderr, "multi_rank_bench: %s\n", run.error().to_string().c_str());
      return 1;
    }
    out["cpu"] = bench::cpu_model_name();
    out["prefill_tok_per_s"] = n_prefill / run->prefill_s;
    out["decode_tok_per_s"] = n_decode / run->decode_s;
  } else if (!(*ranked)->followed().ok()) {
    std::fprintf(stderr, "multi_rank_bench: %s\n", (*ranked)->followed().error().to_string().c_str());
    return 1;
  }
  out["rss_bytes"] = proc_status_bytes("VmRSS");  // a follower: after its last step
  out["peak_rss_bytes"] = proc_status_bytes("VmHWM");
  std::printf("%s\n", out.dump().c_str());
  std::fflush(stdout);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = "models/demo", layouts = "1:1,2:2,2:1,4:4,1:1:2,2:2:2";  // run from the source tree
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
  if (launched_by_mpirun()) return run_mpi(dir, layouts, n_prefill, n_decode);
  nlohmann::json out;
  out["bench"] = "multi_rank_bench";
  out["model"] = dir;
  out["cpu"] = bench::cpu_model_name();
  out["cpus"] = cpu::ThreadPool::default_threads();
  out["load_average_before"] = bench::load_average();
  std::stringstream ls(layouts);
  std::string item;
  while (std::getline(ls, item, ',')) {
    const ParallelOptions p = parse_layout(item);
    ModelOptions mo;
    mo.weights.progress = false;
    mo.load_mtp = false;
    auto ranks = LocalRanks::load(dir, mo, p);
    if (!ranks.ok()) {
      std::fprintf(stderr, "multi_rank_bench: tp %d ep %d pp %d: %s\n", p.tp, p.ep, p.pp, ranks.error().to_string().c_str());
      return 1;
    }
    const LocalRanks& g = **ranks;
    const Collective& comm = g.tp_comm(0);
    CollectiveStats s[3];
    int64_t link[3] = {0, 0, 0};
    auto run = run_model((*ranks)->model(), n_prefill, n_decode, [&](int i) {
      s[i] = comm.stats();
      for (int q = 0; q < g.size(); ++q) link[i] += g.stage_link_bytes(q);
    });
    if (!run.ok()) {
      std::fprintf(stderr, "multi_rank_bench: %s\n", run.error().to_string().c_str());
      return 1;
    }
    nlohmann::json weights = nlohmann::json::array();
    for (int q = 0; q < g.size(); ++q) weights.push_back(g.weight_bytes(q));
    out["layouts"].push_back({{"tp", p.tp},
                              {"ep", p.ep},
                              {"pp", p.pp},
                              {"weight_bytes_per_rank", weights},
                              {"process_rss_bytes", proc_status_bytes("VmRSS")},  // all ranks of this layout
                              {"prefill", {{"tokens", n_prefill},
                                           {"tok_per_s", n_prefill / run->prefill_s},
                                           {"tok_per_cpu_s", n_prefill / run->prefill_cpu},
                                           {"bytes", bytes_json(s[0], s[1], static_cast<double>(n_prefill))},
                                           {"stage_link_bytes_per_token", static_cast<double>(link[1] - link[0]) / n_prefill}}},
                              {"decode", {{"tokens", n_decode},
                                          {"tok_per_s", n_decode / run->decode_s},
                                          {"tok_per_cpu_s", n_decode / run->decode_cpu},
                                          {"bytes", bytes_json(s[1], s[2], static_cast<double>(n_decode))},
                                          {"stage_link_bytes_per_token", static_cast<double>(link[2] - link[1]) / n_decode}}}});
  }
  out["load_average_after"] = bench::load_average();
  std::printf("%s\n", out.dump(2).c_str());
  return 0;
}
