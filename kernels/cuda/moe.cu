// MoE kernels. The router runs one thread per token (E <= 512, K <= 16: a few thousand comparisons, far
// below the cost of the expert GEMVs); experts are warp-per-row GEMVs that look their weights up by id.
#include <string>

#include "kernels/cuda/check.h"
#include "kernels/cuda/moe.h"
#include "kernels/cuda/weight_load.cuh"

namespace latent::cuda {
namespace {

constexpr int kMaxExperts = 512;
constexpr int kWarps = 8;

__global__ void route_kernel(RouterParams p, const float* logits, int64_t n, const float* bias, int32_t* idx,
                             float* weight) {
  const int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= n) return;
  const int64_t E = p.n_experts, K = p.top_k;
  float s[kMaxExperts], choice[kMaxExperts];
  const float* l = logits + t * E;
  if (p.sigmoid) {
    for (int64_t e = 0; e < E; ++e) s[e] = 1.f / (1.f + expf(-l[e]));
  } else {
    float mx = -INFINITY, sum = 0.f;
    for (int64_t e = 0; e < E; ++e) mx = fmaxf(mx, l[e]);
    for (int64_t e = 0; e < E; ++e) sum += (s[e] = expf(l[e] - mx));
    for (int64_t e = 0; e < E; ++e) s[e] /= sum;
  }
  for (int64_t e = 0; e < E; ++e) {
    choice[e] = s[e] + (p.method == RouterParams::Method::kNoauxTc && bias ? bias[e] : 0.f);
  }
  if (p.method != RouterParams::Method::kGreedy && p.n_group > 1) {
    const int64_t G = p.n_group, per = E / G;
    float gs[64];
    bool keep[64];
    for (int64_t g = 0; g < G; ++g) {
      float a = -INFINITY, b = -INFINITY;  // top-2 of the group
      for (int64_t e = g * per; e < (g + 1) * per; ++e) {
        const float v = choice[e];
        if (v > a) b = a, a = v; else if (v > b) b = v;
      }
      gs[g] = p.method == RouterParams::Method::kNoauxTc ? a + b : a;
      keep[g] = false;
    }
    for (int64_t r = 0; r < p.topk_group; ++r) {  // stable: equal scores keep the lower group
      int64_t best = -1;
      for (int64_t g = 0; g < G; ++g) if (!keep[g] && (best < 0 || gs[g] > gs[best])) best = g;
      keep[best] = true;
    }
    for (int64_t g = 0; g < G; ++g) {
      if (!keep[g]) for (int64_t e = g * per; e < (g + 1) * per; ++e) choice[e] = -INFINITY;
    }
  }
  // Top-k by repeated argmax (lowest id on ties), then ascending ids.
  int32_t sel[16];
  for (int64_t k = 0; k < K; ++k) {
    int64_t best = -1;
    for (int64_t e = 0; e < E; ++e) {
      bool taken = false;
      for (int64_t j = 0; j < k; ++j) taken |= sel[j] == e;
      if (!taken && (best < 0 || choice[e] > choice[best])) best = e;
    }
    sel[k] = static_cast<int32_t>(best);
  }
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
    acc += weight[t * top_k + k] *
           row_dot<DT>(et.down[e], et.down_scale ? et.down_scale[e] : nullptr, et.inter, et.block, j,
                       h + (t * top_k + k) * et.inter);
  }
  if ((threadIdx.x & 31) == 0) y[t * et.d + j] = accumulate ? y[t * et.d + j] + acc : acc;
}

template <DType DT>
Status run_experts(const ExpertTable& et, const float* x, int64_t n, int64_t top_k, const int32_t* idx,
                   const float* weight, float* h, float* y, bool accumulate, cudaStream_t s) {
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
  route_kernel<<<static_cast<unsigned>((n + 63) / 64), 64, 0, stream>>>(p, logits, n, bias, idx, weight);
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
  switch (et.dtype) {
    case DType::kF32: return run_experts<DType::kF32>(et, x, n, top_k, idx, weight, h, y, accumulate, stream);
    case DType::kBF16: return run_experts<DType::kBF16>(et, x, n, top_k, idx, weight, h, y, accumulate, stream);
    case DType::kF16: return run_experts<DType::kF16>(et, x, n, top_k, idx, weight, h, y, accumulate, stream);
    case DType::kF8E4M3: return run_experts<DType::kF8E4M3>(et, x, n, top_k, idx, weight, h, y, accumulate, stream);
  }
  return make_error(ErrorCode::kInternal, "moe_experts: unknown dtype");
}

}  // namespace latent::cuda
