// Token selection on the device: greedy argmax and sampling with top-p, top-k and min-p, one 1024-thread block
// per row, so the logits never leave the GPU and a decode step needs no host round trip before the next one.
// Top-p reads the vocabulary four times (max, Z, candidate count, candidate compaction) and searches its
// threshold, and top-k its k-th largest probability, among the candidates in shared memory (top_p_kernel).
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

// Draws with u in [0, 1) from the items j in [0, n) whose probability p_of(j) >= theta, walked in index order
// (index_of(j) ascending with j): thread k owns the contiguous range [k * chunk, (k + 1) * chunk). Writes the
// token to *out; rounding fallback: the last kept token of the range that holds the target (a per-token sum can
// round below the range's part), else the row's last kept token. A token of probability 0 is never drawn.
template <class P, class I>
__device__ void draw(int64_t n, const P& p_of, const I& index_of, float theta, float u, float* prefix,
                     float* scratch, int32_t* out) {
  __shared__ int32_t last_kept;
  const int64_t chunk = (n + kThreads - 1) / kThreads, b = threadIdx.x * chunk, e = min(n, b + chunk);
  float part = 0.f;
  int32_t last = -1;
  for (int64_t j = b; j < e; ++j) {
    const float p = p_of(j);
    if (p >= theta && p > 0.f) part += p, last = index_of(j);  // theta 0 (top_p 1) keeps all, never p = 0 ones
  }
  prefix[threadIdx.x] = part;
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
  const float target = u * scratch[0];
  if (threadIdx.x == 0) *out = last_kept;
  __syncthreads();
  float run = prefix[threadIdx.x];
  if (target >= run && target < run + part) {  // this thread's range holds the target (one thread at most)
    int32_t hit = -1;  // rounding fallback: this range's last kept token with p > 0
    for (int64_t j = b; j < e; ++j) {
      const float p = p_of(j);
      if (p < theta || p <= 0.f) continue;
      run += p;
      hit = index_of(j);
      if (target < run) break;
    }
    if (hit >= 0) *out = hit;
  }
}

// Largest threshold theta whose kept mass (Σ p_of(j) over p_of(j) >= theta) still reaches top_p, by bisection
// (the mass falls as theta rises), snapped to the smallest kept probability so that ties with it are all kept.
// hi: the largest probability.
template <class P>
__device__ float nucleus_threshold(int64_t n, const P& p_of, float top_p, float hi, float* scratch) {
  auto mass_at_least = [&](float theta) {
    float m = 0.f;
    for (int64_t j = threadIdx.x; j < n; j += kThreads) {
      const float p = p_of(j);
      if (p >= theta) m += p;
    }
    return block_sum(m, scratch);
  };
  float lo = 0.f;
  if (mass_at_least(hi) >= top_p) {
    lo = hi;
  } else {
    for (int it = 0; it < 40; ++it) {
      const float mid = 0.5f * (lo + hi);
      if (mass_at_least(mid) >= top_p) lo = mid; else hi = mid;
    }
  }
  float theta = FLT_MAX;
  for (int64_t j = threadIdx.x; j < n; j += kThreads) {
    const float p = p_of(j);
    if (p >= lo) theta = fminf(theta, p);
  }
  return -block_max(-theta, scratch);
}

// The k-th largest of p_of(j) over [0, n) (k <= n), by bisection on the count of items at or above a threshold
// (it falls as the threshold rises), snapped to the smallest probability at or above the bound found: every
// token tied with the k-th is kept with it. hi: the largest probability. Counts are summed as floats (exact
// below 2^24 items).
template <class P>
__device__ float kth_largest(int64_t n, const P& p_of, int k, float hi, float* scratch) {
  auto count_at_least = [&](float theta) {
    float c = 0.f;
    for (int64_t j = threadIdx.x; j < n; j += kThreads) c += p_of(j) >= theta ? 1.f : 0.f;
    return block_sum(c, scratch);
  };
  float lo = 0.f;
  if (count_at_least(hi) >= static_cast<float>(k)) {
    lo = hi;
  } else {
    for (int it = 0; it < 40; ++it) {
      const float mid = 0.5f * (lo + hi);
      if (count_at_least(mid) >= static_cast<float>(k)) lo = mid; else hi = mid;
    }
  }
  float theta = FLT_MAX;
  for (int64_t j = threadIdx.x; j < n; j += kThreads) {
    const float p = p_of(j);
    if (p >= lo) theta = fminf(theta, p);
  }
  return -block_max(-theta, scratch);
}

