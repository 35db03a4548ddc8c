// engine_bench: DeepseekModel end to end on the CPU. Prefill tok/s (one sequence of --prefill tokens, logits
// for the last only, after a warm-up prefill of the same length), decode tok/s at context depths (default 0
// and 2048), weight bytes read per decoded token and the implied GB/s, next to the machine's read bandwidth
// measured right beside each phase with the same threads, and their ratio (the decode roofline). Prints one
// JSON object.
//
//   engine_bench --model DIR [--prefill 512] [--decode 16] [--depths 0,2048] [--no-prefault]
//                [--precision exact|bf16]      (default bf16: BF16 activations, vdpbf16ps; see kernels/cpu/ops.h)
//                [--prefill-repeat R]          R measured prefills, the median's figures (and each run's rate)
//   engine_bench --probe-only     the read-bandwidth probe alone (bench/ik_compare.sh runs it between engines)
//   (threads: LATENT_THREADS, default all CPUs; make a model with tools/make_checkpoint)
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/bench_util.h"
#include "engine/deepseek_model.h"
#include "engine/kv_cache.h"
#include "engine/moe.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/ops.h"
#include "kernels/cpu/ops_isa.h"
#include "kernels/cpu/thread_pool.h"

using namespace latent;

namespace {

// Bytes of weights one decoded token reads: every tensor of the main model once, except routed experts
// (top-k of n_routed per MoE layer), the embedding table (one row) and the MTP module (not run).
double weight_bytes_per_token(const DeepseekModel& model) {
  const ModelConfig& c = model.config();
  const Weights& w = model.weights();
  double total = 0;
  for (const std::string& name : w.names()) {
    const TensorInfo* t = w.find(name);
    double bytes = static_cast<double>(t->nbytes);
    if (name == "model.embed_tokens.weight") {
      total += bytes / static_cast<double>(c.vocab_size);
      continue;
    }
    const std::string prefix = "model.layers.";
    if (name.rfind(prefix, 0) == 0) {
      int64_t layer = std::stoll(name.substr(prefix.size()));
      if (layer >= c.num_hidden_layers) continue;  // MTP
      if (name.find(".mlp.experts.") != std::string::npos) {
        bytes *= static_cast<double>(c.num_experts_per_tok) / static_cast<double>(c.n_routed_experts);
      }
    }
    total += bytes;
  }
  return total;
}

std::vector<int32_t> tokens(int64_t n, int64_t vocab, uint32_t seed) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  uint64_t s = seed * 2654435761ull + 1;
  for (auto& x : t) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    x = static_cast<int32_t>((s >> 33) % static_cast<uint64_t>(vocab));
  }
  return t;
}

struct Sequence {
  KvCache& cache;
  std::vector<BlockId> blocks;
  int64_t n_cached = 0;
  Sequence(KvCache& c, int64_t max_tokens) : cache(c) {
    auto b = c.allocate(KvCache::blocks_needed(max_tokens));
    if (!b.ok()) {
      std::fprintf(stderr, "engine_bench: %s\n", b.error().to_string().c_str());
      std::exit(1);
    }
    blocks = *b;
  }
  ~Sequence() {
    for (BlockId b : blocks) (void)cache.unref(b);
  }
  ForwardResult feed(DeepseekModel& m, const std::vector<int32_t>& toks) {
    SequenceInput in{toks, n_cached, blocks, false};
    auto r = m.forward(std::span<const SequenceInput>(&in, 1), cache);
    if (!r.ok()) {
      std::fprintf(stderr, "engine_bench: forward: %s\n", r.error().to_string().c_str());
      std::exit(1);
    }
    n_cached += static_cast<int64_t>(toks.size());
    return std::move(*r);
  }
};

