#pragma once
// CPU op interface used by the engine. Activations are float32, row-major; weights are read in their
// stored dtype (F32, BF16, F16, or FP8-E4M3 with 128x128 block scales) and converted on the fly.
// Every op has a plain scalar reference (ops_ref.cpp, namespace ref) that tests compare the fast,
// runtime-dispatched bodies against.
#include <cstdint>

#include "kernels/cpu/dtype.h"

namespace latent::cpu {

class ThreadPool;

// A weight matrix as nn.Linear stores it: [rows = out_features, cols = in_features], row-major.
struct WeightView {
  const void* data = nullptr;
  DType dtype = DType::kF32;
  int64_t rows = 0;
  int64_t cols = 0;
  // FP8 only: weight_scale_inv, [ceil(rows/128), ceil(cols/128)] float32; w = q * scale_inv[r/128][c/128].
  const float* scale_inv = nullptr;
  int64_t block = 128;

  float at(int64_t r, int64_t c) const;  // slow, for references and tests
};

// y[n, rows] = x[n, cols] · Wᵀ. n = 1 is the decode GEMV, n > 1 the prefill GEMM. pool may be null.
void linear(const float* x, int64_t n, const WeightView& w, float* y, ThreadPool* pool = nullptr);

// The same with row strides: x row t at x + t * ldx (ldx >= cols), y row t at y + t * ldy (ldy >= rows), so
// one head's slice of a wider activation runs without copies. linear() is ldx = cols, ldy = rows.
void linear_strided(const float* x, int64_t ldx, int64_t n, const WeightView& w, float* y, int64_t ldy,
                    ThreadPool* pool = nullptr);

// Opt-in precision trade for BF16 weights in the prefill GEMM (n > 4) on CPUs with AVX512-BF16: round the
// activations to BF16 and multiply with vdpbf16ps, about twice the FLOP rate of the exact path, at a relative
// error of about 1e-3 of each output's magnitude. Never the default: golden tests need float32 math (exact
// products of the stored weights). Process-wide; LATENT_LINEAR_PRECISION=bf16 selects it at start-up.
enum class LinearPrecision { kExact, kBf16Activations };
void set_linear_precision(LinearPrecision p);
LinearPrecision linear_precision();

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
