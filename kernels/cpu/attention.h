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
#include <optional>
#include <string_view>

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

// ---- Decompressed K/V for long prefill chunks (attention_decompressed.cpp; fast precision only)
// K_h = [W_UK_h latent | k_rope], V_h = W_UV_h latent for every context position (one kv_b_proj linear over
// the context: the BF16-activation GEMM under the fast precision), kept in float32, then per head
// softmax(scale * q_h K_hᵀ) V_h with the causal mask: out[n, H * v_dim] (row stride ld_out) directly, no
// absorption and no W_UV afterwards. Same inputs as mla_attention (q [n, q_stride], head h at h * (nope + P),
// q_rope rotated; the cache blocks). Scores and P·V in float32 (K and V rounded to BF16 doubled the fast
// path's logit error on the demo model; they cost little next to the K/V GEMM).
void mla_attention_decompressed(const float* q, int64_t q_stride, int64_t n, const WeightView& kv_b, int64_t n_heads,
                                int64_t nope, int64_t v_dim, int64_t P, int64_t start_pos, const void* const* blocks,
                                DType cache_dtype, int64_t block_size, float scale, float* out, int64_t ld_out,
                                ThreadPool* pool = nullptr);

// Which MLA path a chunk of new tokens takes under the fast precision. kAuto (the default): decompressed when
// its multiply-adds, weighted by the bodies' measured rates, are fewer than the absorbed path's and its
// float32 K/V fit 128 MiB (long prefill chunks); absorbed otherwise (decode, short chunks). Chunks of at most 4
// new tokens always absorb (kDecompressed too). LATENT_MLA_PREFILL=auto|
// absorbed|decompressed sets it at start-up; set_mla_prefill overrides it (tests, benchmarks). The exact
// precision always runs the absorbed path.
enum class MlaPrefill { kAuto, kAbsorbed, kDecompressed };
std::optional<MlaPrefill> parse_mla_prefill(std::string_view s);
const char* mla_prefill_name(MlaPrefill m);
void set_mla_prefill(MlaPrefill m);
MlaPrefill mla_prefill();
// The choice for n new tokens after start_pos cached ones (kDecompressed still respects the 128 MiB bound).
bool mla_prefill_decompressed(int64_t n, int64_t start_pos, int64_t n_heads, int64_t nope, int64_t v_dim, int64_t R,
                              int64_t P, DType cache_dtype);

// Row r of a weight matrix in float32 (any stored dtype, FP8 block scales applied).
void dequant_row(const WeightView& w, int64_t r, float* out);

}  // namespace latent::cpu