int32_t argmax(const float* x, int64_t n) {
  int64_t b = 0;
  for (int64_t i = 1; i < n; ++i)
    if (x[i] > x[b]) b = i;
  return static_cast<int32_t>(b);
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir;
  int64_t n_prefill = 512, n_decode = 16, prefill_repeat = 1;
  std::vector<int64_t> depths = {0, 2048};
  bool prefault = true;
  bool repack = true;  // ModelOptions::repack_weights (BF16 tiles for the vdpbf16ps kernels at the fast precision)
  bool probe_only = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "engine_bench: expected a value after %s\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--model") dir = value();
    else if (a == "--prefill") n_prefill = std::stoll(value());
    else if (a == "--decode") n_decode = std::stoll(value());
    else if (a == "--prefill-repeat") prefill_repeat = std::max<int64_t>(1, std::stoll(value()));
    else if (a == "--no-prefault") prefault = false;
    else if (a == "--no-repack") repack = false;
    else if (a == "--probe-only") probe_only = true;
    else if (a == "--precision") {
      std::string v = value();
      auto p = cpu::parse_linear_precision(v);
      if (!p) {
        std::fprintf(stderr, "engine_bench: --precision: expected exact or bf16, found '%s'\n", v.c_str());
        return 2;
      }
      cpu::set_linear_precision(*p);
    }
    else if (a == "--depths") {
      depths.clear();
      std::stringstream ss(value());
      std::string d;
      while (std::getline(ss, d, ',')) depths.push_back(std::stoll(d));
    } else {
      std::fprintf(stderr, "usage: engine_bench --model DIR [--prefill N] [--decode N] [--depths 0,2048] "
                           "[--no-prefault] [--no-repack] [--precision exact|bf16] [--prefill-repeat R] | --probe-only\n");
      return 2;
    }
  }
  if (probe_only) {
    cpu::ThreadPool& pool = cpu::ThreadPool::global();
    bench::ReadBandwidth probe;
    probe.measure(pool, 1);  // first touch of the buffer's pages
    nlohmann::ordered_json o = {{"bench", "engine_bench --probe-only"}, {"cpu", bench::cpu_model_name()},
                                {"threads", pool.size()}, {"read_bandwidth_GBs", probe.measure(pool, 10)},
                                {"load_average", bench::load_average()}};
    std::printf("%s\n", o.dump().c_str());
    return 0;
  }
  if (dir.empty()) {
    std::fprintf(stderr, "engine_bench: --model DIR is required (see tools/make_checkpoint)\n");
    return 2;
  }
  cpu::ThreadPool& pool = cpu::ThreadPool::global();
  nlohmann::ordered_json out;
  out["bench"] = "engine_bench";
  out["model"] = dir;
  out["cpu"] = bench::cpu_model_name();
  out["features"] = cpu::cpu_features_string();
  out["isa"] = cpu::isa_name(cpu::best_isa());
  out["threads"] = pool.size();
  // What BF16 weights were multiplied with (--precision, else LATENT_LINEAR_PRECISION, else the default bf16).
  out["linear_precision"] = cpu::linear_precision_in_effect();
  out["linear_precision_default"] = "bf16";
  out["kv_cache_dtype"] = dtype_name(KvCache::dtype_for_precision());
  out["gemv_body"] = cpu::gemv_body();
  out["mla_prefill"] = cpu::mla_prefill_name(cpu::mla_prefill());  // LATENT_MLA_PREFILL: auto | absorbed | decompressed
  out["moe_decode"] = moe_decode_name(moe_decode());  // LATENT_MOE_DECODE: grouped | experts  // the decode GEMV's weight loads (LATENT_GEMV: halves | zmm | rows2)

  double t0 = bench::now_s();
  ModelOptions mo;
  mo.weights.progress = false;
  mo.weights.prefault = prefault;
  mo.load_mtp = false;
  mo.repack_weights = repack;
  auto loaded = DeepseekModel::load(dir, mo);
  if (!loaded.ok()) {
    std::fprintf(stderr, "engine_bench: %s\n", loaded.error().to_string().c_str());
    return 1;
  }
  DeepseekModel& model = **loaded;
  const ModelConfig& c = model.config();
  out["load_s"] = bench::now_s() - t0;
  // Repacked BF16 weights (engine/repack.h): their bytes, and the RSS after load, which holds the tiles instead
  // of the mapped rows (peak_rss_MB at the end: not the two added up).
  out["weights_layout"] = model.repacked_bytes() > 0 ? "bf16_tiles" : "row_major";
  out["repacked_GB"] = static_cast<double>(model.repacked_bytes()) / 1e9;
  out["mapping_released_GB"] = static_cast<double>(model.weights().released_bytes()) / 1e9;
  out["rss_after_load_MB"] = bench::rss_mb();
  out["layers"] = c.num_hidden_layers;
  out["weights_GB"] = static_cast<double>(model.weights().total_bytes()) / 1e9;
  const double bytes_per_token = weight_bytes_per_token(model);
  out["weight_bytes_per_decoded_token"] = bytes_per_token;

  int64_t max_depth = 0;
  for (int64_t d : depths) max_depth = std::max(max_depth, d);
  const int64_t max_tokens = std::max(n_prefill, max_depth + n_decode) + 1;
  auto cache = KvCache::for_model(c, 2 * KvCache::blocks_needed(max_tokens) + 2, KvCache::dtype_for_precision());
  if (!cache.ok()) {
    std::fprintf(stderr, "engine_bench: %s\n", cache.error().to_string().c_str());
    return 1;
  }
  bench::ReadBandwidth probe;

  // Warm-up: one prefill of the measured length (other tokens), so that the model's activation buffers, the
  // per-thread scratch and the page cache are at their steady size, as in a daemon that has served a request.
  // Its rate is reported as prefill.first_tok_per_s: the first-touch page faults of those buffers cost
  // 0-40% on top on this machine.
  double first_tok_per_s = 0;
  {
    Sequence s(*cache, n_prefill + 8);
    double ts = bench::now_s();
    s.feed(model, tokens(n_prefill, c.vocab_size, 1));
    first_tok_per_s = static_cast<double>(n_prefill) / (bench::now_s() - ts);
    s.feed(model, {1});
  }

  {  // prefill: --prefill-repeat R runs it R times (other tokens each time); the fields are the median run's
    double bw_before = probe.measure(pool);
    std::vector<std::pair<double, double>> runs;  // (seconds, cpu seconds)
    for (int64_t rep = 0; rep < prefill_repeat; ++rep) {
      Sequence s(*cache, n_prefill);
      auto toks = tokens(n_prefill, c.vocab_size, 2 + 1000 * static_cast<uint32_t>(rep));
      double ts = bench::now_s(), cs = bench::cpu_seconds();
      s.feed(model, toks);
      runs.emplace_back(bench::now_s() - ts, bench::cpu_seconds() - cs);
    }
    double bw_after = probe.measure(pool);
    std::vector<double> rates, cpu_rates;
    for (auto [t, cpu] : runs) {
      rates.push_back(static_cast<double>(n_prefill) / t);
      cpu_rates.push_back(static_cast<double>(n_prefill) * pool.size() / cpu);
    }
    auto by_time = runs;
    std::sort(by_time.begin(), by_time.end());
    const auto [dt, dc] = by_time[by_time.size() / 2];
    out["prefill"] = {{"tokens", n_prefill},
                      {"seconds", dt},
                      {"tok_per_s", static_cast<double>(n_prefill) / dt},
                      {"cpu_seconds", dc},
                      {"tok_per_s_cpu_normalized", static_cast<double>(n_prefill) * pool.size() / dc},
                      {"first_tok_per_s", first_tok_per_s},
                      {"read_bandwidth_GBs", (bw_before + bw_after) / 2},
                      {"load_average", bench::load_average()}};
    if (prefill_repeat > 1) {
      out["prefill"]["runs_tok_per_s"] = rates;
      out["prefill"]["runs_tok_per_s_cpu_normalized"] = cpu_rates;
    }
  }

  for (int64_t depth : depths) {
    Sequence s(*cache, depth + n_decode + 1);
    double fill_s = 0;
    int32_t next = 1;
    if (depth > 0) {
      double ts = bench::now_s();
      for (int64_t done = 0; done < depth; done += 512) {
        auto r = s.feed(model, tokens(std::min<int64_t>(512, depth - done), c.vocab_size, 3 + static_cast<uint32_t>(done)));
        next = argmax(r.logits_row(0), c.vocab_size);
      }
      fill_s = bench::now_s() - ts;
    }
    // Each decode step is followed by one bandwidth pass, so both means cover the same stretch of time.
    std::vector<double> step_ms;
    double dt = 0, dc = 0, tp = 0;
    for (int64_t i = 0; i < n_decode; ++i) {
      double t1 = bench::now_s(), c1 = bench::cpu_seconds();
      auto r = s.feed(model, {next});
      next = argmax(r.logits_row(0), c.vocab_size);
      const double step = bench::now_s() - t1;
      dc += bench::cpu_seconds() - c1;
      dt += step;
      step_ms.push_back(step * 1e3);
      tp += probe.pass(pool);
    }
    double bw = static_cast<double>(probe.bytes()) * static_cast<double>(n_decode) / tp / 1e9;
    double tps = static_cast<double>(n_decode) / dt;
    double kv_bytes = static_cast<double>(depth) * static_cast<double>(c.kv_cache_dim() * static_cast<int64_t>(cache->element_size()) * c.num_hidden_layers);
    double gbs = bytes_per_token * tps / 1e9;
    std::sort(step_ms.begin(), step_ms.end());
    nlohmann::ordered_json d = {{"context", depth},
                                {"tokens", n_decode},
                                {"tok_per_s", tps},
                                {"median_step_ms", step_ms[step_ms.size() / 2]},
                                {"weight_GBs", gbs},
                                {"kv_cache_bytes_read_per_token", kv_bytes},
                                {"read_bandwidth_GBs", bw},
                                {"ratio_to_bandwidth", gbs / bw},
                                {"cpu_seconds", dc},
                                {"tok_per_s_cpu_normalized", static_cast<double>(n_decode) * pool.size() / dc},
                                {"load_average", bench::load_average()}};
    if (depth > 0) d["context_fill_tok_per_s"] = static_cast<double>(depth) / fill_s;
    out["decode"].push_back(d);
  }
  out["peak_rss_MB"] = bench::peak_rss_mb();
  std::printf("%s\n", out.dump(2).c_str());
  return 0;
}
