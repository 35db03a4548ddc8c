// Token selection on the device: greedy argmax and top-p sampling, one 1024-thread block per row, so the
// logits never leave the GPU and a decode step needs no host round trip before the next one.
#include <cfloat>
#include <string>

#include "kernels/cuda/check.h"
#include "kernels/cuda/ops.h"
#include "kernels/cuda/weight_load.cuh"

namespace latent::cuda {
namespace {

constexpr int kThreads = 1024;

// Sum / max over the block; every thread gets the result. scratch: 32 floats of shared memory.
__device__ float block_sum(float v, float* scratch) {
  v = detail::warp_sum(v);
  __syncthreads();
  if ((threadIdx.x & 31) == 0) scratch[threadIdx.x >> 5] = v;
  __syncthreads();
  const float w = (threadIdx.x & 31) < (blockDim.x >> 5) ? scratch[threadIdx.x & 31] : 0.f;
  return detail::warp_sum(w);
}
__device__ float block_max(float v, float* scratch) {
  v = detail::warp_max(v);
  __syncthreads();
  if ((threadIdx.x & 31) == 0) scratch[threadIdx.x >> 5] = v;
  __syncthreads();
  const float w = (threadIdx.x & 31) < (blockDim.x >> 5) ? scratch[threadIdx.x & 31] : -FLT_MAX;
  return detail::warp_max(w);
}

__global__ void __launch_bounds__(kThreads) argmax_kernel(const float* logits, int64_t vocab, int32_t* out) {
  const float* l = logits + blockIdx.x * vocab;
  float best = -INFINITY;
  int32_t idx = INT32_MAX;
  for (int64_t i = threadIdx.x; i < vocab; i += kThreads) {
    if (l[i] > best) best = l[i], idx = static_cast<int32_t>(i);  // strided: first hit is the lowest index
  }
  for (int o = 16; o > 0; o >>= 1) {
    const float ob = __shfl_xor_sync(0xffffffffu, best, o);
    const int32_t oi = __shfl_xor_sync(0xffffffffu, idx, o);
    if (ob > best || (ob == best && oi < idx)) best = ob, idx = oi;
  }
  __shared__ float sb[32];
  __shared__ int32_t si[32];
  if ((threadIdx.x & 31) == 0) sb[threadIdx.x >> 5] = best, si[threadIdx.x >> 5] = idx;
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < kThreads / 32; ++w) {
      if (sb[w] > best || (sb[w] == best && si[w] < idx)) best = sb[w], idx = si[w];
    }
    out[blockIdx.x] = idx == INT32_MAX ? 0 : idx;  // all NaN: token 0, like the CPU argmax
  }
}

__global__ void __launch_bounds__(kThreads) top_p_kernel(const float* logits, int64_t vocab, float inv_temp,
                                                         float top_p, const float* uniforms, int32_t* out) {
  __shared__ float scratch[32];
  __shared__ float prefix[kThreads];
  const float* l = logits + blockIdx.x * vocab;
  // p_i = exp((l_i - max) / T) / Z, recomputed on each pass rather than stored (vocab up to 160K).
  float mx = -FLT_MAX;
  for (int64_t i = threadIdx.x; i < vocab; i += kThreads) mx = fmaxf(mx, l[i]);
  mx = block_max(mx, scratch);
  float z = 0.f;
  for (int64_t i = threadIdx.x; i < vocab; i += kThreads) z += expf((l[i] - mx) * inv_temp);
  z = block_sum(z, scratch);
  const float inv_z = 1.f / z;
  auto prob = [&](int64_t i) { return expf((l[i] - mx) * inv_temp) * inv_z; };
  auto mass_at_least = [&](float theta) {
    float m = 0.f;
    for (int64_t i = threadIdx.x; i < vocab; i += kThreads) {
      const float p = prob(i);
      if (p >= theta) m += p;
    }
    return block_sum(m, scratch);
  };
  // Largest threshold whose kept mass still reaches top_p, by bisection (mass falls as theta rises).
  float lo = 0.f, hi = inv_z;  // the most probable token has p = 1 / z
  if (mass_at_least(hi) >= top_p) {
    lo = hi;
  } else {
    for (int it = 0; it < 40; ++it) {
      const float mid = 0.5f * (lo + hi);
      if (mass_at_least(mid) >= top_p) lo = mid; else hi = mid;
    }
  }
  // Snap to the smallest kept probability so ties with it are all kept.
  float theta = FLT_MAX;
  for (int64_t i = threadIdx.x; i < vocab; i += kThreads) {
    const float p = prob(i);
    if (p >= lo) theta = fminf(theta, p);
  }
  theta = -block_max(-theta, scratch);
  // Walk the kept set in index order: thread k owns the contiguous range [k * chunk, (k + 1) * chunk).
  const int64_t chunk = (vocab + kThreads - 1) / kThreads, b = threadIdx.x * chunk, e = min(vocab, b + chunk);
  float part = 0.f;
  int32_t last = -1;
  for (int64_t i = b; i < e; ++i) {
    const float p = prob(i);
    if (p >= theta) part += p, last = static_cast<int32_t>(i);
  }
  prefix[threadIdx.x] = part;
  __shared__ int32_t last_kept;
  __syncthreads();
  if (threadIdx.x == 0) {
    float run = 0.f;
    for (int k = 0; k < kThreads; ++k) { const float v = prefix[k]; prefix[k] = run; run += v; }
    scratch[0] = run;
    last_kept = 0;
  }
  __syncthreads();
  if (last >= 0) atomicMax(&last_kept, last);
  __syncthreads();
  const float target = uniforms[blockIdx.x] * scratch[0];
  if (threadIdx.x == 0) out[blockIdx.x] = last_kept;  // rounding fallback: the last kept token
  __syncthreads();
  float run = prefix[threadIdx.x];
  if (target >= run && target < run + part) {
    for (int64_t i = b; i < e; ++i) {
      const float p = prob(i);
      if (p < theta) continue;
      run += p;
      if (target < run) { out[blockIdx.x] = static_cast<int32_t>(i); break; }
    }
  }
}

}  // namespace

Status argmax(const float* logits, int64_t n, int64_t vocab, int32_t* out, cudaStream_t stream) {
  if (n <= 0) return Status();
  argmax_kernel<<<static_cast<unsigned>(n), kThreads, 0, stream>>>(logits, vocab, out);
  return launch_status("argmax_kernel");
}

Status sample_top_p(const float* logits, int64_t n, int64_t vocab, float temperature, float top_p,
                    const float* uniforms, int32_t* out, cudaStream_t stream) {
  if (!(temperature > 0.f) || !(top_p > 0.f && top_p <= 1.f)) {
    return make_error(ErrorCode::kInvalidArgument, "cuda::sample_top_p: expected temperature > 0 and top_p in "
                                                   "(0, 1], found " + std::to_string(temperature) + ", " +
                                                   std::to_string(top_p));
  }
  if (n <= 0) return Status();
  top_p_kernel<<<static_cast<unsigned>(n), kThreads, 0, stream>>>(logits, vocab, 1.f / temperature, top_p,
                                                                   uniforms, out);
  return launch_status("top_p_kernel");
}

}  // namespace latent::cuda
