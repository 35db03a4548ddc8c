// MLA attention kernels. Absorption and W_UV are per-head GEMVs over kv_b_proj (thread per output column /
// warp per output row); the attention itself is flash-decoding over the paged latent cache.
#include <algorithm>
#include <cfloat>
#include <string>

#include "kernels/cuda/check.h"
#include "kernels/cuda/mla.h"
#include "kernels/cuda/weight_load.cuh"

namespace latent::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kTile = 16;        // cache tokens staged in shared memory at once
constexpr int kMaxGroup = 16;    // heads per CTA: kTile * kMaxGroup = kThreads score pairs

__device__ __forceinline__ int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }

// q_lat[t, h, c] = Σ_j q[t, h, j] · kv_b[h (nope + v) + j, c]: one thread per c, coalesced over the row.
__global__ void absorb_q_kernel(const float* q, int64_t q_stride, const void* w, DType dt, const float* scale_inv,
                                int64_t cols, int64_t block, int64_t H, int64_t nope, int64_t rope, int64_t v_dim,
                                float* q_lat) {
  const int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t h = blockIdx.y, t = blockIdx.z;
  if (c >= cols) return;
  const float* qh = q + t * q_stride + h * (nope + rope);
  float acc = 0.f;
  for (int64_t j = 0; j < nope; ++j) acc += qh[j] * detail::load1(w, dt, scale_inv, cols, block, h * (nope + v_dim) + j, c);
  q_lat[(t * H + h) * cols + c] = acc;
}

// out[t, h * v + j] = kv_b[h (nope + v) + nope + j, :] · o_lat[t, h, :]: one warp per (t, h, j).
__global__ void apply_uv_kernel(const float* o_lat, const void* w, DType dt, const float* scale_inv, int64_t cols,
                                int64_t block, int64_t H, int64_t nope, int64_t v_dim, int64_t total, float* out) {
  const int64_t warp = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  const int lane = threadIdx.x & 31;
  if (warp >= total) return;
  const int64_t j = warp % v_dim, h = (warp / v_dim) % H, t = warp / (v_dim * H);
  const int64_t r = h * (nope + v_dim) + nope + j;
  const float* o = o_lat + (t * H + h) * cols;
  float acc = 0.f;
  for (int64_t c = lane; c < cols; c += 32) acc += o[c] * detail::load1(w, dt, scale_inv, cols, block, r, c);
  acc = detail::warp_sum(acc);
  if (lane == 0) out[t * H * v_dim + h * v_dim + j] = acc;
}

__global__ void cache_write_kernel(const float* src, int64_t ld_src, int64_t dim, const int32_t* positions,
                                   void* layer_base, int64_t block_stride, const int32_t* tables, int64_t table_stride,
                                   DType dtype) {
  const int64_t i = blockIdx.x;
  const int64_t p = positions[i];
  const int64_t off = tables[i * table_stride + p / 64] * block_stride + (p % 64) * dim;
  if (dtype == DType::kBF16) {
    __nv_bfloat16* dst = static_cast<__nv_bfloat16*>(layer_base) + off;
    for (int64_t c = threadIdx.x; c < dim; c += blockDim.x) dst[c] = __float2bfloat16_rn(src[i * ld_src + c]);
    return;
  }
  float* dst = static_cast<float*>(layer_base) + off;
  for (int64_t c = threadIdx.x; c < dim; c += blockDim.x) dst[c] = src[i * ld_src + c];
}

struct Split {
  int64_t n_splits, split_len, groups, group;
};

