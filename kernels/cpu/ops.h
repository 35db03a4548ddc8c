#pragma once
// CPU op interface used by the engine. Activations are float32, row-major; weights are read in their
// stored dtype (F32, BF16, F16, or FP8-E4M3 with 128x128 block scales) and converted on the fly.
// Every op has a plain scalar reference (ops_ref.cpp, namespace ref) that tests compare the fast,
// runtime-dispatched bodies against.
#include <cstdint>
#include <optional>
#include <string_view>

#include "kernels/cpu/dtype.h"

namespace latent::cpu {

class ThreadPool;

// How a weight's elements are ordered in memory.
// kRowMajor: as nn.Linear stores it, element (r, c) at r * cols + c.
// kBf16Tiles: BF16 repacked for the vdpbf16ps bodies (packed_weights.h): blocks of 64 rows, in each block the
//   column pairs in order, each pair as 64 u32 (bf16 w[r][2p] | bf16 w[r][2p + 1] << 16, r = the block's rows),
//   zero-padded past the last row and column. Only linear()/linear_pair()/linear_strided() read it.
enum class WeightLayout : uint8_t { kRowMajor = 0, kBf16Tiles = 1 };

// A weight matrix [rows = out_features, cols = in_features] (row-major unless repacked, see WeightLayout).
struct WeightView {
  const void* data = nullptr;
  DType dtype = DType::kF32;
  int64_t rows = 0;
  int64_t cols = 0;
  // FP8 only: weight_scale_inv, [ceil(rows/128), ceil(cols/128)] float32; w = q * scale_inv[r/128][c/128].
  const float* scale_inv = nullptr;
  int64_t block = 128;
  WeightLayout layout = WeightLayout::kRowMajor;

  float at(int64_t r, int64_t c) const;  // slow, for references and tests
};

// y[n, rows] = x[n, cols] · Wᵀ. n = 1 is the decode GEMV, n > 1 the prefill GEMM. pool may be null.
void linear(const float* x, int64_t n, const WeightView& w, float* y, ThreadPool* pool = nullptr);

// The same with row strides: x row t at x + t * ldx (ldx >= cols), y row t at y + t * ldy (ldy >= rows), so
// one head's slice of a wider activation runs without copies. linear() is ldx = cols, ldy = rows.
void linear_strided(const float* x, int64_t ldx, int64_t n, const WeightView& w, float* y, int64_t ldy,
                    ThreadPool* pool = nullptr);

// ya[n, wa.rows] = x · waᵀ and yb[n, wb.rows] = x · wbᵀ (wa.cols == wb.cols): an MLP's gate and up. Results
// as two linear() calls; the BF16-activation GEMM packs x once and runs both in one pool job.
void linear_pair(const float* x, int64_t n, const WeightView& wa, float* ya, const WeightView& wb, float* yb,
                 ThreadPool* pool = nullptr);

// Precision of linear() for BF16 weights, process-wide.
// kBf16Activations (the default, "bf16"): on CPUs with AVX512-BF16 the activations are rounded to BF16
//   (nearest even) and pairs of products are summed in float32 by vdpbf16ps, as every fast engine does: the
//   prefill GEMM at about twice the FLOP rate, the decode GEMV with a third of the instructions per weight.
//   Error: about 2^-9 of each product, i.e. ~1e-3 of an output's magnitude (tests/engine/precision_test.cpp
//   holds the golden models to greedy ids identical to the exact path and logits within its tolerance).
//   Without AVX512-BF16 (the AVX2 and scalar levels) the exact bodies run.
// kExact ("exact"): float32 math on the stored weights (exact products); the golden tests run on it.
// Other weight dtypes (F32, F16, FP8) and matmul() always use float32 math.
// LATENT_LINEAR_PRECISION=exact|bf16 sets it at start-up; set_linear_precision overrides it.
enum class LinearPrecision { kExact, kBf16Activations };
void set_linear_precision(LinearPrecision p);
LinearPrecision linear_precision();
std::optional<LinearPrecision> parse_linear_precision(std::string_view s);  // "exact" | "bf16"
const char* linear_precision_name(LinearPrecision p);                     // "exact" | "bf16"
bool bf16_activations_available();  // AVX-512 level with AVX512-BF16 (LATENT_CPU caps it)
// What linear() does with BF16 weights now: "exact", "bf16", or "exact (bf16 asked for; this CPU lacks ...)".
const char* linear_precision_in_effect();

// C[m, n] (+)= A[m, k] · B[k, n], B being rows [b_row0, b_row0 + k) and columns [0, n) of a weight matrix in
// any dtype (FP8 block scales applied). Row i of A at a + i * lda, of C at c + i * ldc; accumulate adds to C.
// For MLA: W_UK absorption (B = one head's k_nope rows of kv_b_proj) and P·V over a cache block (B = the
// block as an F32 view). Float32 math, like linear.
void matmul(const float* a, int64_t lda, int64_t m, int64_t k, const WeightView& b, int64_t b_row0, int64_t n,
            float* c, int64_t ldc, bool accumulate, ThreadPool* pool = nullptr);

// y[n, d] = x / rms(x) * gain (gain in any dtype, d values).
void rms_norm(const float* x, int64_t n, int64_t d, const void* gain, DType gain_dtype, float eps, float* y);

// Row `id` of an embedding table [vocab, d] into out[d] as float32.
void embedding_row(const WeightView& table, int64_t id, float* out);

// out[i] = silu(gate[i]) * up[i]
void swiglu(const float* gate, const float* up, int64_t n, float* out);

// In-place softmax over n values.
void softmax(float* x, int64_t n);

namespace ref {
void linear(const float* x, int64_t n, const WeightView& w, float* y);
void rms_norm(const float* x, int64_t n, int64_t d, const void* gain, DType gain_dtype, float eps, float* y);
void embedding_row(const WeightView& table, int64_t id, float* out);
void swiglu(const float* gate, const float* up, int64_t n, float* out);
void softmax(float* x, int64_t n);
void matmul(const float* a, int64_t lda, int64_t m, int64_t k, const WeightView& b, int64_t b_row0, int64_t n,
            float* c, int64_t ldc, bool accumulate);
}  // namespace ref

}  // namespace latent::cpu
