// The dispatched CPU ops: check the arguments, pick the best body this CPU runs, use the global pool.
#include <atomic>
#include <cassert>
#include <cstdlib>
#include <string>
#include <vector>

#include "kernels/base/log.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/ops.h"
#include "kernels/cpu/ops_isa.h"
#include "kernels/cpu/packed_weights.h"
#include "kernels/cpu/thread_pool.h"

namespace latent::cpu {

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kScalar: return "scalar";
    case Isa::kAvx2: return "avx2";
    case Isa::kAvx512: return "avx512";
  }
  return "?";
}

bool isa_available(Isa isa) {
  const CpuFeatures& f = cpu_features();
  switch (isa) {
    case Isa::kScalar: return true;
    case Isa::kAvx2: return f.avx2 && f.fma && f.f16c;
    case Isa::kAvx512: return f.avx512f && f.avx512bw && f.avx512vl && f.avx2 && f.fma && f.f16c;
  }
  return false;
}

Isa best_isa() {
  static const Isa best = isa_available(Isa::kAvx512) ? Isa::kAvx512
                          : isa_available(Isa::kAvx2) ? Isa::kAvx2
                                                      : Isa::kScalar;
  return best;
}

const OpTable& op_table(Isa isa) {
  assert(isa_available(isa));
  switch (isa) {
    case Isa::kAvx512: return avx512_op_table();
    case Isa::kAvx2: return avx2_op_table();
    case Isa::kScalar: break;
  }
  return scalar_op_table();
}

namespace {

std::atomic<int> g_precision{-1};  // -1: not read from the environment yet

LinearPrecision precision_now() {
  int p = g_precision.load(std::memory_order_relaxed);
  if (p < 0) {
    LinearPrecision fallback = LinearPrecision::kBf16Activations;
    if (const char* env = std::getenv("LATENT_LINEAR_PRECISION")) {
      if (auto parsed = parse_linear_precision(env)) {
        fallback = *parsed;
      } else {
        LATENT_LOG_WARN("LATENT_LINEAR_PRECISION=%s: expected exact or bf16, using bf16", env);
      }
    }
    int expected = -1;
    g_precision.compare_exchange_strong(expected, fallback == LinearPrecision::kExact ? 0 : 1);
    p = g_precision.load(std::memory_order_relaxed);
  }
  return p == 1 ? LinearPrecision::kBf16Activations : LinearPrecision::kExact;
}

// The BF16-activation bodies apply: the fast precision, BF16 weights, and the CPU has AVX512-BF16.
bool use_bf16_activations(int64_t n, const WeightView& w) {
  return n > 0 && w.dtype == DType::kBF16 && w.cols > 0 && w.rows > 0 && bf16_activations_available() &&
         precision_now() == LinearPrecision::kBf16Activations;
}

void linear_bf16(const float* x, int64_t ldx, int64_t n, const WeightView& w, float* y, int64_t ldy, ThreadPool& p) {
  if (w.layout == WeightLayout::kBf16Tiles) return linear_bf16_tiles_avx512(x, ldx, n, w, y, ldy, p);
  if (n <= 4) return gemv_bf16_activations_avx512(x, ldx, n, w, y, ldy, p);
  linear_bf16_activations_avx512(x, ldx, n, w, y, ldy, p);
}

const OpTable& best();

// A repacked weight under the exact precision (or on a CPU without the BF16 bodies): slabs of whole 64-row
// blocks unpacked to row-major and run through the exact body, whose rows do not depend on their neighbours:
// the results of the row-major weight, bit for bit (slower: the weights are copied once more per call).
void linear_tiles_exact(const float* x, int64_t ldx, int64_t n, const WeightView& w, float* y, int64_t ldy,
                        ThreadPool& p) {
  thread_local std::vector<uint16_t> slab;
  const int64_t rows = std::max<int64_t>(kTileRows, (int64_t{1} << 20) / std::max<int64_t>(1, w.cols * 2) / kTileRows * kTileRows);
  for (int64_t r0 = 0; r0 < w.rows; r0 += rows) {
    const int64_t r1 = std::min(w.rows, r0 + rows);
    slab.resize(static_cast<size_t>((r1 - r0) * w.cols));
    unpack_bf16_tiles(w, r0, r1, slab.data());
    best().linear(x, ldx, n, WeightView{slab.data(), DType::kBF16, r1 - r0, w.cols}, y + r0, ldy, p);
  }
}

const OpTable& best() {
  static const OpTable& t = op_table(best_isa());
  return t;
}
}  // namespace

