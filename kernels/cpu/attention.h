#pragma once
// MLA attention core over the latent cache (weight absorption). With W_UK folded into the query and W_UV
// applied after, MLA is multi-query attention with one KV head whose key is [latent | rope key] and whose
// value is the latent itself:
//   q_lat[h]  = W_UK_hᵀ q_nope[h]                                  [kv_lora]
//   score[t]  = (q_lat[h] · latent[t] + q_rope[h] · k_rope[t]) * scale
//   o_lat[h]  = Σ_t softmax(score)[t] latent[t]                     [kv_lora]
//   out[h]    = W_UV_h o_lat[h]                                     [v_head_dim]
// kv_b_proj holds per head rows [k_nope (nope rows) | v (v_dim rows)], each row kv_lora wide.
// Work is split over heads / query rows on `pool` (null: ThreadPool::global()).
#include <cstdint>

#include "kernels/cpu/ops.h"

namespace latent::cpu {

// q_lat[n, H, R] from q[n, q_stride] whose head h starts at h * (nope + rope) (nope part first).
void mla_absorb_q(const float* q, int64_t n, int64_t q_stride, const WeightView& kv_b, int64_t n_heads,
                  int64_t nope, int64_t rope, int64_t v_dim, float* q_lat, ThreadPool* pool = nullptr);

// o_lat[n, H, R]: new token i sits at position start_pos + i and attends causally to positions
// 0..start_pos+i. blocks[b] points at cache block b of this layer: [block_size, R + P] of cache_dtype (F32 or
// BF16), row = slot, [latent R | rope key P]. q_rope is read at q[i * q_stride + h * (nope + P) + nope].
void mla_attention(const float* q_lat, const float* q, int64_t q_stride, int64_t n, int64_t n_heads,
                   int64_t nope, int64_t R, int64_t P, int64_t start_pos, const void* const* blocks, DType cache_dtype,
                   int64_t block_size, float scale, float* o_lat, ThreadPool* pool = nullptr);

// out[n, H * v_dim] = per head W_UV_h o_lat[n, h].
void mla_apply_uv(const float* o_lat, int64_t n, const WeightView& kv_b, int64_t n_heads, int64_t nope,
                  int64_t v_dim, float* out, ThreadPool* pool = nullptr);

// Row r of a weight matrix in float32 (any stored dtype, FP8 block scales applied).
void dequant_row(const WeightView& w, int64_t r, float* out);

}  // namespace latent::cpu