// Split planning on the device: the grid has n_splits splits per row (fixed when a graph is captured, sized for
// the longest context the plan allows), and each row cuts its own context into them, split_len_row tokens each
// (a multiple of the tile, at most the plan's split_len). A short context thus reads only its own tokens, spread
// over the splits; the splits past its end do nothing. Rows longer than n_splits * split_len are never cut: the
// last split runs to the row's end.
__device__ __forceinline__ int64_t row_split_len(int64_t ctx, int64_t n_splits, int64_t split_len) {
  const int64_t even = (ctx + n_splits - 1) / n_splits;
  const int64_t tiled = (even + kTile - 1) / kTile * kTile;
  return imin(split_len, tiled < kTile ? kTile : tiled);
}
__device__ __forceinline__ int64_t row_active_splits(int64_t ctx, int64_t n_splits, int64_t len) {
  return imin(n_splits, (ctx + len - 1) / len);
}
__device__ __forceinline__ int64_t row_ctx(const MlaAttentionArgs& a, int64_t row) {
  return a.ctx_lens ? a.ctx_lens[row] : a.start_pos + row + 1;
}

// Splits of >= 64 tokens (a multiple of the tile) aiming at ~2 waves on 132 SMs; when rows x splits are still
// too few CTAs (one sequence, short context), smaller head groups: the few-heads variant, which re-reads the
// cache per group from L2 but keeps the SMs busy.
Split plan(const MlaAttentionArgs& a) {
  constexpr int64_t kWantCtas = 264;
  Split s{};
  const int64_t ctx = std::max<int64_t>(1, a.max_ctx);
  s.group = std::min<int64_t>(kMaxGroup, a.n_heads);
  for (;;) {
    s.groups = (a.n_heads + s.group - 1) / s.group;
    const int64_t want = std::max<int64_t>(1, kWantCtas / std::max<int64_t>(1, a.n * s.groups));
    s.split_len = std::max<int64_t>(64, (ctx + want - 1) / want);
    s.split_len = (s.split_len + kTile - 1) / kTile * kTile;
    s.n_splits = (ctx + s.split_len - 1) / s.split_len;
    if (a.n * s.groups * s.n_splits >= kWantCtas / 2 || s.group <= 2) return s;
    s.group /= 2;
  }
}

// Dynamic shared memory: q [G, Dp], tile [kTile, Dp], acc [G, R], scores [G, kTile], m/l/alpha [G] each.
size_t smem_bytes(int64_t group, int64_t D, int64_t R) {
  const int64_t Dp = D + 1;  // odd row pitch: the 16 tokens of a warp's score loop hit 16 banks
  return static_cast<size_t>(group * Dp + kTile * Dp + group * R + group * kTile + 3 * group) * sizeof(float);
}

struct KernelArgs {
  MlaAttentionArgs a;
  PagedLatentCache cache;
  int64_t split_len, n_splits, group;
  float* part_o;  // [n, n_splits, H, R]
  float* part_ml; // [n, n_splits, H, 2]
};

