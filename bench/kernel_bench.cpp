// kernel_bench: the CPU linear op in isolation. GEMV (decode, n = 1) in GB/s of weights streamed per dtype,
// next to the machine's measured read bandwidth; GEMM (prefill shapes of DeepSeek-Coder-V2-Lite) in GFLOP/s.
// Prints one JSON object.
//
//   kernel_bench [--isa scalar|avx2|avx512] [--quick]      (threads: LATENT_THREADS, default all CPUs)
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/bench_util.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/ops.h"
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
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--quick") quick = true;
    else if (a == "--isa" && i + 1 < argc) {
      std::string v = argv[++i];
      isa = v == "scalar" ? Isa::kScalar : v == "avx2" ? Isa::kAvx2 : Isa::kAvx512;
    } else {
      std::fprintf(stderr, "usage: kernel_bench [--isa scalar|avx2|avx512] [--quick]\n");
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
    for (int64_t n : {1, 48}) {
      const int reps = 3;
      double t = 0, tp = 0, cpu = 0;
      for (int r = 0; r < reps; ++r) {
        double c0 = bench::cpu_seconds(), t0 = bench::now_s();
        for (int64_t e = 0; e < E; ++e) {
          WeightView v = all.view;
          v.data = all.bytes.data() + e * er * ec * 2;
          v.rows = er;
          ops.linear(xe.data(), v.cols, n, v, ye.data(), v.rows, pool);
        }
        t += bench::now_s() - t0;
        cpu += bench::cpu_seconds() - c0;
        tp += probe.pass(pool);
      }
      t /= reps;
      cpu /= reps;
      double bw_near = static_cast<double>(probe.bytes()) * reps / tp / 1e9;
      double bytes = static_cast<double>(E * er * ec * 2);
      out["expert_sweep"].push_back({{"n", n}, {"experts", E}, {"ms", t * 1e3}, {"weights_GBs", bytes / t / 1e9},
                                     {"GFLOPs", 2.0 * n * E * er * ec / t / 1e9},
                                     {"GFLOPs_cpu_normalized", 2.0 * n * E * er * ec / (cpu / pool.size()) / 1e9},
                                     {"read_bandwidth_GBs", bw_near}, {"ratio", bytes / t / 1e9 / bw_near}});
    }
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
    }
    set_linear_precision(LinearPrecision::kExact);
  }
  out["peak_rss_MB"] = bench::peak_rss_mb();
  std::printf("%s\n", out.dump(2).c_str());
  return 0;
}
