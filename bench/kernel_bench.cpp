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
  bench::ReadBandwidth probe(size_t{1} << 30);
  nlohmann::ordered_json out;
  out["bench"] = "kernel_bench";
  out["cpu"] = bench::cpu_model_name();
  out["features"] = cpu_features_string();
  out["isa"] = isa_name(isa);
  out["threads"] = pool.size();
  out["read_bandwidth_GBs"] = probe.measure(pool);

  // GEMV: 64 M weights (64-256 MB, far beyond the caches), n = 1.
  const int64_t rows = quick ? 8192 : 32768, cols = 2048;
  std::vector<float> x(static_cast<size_t>(cols * 4), 0.5f), y(static_cast<size_t>(rows * 4));
  for (DType dt : {DType::kF32, DType::kBF16, DType::kF16, DType::kF8E4M3}) {
    Matrix m = make_matrix(dt, rows, cols);
    for (int64_t n : {1, 4}) {
      double t = best_time(quick ? 3 : 8, [&] { ops.linear(x.data(), n, m.view, y.data(), pool); });
      double bw_near = probe.measure(pool, 2);
      double gbs = static_cast<double>(m.bytes.size()) / t / 1e9;
      out["gemv"].push_back({{"dtype", dtype_name(dt)}, {"n", n}, {"rows", rows}, {"cols", cols},
                             {"ms", t * 1e3}, {"weights_GBs", gbs}, {"read_bandwidth_GBs", bw_near},
                             {"ratio", gbs / bw_near}});
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
      double t = best_time(3, [&] { ops.linear(xs.data(), s.n, m.view, ys.data(), pool); });
      out["gemm"].push_back({{"dtype", dtype_name(dt)}, {"shape", s.what}, {"n", s.n}, {"rows", s.rows},
                             {"cols", s.cols}, {"ms", t * 1e3},
                             {"GFLOPs", 2.0 * s.n * s.rows * s.cols / t / 1e9}});
    }
    if (quick) break;
  }
  out["peak_rss_MB"] = bench::peak_rss_mb();
  std::printf("%s\n", out.dump(2).c_str());
  return 0;
}