__global__ void __launch_bounds__(kThreads) mla_split_kernel(KernelArgs k) {
  extern __shared__ float sm[];
  const MlaAttentionArgs& a = k.a;
  const int64_t R = a.R, P = a.P, D = R + P, Dp = D + 1, G = k.group;
  const int64_t split = blockIdx.x, h0 = blockIdx.y * G, row = blockIdx.z;
  const int64_t g_here = imin(G, a.n_heads - h0);
  float* q_s = sm;
  float* tile = q_s + G * Dp;
  float* acc = tile + kTile * Dp;
  float* sc = acc + G * R;
  float* m_s = sc + G * kTile;
  float* l_s = m_s + G;
  float* alpha_s = l_s + G;

  const int64_t ctx = row_ctx(a, row);
  const int64_t len = row_split_len(ctx, k.n_splits, k.split_len);
  if (split >= row_active_splits(ctx, k.n_splits, len)) return;  // past this row's context: combine skips it
  // The last split runs to the row's end: a row longer than the plan's max_ctx is slower, never cut short.
  const int64_t t_begin = split * len;
  const int64_t t_end = split == k.n_splits - 1 ? ctx : imin(ctx, t_begin + len);
  for (int64_t i = threadIdx.x; i < G * D; i += kThreads) {
    const int64_t g = i / D, c = i % D, h = h0 + g;
    float v = 0.f;
    if (g < g_here) v = c < R ? a.q_lat[(row * a.n_heads + h) * R + c] : a.q[row * a.q_stride + h * (a.nope + P) + a.nope + c - R];
    q_s[g * Dp + c] = v;
  }
  for (int64_t i = threadIdx.x; i < G * R; i += kThreads) acc[i] = 0.f;
  if (threadIdx.x < G) m_s[threadIdx.x] = -INFINITY, l_s[threadIdx.x] = 0.f;
  const int32_t* table = k.cache.block_tables + row * k.cache.table_stride;
  for (int64_t t0 = t_begin; t0 < t_end; t0 += kTile) {
    __syncthreads();  // previous tile fully consumed
    const int64_t nt = imin(kTile, t_end - t0);
    for (int64_t i = threadIdx.x; i < kTile * (D / 4); i += kThreads) {
      const int64_t t = i / (D / 4), c = (i % (D / 4)) * 4;
      float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
      if (t < nt) {
        const int64_t p = t0 + t;
        const int64_t off = table[p / 64] * k.cache.block_stride + (p % 64) * D + c;  // elements; c % 4 == 0
        if (k.cache.dtype == DType::kBF16) {  // 4 BF16 values, one 8-byte load
          const uint2 raw = *reinterpret_cast<const uint2*>(static_cast<const __nv_bfloat16*>(k.cache.layer_base) + off);
          const float2 lo = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&raw.x));
          const float2 hi = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&raw.y));
          v = make_float4(lo.x, lo.y, hi.x, hi.y);
        } else {
          v = *reinterpret_cast<const float4*>(static_cast<const float*>(k.cache.layer_base) + off);
        }
      }
      float* dst = tile + t * Dp + c;
      dst[0] = v.x, dst[1] = v.y, dst[2] = v.z, dst[3] = v.w;
    }
    __syncthreads();
    {  // scores: thread (g, t), g = tid / kTile
      const int64_t g = threadIdx.x / kTile, t = threadIdx.x % kTile;
      if (g < G) {
        const float* qr = q_s + g * Dp;
        const float* kr = tile + t * Dp;
        float s = 0.f;
        for (int64_t c = 0; c < D; ++c) s += qr[c] * kr[c];
        sc[g * kTile + t] = t < nt ? s * a.scale : -INFINITY;
      }
    }
    __syncthreads();
    if (threadIdx.x < G) {  // online softmax bookkeeping of one head
      const int64_t g = threadIdx.x;
      float mx = m_s[g];
      for (int t = 0; t < kTile; ++t) mx = fmaxf(mx, sc[g * kTile + t]);
      const float alpha = m_s[g] == -INFINITY ? 0.f : expf(m_s[g] - mx);
      float sum = 0.f;
      for (int t = 0; t < kTile; ++t) {
        const float p = sc[g * kTile + t] == -INFINITY ? 0.f : expf(sc[g * kTile + t] - mx);
        sc[g * kTile + t] = p;
        sum += p;
      }
      m_s[g] = mx, l_s[g] = l_s[g] * alpha + sum, alpha_s[g] = alpha;
    }
    __syncthreads();
    for (int64_t i = threadIdx.x; i < G * R; i += kThreads) {
      const int64_t g = i / R, c = i % R;
      float v = acc[i] * alpha_s[g];
      for (int t = 0; t < nt; ++t) v += sc[g * kTile + t] * tile[t * Dp + c];
      acc[i] = v;
    }
  }
  __syncthreads();
  const int64_t base = (row * k.n_splits + split) * a.n_heads;
  for (int64_t i = threadIdx.x; i < g_here * R; i += kThreads) {
    k.part_o[(base + h0) * R + i] = acc[i];
  }
  if (threadIdx.x < g_here) {
    k.part_ml[(base + h0 + threadIdx.x) * 2] = m_s[threadIdx.x];
    k.part_ml[(base + h0 + threadIdx.x) * 2 + 1] = l_s[threadIdx.x];
  }
}

