// MoE kernels. The router runs one block per token (E <= 512, K <= 16) with its scores in shared memory;
// experts are warp-per-row GEMVs that look their weights up by id.
#include <string>

#include "kernels/cuda/check.h"
#include "kernels/cuda/moe.h"
#include "kernels/cuda/weight_load.cuh"

namespace latent::cuda {
namespace {

constexpr int kMaxExperts = 512;
constexpr int kWarps = 8;
constexpr int kRouteThreads = 256;  // the router: one block per token, each thread a strided share of the experts

// (v, i) pairs: the larger value wins, the lower id on ties; i == INT32_MAX is "none yet".
__device__ __forceinline__ void keep_better(float& bv, int32_t& bi, float v, int32_t i) {
  if (i == INT32_MAX) return;
  if (bi == INT32_MAX || v > bv || (v == bv && i < bi)) bv = v, bi = i;
}

// Block-wide reductions over kRouteThreads threads; every thread gets the result. red: kRouteThreads / 32
// entries of shared memory, reused by the next call (each starts with a barrier that orders it after the
// previous call's reads).
__device__ float route_block_max(float v, float* red) {
  v = detail::warp_max(v);
  __syncthreads();
  if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = v;
  __syncthreads();
  float m = red[0];
  for (int w = 1; w < kRouteThreads / 32; ++w) m = fmaxf(m, red[w]);
  return m;
}
__device__ float route_block_sum(float v, float* red) {
  v = detail::warp_sum(v);
  __syncthreads();
  if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = v;
  __syncthreads();
  float m = 0.f;
  for (int w = 0; w < kRouteThreads / 32; ++w) m += red[w];
  return m;
}
__device__ int32_t route_block_argmax(float v, int32_t i, float* red_v, int32_t* red_i) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, v, o);
    const int32_t oi = __shfl_xor_sync(0xffffffffu, i, o);
    keep_better(v, i, ov, oi);
  }
  __syncthreads();
  if ((threadIdx.x & 31) == 0) red_v[threadIdx.x >> 5] = v, red_i[threadIdx.x >> 5] = i;
  __syncthreads();
  float bv = red_v[0];
  int32_t bi = red_i[0];
  for (int w = 1; w < kRouteThreads / 32; ++w) keep_better(bv, bi, red_v[w], red_i[w]);
  return bi;
}

