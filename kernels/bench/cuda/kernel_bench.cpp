// CUDA kernel bench (llm.c dev/cuda habit): every kernel is first checked against its CPU reference on the
// same data, then timed with CUDA events; results as JSON lines (stdout, and --out FILE as one JSON array)
// with GB/s against the measured device-to-device copy bandwidth and TFLOP/s against a measured cuBLAS
// bf16 GEMM. Shapes are DeepSeek-Coder-V2-Lite's (d 2048, 16 heads, kv_lora 512, rope 64, 64 experts of
// 1408, top-6, vocab 102400) plus one V3 FP8 GEMV.
//
//   build/bin/cuda_kernel_bench [--out results.json] [--quick]
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/ops.h"
#include "kernels/cuda/device.h"
#include "kernels/cuda/memory.h"
#include "kernels/cuda/mla.h"
#include "kernels/cuda/moe.h"
#include "kernels/cuda/ops.h"

namespace latent::cuda {
namespace {

// Fast deterministic fill (the bench makes ~1 GB of random weights; mt19937 would dominate its run time).
struct Rng {
  uint64_t s;
  float next(float lo, float hi) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return lo + (hi - lo) * static_cast<float>(s >> 40) / static_cast<float>(1ull << 24);
  }
};

std::vector<float> randv(int64_t n, uint64_t seed, float lo = -1.f, float hi = 1.f) {
  Rng r{seed};
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = r.next(lo, hi);
  return v;
}

struct HostWeight {
  std::vector<uint8_t> bytes;
  std::vector<float> scales;
  cpu::WeightView view;
  HostWeight(DType dt, int64_t rows, int64_t cols, uint64_t seed) {
    Rng r{seed};
    bytes.resize(static_cast<size_t>(rows * cols * dtype_size(dt)));
    for (int64_t i = 0; i < rows * cols; ++i) {
      const float f = r.next(-0.05f, 0.05f);
      if (dt == DType::kBF16) reinterpret_cast<uint16_t*>(bytes.data())[i] = f32_to_bf16(f);
      else if (dt == DType::kF32) reinterpret_cast<float*>(bytes.data())[i] = f;
      else bytes[static_cast<size_t>(i)] = f32_to_fp8e4m3(f * 4000.f);
    }
    view = cpu::WeightView{bytes.data(), dt, rows, cols};
    if (dt == DType::kF8E4M3) {
      scales = randv(((rows + 127) / 128) * ((cols + 127) / 128), seed + 1, 0.5f / 4000.f, 1.5f / 4000.f);
      view.scale_inv = scales.data();
    }
  }
};

// NaN when a holds a NaN where b does not (std::max would drop it), infinity when the sizes differ.
double rel_err(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return INFINITY;
  double m = 1e-30, e = 0;
  for (size_t i = 0; i < b.size(); ++i) m = std::max(m, static_cast<double>(std::fabs(b[i])));
  for (size_t i = 0; i < b.size(); ++i) {
    const double d = std::fabs(static_cast<double>(a[i]) - b[i]);
    if (std::isnan(d)) return d;  // kept: a later finite difference must not replace it
    e = std::max(e, d);
  }
  return e / m;
}

void die_if(const Status& s, const char* what) {
  if (!s.ok()) {
    std::fprintf(stderr, "%s: %s\n", what, s.error().to_string().c_str());
    std::exit(1);
  }
}

// Mean microseconds of fn over iters launches after warm-up, on the legacy stream.
double time_us(const std::function<void()>& fn, int iters) {
  for (int i = 0; i < 3; ++i) fn();
  cudaEvent_t a, b;
  cudaEventCreate(&a), cudaEventCreate(&b);
  cudaEventRecord(a);
  for (int i = 0; i < iters; ++i) fn();
  cudaEventRecord(b);
  cudaEventSynchronize(b);
  float ms = 0;
  cudaEventElapsedTime(&ms, a, b);
  cudaEventDestroy(a), cudaEventDestroy(b);
  return 1000.0 * ms / iters;
}

struct Report {
  double peak_gbps = 0, peak_tflops = 0;
  std::vector<std::string> rows;
  void add(const std::string& name, const std::string& shape, double us, double bytes, double flops, double err,
           double tol) {
    const double gbps = bytes / us / 1e3, tflops = flops / us / 1e6;
    char e[32] = "null";  // NaN or infinity (a NaN output, a size mismatch) is not JSON: null, and not ok
    if (std::isfinite(err)) std::snprintf(e, sizeof e, "%.2e", err);
    char buf[640];
    std::snprintf(buf, sizeof buf,
                  "{\"kernel\": \"%s\", \"shape\": \"%s\", \"us\": %.2f, \"GBps\": %.1f, \"pct_peak_bw\": %.1f, "
                  "\"TFLOPs\": %.2f, \"pct_peak_flops\": %.1f, \"max_rel_err\": %s, \"tol\": %.0e, \"ok\": %s}",
                  name.c_str(), shape.c_str(), us, gbps, peak_gbps > 0 ? 100 * gbps / peak_gbps : 0, tflops,
                  peak_tflops > 0 ? 100 * tflops / peak_tflops : 0, e, tol, err <= tol ? "true" : "false");
    std::printf("%s\n", buf);
    std::fflush(stdout);
    rows.push_back(buf);
  }
};

// Device-to-device copy of 1 GiB: read + write bytes per second.
double measure_copy_gbps() {
  const size_t bytes = size_t{1} << 30;
  DeviceArray<uint8_t> a(static_cast<int64_t>(bytes)), b(static_cast<int64_t>(bytes));
  const double us = time_us([&] { cudaMemcpyAsync(b.data(), a.data(), bytes, cudaMemcpyDeviceToDevice); }, 10);
  return 2.0 * static_cast<double>(bytes) / us / 1e3;
}

double measure_bf16_tflops(cublasHandle_t h) {
  const int n = 8192;
  DeviceArray<uint16_t> a(int64_t{n} * n), b(int64_t{n} * n);
  DeviceArray<float> c(int64_t{n} * n);
  // 0x3c3c = 0.0115 in bf16: non-zero data (zeros run cooler and faster, inflating the peak)
  cudaMemset(a.data(), 0x3c, size_t{2} * n * n), cudaMemset(b.data(), 0x3c, size_t{2} * n * n);
  const float one = 1.f, zero = 0.f;
  const double us = time_us([&] {
    cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, n, n, n, &one, a.data(), CUDA_R_16BF, n, b.data(), CUDA_R_16BF, n,
                 &zero, c.data(), CUDA_R_32F, n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
  }, 10);
  return 2.0 * n * n * double(n) / us / 1e6;
}

void bench_linear(Report& rep, Blas& blas, DeviceArena& arena, const char* name, DType dt, int64_t rows,
                  int64_t cols, int64_t n, int iters) {
  HostWeight w(dt, rows, cols, static_cast<uint64_t>(rows * 31 + cols));
  auto dw = arena.upload(w.view);
  die_if(dw.ok() ? Status() : dw.error(), "upload");
  const std::vector<float> x = randv(n * cols, 5);
  std::vector<float> want(static_cast<size_t>(n * rows));
  cpu::linear(x.data(), n, w.view, want.data());
  DeviceArray<float> dx(x), dy(n * rows);
  die_if(linear(blas, dx.data(), n, *dw, dy.data()), name);
  const double err = rel_err(dy.to_host(), want);
  const double us = time_us([&] { (void)linear(blas, dx.data(), n, *dw, dy.data()); }, iters);
  const double bytes = static_cast<double>(weight_bytes(w.view)) + 4.0 * n * (rows + cols);
  const bool tc = n >= blas.tensor_core_min_tokens && dt != DType::kF8E4M3;
  char shape[96];
  std::snprintf(shape, sizeof shape, "%s [%lld, %lld] x n=%lld", dtype_name(dt), (long long)rows, (long long)cols, (long long)n);
  rep.add(name, shape, us, bytes, 2.0 * n * rows * cols, err, tc ? 2e-2 : 1e-4);
}

void bench_mla(Report& rep, int64_t batch, int64_t ctx, int iters) {
  const int64_t H = 16, nope = 128, R = 512, P = 64, D = R + P, q_stride = H * (nope + P);
  const int64_t blocks_per = (ctx + 63) / 64, n_blocks = batch * blocks_per;
  const std::vector<float> cache = randv(n_blocks * 64 * D, 11);  // one layer
  std::vector<int32_t> tables(static_cast<size_t>(n_blocks)), lens(static_cast<size_t>(batch), static_cast<int32_t>(ctx));
  for (int64_t i = 0; i < n_blocks; ++i) tables[static_cast<size_t>(i)] = static_cast<int32_t>((i * 7919) % n_blocks);
  const std::vector<float> q = randv(batch * q_stride, 12), q_lat = randv(batch * H * R, 13, -0.1f, 0.1f);
  DeviceArray<float> dc(cache), dq(q), dql(q_lat), out(batch * H * R);
  DeviceArray<int32_t> dt(tables), dl(lens);
  MlaAttentionArgs a;
  a.q_lat = dql.data(), a.q = dq.data(), a.q_stride = q_stride, a.nope = nope, a.n = batch, a.n_heads = H;
  a.R = R, a.P = P, a.scale = 1.f / std::sqrt(192.f), a.ctx_lens = dl.data(), a.max_ctx = ctx, a.o_lat = out.data();
  const PagedLatentCache pc{dc.data(), 64 * D, dt.data(), blocks_per};
  DeviceArray<float> ws(mla_attention_workspace(a));
  die_if(mla_attention(a, pc, ws.data(), nullptr), "mla_attention");
  // CPU reference for the first row.
  std::vector<const void*> bp;
  for (int64_t b = 0; b < blocks_per; ++b) bp.push_back(cache.data() + tables[static_cast<size_t>(b)] * 64 * D);
  std::vector<float> want(static_cast<size_t>(H * R));
  cpu::mla_attention(q_lat.data(), q.data(), q_stride, 1, H, nope, R, P, ctx - 1, bp.data(), DType::kF32, 64, a.scale, want.data());
  std::vector<float> got = out.to_host();
  got.resize(want.size());
  const double err = rel_err(got, want);
  const double us = time_us([&] { (void)mla_attention(a, pc, ws.data(), nullptr); }, iters);
  char shape[96];
  std::snprintf(shape, sizeof shape, "batch %lld ctx %lld H 16 R 512 P 64 f32 cache", (long long)batch, (long long)ctx);
  rep.add("mla_decode", shape, us, 4.0 * batch * ctx * D, 4.0 * batch * ctx * H * D, err, 1e-4);
}

void bench_moe(Report& rep, DeviceArena& arena, int64_t n, int iters) {
  const int64_t E = 64, distinct = 8, d = 2048, inter = 1408, K = 6;
  std::vector<HostWeight> hw;
  hw.reserve(3 * distinct);
  std::vector<DeviceWeight> g, u, dn;
  for (int64_t e = 0; e < distinct; ++e) {
    for (int k = 0; k < 3; ++k) {
      hw.emplace_back(DType::kBF16, k == 2 ? d : inter, k == 2 ? inter : d, static_cast<uint64_t>(100 + 3 * e + k));
      auto w = arena.upload(hw.back().view);
      die_if(w.ok() ? Status() : w.error(), "upload expert");
      (k == 0 ? g : k == 1 ? u : dn).push_back(*w);
    }
  }
  for (int64_t e = distinct; e < E; ++e) g.push_back(g[e % distinct]), u.push_back(u[e % distinct]), dn.push_back(dn[e % distinct]);
  auto table = make_expert_table(arena, g, u, dn);
  die_if(table.ok() ? Status() : table.error(), "expert table");
  std::vector<int32_t> idx;
  for (int64_t t = 0; t < n; ++t) for (int64_t k = 0; k < K; ++k) idx.push_back(static_cast<int32_t>((t + k) % 6));
  const std::vector<float> x = randv(n * d, 3), wt = randv(n * K, 4, 0.f, 0.3f);
  DeviceArray<float> dx(x), dw(wt), h(n * K * inter), y(n * d);
  DeviceArray<int32_t> di(idx);
  die_if(moe_experts(*table, dx.data(), n, K, di.data(), dw.data(), h.data(), y.data(), false, nullptr), "moe");
  std::vector<float> want(static_cast<size_t>(n * d), 0.f), gg(static_cast<size_t>(inter)), uu(gg.size()), yy(static_cast<size_t>(d));
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t k = 0; k < K; ++k) {
      const int64_t e = idx[static_cast<size_t>(t * K + k)];
      cpu::linear(x.data() + t * d, 1, hw[static_cast<size_t>(3 * e)].view, gg.data());
      cpu::linear(x.data() + t * d, 1, hw[static_cast<size_t>(3 * e + 1)].view, uu.data());
      cpu::swiglu(gg.data(), uu.data(), inter, gg.data());
      cpu::linear(gg.data(), 1, hw[static_cast<size_t>(3 * e + 2)].view, yy.data());
      for (int64_t j = 0; j < d; ++j) want[static_cast<size_t>(t * d + j)] += wt[static_cast<size_t>(t * K + k)] * yy[static_cast<size_t>(j)];
    }
  }
  const double err = rel_err(y.to_host(), want);
  const double us = time_us([&] { (void)moe_experts(*table, dx.data(), n, K, di.data(), dw.data(), h.data(), y.data(), false, nullptr); }, iters);
  const int64_t touched = std::min<int64_t>(6, n * K);  // distinct experts read
  char shape[96];
  std::snprintf(shape, sizeof shape, "bf16 top-6 of 64, d 2048, inter 1408, n=%lld", (long long)n);
  rep.add("moe_experts", shape, us, 2.0 * 3 * inter * d * touched, 2.0 * 3 * inter * d * n * K, err, 1e-4);
}