// Max (or sum) over the CTA; every thread gets the result. blockDim.x a multiple of 32, red[32] in shared memory.
__device__ __forceinline__ float block_reduce(float v, bool is_max, float* red) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, n_warps = blockDim.x >> 5;
  v = is_max ? detail::warp_max(v) : detail::warp_sum(v);
  if (lane == 0) red[warp] = v;
  __syncthreads();
  float r = is_max ? -INFINITY : 0.f;
  for (int i = 0; i < n_warps; ++i) r = is_max ? fmaxf(r, red[i]) : r + red[i];
  __syncthreads();  // red is reused by the next reduction
  return r;
}

// o_lat[row, h, :] = Σ_s w_s o_s with w_s = e^{m_s - M} / Σ_s e^{m_s - M} l_s. Grid (H, n); dynamic shared memory
// holds the n_splits weights, computed once per (row, head) by the threads in parallel (not once per column).
__global__ void mla_combine_kernel(const float* part_o, const float* part_ml, int64_t n_splits, int64_t split_len,
                                   MlaAttentionArgs a, int64_t H, int64_t R, float* o_lat) {
  extern __shared__ float w[];  // [n_splits]
  __shared__ float red[32];
  const int64_t h = blockIdx.x, row = blockIdx.y;
  const int64_t ctx = row_ctx(a, row);
  const int64_t active = row_active_splits(ctx, n_splits, row_split_len(ctx, n_splits, split_len));
  const int64_t splits = n_splits;  // the layout's stride
  n_splits = active;                // only the splits that ran for this row
  const float* ml = part_ml + (row * splits * H + h) * 2;  // split s at ml + s * H * 2
  float m = -INFINITY;
  for (int64_t s = threadIdx.x; s < n_splits; s += blockDim.x) m = fmaxf(m, ml[s * H * 2]);
  const float M = block_reduce(m, true, red);
  float l = 0.f;
  for (int64_t s = threadIdx.x; s < n_splits; s += blockDim.x) {
    const float ms = ml[s * H * 2];
    const float e = ms == -INFINITY ? 0.f : expf(ms - M);
    w[s] = e;
    l += e * ml[s * H * 2 + 1];
  }
  const float L = block_reduce(l, false, red);  // its barriers also publish w[]
  const float inv = L > 0.f ? 1.f / L : 0.f;
  const float* o = part_o + (row * splits * H + h) * R;  // split s at o + s * H * R
  for (int64_t c = threadIdx.x; c < R; c += blockDim.x) {
    float v = 0.f;
    for (int64_t s = 0; s < n_splits; ++s) v += w[s] * o[s * H * R + c];
    o_lat[(row * H + h) * R + c] = v * inv;
  }
}

}  // namespace

Status mla_absorb_q(const float* q, int64_t n, int64_t q_stride, const DeviceWeight& kv_b, int64_t n_heads,
                    int64_t nope, int64_t rope, int64_t v_dim, float* q_lat, cudaStream_t stream) {
  if (kv_b.rows != n_heads * (nope + v_dim)) {
    return make_error(ErrorCode::kInvalidArgument, "cuda::mla_absorb_q: kv_b_proj expected " +
                                                       std::to_string(n_heads * (nope + v_dim)) + " rows, found " +
                                                       std::to_string(kv_b.rows));
  }
  if (n <= 0) return Status();
  const dim3 grid(static_cast<unsigned>((kv_b.cols + 127) / 128), static_cast<unsigned>(n_heads), static_cast<unsigned>(n));
  absorb_q_kernel<<<grid, 128, 0, stream>>>(q, q_stride, kv_b.data, kv_b.dtype, kv_b.scale_inv, kv_b.cols, kv_b.block,
                                            n_heads, nope, rope, v_dim, q_lat);
  return launch_status("absorb_q_kernel");
}