// One block per token (grid n): scores and choices in shared memory (E <= 512), the group scores one thread per
// group, top-k as K block-wide argmaxes (lowest id on ties), then ascending ids and the final weights.
__global__ void __launch_bounds__(kRouteThreads) route_kernel(RouterParams p, const float* logits, const float* bias,
                                                              int32_t* idx, float* weight) {
  __shared__ float s[kMaxExperts], choice[kMaxExperts];
  __shared__ bool taken[kMaxExperts];
  __shared__ float gs[64];
  __shared__ bool keep[64];
  __shared__ float red_v[kRouteThreads / 32];
  __shared__ int32_t red_i[kRouteThreads / 32];
  __shared__ int32_t sel[16];
  const int64_t t = blockIdx.x, E = p.n_experts, K = p.top_k;
  const float* l = logits + t * E;
  if (p.sigmoid) {
    for (int64_t e = threadIdx.x; e < E; e += kRouteThreads) s[e] = 1.f / (1.f + expf(-l[e]));
  } else {
    float mx = -INFINITY;
    for (int64_t e = threadIdx.x; e < E; e += kRouteThreads) mx = fmaxf(mx, l[e]);
    mx = route_block_max(mx, red_v);
    float sum = 0.f;
    for (int64_t e = threadIdx.x; e < E; e += kRouteThreads) sum += (s[e] = expf(l[e] - mx));
    sum = route_block_sum(sum, red_v);
    for (int64_t e = threadIdx.x; e < E; e += kRouteThreads) s[e] /= sum;
  }
  const bool biased = p.method == RouterParams::Method::kNoauxTc && bias;
  for (int64_t e = threadIdx.x; e < E; e += kRouteThreads) {
    choice[e] = s[e] + (biased ? bias[e] : 0.f);
    taken[e] = false;
  }
  __syncthreads();
  if (p.method != RouterParams::Method::kGreedy && p.n_group > 1) {
    const int64_t G = p.n_group, per = E / G;
    for (int64_t g = threadIdx.x; g < G; g += kRouteThreads) {
      float a = -INFINITY, b = -INFINITY;  // top-2 of the group
      for (int64_t e = g * per; e < (g + 1) * per; ++e) {
        const float v = choice[e];
        if (v > a) b = a, a = v; else if (v > b) b = v;
      }
      gs[g] = p.method == RouterParams::Method::kNoauxTc ? a + b : a;
      keep[g] = false;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      for (int64_t r = 0; r < p.topk_group; ++r) {  // stable: equal scores keep the lower group
        int64_t best = -1;
        for (int64_t g = 0; g < G; ++g) if (!keep[g] && (best < 0 || gs[g] > gs[best])) best = g;
        keep[best] = true;
      }
    }
    __syncthreads();
    for (int64_t e = threadIdx.x; e < E; e += kRouteThreads) if (!keep[e / per]) choice[e] = -INFINITY;
    __syncthreads();
  }
  for (int64_t k = 0; k < K; ++k) {
    float bv = -INFINITY;
    int32_t bi = INT32_MAX;
    for (int64_t e = threadIdx.x; e < E; e += kRouteThreads) {
      if (!taken[e]) keep_better(bv, bi, choice[e], static_cast<int32_t>(e));
    }
    const int32_t best = route_block_argmax(bv, bi, red_v, red_i);
    if (threadIdx.x == 0) sel[k] = best, taken[best] = true;
    __syncthreads();
  }
  if (threadIdx.x != 0) return;
  for (int64_t a = 1; a < K; ++a) {
    for (int64_t b = a; b > 0 && sel[b - 1] > sel[b]; --b) { const int32_t x = sel[b]; sel[b] = sel[b - 1]; sel[b - 1] = x; }
  }
  double sum = 0;
  for (int64_t k = 0; k < K; ++k) sum += s[sel[k]];
  const bool norm = p.norm_topk_prob && K > 1;
  for (int64_t k = 0; k < K; ++k) {
    const float w = norm ? static_cast<float>(s[sel[k]] / (sum + 1e-20)) : s[sel[k]];
    idx[t * K + k] = sel[k];
    weight[t * K + k] = w * p.routed_scaling_factor;
  }
}

template <DType DT>
__device__ float row_dot(const void* w, const float* scale, int64_t cols, int64_t block, int64_t r, const float* x) {
  const int lane = threadIdx.x & 31;
  float acc = 0.f;
  for (int64_t c = lane * 8; c < cols; c += 256) {
    float wv[8];
    detail::load8<DT>(w, scale, cols, block, r, c, wv);
#pragma unroll
    for (int j = 0; j < 8; ++j) acc += wv[j] * x[c + j];
  }
  return detail::warp_sum(acc);
}

// h[t, k, i] = silu(gate_e[i] · x_t) * (up_e[i] · x_t). Grid (inter / kWarps, K, n).
template <DType DT>
__global__ void __launch_bounds__(kWarps * 32) gate_up_kernel(ExpertTable et, const float* x, int64_t top_k,
                                                              const int32_t* idx, float* h) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * kWarps + (threadIdx.x >> 5), k = blockIdx.y, t = blockIdx.z;
  if (i >= et.inter) return;
  const int32_t e = idx[t * top_k + k];
  const float* xt = x + t * et.d;
  const float g = row_dot<DT>(et.gate[e], et.gate_scale ? et.gate_scale[e] : nullptr, et.d, et.block, i, xt);
  const float u = row_dot<DT>(et.up[e], et.up_scale ? et.up_scale[e] : nullptr, et.d, et.block, i, xt);
  if ((threadIdx.x & 31) == 0) h[(t * top_k + k) * et.inter + i] = g / (1.f + expf(-g)) * u;
}