void bench_small(Report& rep, int iters) {
  const int64_t vocab = 102400, d = 2048, n = 8;
  const std::vector<float> l = randv(n * vocab, 21, -8.f, 8.f);
  DeviceArray<float> dl(l), uni(std::vector<float>(static_cast<size_t>(n), 0.5f));
  DeviceArray<int32_t> out(n);
  die_if(argmax(dl.data(), n, vocab, out.data(), nullptr), "argmax");
  const std::vector<int32_t> got = out.to_host();
  double wrong = 0;
  for (int64_t r = 0; r < n; ++r) {
    int32_t best = 0;
    for (int64_t i = 1; i < vocab; ++i) if (l[static_cast<size_t>(r * vocab + i)] > l[static_cast<size_t>(r * vocab + best)]) best = static_cast<int32_t>(i);
    wrong += got[static_cast<size_t>(r)] != best;
  }
  rep.add("argmax", "8 x 102400", time_us([&] { (void)argmax(dl.data(), n, vocab, out.data(), nullptr); }, iters),
          4.0 * n * vocab, 0, wrong, 0);
  die_if(sample_top_p(dl.data(), n, vocab, 0.8f, 0.95f, uni.data(), out.data(), nullptr), "top_p");
  rep.add("sample_top_p", "8 x 102400, T 0.8, p 0.95 (not validated here: see test_cuda)",
          time_us([&] { (void)sample_top_p(dl.data(), n, vocab, 0.8f, 0.95f, uni.data(), out.data(), nullptr); }, iters),
          4.0 * n * vocab, 0, 0, 0);
  const std::vector<float> x = randv(n * d, 22), gain = randv(d, 23);
  std::vector<float> want(static_cast<size_t>(n * d));
  cpu::rms_norm(x.data(), n, d, gain.data(), DType::kF32, 1e-6f, want.data());
  DeviceArray<float> dx(x), dg(gain), dy(n * d);
  die_if(rms_norm(dx.data(), n, d, dg.data(), DType::kF32, 1e-6f, dy.data(), nullptr), "rms_norm");
  const double err = rel_err(dy.to_host(), want);
  rep.add("rms_norm", "8 x 2048", time_us([&] { (void)rms_norm(dx.data(), n, d, dg.data(), DType::kF32, 1e-6f, dy.data(), nullptr); }, iters),
          4.0 * (2 * n * d + d), 0, err, 1e-5);
}