Status mla_apply_uv(const float* o_lat, int64_t n, const DeviceWeight& kv_b, int64_t n_heads, int64_t nope,
                    int64_t v_dim, float* out, cudaStream_t stream) {
  if (kv_b.rows != n_heads * (nope + v_dim)) {
    return make_error(ErrorCode::kInvalidArgument, "cuda::mla_apply_uv: kv_b_proj expected " +
                                                       std::to_string(n_heads * (nope + v_dim)) + " rows, found " +
                                                       std::to_string(kv_b.rows));
  }
  const int64_t total = n * n_heads * v_dim;
  if (total <= 0) return Status();
  apply_uv_kernel<<<static_cast<unsigned>((total * 32 + 255) / 256), 256, 0, stream>>>(
      o_lat, kv_b.data, kv_b.dtype, kv_b.scale_inv, kv_b.cols, kv_b.block, n_heads, nope, v_dim, total, out);
  return launch_status("apply_uv_kernel");
}

Status mla_cache_write(const float* src, int64_t ld_src, int64_t n, int64_t dim, const int32_t* positions,
                       void* layer_base, int64_t block_stride, const int32_t* block_tables, int64_t table_stride,
                       cudaStream_t stream, DType dtype) {
  if (dtype != DType::kF32 && dtype != DType::kBF16) {
    return make_error(ErrorCode::kInvalidArgument, std::string("cuda::mla_cache_write: expected an F32 or BF16 cache, found ") +
                                                       dtype_name(dtype));
  }
  if (n <= 0) return Status();
  cache_write_kernel<<<static_cast<unsigned>(n), 128, 0, stream>>>(src, ld_src, dim, positions, layer_base,
                                                                   block_stride, block_tables, table_stride, dtype);
  return launch_status("cache_write_kernel");
}

int64_t mla_attention_workspace(const MlaAttentionArgs& a) {
  const Split s = plan(a);
  return a.n * s.n_splits * a.n_heads * (a.R + 2);
}

Status mla_attention(const MlaAttentionArgs& a, const PagedLatentCache& cache, float* workspace, cudaStream_t stream) {
  if ((a.R + a.P) % 4 != 0 || a.max_ctx <= 0) {
    return make_error(ErrorCode::kInvalidArgument, "cuda::mla_attention: expected (R + P) % 4 == 0 and max_ctx > 0, "
                                                   "found R + P = " + std::to_string(a.R + a.P) + ", max_ctx " +
                                                   std::to_string(a.max_ctx));
  }
  if (cache.dtype != DType::kF32 && cache.dtype != DType::kBF16) {
    return make_error(ErrorCode::kInvalidArgument, std::string("cuda::mla_attention: expected an F32 or BF16 cache, "
                                                               "found ") + dtype_name(cache.dtype));
  }
  if (a.n <= 0) return Status();
  const Split s = plan(a);
  const size_t smem = smem_bytes(s.group, a.R + a.P, a.R);
  LATENT_RETURN_IF_ERROR(cuda_status(
      cudaFuncSetAttribute(mla_split_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)),
      "cudaFuncSetAttribute(mla_split_kernel)"));
  KernelArgs k{a, cache, s.split_len, s.n_splits, s.group, workspace, workspace + a.n * s.n_splits * a.n_heads * a.R};
  const dim3 grid(static_cast<unsigned>(s.n_splits), static_cast<unsigned>(s.groups), static_cast<unsigned>(a.n));
  mla_split_kernel<<<grid, kThreads, smem, stream>>>(k);
  LATENT_RETURN_IF_ERROR(launch_status("mla_split_kernel"));
  mla_combine_kernel<<<dim3(static_cast<unsigned>(a.n_heads), static_cast<unsigned>(a.n)), 128,
                       static_cast<size_t>(s.n_splits) * sizeof(float), stream>>>(
      k.part_o, k.part_ml, s.n_splits, s.split_len, a, a.n_heads, a.R, a.o_lat);
  return launch_status("mla_combine_kernel");
}

}  // namespace latent::cuda