// One row per block. p_i = exp((l_i - max) / T) / Z is recomputed from the logits rather than stored (vocab up
// to 160K). Full-vocabulary passes: max, Z, then (top_p < 1) a count and a compaction of the candidates, the
// tokens with p >= eps = (1 - top_p) / (2 vocab): the tokens below eps hold less than (1 - top_p) / 2 of the
// mass together, so the nucleus (taken from the most probable down) ends before it reaches any of them, and
// the threshold search and the draw run over the candidates in shared memory. A row with more than
// kMaxCandidates candidates (a nearly flat distribution) searches the whole vocabulary (40 passes), as does
// nothing for top_p = 1 (every token kept).
constexpr int kWarpsPerRow = kThreads / 32;
constexpr int kMaxCandidates = 4096;

__global__ void __launch_bounds__(kThreads) top_p_kernel(const float* logits, int64_t vocab, float inv_temp,
                                                         float top_p, int top_k, float min_p, const float* uniforms,
                                                         int32_t* out) {
  __shared__ float scratch[32];
  __shared__ float prefix[kThreads];
  __shared__ float cand_p[kMaxCandidates];
  __shared__ int32_t cand_i[kMaxCandidates];
  __shared__ int32_t warp_base[kWarpsPerRow + 1];
  const float* l = logits + blockIdx.x * vocab;
  float mx = -FLT_MAX;
  for (int64_t i = threadIdx.x; i < vocab; i += kThreads) mx = fmaxf(mx, l[i]);
  mx = block_max(mx, scratch);
  float z = 0.f;
  for (int64_t i = threadIdx.x; i < vocab; i += kThreads) z += expf((l[i] - mx) * inv_temp);
  z = block_sum(z, scratch);
  const float inv_z = 1.f / z;
  auto prob = [&](int64_t i) { return expf((l[i] - mx) * inv_temp) * inv_z; };
  auto index = [](int64_t i) { return static_cast<int32_t>(i); };
  const float u = uniforms[blockIdx.x];
  // The kept set is every token at or above the largest of the filters' thresholds: min-p's min_p * p_max
  // (p_max = 1 / Z, the top token's exp(0) / Z), top-k's k-th largest probability, top-p's nucleus threshold.
  // Clamped to p_max, so the top token is always kept.
  const float floor = min_p > 0.f ? min_p * inv_z : 0.f;
  const bool use_k = top_k > 0 && top_k < vocab;
  if (!(top_p < 1.f)) {
    float theta = floor;
    if (use_k) theta = fmaxf(theta, kth_largest(vocab, prob, top_k, inv_z, scratch));
    draw(vocab, prob, index, fminf(theta, inv_z), u, prefix, scratch, out + blockIdx.x);
    return;
  }
  // Candidates in index order: warp w owns the contiguous range [w * wchunk, (w + 1) * wchunk) and walks it
  // 32 tokens at a time; a ballot counts them (first pass) and places them (second pass).
  const float eps = 0.5f * (1.f - top_p) / static_cast<float>(vocab);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t wchunk = ((vocab + 31) / 32 + kWarpsPerRow - 1) / kWarpsPerRow * 32;
  const int64_t wb = warp * wchunk, we = min(vocab, wb + wchunk);
  int count = 0;
  for (int64_t i0 = wb; i0 < we; i0 += 32) {  // uniform over the warp: every lane takes part in the ballot
    const int64_t i = i0 + lane;
    count += __popc(__ballot_sync(0xffffffffu, i < we && prob(i) >= eps));
  }
  if (lane == 0) warp_base[warp] = count;
  __syncthreads();
  if (threadIdx.x == 0) {
    int run = 0;
    for (int w = 0; w < kWarpsPerRow; ++w) { const int c = warp_base[w]; warp_base[w] = run; run += c; }
    warp_base[kWarpsPerRow] = run;
  }
  __syncthreads();
  const int n_cand = warp_base[kWarpsPerRow];
  if (n_cand > kMaxCandidates || n_cand == 0) {  // 0: only when rounding lost every candidate
    float theta = fmaxf(nucleus_threshold(vocab, prob, top_p, inv_z, scratch), floor);
    if (use_k) theta = fmaxf(theta, kth_largest(vocab, prob, top_k, inv_z, scratch));
    draw(vocab, prob, index, fminf(theta, inv_z), u, prefix, scratch, out + blockIdx.x);
    return;
  }
  int pos = warp_base[warp];
  for (int64_t i0 = wb; i0 < we; i0 += 32) {
    const int64_t i = i0 + lane;
    const float p = i < we ? prob(i) : 0.f;
    const bool keep = i < we && p >= eps;
    const unsigned m = __ballot_sync(0xffffffffu, keep);
    if (keep) {
      const int at = pos + __popc(m & ((1u << lane) - 1u));
      cand_p[at] = p, cand_i[at] = static_cast<int32_t>(i);
    }
    pos += __popc(m);
  }
  __syncthreads();
  auto cand_prob = [&](int64_t j) { return cand_p[j]; };
  auto cand_index = [&](int64_t j) { return cand_i[j]; };
  float theta = fmaxf(nucleus_threshold(n_cand, cand_prob, top_p, inv_z, scratch), floor);
  // The candidates are the n_cand most probable tokens: with fewer than k of them the k-th largest is below
  // every candidate, hence below the nucleus threshold, and binds nothing.
  if (use_k && n_cand >= top_k) theta = fmaxf(theta, kth_largest(n_cand, cand_prob, top_k, inv_z, scratch));
  draw(n_cand, cand_prob, cand_index, fminf(theta, inv_z), u, prefix, scratch, out + blockIdx.x);
}

}  // namespace

