#pragma once
// Several independent linears over the same (small) batch as one thread-pool job. Decode runs ~20 GEMVs of a
// few MB per MoE layer; issued one by one, each pays a hand-off to the pool, a cold start of the weight
// prefetch and a tail where one thread waits for the other. Grouped, the rows of all the matrices are cut
// into ~256 KiB chunks that the threads claim dynamically, and each chunk's GEMV runs inline on its thread.
#include <cstdint>
#include <span>

#include "kernels/cpu/ops.h"

namespace latent {

// y[n, w.rows] (row t at y + t * ldy) = x[n, w.cols] (row t at x + t * ldx) · wᵀ.
struct LinearJob {
  const float* x = nullptr;
  int64_t ldx = 0;
  int64_t n = 0;
  cpu::WeightView w;
  float* y = nullptr;
  int64_t ldy = 0;
};

// Runs every job (results as cpu::linear_strided would give them); pool null: ThreadPool::global().
void linear_group(std::span<const LinearJob> jobs, cpu::ThreadPool* pool);

}  // namespace latent
