#pragma once
// MLA attention on the device with weight absorption, over the paged latent cache, with the semantics of
// kernels/cpu/attention.h (read that header for the maths). The device cache mirrors engine/kv_cache.h:
// [n_blocks, n_layers, 64 slots, R + P] float32, a token row being [latent R | rope key P].
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/base/result.h"
#include "kernels/cuda/memory.h"

namespace latent::cuda {

// q_lat[n, H, R] = W_UK_hᵀ q_nope[h]; q[n, q_stride], head h at h * (nope + rope), nope part first.
Status mla_absorb_q(const float* q, int64_t n, int64_t q_stride, const DeviceWeight& kv_b, int64_t n_heads,
                    int64_t nope, int64_t rope, int64_t v_dim, float* q_lat, cudaStream_t stream);

// out[n, H * v_dim] = W_UV_h o_lat[n, h].
Status mla_apply_uv(const float* o_lat, int64_t n, const DeviceWeight& kv_b, int64_t n_heads, int64_t nope,
                    int64_t v_dim, float* out, cudaStream_t stream);

// Where one layer's cache rows are: token at position p of row i is at
//   layer_base + block_tables[i * table_stride + p / 64] * block_stride + (p % 64) * (R + P).
// With the engine's layout, layer_base = cache + layer * 64 * (R + P) and block_stride = n_layers * 64 * (R + P).
struct PagedLatentCache {
  const void* layer_base = nullptr;  // float32 rows, or BF16 rows when dtype is kBF16
  int64_t block_stride = 0;          // in elements
  const int32_t* block_tables = nullptr;  // device
  int64_t table_stride = 0;               // 0: every row shares one table (prefill of one sequence)
  DType dtype = DType::kF32;              // kF32, or kBF16 (half the bytes; widened to float32 when staged)
};

struct MlaAttentionArgs {
  const float* q_lat = nullptr;  // [n, H, R]
  const float* q = nullptr;      // q_rope of row i, head h at q + i * q_stride + h * (nope + P) + nope
  int64_t q_stride = 0, nope = 0;
  int64_t n = 0, n_heads = 0, R = 0, P = 0;
  float scale = 1.f;
  // Context of row i: ctx_lens[i] tokens (decode: one row per sequence, lengths on the device so a graph
  // replays with new lengths), or, when ctx_lens is null, start_pos + i + 1 (causal prefill of one sequence).
  const int32_t* ctx_lens = nullptr;
  int64_t start_pos = 0;
  // Expected upper bound of any row's context; sets how many splits the grid has (a CUDA graph's plan is made
  // for the longest context the cache allows). Each row then cuts its own context into those splits on the
  // device, so a short row reads only its tokens, spread over the splits, and the combine merges only the splits
  // that ran. A longer row is still attended over in full: its last split runs to its end (slower, never cut).
  int64_t max_ctx = 0;
  float* o_lat = nullptr;  // [n, H, R]
};

// Stores n new tokens' rows src[n, R + P] (row i at src + i * ld_src) in the cache: row i goes to position
// positions[i] through the table of row i (table_stride 0: one sequence's prefill). Graph-friendly: positions
// and tables on the device.
// dtype kBF16: the cache holds BF16 rows (rounded to nearest even, like KvCache::write_token).
Status mla_cache_write(const float* src, int64_t ld_src, int64_t n, int64_t dim, const int32_t* positions,
                       void* layer_base, int64_t block_stride, const int32_t* block_tables, int64_t table_stride,
                       cudaStream_t stream, DType dtype = DType::kF32);

// Floats of scratch mla_attention needs for these arguments (partial outputs of the context splits).
int64_t mla_attention_workspace(const MlaAttentionArgs& a);

// Split-context attention (flash-decoding): CTAs own (row, group of <= 16 heads, context split), read each
// cache token once per head group, keep an online softmax; a second kernel merges the splits.
Status mla_attention(const MlaAttentionArgs& a, const PagedLatentCache& cache, float* workspace,
                     cudaStream_t stream);

}  // namespace latent::cuda