Status argmax(const float* logits, int64_t n, int64_t vocab, int32_t* out, cudaStream_t stream) {
  if (n <= 0) return Status();
  argmax_kernel<<<static_cast<unsigned>(n), kThreads, 0, stream>>>(logits, vocab, out);
  return launch_status("argmax_kernel");
}

Status sample(const float* logits, int64_t n, int64_t vocab, float temperature, float top_p, int top_k, float min_p,
              const float* uniforms, int32_t* out, cudaStream_t stream) {
  if (!(temperature > 0.f) || !(top_p > 0.f && top_p <= 1.f) || top_k < 0 || !(min_p >= 0.f && min_p <= 1.f)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "cuda::sample: expected temperature > 0, top_p in (0, 1], top_k >= 0 and min_p in [0, 1], "
                      "found " + std::to_string(temperature) + ", " + std::to_string(top_p) + ", " +
                          std::to_string(top_k) + ", " + std::to_string(min_p));
  }
  if (n <= 0) return Status();
  top_p_kernel<<<static_cast<unsigned>(n), kThreads, 0, stream>>>(logits, vocab, 1.f / temperature, top_p, top_k,
                                                                   min_p, uniforms, out);
  return launch_status("top_p_kernel");
}

Status sample_top_p(const float* logits, int64_t n, int64_t vocab, float temperature, float top_p,
                    const float* uniforms, int32_t* out, cudaStream_t stream) {
  if (!(temperature > 0.f) || !(top_p > 0.f && top_p <= 1.f)) {
    return make_error(ErrorCode::kInvalidArgument, "cuda::sample_top_p: expected temperature > 0 and top_p in "
                                                   "(0, 1], found " + std::to_string(temperature) + ", " +
                                                   std::to_string(top_p));
  }
  return sample(logits, n, vocab, temperature, top_p, 0, 0.f, uniforms, out, stream);
}

}  // namespace latent::cuda