// y[t, j] (+)= Σ_k weight[t, k] · down_e[j] · h[t, k]. Grid (d / kWarps, n).
template <DType DT>
__global__ void __launch_bounds__(kWarps * 32) down_kernel(ExpertTable et, int64_t top_k, const int32_t* idx,
                                                           const float* weight, const float* h, float* y,
                                                           bool accumulate) {
  const int64_t j = static_cast<int64_t>(blockIdx.x) * kWarps + (threadIdx.x >> 5), t = blockIdx.y;
  if (j >= et.d) return;
  float acc = 0.f;
  for (int64_t k = 0; k < top_k; ++k) {
    const int32_t e = idx[t * top_k + k];
    const float dot = row_dot<DT>(et.down[e], et.down_scale ? et.down_scale[e] : nullptr, et.inter, et.block, j,
                                  h + (t * top_k + k) * et.inter);
    // Rounded product, then rounded sum (never one fused multiply-add, which nvcc would make of acc += w * dot):
    // the grouped path (grouped_down_kernel, sum_k_kernel) rounds twice too, and a token's output must not
    // depend on whether it was batched.
    acc = __fadd_rn(acc, __fmul_rn(weight[t * top_k + k], dot));
  }
  if ((threadIdx.x & 31) == 0) y[t * et.d + j] = accumulate ? y[t * et.d + j] + acc : acc;
}

// ---- Tokens grouped by expert (several tokens): each expert's weights are read once per kTile of its tokens ----
constexpr int kTile = 8;
constexpr int64_t kGroupMinTokens = 4;  // fewer tokens: the per-(token, k) kernels above (decode)
constexpr int kGroupThreads = 1024;

// entries j = t * K + k of idx[n * K], grouped by expert: order[offsets[e] .. offsets[e + 1]) are expert e's
// entries (in no particular order within the expert: each entry's result depends on its own row only).
// One block. offsets: [E + 1].
__global__ void __launch_bounds__(kGroupThreads) group_kernel(const int32_t* idx, int64_t nk, int64_t E,
                                                              int32_t* offsets, int32_t* order) {
  __shared__ int32_t count[kMaxExperts], cursor[kMaxExperts];
  for (int64_t e = threadIdx.x; e < E; e += kGroupThreads) count[e] = 0;
  __syncthreads();
  for (int64_t j = threadIdx.x; j < nk; j += kGroupThreads) atomicAdd(&count[idx[j]], 1);
  __syncthreads();
  if (threadIdx.x == 0) {
    int32_t run = 0;
    for (int64_t e = 0; e < E; ++e) cursor[e] = offsets[e] = run, run += count[e];
    offsets[E] = run;
  }
  __syncthreads();
  for (int64_t j = threadIdx.x; j < nk; j += kGroupThreads) order[atomicAdd(&cursor[idx[j]], 1)] = static_cast<int32_t>(j);
}

// acc[j] = row r of w · xs[j] for the tile's nt rows of x, each lane summing its columns in the same order as
// row_dot (so a token's result does not depend on the tokens grouped with it), then the warp sum.
template <DType DT>
__device__ void tile_dots(const void* w, const float* scale, int64_t cols, int64_t block, int64_t r,
                          const float* const (&xs)[kTile], int nt, float (&acc)[kTile]) {
  const int lane = threadIdx.x & 31;
#pragma unroll
  for (int j = 0; j < kTile; ++j) acc[j] = 0.f;
  for (int64_t c = lane * 8; c < cols; c += 256) {
    float wv[8];
    detail::load8<DT>(w, scale, cols, block, r, c, wv);
#pragma unroll
    for (int j = 0; j < kTile; ++j) {
      if (j < nt) {
        const float* xv = xs[j] + c;
#pragma unroll
        for (int q = 0; q < 8; ++q) acc[j] += wv[q] * xv[q];
      }
    }
  }
#pragma unroll
  for (int j = 0; j < kTile; ++j) acc[j] = detail::warp_sum(acc[j]);
}

