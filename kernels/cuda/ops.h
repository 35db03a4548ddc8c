#pragma once
// CUDA op interface: the same ops and semantics as kernels/cpu/ops.h, on device pointers. Activations are
// float32 row-major; weights stay in their stored dtype (F32, BF16, F16, FP8-E4M3 with 128x128 block scales)
// and are widened in registers. Every call only queues work on `stream` (no host synchronisation, no
// allocation), so a decode step can be captured into a CUDA graph. Errors are launch/configuration errors.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/base/result.h"
#include "kernels/cuda/memory.h"

namespace latent::cuda {

// cuBLAS handle bound to one stream, plus the bf16 staging buffer for tensor-core GEMMs. Not thread-safe.
class Blas {
 public:
  // max_elems: largest n * cols of an activation that goes through the tensor-core path.
  static Result<Blas> create(cudaStream_t stream, int64_t max_elems);
  Blas() = default;
  Blas(Blas&& o) noexcept { *this = std::move(o); }
  Blas& operator=(Blas&& o) noexcept;
  Blas(const Blas&) = delete;
  Blas& operator=(const Blas&) = delete;
  ~Blas();

  cublasHandle_t handle() const { return handle_; }
  cudaStream_t stream() const { return stream_; }
  void* staging() const { return staging_; }
  int64_t staging_elems() const { return staging_elems_; }
  // cuBLAS's workspace, set once (kWorkspaceBytes): cuBLAS then allocates nothing inside a captured graph.
  static constexpr size_t kWorkspaceBytes = size_t{32} << 20;
  // n >= this many tokens with BF16/F16/F32 weights: cuBLAS (activations rounded to the weight dtype, fp32
  // accumulate, ~1e-3 relative error); below, the exact float32 GEMV kernel. Default 16; a huge value
  // makes every linear exact (golden tests).
  int64_t tensor_core_min_tokens = 16;

 private:
  cublasHandle_t handle_ = nullptr;
  cudaStream_t stream_ = nullptr;
  void* staging_ = nullptr;
  int64_t staging_elems_ = 0;
  void* workspace_ = nullptr;
};

// y[n, rows] (row t at y + t * ldy) = x[n, cols] (row t at x + t * ldx) · Wᵀ.
// Requires cols % 8 == 0, ldx % 4 == 0 and x 16-byte aligned (every DeepSeek dimension is).
Status linear(Blas& blas, const float* x, int64_t ldx, int64_t n, const DeviceWeight& w, float* y, int64_t ldy);
inline Status linear(Blas& blas, const float* x, int64_t n, const DeviceWeight& w, float* y) {
  return linear(blas, x, w.cols, n, w, y, w.rows);
}

// out[n, d] = rows ids[0..n) of table [vocab, d] (ids on the device; out of range ids give zeros).
Status embedding(const DeviceWeight& table, const int32_t* ids, int64_t n, float* out, cudaStream_t stream);

// y[n, d] = x / rms(x) * gain.
Status rms_norm(const float* x, int64_t n, int64_t d, const void* gain, DType gain_dtype, float eps, float* y,
                cudaStream_t stream);

// The same over strided rows: x row t at x + t * ldx, y row t at y + t * ldy (kv_a_layernorm normalizes the
// latent part of each [latent | rope] row of kv_a_proj_with_mqa's output in place).
Status rms_norm_strided(const float* x, int64_t ldx, int64_t n, int64_t d, const void* gain, DType gain_dtype,
                        float eps, float* y, int64_t ldy, cudaStream_t stream);

// y row i = x row rows[i], n rows of d floats, rows on the device (one launch for the batch's logit rows).
Status gather_rows(const float* x, int64_t d, const int32_t* rows, int64_t n, float* y, cudaStream_t stream);

// y[i] += a[i] (the residual stream).
Status add_inplace(const float* a, int64_t n, float* y, cudaStream_t stream);

// Interleaved-pair RoPE in place (DeepSeek layout, see engine/rope.h): for token t and head h the rope_dim
// values at x + t * token_stride + h * head_stride + offset are rotated by positions[t] * inv_freq[i]
// (inv_freq [rope_dim / 2] on the device, YaRN already folded in), cos and sin each times mscale (YaRN's
// ModelConfig::rope_mscale(), 1 without it) as engine/rope.cpp.
Status rope(float* x, int64_t n, int64_t n_heads, int64_t token_stride, int64_t head_stride, int64_t offset,
            int64_t rope_dim, const int32_t* positions, const float* inv_freq, float mscale, cudaStream_t stream);

// out[i] = silu(gate[i]) * up[i].
Status swiglu(const float* gate, const float* up, int64_t n, float* out, cudaStream_t stream);

// out[r] = index of the largest logits[r, :] (lowest index on ties), for n rows of vocab values.
Status argmax(const float* logits, int64_t n, int64_t vocab, int32_t* out, cudaStream_t stream);

// Top-p (nucleus) sampling of each row: p = softmax(logits / temperature); keep the smallest set of
// most probable tokens whose mass reaches top_p (every token tied with the smallest kept one too); draw
// token with uniforms[r] in [0, 1) by walking the kept set in index order. uniforms on the device, so a
// captured graph takes fresh randomness each replay.
Status sample_top_p(const float* logits, int64_t n, int64_t vocab, float temperature, float top_p,
                    const float* uniforms, int32_t* out, cudaStream_t stream);

// sample_top_p with top-k and min-p too (sampler.h's filters but the repetition penalty): the kept set is
// every token at or above the largest of the thresholds: top-p's, the k-th largest probability (top_k > 0;
// ties with it kept) and min_p times the top probability (min_p > 0); the top token always. The host Sampler
// keeps exactly k on ties (lower ids first): the two differ only where probabilities tie at a cut.
Status sample(const float* logits, int64_t n, int64_t vocab, float temperature, float top_p, int top_k, float min_p,
              const float* uniforms, int32_t* out, cudaStream_t stream);

}  // namespace latent::cuda
