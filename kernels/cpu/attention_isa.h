#pragma once
// ISA-specific bodies of the MLA attention core (attention.h dispatches to them).
#include <cstdint>

#include "kernels/cpu/dtype.h"

namespace latent::cpu {

class ThreadPool;

// mla_attention for a few new tokens (n <= 4: decode, verification) on AVX-512 (attention_avx512.cpp): split
// over the context, every cache row read once per token for all heads. Needs R and P multiples of 16.
bool mla_attention_few_avx512_supports(int64_t R, int64_t P);
void mla_attention_few_avx512(const float* q_lat, const float* q, int64_t q_stride, int64_t n, int64_t n_heads,
                              int64_t nope, int64_t R, int64_t P, int64_t start_pos, const void* const* blocks, DType cache_dtype,
                              int64_t block_size, float scale, float* o_lat, ThreadPool& pool);

}  // namespace latent::cpu