// h[j, i] = silu(gate_e[i] · x_t) * (up_e[i] · x_t) for expert e's entries j = t * K + k, kTile at a time.
// Grid (inter / kWarps, E, tiles of the most tokens an expert can have = n).
template <DType DT>
__global__ void __launch_bounds__(kWarps * 32) grouped_gate_up_kernel(ExpertTable et, const float* x, int64_t top_k,
                                                                      const int32_t* offsets, const int32_t* order,
                                                                      float* h) {
  const int32_t e = static_cast<int32_t>(blockIdx.y);
  const int64_t first = offsets[e] + static_cast<int64_t>(blockIdx.z) * kTile, end = offsets[e + 1];
  const int64_t i = static_cast<int64_t>(blockIdx.x) * kWarps + (threadIdx.x >> 5);
  if (first >= end || i >= et.inter) return;
  const int nt = static_cast<int>(min(static_cast<int64_t>(kTile), end - first));
  int32_t entry[kTile];
  const float* xs[kTile];
#pragma unroll
  for (int j = 0; j < kTile; ++j) {
    entry[j] = order[first + min(j, nt - 1)];
    xs[j] = x + (entry[j] / top_k) * et.d;
  }
  float g[kTile], u[kTile];
  tile_dots<DT>(et.gate[e], et.gate_scale ? et.gate_scale[e] : nullptr, et.d, et.block, i, xs, nt, g);
  tile_dots<DT>(et.up[e], et.up_scale ? et.up_scale[e] : nullptr, et.d, et.block, i, xs, nt, u);
  if ((threadIdx.x & 31) != 0) return;
#pragma unroll
  for (int j = 0; j < kTile; ++j) {
    if (j < nt) h[static_cast<int64_t>(entry[j]) * et.inter + i] = g[j] / (1.f + expf(-g[j])) * u[j];
  }
}

// yk[j, r] = weight[j] · down_e[r] · h[j] for expert e's entries j. Grid (d / kWarps, E, tiles as above).
template <DType DT>
__global__ void __launch_bounds__(kWarps * 32) grouped_down_kernel(ExpertTable et, const int32_t* offsets,
                                                                   const int32_t* order, const float* weight,
                                                                   const float* h, float* yk) {
  const int32_t e = static_cast<int32_t>(blockIdx.y);
  const int64_t first = offsets[e] + static_cast<int64_t>(blockIdx.z) * kTile, end = offsets[e + 1];
  const int64_t r = static_cast<int64_t>(blockIdx.x) * kWarps + (threadIdx.x >> 5);
  if (first >= end || r >= et.d) return;
  const int nt = static_cast<int>(min(static_cast<int64_t>(kTile), end - first));
  int32_t entry[kTile];
  const float* hs[kTile];
#pragma unroll
  for (int j = 0; j < kTile; ++j) {
    entry[j] = order[first + min(j, nt - 1)];
    hs[j] = h + static_cast<int64_t>(entry[j]) * et.inter;
  }
  float acc[kTile];
  tile_dots<DT>(et.down[e], et.down_scale ? et.down_scale[e] : nullptr, et.inter, et.block, r, hs, nt, acc);
  if ((threadIdx.x & 31) != 0) return;
#pragma unroll
  for (int j = 0; j < kTile; ++j) {
    if (j < nt) yk[static_cast<int64_t>(entry[j]) * et.d + r] = weight[entry[j]] * acc[j];
  }
}

// y[t, r] (+)= Σ_k yk[t * K + k, r], k ascending (the sum down_kernel forms).
__global__ void sum_k_kernel(const float* yk, int64_t n, int64_t top_k, int64_t d, float* y, bool accumulate) {
  const int64_t q = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (q >= n * d) return;
  const int64_t t = q / d, r = q % d;
  float acc = 0.f;
  for (int64_t k = 0; k < top_k; ++k) acc += yk[(t * top_k + k) * d + r];
  y[q] = accumulate ? y[q] + acc : acc;
}

