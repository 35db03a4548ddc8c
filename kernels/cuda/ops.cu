// Element-wise and row ops: embedding, RMSNorm, RoPE, SwiGLU. One block per row where a row reduction is
// needed; everything else one thread per element.
#include <string>

#include "kernels/cuda/check.h"
#include "kernels/cuda/ops.h"
#include "kernels/cuda/weight_load.cuh"

namespace latent::cuda {
namespace {

__global__ void embedding_kernel(const void* table, DType dt, const float* scale_inv, int64_t vocab, int64_t d,
                                 int64_t block, const int32_t* ids, float* out) {
  const int64_t t = blockIdx.x;
  const int32_t id = ids[t];
  for (int64_t c = threadIdx.x; c < d; c += blockDim.x) {
    out[t * d + c] = (id >= 0 && id < vocab) ? detail::load1(table, dt, scale_inv, d, block, id, c) : 0.f;
  }
}

// Sum of squares in double like the CPU reference (ops_ref.cpp), so both agree to float rounding.
__global__ void rms_norm_kernel(const float* x, int64_t ldx, int64_t d, const void* gain, DType gdt, float eps,
                                float* y, int64_t ldy) {
  const int64_t t = blockIdx.x;
  const float* xr = x + t * ldx;
  double ss = 0;
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) ss += static_cast<double>(xr[i]) * xr[i];
  __shared__ double part[32];
  for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
  if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = ss;
  __syncthreads();
  if (threadIdx.x < 32) {
    double v = threadIdx.x < (blockDim.x >> 5) ? part[threadIdx.x] : 0.0;
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    if (threadIdx.x == 0) part[0] = v;
  }
  __syncthreads();
  const float inv = static_cast<float>(1.0 / sqrt(part[0] / static_cast<double>(d) + eps));
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) {
    y[t * ldy + i] = xr[i] * inv * detail::load1(gain, gdt, nullptr, d, 128, 0, i);
  }
}

// One thread per (token, head, pair). cos/sin in double of the float32 angle, as engine/rope.cpp.
__global__ void rope_kernel(float* x, int64_t n, int64_t n_heads, int64_t token_stride, int64_t head_stride,
                            int64_t offset, int64_t half, const int32_t* positions, const float* inv_freq,
                            float mscale) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n * n_heads * half) return;
  const int64_t p = i % half, h = (i / half) % n_heads, t = i / (half * n_heads);
  const float angle = static_cast<float>(positions[t]) * inv_freq[p];
  double s, c;
  sincos(static_cast<double>(angle), &s, &c);
  // (cos * mscale) in float32, as engine/rope.cpp's rope_cos_sin (the reference's cos_cached * _mscale)
  const float cf = static_cast<float>(c) * mscale, sf = static_cast<float>(s) * mscale;
  float* v = x + t * token_stride + h * head_stride + offset + 2 * p;
  const float a = v[0], b = v[1];
  v[0] = a * cf - b * sf;
  v[1] = a * sf + b * cf;
}

__global__ void add_kernel(const float* a, int64_t n, float* y) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) y[i] += a[i];
}

__global__ void swiglu_kernel(const float* gate, const float* up, int64_t n, float* out) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const float g = gate[i];
  out[i] = g / (1.f + expf(-g)) * up[i];
}

// Row i of y from row rows[i] of x: one block per row, float4 when d allows.
__global__ void gather_rows_kernel(const float* x, int64_t d, const int32_t* rows, float* y) {
  const int64_t i = blockIdx.x;
  const float* src = x + static_cast<int64_t>(rows[i]) * d;
  float* dst = y + i * d;
  if (d % 4 == 0) {
    for (int64_t c = threadIdx.x; c < d / 4; c += blockDim.x) {
      reinterpret_cast<float4*>(dst)[c] = reinterpret_cast<const float4*>(src)[c];
    }
    return;
  }
  for (int64_t c = threadIdx.x; c < d; c += blockDim.x) dst[c] = src[c];
}

unsigned blocks_for(int64_t n, int threads) { return static_cast<unsigned>((n + threads - 1) / threads); }

}  // namespace

Status embedding(const DeviceWeight& table, const int32_t* ids, int64_t n, float* out, cudaStream_t stream) {
  if (n <= 0) return Status();
  embedding_kernel<<<static_cast<unsigned>(n), 256, 0, stream>>>(table.data, table.dtype, table.scale_inv,
                                                                 table.rows, table.cols, table.block, ids, out);
  return launch_status("embedding_kernel");
}

Status rms_norm(const float* x, int64_t n, int64_t d, const void* gain, DType gain_dtype, float eps, float* y,
                cudaStream_t stream) {
  return rms_norm_strided(x, d, n, d, gain, gain_dtype, eps, y, d, stream);
}

Status rms_norm_strided(const float* x, int64_t ldx, int64_t n, int64_t d, const void* gain, DType gain_dtype,
                        float eps, float* y, int64_t ldy, cudaStream_t stream) {
  if (gain_dtype == DType::kF8E4M3) {
    return make_error(ErrorCode::kUnsupported, "cuda::rms_norm: expected an F32/BF16/F16 gain, found F8_E4M3");
  }
  if (n <= 0) return Status();
  rms_norm_kernel<<<static_cast<unsigned>(n), 256, 0, stream>>>(x, ldx, d, gain, gain_dtype, eps, y, ldy);
  return launch_status("rms_norm_kernel");
}

Status rope(float* x, int64_t n, int64_t n_heads, int64_t token_stride, int64_t head_stride, int64_t offset,
            int64_t rope_dim, const int32_t* positions, const float* inv_freq, float mscale, cudaStream_t stream) {
  if (rope_dim % 2 != 0) {
    return make_error(ErrorCode::kInvalidArgument, "cuda::rope: expected an even rope_dim, found " +
                                                       std::to_string(rope_dim));
  }
  const int64_t total = n * n_heads * (rope_dim / 2);
  if (total <= 0) return Status();
  rope_kernel<<<blocks_for(total, 256), 256, 0, stream>>>(x, n, n_heads, token_stride, head_stride, offset,
                                                          rope_dim / 2, positions, inv_freq, mscale);
  return launch_status("rope_kernel");
}

Status gather_rows(const float* x, int64_t d, const int32_t* rows, int64_t n, float* y, cudaStream_t stream) {
  if (n <= 0) return Status();
  gather_rows_kernel<<<static_cast<unsigned>(n), 256, 0, stream>>>(x, d, rows, y);
  return launch_status("gather_rows_kernel");
}

Status add_inplace(const float* a, int64_t n, float* y, cudaStream_t stream) {
  if (n <= 0) return Status();
  add_kernel<<<blocks_for(n, 256), 256, 0, stream>>>(a, n, y);
  return launch_status("add_kernel");
}

Status swiglu(const float* gate, const float* up, int64_t n, float* out, cudaStream_t stream) {
  if (n <= 0) return Status();
  swiglu_kernel<<<blocks_for(n, 256), 256, 0, stream>>>(gate, up, n, out);
  return launch_status("swiglu_kernel");
}

}  // namespace latent::cuda