int run(int argc, char** argv) {
  std::string out_path;
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--out") && i + 1 < argc) out_path = argv[++i];
    else if (!std::strcmp(argv[i], "--quick")) quick = true;
    else { std::fprintf(stderr, "usage: cuda_kernel_bench [--out FILE] [--quick]\n"); return 2; }
  }
  // The CPU references in exact float32 (the default fast precision rounds activations to BF16 on a CPU with
  // AVX512-BF16: ~1e-3 off, past the 1e-4 tolerances of the float32 GPU paths).
  cpu::set_linear_precision(cpu::LinearPrecision::kExact);
  if (device_count() == 0) {
    std::fprintf(stderr, "cuda_kernel_bench: expected a CUDA device, found none\n");
    return 1;
  }
  const int iters = quick ? 5 : 50;
  Report rep;
  auto blas = Blas::create(nullptr, int64_t{2048} * 10944);
  die_if(blas.ok() ? Status() : blas.error(), "Blas");
  rep.peak_gbps = measure_copy_gbps();
  rep.peak_tflops = measure_bf16_tflops(blas->handle());
  std::fprintf(stderr, "device: %s; copy %.0f GB/s; cuBLAS bf16 %.0f TFLOP/s\n", device_description(0).c_str(),
               rep.peak_gbps, rep.peak_tflops);
  auto arena = DeviceArena::create(size_t{3} << 30);
  die_if(arena.ok() ? Status() : arena.error(), "arena");
  bench_linear(rep, *blas, *arena, "linear_gemv", DType::kBF16, 102400, 2048, 1, iters);  // lm_head
  bench_linear(rep, *blas, *arena, "linear_gemv", DType::kBF16, 2048, 2048, 1, iters);    // o_proj
  bench_linear(rep, *blas, *arena, "linear_gemv", DType::kBF16, 10944, 2048, 8, iters);   // dense MLP, batch 8
  bench_linear(rep, *blas, *arena, "linear_gemv_fp8", DType::kF8E4M3, 18432, 7168, 1, iters);  // V3 MLP
  bench_linear(rep, *blas, *arena, "linear_cublas", DType::kBF16, 10944, 2048, 2048, iters);  // prefill
  for (int64_t ctx : {2048, 16384}) bench_mla(rep, 1, ctx, iters);
  bench_mla(rep, 8, 2048, iters);
  bench_moe(rep, *arena, 1, iters);
  bench_moe(rep, *arena, 8, iters);
  bench_small(rep, iters);
  if (!out_path.empty()) {
    FILE* f = std::fopen(out_path.c_str(), "w");
    if (!f) { std::fprintf(stderr, "cannot write %s\n", out_path.c_str()); return 1; }
    std::fprintf(f, "{\"device\": \"%s\", \"copy_GBps\": %.1f, \"cublas_bf16_TFLOPs\": %.1f, \"kernels\": [\n",
                 device_description(0).c_str(), rep.peak_gbps, rep.peak_tflops);
    for (size_t i = 0; i < rep.rows.size(); ++i) std::fprintf(f, "  %s%s\n", rep.rows[i].c_str(), i + 1 < rep.rows.size() ? "," : "");
    std::fprintf(f, "]}\n");
    std::fclose(f);
  }
  for (const auto& r : rep.rows) if (r.find("\"ok\": false") != std::string::npos) return 3;
  return 0;
}

}  // namespace
}  // namespace latent::cuda

int main(int argc, char** argv) { return latent::cuda::run(argc, argv); }
