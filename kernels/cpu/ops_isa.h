#pragma once
// Per-ISA bodies of the CPU ops (ops.h) and the run-time choice between them. The dispatched ops in ops.h
// call op_table(best_isa()); tests and benchmarks call each level's table explicitly, so that the scalar,
// AVX2 and AVX-512 bodies are all checked on one AVX-512 machine.
//
// Each level lives in its own translation unit (ops_scalar.cpp, ops_avx2.cpp, ops_avx512.cpp) whose functions
// carry __attribute__((target(...))): the binary runs on any x86-64 and only calls a body the CPU supports.
#include <cstdint>

#include "kernels/cpu/ops.h"

namespace latent::cpu {

enum class Isa { kScalar = 0, kAvx2 = 1, kAvx512 = 2 };
const char* isa_name(Isa isa);  // "scalar", "avx2", "avx512"

// The best level cpu_features() allows (LATENT_CPU caps it), and whether `isa` can run here.
Isa best_isa();
bool isa_available(Isa isa);

struct OpTable {
  void (*linear)(const float* x, int64_t ldx, int64_t n, const WeightView& w, float* y, int64_t ldy, ThreadPool& pool);
  void (*rms_norm)(const float* x, int64_t n, int64_t d, const void* gain, DType gain_dtype, float eps, float* y);
  void (*embedding_row)(const WeightView& table, int64_t id, float* out);
  void (*swiglu)(const float* gate, const float* up, int64_t n, float* out);
  void (*softmax)(float* x, int64_t n);
  void (*matmul)(const float* a, int64_t lda, int64_t m, int64_t k, const WeightView& b, int64_t b_row0, int64_t n,
                 float* c, int64_t ldc, bool accumulate, ThreadPool& pool);
};

// The BF16-activation bodies (ops_avx512_bf16.cpp, LinearPrecision::kBf16Activations): BF16 weights, need
// avx512bf16. The GEMM for n > 4, the GEMV for 1 <= n <= 4.
void linear_bf16_activations_avx512(const float* x, int64_t ldx, int64_t n, const WeightView& w, float* y,
                                    int64_t ldy, ThreadPool& pool);
// Two GEMMs over the same x (wa.cols == wb.cols), x packed once, both in one pool job.
void linear_pair_bf16_activations_avx512(const float* x, int64_t ldx, int64_t n, const WeightView& wa, float* ya,
                                         int64_t ldya, const WeightView& wb, float* yb, int64_t ldyb,
                                         ThreadPool& pool);
void gemv_bf16_activations_avx512(const float* x, int64_t ldx, int64_t n, const WeightView& w, float* y,
                                  int64_t ldy, ThreadPool& pool);
// How that GEMV reads the weights, process-wide (one result: every body sums in the same order, bit for bit):
// "halves" (the default: 32-byte loads), "zmm" (64-byte loads, prefetch 2 KiB ahead), "rows2" (64-byte loads,
// two rows at a time: the first body). LATENT_GEMV sets it at start-up, for A/B runs. false: unknown name.
bool set_gemv_body(const char* name);
const char* gemv_body();

// The matmul bodies: scalar (also the AVX2 level's) and AVX-512 (ops_avx512_matmul.cpp).
void matmul_scalar(const float* a, int64_t lda, int64_t m, int64_t k, const WeightView& b, int64_t b_row0, int64_t n,
                   float* c, int64_t ldc, bool accumulate, ThreadPool& pool);
void matmul_avx512(const float* a, int64_t lda, int64_t m, int64_t k, const WeightView& b, int64_t b_row0, int64_t n,
                   float* c, int64_t ldc, bool accumulate, ThreadPool& pool);

// The bodies of one level. Calling a level the CPU lacks is a bug (isa_available says which are safe).
const OpTable& op_table(Isa isa);

const OpTable& scalar_op_table();
const OpTable& avx2_op_table();
const OpTable& avx512_op_table();

}  // namespace latent::cpu