template <DType DT>
Status run_grouped(const ExpertTable& et, const float* x, int64_t n, int64_t top_k, const int32_t* idx,
                   const float* weight, float* h, float* y, bool accumulate, cudaStream_t s) {
  const int64_t nk = n * top_k, E = et.n_experts;
  // Stream-ordered scratch (a CUDA graph captures it as allocation nodes): yk [nk, d], offsets [E + 1], order [nk].
  const size_t yk_bytes = static_cast<size_t>(nk * et.d) * sizeof(float);
  const size_t bytes = yk_bytes + static_cast<size_t>(E + 1 + nk) * sizeof(int32_t);
  void* scratch = nullptr;
  LATENT_RETURN_IF_ERROR(cuda_status(cudaMallocAsync(&scratch, bytes, s), "moe_experts: cudaMallocAsync(scratch)"));
  float* yk = static_cast<float*>(scratch);
  int32_t* offsets = reinterpret_cast<int32_t*>(static_cast<char*>(scratch) + yk_bytes);
  int32_t* order = offsets + E + 1;
  const Status st = [&]() -> Status {
    group_kernel<<<1, kGroupThreads, 0, s>>>(idx, nk, E, offsets, order);
    LATENT_RETURN_IF_ERROR(launch_status("group_kernel"));
    const unsigned tiles = static_cast<unsigned>((n + kTile - 1) / kTile);
    const dim3 g1(static_cast<unsigned>((et.inter + kWarps - 1) / kWarps), static_cast<unsigned>(E), tiles);
    grouped_gate_up_kernel<DT><<<g1, kWarps * 32, 0, s>>>(et, x, top_k, offsets, order, h);
    LATENT_RETURN_IF_ERROR(launch_status("grouped_gate_up_kernel"));
    const dim3 g2(static_cast<unsigned>((et.d + kWarps - 1) / kWarps), static_cast<unsigned>(E), tiles);
    grouped_down_kernel<DT><<<g2, kWarps * 32, 0, s>>>(et, offsets, order, weight, h, yk);
    LATENT_RETURN_IF_ERROR(launch_status("grouped_down_kernel"));
    sum_k_kernel<<<static_cast<unsigned>((n * et.d + 255) / 256), 256, 0, s>>>(yk, n, top_k, et.d, y, accumulate);
    return launch_status("sum_k_kernel");
  }();
  const Status freed = cuda_status(cudaFreeAsync(scratch, s), "moe_experts: cudaFreeAsync(scratch)");
  return st.ok() ? freed : st;
}

template <DType DT>
Status run_experts(const ExpertTable& et, const float* x, int64_t n, int64_t top_k, const int32_t* idx,
                   const float* weight, float* h, float* y, bool accumulate, cudaStream_t s) {
  if (n >= kGroupMinTokens) return run_grouped<DT>(et, x, n, top_k, idx, weight, h, y, accumulate, s);
  const dim3 g1(static_cast<unsigned>((et.inter + kWarps - 1) / kWarps), static_cast<unsigned>(top_k),
                static_cast<unsigned>(n));
  gate_up_kernel<DT><<<g1, kWarps * 32, 0, s>>>(et, x, top_k, idx, h);
  LATENT_RETURN_IF_ERROR(launch_status("gate_up_kernel"));
  const dim3 g2(static_cast<unsigned>((et.d + kWarps - 1) / kWarps), static_cast<unsigned>(n));
  down_kernel<DT><<<g2, kWarps * 32, 0, s>>>(et, top_k, idx, weight, h, y, accumulate);
  return launch_status("down_kernel");
}

}  // namespace

Status route(const RouterParams& p, const float* logits, int64_t n, const float* bias, int32_t* idx, float* weight,
             cudaStream_t stream) {
  if (p.n_experts > kMaxExperts || p.top_k > 16 || p.top_k > p.n_experts || p.n_group > 64 || p.n_group < 1 ||
      p.n_experts % p.n_group != 0 || p.topk_group > p.n_group) {
    return make_error(ErrorCode::kUnsupported,
                      "cuda::route: expected <= 512 experts, top_k <= 16, n_group <= 64 dividing the experts; "
                      "found " + std::to_string(p.n_experts) + " experts, top_k " + std::to_string(p.top_k) +
                          ", n_group " + std::to_string(p.n_group));
  }
  if (n <= 0) return Status();
  route_kernel<<<static_cast<unsigned>(n), kRouteThreads, 0, stream>>>(p, logits, bias, idx, weight);
  return launch_status("route_kernel");
}

