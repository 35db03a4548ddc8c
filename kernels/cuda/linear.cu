// linear: the exact float32 GEMV kernel (decode, and every FP8 weight) and the cuBLAS tensor-core path
// (prefill with BF16/F16/F32 weights). A warp owns one output row and up to kTok tokens, so each weight row
// is read from memory once per kTok tokens: decode is bound by weight bytes, which this streams with 16-byte
// loads.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <string>
#include <type_traits>

#include "kernels/cuda/check.h"
#include "kernels/cuda/ops.h"
#include "kernels/cuda/weight_load.cuh"

namespace latent::cuda {
namespace {

constexpr int kTok = 4;
constexpr int kWarps = 8;

template <DType DT>
__global__ void __launch_bounds__(kWarps * 32)
    gemv_kernel(const float* __restrict__ x, int64_t ldx, int64_t n, const void* __restrict__ w,
                const float* __restrict__ scale_inv, int64_t rows, int64_t cols, int64_t block,
                float* __restrict__ y, int64_t ldy) {
  const int lane = threadIdx.x & 31;
  const int64_t r = static_cast<int64_t>(blockIdx.x) * kWarps + (threadIdx.x >> 5);
  if (r >= rows) return;
  for (int64_t t0 = 0; t0 < n; t0 += kTok) {
    float acc[kTok] = {};
    const int nt = n - t0 < kTok ? static_cast<int>(n - t0) : kTok;
    for (int64_t c = lane * 8; c < cols; c += 256) {
      float wv[8];
      detail::load8<DT>(w, scale_inv, cols, block, r, c, wv);
#pragma unroll
      for (int t = 0; t < kTok; ++t) {
        if (t < nt) {
          const float* xr = x + (t0 + t) * ldx + c;
          const float4 a = *reinterpret_cast<const float4*>(xr), b = *reinterpret_cast<const float4*>(xr + 4);
          acc[t] += wv[0] * a.x + wv[1] * a.y + wv[2] * a.z + wv[3] * a.w + wv[4] * b.x + wv[5] * b.y +
                    wv[6] * b.z + wv[7] * b.w;
        }
      }
    }
#pragma unroll
    for (int t = 0; t < kTok; ++t) {
      const float s = detail::warp_sum(acc[t]);
      if (t < nt && lane == 0) y[(t0 + t) * ldy + r] = s;
    }
  }
}

// dst[n, cols] (dense) = src rows rounded to bf16 / f16.
template <typename T>
__global__ void round_rows(const float* __restrict__ src, int64_t ld, int64_t n, int64_t cols, T* __restrict__ dst) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n * cols) return;
  const float v = src[(i / cols) * ld + i % cols];
  if constexpr (sizeof(T) == 2 && std::is_same_v<T, __nv_bfloat16>) {
    dst[i] = __float2bfloat16(v);
  } else {
    dst[i] = __float2half(v);
  }
}

Status gemv(const float* x, int64_t ldx, int64_t n, const DeviceWeight& w, float* y, int64_t ldy, cudaStream_t s) {
  const dim3 grid(static_cast<unsigned>((w.rows + kWarps - 1) / kWarps)), threads(kWarps * 32);
  switch (w.dtype) {
    case DType::kF32:
      gemv_kernel<DType::kF32><<<grid, threads, 0, s>>>(x, ldx, n, w.data, w.scale_inv, w.rows, w.cols, w.block, y, ldy);
      break;
    case DType::kBF16:
      gemv_kernel<DType::kBF16><<<grid, threads, 0, s>>>(x, ldx, n, w.data, w.scale_inv, w.rows, w.cols, w.block, y, ldy);
      break;
    case DType::kF16:
      gemv_kernel<DType::kF16><<<grid, threads, 0, s>>>(x, ldx, n, w.data, w.scale_inv, w.rows, w.cols, w.block, y, ldy);
      break;
    case DType::kF8E4M3:
      gemv_kernel<DType::kF8E4M3><<<grid, threads, 0, s>>>(x, ldx, n, w.data, w.scale_inv, w.rows, w.cols, w.block, y, ldy);
      break;
  }
  return launch_status("gemv_kernel");
}

}  // namespace

