// kernel_bench: the CPU linear op in isolation. GEMV (decode, n = 1) in GB/s of weights streamed per dtype,
// next to the machine's measured read bandwidth; GEMM (prefill shapes of DeepSeek-Coder-V2-Lite) in GFLOP/s.
// Prints one JSON object.
//
//   kernel_bench [--isa scalar|avx2|avx512] [--quick]      (threads: LATENT_THREADS, default all CPUs)
//   kernel_bench --loads [--rounds N]   only the decode stream A/B: 64 expert-sized BF16 matrices (369 MB) read
//                by a plain sum with 256-bit and with 512-bit loads and by each BF16 GEMV body (LATENT_GEMV
//                halves | zmm | rows2), interleaved round by round with the read-bandwidth probe
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include <immintrin.h>

#include <nlohmann/json.hpp>

#include "bench/bench_util.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/ops.h"
#include "kernels/cpu/packed_weights.h"
#include "kernels/cpu/ops_isa.h"
#include "kernels/cpu/thread_pool.h"

using namespace latent;
using namespace latent::cpu;

namespace {

struct Matrix {
  std::vector<uint8_t> bytes;
  std::vector<float> scales;
  WeightView view;
};

Matrix make_matrix(DType dt, int64_t rows, int64_t cols) {
  Matrix m;
  m.bytes.resize(static_cast<size_t>(rows * cols * dtype_size(dt)));
  std::mt19937 rng(7);
  // Small finite values in every dtype: fill 16-bit words with bf16/f16 of N(0, 0.02)-ish, bytes for FP8.
  if (dt == DType::kF32) {
    auto* f = reinterpret_cast<float*>(m.bytes.data());
    for (int64_t i = 0; i < rows * cols; ++i) f[i] = static_cast<float>(static_cast<int>(rng() % 2001) - 1000) * 2e-5f;
  } else if (dt == DType::kF8E4M3) {
    for (auto& b : m.bytes) b = static_cast<uint8_t>(rng() % 0x70) | ((rng() & 1) << 7);
  } else {
    auto* h = reinterpret_cast<uint16_t*>(m.bytes.data());
    for (int64_t i = 0; i < rows * cols; ++i) h[i] = static_cast<uint16_t>(0x3c00 + rng() % 0x300);
  }
  m.view = WeightView{m.bytes.data(), dt, rows, cols};
  if (dt == DType::kF8E4M3) {
    m.scales.assign(static_cast<size_t>(((rows + 127) / 128) * ((cols + 127) / 128)), 0.01f);
    m.view.scale_inv = m.scales.data();
  }
  return m;
}

// Sum of 64-bit words [0, n) with 512-bit loads (the 256-bit twin is bench::sum_words_avx2, the probe's body).
__attribute__((target("avx512f"))) uint64_t sum_words_512(const uint64_t* w, size_t n) {
  __m512i a0 = _mm512_setzero_si512(), a1 = a0;
  size_t k = 0;
  for (; k + 16 <= n; k += 16) {
    a0 = _mm512_add_epi64(a0, _mm512_loadu_si512(w + k));
    a1 = _mm512_add_epi64(a1, _mm512_loadu_si512(w + k + 8));
  }
  alignas(64) uint64_t lanes[8];
  _mm512_store_si512(lanes, _mm512_add_epi64(a0, a1));
  uint64_t s = 0;
  for (uint64_t v : lanes) s += v;
  for (; k < n; ++k) s += w[k];
  return s;
}

// The decode weight stream read five ways, interleaved per round (each followed by a probe pass), so that all
// see the same machine: GB/s mean and best, and the mean's ratio to the probe.
nlohmann::ordered_json loads_ab(ThreadPool& pool, bench::ReadBandwidth& probe, int rounds);

template <typename F>
double best_time(int reps, F&& f) {
  double best = 1e30;
  for (int i = 0; i < reps; ++i) {
    double t0 = bench::now_s();
    f();
    best = std::min(best, bench::now_s() - t0);
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  Isa isa = best_isa();
  bool quick = false, loads = false;
  int rounds = 6;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--quick") quick = true;
    else if (a == "--loads") loads = true;
    else if (a == "--rounds" && i + 1 < argc) rounds = std::max(1, std::atoi(argv[++i]));
    else if (a == "--isa" && i + 1 < argc) {
      std::string v = argv[++i];
      isa = v == "scalar" ? Isa::kScalar : v == "avx2" ? Isa::kAvx2 : Isa::kAvx512;
    } else {
      std::fprintf(stderr, "usage: kernel_bench [--isa scalar|avx2|avx512] [--quick] | --loads [--rounds N]\n");
      return 2;
    }
  }
  if (!isa_available(isa)) {
    std::fprintf(stderr, "kernel_bench: %s is not available on this CPU\n", isa_name(isa));
    return 1;
  }
  ThreadPool& pool = ThreadPool::global();
  const OpTable& ops = op_table(isa);
  bench::ReadBandwidth probe;
  nlohmann::ordered_json out;
  out["bench"] = "kernel_bench";
  out["cpu"] = bench::cpu_model_name();
  out["features"] = cpu_features_string();
  out["isa"] = isa_name(isa);
  out["threads"] = pool.size();
  out["read_bandwidth_GBs"] = probe.measure(pool);
  out["load_average"] = bench::load_average();
  if (loads) {
    out["loads"] = loads_ab(pool, probe, rounds);
    out["load_average_end"] = bench::load_average();
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }

  // GEMV: 64 M weights (64-256 MB, far beyond the caches), n = 1.
  const int64_t rows = 32768, cols = 2048;
  std::vector<float> x(static_cast<size_t>(cols * 4), 0.5f), y(static_cast<size_t>(rows * 4));
  for (DType dt : {DType::kF32, DType::kBF16, DType::kF16, DType::kF8E4M3}) {
    Matrix m = make_matrix(dt, rows, cols);
    for (int64_t n : {1, 4}) {
      // Each GEMV pass is followed by a bandwidth pass: both averages cover the same minutes.
      ops.linear(x.data(), m.view.cols, n, m.view, y.data(), m.view.rows, pool);  // warm
      double tg = 0, tp = 0, best = 1e30;
      const int reps = 6;
      for (int r = 0; r < reps; ++r) {
        double t0 = bench::now_s();
        ops.linear(x.data(), m.view.cols, n, m.view, y.data(), m.view.rows, pool);
        double dt = bench::now_s() - t0;
        tg += dt;
        best = std::min(best, dt);
        tp += probe.pass(pool);
      }
      double gbs = static_cast<double>(m.bytes.size()) * reps / tg / 1e9;
      double bw_near = static_cast<double>(probe.bytes()) * reps / tp / 1e9;
      out["gemv"].push_back({{"dtype", dtype_name(dt)}, {"n", n}, {"rows", rows}, {"cols", cols},
                             {"mean_ms", tg / reps * 1e3}, {"best_ms", best * 1e3}, {"weights_GBs", gbs},
                             {"read_bandwidth_GBs", bw_near}, {"ratio", gbs / bw_near}});
    }
  }

  // Decode and prefill over 64 expert-sized bf16 matrices (1408 x 2048, 369 MB in all, far beyond L3), one
  // after another as a MoE layer reads them: GEMV GB/s and GEMM (48 tokens each) GFLOP/s.
  {
    const int64_t E = quick ? 16 : 64, er = 1408, ec = 2048;
    Matrix all = make_matrix(DType::kBF16, E * er, ec);
    std::vector<float> xe(static_cast<size_t>(48 * ec), 0.25f), ye(static_cast<size_t>(48 * er));
    // The same experts repacked (packed_weights.h) and run by linear() at the fast precision ("tiles"), when
    // this CPU has AVX512-BF16.
    const bool tiles_ok = cpu_features().avx512bf16 && best_isa() == Isa::kAvx512;
    TileBuffer tiles_buf = TileBuffer::allocate(tiles_ok ? bf16_tiles_bytes(E * er, ec) : 0);
    const WeightView tiles_all = tiles_ok ? pack_bf16_tiles(all.view, tiles_buf.data(), &pool) : WeightView{};
    const LinearPrecision before = linear_precision();
    // body 0: the level's exact body (ops.linear); 1: linear() at the fast precision on the row-major weights;
    // 2: the same on the repacked weights.
    for (int body = 0; body < 3; ++body)
    for (int64_t n : {1, 48}) {
      const bool tiles = body == 2;
      if (body > 0 && !tiles_ok) continue;
      set_linear_precision(LinearPrecision::kBf16Activations);
      const int reps = 3;
      double t = 0, tp = 0, cpu = 0;
      for (int r = 0; r < reps; ++r) {
        double c0 = bench::cpu_seconds(), t0 = bench::now_s();
        for (int64_t e = 0; e < E; ++e) {
          if (tiles) {
            linear(xe.data(), n, weight_rows(tiles_all, e * er, (e + 1) * er), ye.data(), &pool);
            continue;
          }
          WeightView v = all.view;
          v.data = all.bytes.data() + e * er * ec * 2;
          v.rows = er;
          if (body == 1) {
            linear(xe.data(), n, v, ye.data(), &pool);
          } else {
            ops.linear(xe.data(), v.cols, n, v, ye.data(), v.rows, pool);
          }
        }
        t += bench::now_s() - t0;
        cpu += bench::cpu_seconds() - c0;
        tp += probe.pass(pool);
      }
      t /= reps;
      cpu /= reps;
      double bw_near = static_cast<double>(probe.bytes()) * reps / tp / 1e9;
      double bytes = static_cast<double>(E * er * ec * 2);
      out["expert_sweep"].push_back({{"n", n}, {"body", body == 0 ? "exact" : body == 1 ? "bf16" : "bf16_tiles"}, {"experts", E}, {"ms", t * 1e3}, {"weights_GBs", bytes / t / 1e9},
                                     {"GFLOPs", 2.0 * n * E * er * ec / t / 1e9},
                                     {"GFLOPs_cpu_normalized", 2.0 * n * E * er * ec / (cpu / pool.size()) / 1e9},
                                     {"read_bandwidth_GBs", bw_near}, {"ratio", bytes / t / 1e9 / bw_near}});
    }
    set_linear_precision(before);
  }

  // GEMM: Lite prefill shapes: attention q_proj (512 tokens), a routed expert's gate/up and down (~48 tokens
  // each: 512 x 6 / 64), the dense layer's MLP.
  struct Shape { const char* what; int64_t n, rows, cols; };
  std::vector<Shape> shapes = {{"q_proj", 512, 3072, 2048},   {"expert_gate", 48, 1408, 2048},
                               {"expert_down", 48, 2048, 1408}, {"dense_up", 512, 10944, 2048},
                               {"dense_down", 512, 2048, 10944}, {"kv_b_proj", 512, 4096, 512},
                               {"n17", 17, 2048, 2048}};
  if (quick) shapes.resize(3);
  for (DType dt : {DType::kBF16, DType::kF32, DType::kF8E4M3}) {
    for (const Shape& s : shapes) {
      Matrix m = make_matrix(dt, s.rows, s.cols);
      std::vector<float> xs(static_cast<size_t>(s.n * s.cols), 0.25f), ys(static_cast<size_t>(s.n * s.rows));
      double c0 = bench::cpu_seconds();
      double t = best_time(3, [&] { ops.linear(xs.data(), m.view.cols, s.n, m.view, ys.data(), m.view.rows, pool); });
      double cpu = (bench::cpu_seconds() - c0) / 3;
      out["gemm"].push_back({{"dtype", dtype_name(dt)}, {"shape", s.what}, {"n", s.n}, {"rows", s.rows},
                             {"cols", s.cols}, {"ms", t * 1e3},
                             {"GFLOPs", 2.0 * s.n * s.rows * s.cols / t / 1e9},
                             {"GFLOPs_cpu_normalized", 2.0 * s.n * s.rows * s.cols / (cpu / pool.size()) / 1e9}});
    }
    if (quick) break;
  }
  // The BF16-activation GEMM (AVX512-BF16; the default precision), BF16 weights only.
  if (cpu_features().avx512bf16 && best_isa() == Isa::kAvx512) {
    set_linear_precision(LinearPrecision::kBf16Activations);
    for (const Shape& s : shapes) {
      Matrix m = make_matrix(DType::kBF16, s.rows, s.cols);
      std::vector<float> xs(static_cast<size_t>(s.n * s.cols), 0.25f), ys(static_cast<size_t>(s.n * s.rows));
      double c0 = bench::cpu_seconds();
      double t = best_time(3, [&] { linear(xs.data(), s.n, m.view, ys.data(), &pool); });
      double cpu = (bench::cpu_seconds() - c0) / 3;
      out["gemm_bf16_activations"].push_back(
          {{"shape", s.what}, {"n", s.n}, {"rows", s.rows}, {"cols", s.cols}, {"ms", t * 1e3},
           {"GFLOPs", 2.0 * s.n * s.rows * s.cols / t / 1e9},
           {"GFLOPs_cpu_normalized", 2.0 * s.n * s.rows * s.cols / (cpu / pool.size()) / 1e9}});
      // The same weights repacked at load (packed_weights.h), as the engine runs them by default.
      TileBuffer buf = TileBuffer::allocate(bf16_tiles_bytes(s.rows, s.cols));
      const WeightView tiles = pack_bf16_tiles(m.view, buf.data(), &pool);
      c0 = bench::cpu_seconds();
      t = best_time(3, [&] { linear(xs.data(), s.n, tiles, ys.data(), &pool); });
      cpu = (bench::cpu_seconds() - c0) / 3;
      out["gemm_bf16_tiles"].push_back(
          {{"shape", s.what}, {"n", s.n}, {"rows", s.rows}, {"cols", s.cols}, {"ms", t * 1e3},
           {"GFLOPs", 2.0 * s.n * s.rows * s.cols / t / 1e9},
           {"GFLOPs_cpu_normalized", 2.0 * s.n * s.rows * s.cols / (cpu / pool.size()) / 1e9}});
    }
    set_linear_precision(LinearPrecision::kExact);
  }
  out["peak_rss_MB"] = bench::peak_rss_mb();
  std::printf("%s\n", out.dump(2).c_str());
  return 0;
}

namespace {

nlohmann::ordered_json loads_ab(ThreadPool& pool, bench::ReadBandwidth& probe, int rounds) {
  const int64_t E = 64, er = 1408, ec = 2048;
  Matrix all = make_matrix(DType::kBF16, E * er, ec);
  const double bytes = static_cast<double>(all.bytes.size());
  std::vector<float> x(static_cast<size_t>(ec), 0.25f), y(static_cast<size_t>(er));
  const char* names[] = {"read_256bit", "read_512bit", "gemv_halves", "gemv_zmm", "gemv_rows2"};
  constexpr int kV = 5;
  const std::string body_before = gemv_body();
  const LinearPrecision precision_before = linear_precision();
  set_linear_precision(LinearPrecision::kBf16Activations);
  std::atomic<uint64_t> sink{0};
  const auto read = [&](bool wide) {  // 256 KiB chunks claimed by the pool's threads
    const int64_t chunk = 256 << 10, n = static_cast<int64_t>(all.bytes.size()) / chunk;
    pool.parallel_for(n, 1, [&](int64_t c0, int64_t c1) {
      const auto* w = reinterpret_cast<const uint64_t*>(all.bytes.data() + c0 * chunk);
      const size_t words = static_cast<size_t>((c1 - c0) * chunk / 8);
      sink += wide ? sum_words_512(w, words) : bench::sum_words(w, 0, words);
    });
  };
  double t[kV] = {}, best[kV], tp = 0;
  std::fill(best, best + kV, 1e30);
  for (int r = 0; r < rounds + 1; ++r) {  // round 0 warms up
    for (int v = 0; v < kV; ++v) {
      if (v >= 2 && !set_gemv_body(v == 2 ? "halves" : v == 3 ? "zmm" : "rows2")) continue;
      const double t0 = bench::now_s();
      if (v < 2) {
        read(v == 1);
      } else {
        for (int64_t e = 0; e < E; ++e) {
          WeightView m = all.view;
          m.data = all.bytes.data() + e * er * ec * 2;
          m.rows = er;
          linear(x.data(), 1, m, y.data(), &pool);
        }
      }
      const double dt = bench::now_s() - t0;
      const double p = probe.pass(pool);
      if (r == 0) continue;
      t[v] += dt;
      best[v] = std::min(best[v], dt);
      tp += p;
    }
  }
  set_gemv_body(body_before.c_str());
  set_linear_precision(precision_before);
  const double probe_gbs = static_cast<double>(probe.bytes()) * rounds * kV / tp / 1e9;
  nlohmann::ordered_json o = {{"matrices", E}, {"rows", er}, {"cols", ec}, {"MB", bytes / 1e6}, {"rounds", rounds},
                              {"read_bandwidth_GBs", probe_gbs}, {"bf16_gemv", bf16_activations_available()},
                              {"checksum", sink.load() & 0xff}};
  for (int v = 0; v < kV; ++v) {
    if (t[v] == 0) continue;
    const double gbs = bytes * rounds / t[v] / 1e9;
    o[names[v]] = {{"GBs", gbs}, {"best_GBs", bytes / best[v] / 1e9}, {"ratio", gbs / probe_gbs}};
  }
  return o;
}

}  // namespace