Result<ExpertTable> make_expert_table(DeviceArena& arena, const std::vector<DeviceWeight>& gate,
                                      const std::vector<DeviceWeight>& up, const std::vector<DeviceWeight>& down) {
  const size_t E = gate.size();
  if (E == 0 || up.size() != E || down.size() != E) {
    return make_error(ErrorCode::kInvalidArgument, "make_expert_table: expected as many gate, up and down "
                                                   "weights (> 0), found " + std::to_string(E) + ", " +
                                                   std::to_string(up.size()) + ", " + std::to_string(down.size()));
  }
  ExpertTable et;
  et.dtype = gate[0].dtype, et.n_experts = static_cast<int64_t>(E), et.d = gate[0].cols, et.inter = gate[0].rows;
  et.block = gate[0].block;
  if (et.d % 8 != 0 || et.inter % 8 != 0) {
    return make_error(ErrorCode::kUnsupported, "make_expert_table: expected d and inter multiples of 8");
  }
  std::vector<const void*> ptrs(6 * E);
  for (size_t e = 0; e < E; ++e) {
    for (const DeviceWeight* w : {&gate[e], &up[e], &down[e]}) {
      const bool is_down = w == &down[e];
      if (w->dtype != et.dtype || w->rows != (is_down ? et.d : et.inter) || w->cols != (is_down ? et.inter : et.d)) {
        return make_error(ErrorCode::kInvalidArgument, "make_expert_table: expert " + std::to_string(e) +
                                                           " differs in dtype or shape from expert 0");
      }
    }
    ptrs[e] = gate[e].data, ptrs[E + e] = up[e].data, ptrs[2 * E + e] = down[e].data;
    ptrs[3 * E + e] = gate[e].scale_inv, ptrs[4 * E + e] = up[e].scale_inv, ptrs[5 * E + e] = down[e].scale_inv;
  }
  LATENT_ASSIGN_OR_RETURN(const void** dev, arena.allocate_n<const void*>(static_cast<int64_t>(6 * E)));
  LATENT_RETURN_IF_ERROR(cuda_status(cudaMemcpy(dev, ptrs.data(), ptrs.size() * sizeof(void*), cudaMemcpyHostToDevice),
                                     "upload expert table"));
  et.gate = dev, et.up = dev + E, et.down = dev + 2 * E;
  const bool fp8 = et.dtype == DType::kF8E4M3;
  et.gate_scale = fp8 ? reinterpret_cast<const float* const*>(dev + 3 * E) : nullptr;
  et.up_scale = fp8 ? reinterpret_cast<const float* const*>(dev + 4 * E) : nullptr;
  et.down_scale = fp8 ? reinterpret_cast<const float* const*>(dev + 5 * E) : nullptr;
  return et;
}

Status moe_experts(const ExpertTable& et, const float* x, int64_t n, int64_t top_k, const int32_t* idx,
                   const float* weight, float* h, float* y, bool accumulate, cudaStream_t stream) {
  if (n <= 0) return Status();
  if (et.n_experts < 1 || et.n_experts > kMaxExperts) {  // group_kernel counts experts in shared memory
    return make_error(ErrorCode::kUnsupported, "moe_experts: expected 1 to " + std::to_string(kMaxExperts) +
                                                   " experts, found " + std::to_string(et.n_experts));
  }
  switch (et.dtype) {
    case DType::kF32: return run_experts<DType::kF32>(et, x, n, top_k, idx, weight, h, y, accumulate, stream);
    case DType::kBF16: return run_experts<DType::kBF16>(et, x, n, top_k, idx, weight, h, y, accumulate, stream);
    case DType::kF16: return run_experts<DType::kF16>(et, x, n, top_k, idx, weight, h, y, accumulate, stream);
    case DType::kF8E4M3: return run_experts<DType::kF8E4M3>(et, x, n, top_k, idx, weight, h, y, accumulate, stream);
  }
  return make_error(ErrorCode::kInternal, "moe_experts: unknown dtype");
}

}  // namespace latent::cuda