Result<Blas> Blas::create(cudaStream_t stream, int64_t max_elems) {
  Blas b;
  b.stream_ = stream;
  LATENT_RETURN_IF_ERROR(cublas_status(cublasCreate(&b.handle_), "cublasCreate"));
  LATENT_RETURN_IF_ERROR(cublas_status(cublasSetStream(b.handle_, stream), "cublasSetStream"));
  LATENT_RETURN_IF_ERROR(cuda_status(cudaMalloc(&b.workspace_, kWorkspaceBytes), "cudaMalloc cuBLAS workspace"));
  LATENT_RETURN_IF_ERROR(cublas_status(cublasSetWorkspace(b.handle_, b.workspace_, kWorkspaceBytes), "cublasSetWorkspace"));
  if (max_elems > 0) {
    LATENT_RETURN_IF_ERROR(cuda_status(cudaMalloc(&b.staging_, static_cast<size_t>(max_elems) * 2), "cudaMalloc staging"));
    b.staging_elems_ = max_elems;
  }
  return Result<Blas>(std::move(b));
}

Blas& Blas::operator=(Blas&& o) noexcept {
  std::swap(handle_, o.handle_), std::swap(stream_, o.stream_), std::swap(staging_, o.staging_);
  std::swap(staging_elems_, o.staging_elems_), std::swap(tensor_core_min_tokens, o.tensor_core_min_tokens);
  std::swap(workspace_, o.workspace_);
  return *this;
}

Blas::~Blas() {
  if (handle_) cublasDestroy(handle_);  // before its workspace; the stream outlives the handle (CudaDevice)
  cudaFree(staging_);
  cudaFree(workspace_);
}

Status linear(Blas& blas, const float* x, int64_t ldx, int64_t n, const DeviceWeight& w, float* y, int64_t ldy) {
  if (w.cols % 8 != 0 || ldx % 4 != 0 || ldx < w.cols || ldy < w.rows || reinterpret_cast<uintptr_t>(x) % 16 != 0) {
    return make_error(ErrorCode::kUnsupported, "cuda::linear: expected cols % 8 == 0, ldx % 4 == 0, ldx >= cols, "
                                               "ldy >= rows, x 16-byte aligned; found cols " + std::to_string(w.cols) + ", ldx " +
                                               std::to_string(ldx) + ", ldy " + std::to_string(ldy));
  }
  if (n <= 0) return Status();
  const bool tensor = n >= blas.tensor_core_min_tokens && w.dtype != DType::kF8E4M3;
  if (!tensor) return gemv(x, ldx, n, w, y, ldy, blas.stream());
  // Column-major view: yᵀ[rows, n] = W[rows, cols] (row-major = colmajor Wᵀ, op T) · xᵀ[cols, n].
  const float alpha = 1.f, beta = 0.f;
  const int m = static_cast<int>(w.rows), nn = static_cast<int>(n), k = static_cast<int>(w.cols);
  count_launch();  // the GEMM (cuBLAS may queue more than one kernel for it)
  if (w.dtype == DType::kF32) {
    return cublas_status(cublasGemmEx(blas.handle(), CUBLAS_OP_T, CUBLAS_OP_N, m, nn, k, &alpha, w.data, CUDA_R_32F,
                                      k, x, CUDA_R_32F, static_cast<int>(ldx), &beta, y, CUDA_R_32F,
                                      static_cast<int>(ldy), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                         "cublasGemmEx f32");
  }
  if (n * w.cols > blas.staging_elems()) {
    return make_error(ErrorCode::kResourceExhausted, "cuda::linear: staging for " + std::to_string(n * w.cols) +
                                                         " activations expected, Blas holds " +
                                                         std::to_string(blas.staging_elems()));
  }
  const int64_t total = n * w.cols;
  const unsigned blocks = static_cast<unsigned>((total + 255) / 256);
  const bool bf = w.dtype == DType::kBF16;
  if (bf) {
    round_rows<<<blocks, 256, 0, blas.stream()>>>(x, ldx, n, w.cols, static_cast<__nv_bfloat16*>(blas.staging()));
  } else {
    round_rows<<<blocks, 256, 0, blas.stream()>>>(x, ldx, n, w.cols, static_cast<__half*>(blas.staging()));
  }
  LATENT_RETURN_IF_ERROR(launch_status("round_rows"));
  const cudaDataType_t t = bf ? CUDA_R_16BF : CUDA_R_16F;
  return cublas_status(cublasGemmEx(blas.handle(), CUBLAS_OP_T, CUBLAS_OP_N, m, nn, k, &alpha, w.data, t, k,
                                    blas.staging(), t, k, &beta, y, CUDA_R_32F, static_cast<int>(ldy),
                                    CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                       "cublasGemmEx bf16/f16");
}

}  // namespace latent::cuda