void linear(const float* x, int64_t n, const WeightView& w, float* y, ThreadPool* pool) {
  assert(w.data && w.rows >= 0 && w.cols >= 0 && n >= 0);
  assert(w.dtype != DType::kF8E4M3 || (w.scale_inv && w.block > 0));
  ThreadPool& p = pool ? *pool : ThreadPool::global();
  if (use_bf16_activations(n, w)) return linear_bf16(x, w.cols, n, w, y, w.rows, p);
  if (w.layout == WeightLayout::kBf16Tiles) return linear_tiles_exact(x, w.cols, n, w, y, w.rows, p);
  best().linear(x, w.cols, n, w, y, w.rows, p);
}

void linear_pair(const float* x, int64_t n, const WeightView& wa, float* ya, const WeightView& wb, float* yb,
                 ThreadPool* pool) {
  assert(wa.cols == wb.cols);
  ThreadPool& p = pool ? *pool : ThreadPool::global();
  const bool tiles = wa.layout == WeightLayout::kBf16Tiles && wb.layout == WeightLayout::kBf16Tiles;
  if (n > 4 && tiles && use_bf16_activations(n, wa) && use_bf16_activations(n, wb)) {
    return linear_pair_bf16_tiles_avx512(x, wa.cols, n, wa, ya, wa.rows, wb, yb, wb.rows, p);
  }
  if (n > 4 && wa.layout == wb.layout && use_bf16_activations(n, wa) && use_bf16_activations(n, wb)) {
    return linear_pair_bf16_activations_avx512(x, wa.cols, n, wa, ya, wa.rows, wb, yb, wb.rows, p);
  }
  linear(x, n, wa, ya, pool);
  linear(x, n, wb, yb, pool);
}

void linear_strided(const float* x, int64_t ldx, int64_t n, const WeightView& w, float* y, int64_t ldy,
                    ThreadPool* pool) {
  assert(w.data && w.rows >= 0 && w.cols >= 0 && n >= 0 && ldx >= w.cols && ldy >= w.rows);
  assert(w.dtype != DType::kF8E4M3 || (w.scale_inv && w.block > 0));
  ThreadPool& p = pool ? *pool : ThreadPool::global();
  if (use_bf16_activations(n, w)) return linear_bf16(x, ldx, n, w, y, ldy, p);
  if (w.layout == WeightLayout::kBf16Tiles) return linear_tiles_exact(x, ldx, n, w, y, ldy, p);
  best().linear(x, ldx, n, w, y, ldy, p);
}

void set_linear_precision(LinearPrecision p) {
  g_precision.store(p == LinearPrecision::kBf16Activations ? 1 : 0, std::memory_order_relaxed);
}

LinearPrecision linear_precision() { return precision_now(); }

std::optional<LinearPrecision> parse_linear_precision(std::string_view s) {
  if (s == "exact") return LinearPrecision::kExact;
  if (s == "bf16") return LinearPrecision::kBf16Activations;
  return std::nullopt;
}

const char* linear_precision_name(LinearPrecision p) {
  return p == LinearPrecision::kExact ? "exact" : "bf16";
}

bool bf16_activations_available() {
  static const bool ok = best_isa() == Isa::kAvx512 && cpu_features().avx512bf16;
  return ok;
}

const char* linear_precision_in_effect() {
  if (precision_now() == LinearPrecision::kExact) return "exact";
  return bf16_activations_available() ? "bf16" : "exact (bf16 asked for; this CPU lacks AVX512-BF16)";
}

void matmul(const float* a, int64_t lda, int64_t m, int64_t k, const WeightView& b, int64_t b_row0, int64_t n,
            float* c, int64_t ldc, bool accumulate, ThreadPool* pool) {
  assert(m >= 0 && k >= 0 && n >= 0 && lda >= k && ldc >= n && n <= b.cols && b_row0 >= 0 && b_row0 + k <= b.rows);
  assert(b.dtype != DType::kF8E4M3 || (b.scale_inv && b.block > 0));
  assert(b.layout == WeightLayout::kRowMajor);
  best().matmul(a, lda, m, k, b, b_row0, n, c, ldc, accumulate, pool ? *pool : ThreadPool::global());
}

void rms_norm(const float* x, int64_t n, int64_t d, const void* gain, DType gain_dtype, float eps, float* y) {
  best().rms_norm(x, n, d, gain, gain_dtype, eps, y);
}

void embedding_row(const WeightView& table, int64_t id, float* out) {
  assert(id >= 0 && id < table.rows && table.layout == WeightLayout::kRowMajor);
  best().embedding_row(table, id, out);
}

void swiglu(const float* gate, const float* up, int64_t n, float* out) { best().swiglu(gate, up, n, out); }

void softmax(float* x, int64_t n) { best().softmax(x, n); }

}  // namespace latent::cpu
