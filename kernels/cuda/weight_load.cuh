#pragma once
// Device-side widening of stored weights to float32, eight consecutive columns at a time (c % 8 == 0).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <cstdint>

#include "kernels/cpu/dtype.h"

namespace latent::cuda::detail {

__device__ __forceinline__ float fp8_to_f32(uint8_t v) {
  return __half2float(__half(__nv_cvt_fp8_to_halfraw(static_cast<__nv_fp8_storage_t>(v), __NV_E4M3)));
}

// Scale of element (r, c) of an FP8 weight; 1 when it has no scales.
__device__ __forceinline__ float fp8_scale(const float* scale_inv, int64_t cols, int64_t block, int64_t r,
                                           int64_t c) {
  if (!scale_inv) return 1.f;
  const int64_t scale_cols = (cols + block - 1) / block;
  return scale_inv[(r / block) * scale_cols + c / block];
}

template <DType DT>
__device__ __forceinline__ void load8(const void* data, const float* scale_inv, int64_t cols, int64_t block,
                                      int64_t r, int64_t c, float (&out)[8]) {
  const int64_t i = r * cols + c;
  if constexpr (DT == DType::kF32) {
    const float4 a = *reinterpret_cast<const float4*>(static_cast<const float*>(data) + i);
    const float4 b = *reinterpret_cast<const float4*>(static_cast<const float*>(data) + i + 4);
    out[0] = a.x, out[1] = a.y, out[2] = a.z, out[3] = a.w, out[4] = b.x, out[5] = b.y, out[6] = b.z, out[7] = b.w;
  } else if constexpr (DT == DType::kBF16) {
    const uint4 v = *reinterpret_cast<const uint4*>(static_cast<const uint16_t*>(data) + i);
    const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&v);
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      const float2 f = __bfloat1622float2(h[k]);
      out[2 * k] = f.x, out[2 * k + 1] = f.y;
    }
  } else if constexpr (DT == DType::kF16) {
    const uint4 v = *reinterpret_cast<const uint4*>(static_cast<const uint16_t*>(data) + i);
    const __half2* h = reinterpret_cast<const __half2*>(&v);
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      const float2 f = __half22float2(h[k]);
      out[2 * k] = f.x, out[2 * k + 1] = f.y;
    }
  } else {
    const uint2 v = *reinterpret_cast<const uint2*>(static_cast<const uint8_t*>(data) + i);
    const uint8_t* b = reinterpret_cast<const uint8_t*>(&v);
    const float s = fp8_scale(scale_inv, cols, block, r, c);
#pragma unroll
    for (int k = 0; k < 8; ++k) out[k] = fp8_to_f32(b[k]) * s;
  }
}

// One element (slow path: norms' gains, embedding rows of odd width).
__device__ __forceinline__ float load1(const void* data, DType dt, const float* scale_inv, int64_t cols,
                                       int64_t block, int64_t r, int64_t c) {
  const int64_t i = r * cols + c;
  switch (dt) {
    case DType::kF32: return static_cast<const float*>(data)[i];
    case DType::kBF16: return __bfloat162float(__ushort_as_bfloat16(static_cast<const uint16_t*>(data)[i]));
    case DType::kF16: return __half2float(__ushort_as_half(static_cast<const uint16_t*>(data)[i]));
    default:
      return fp8_to_f32(static_cast<const uint8_t*>(data)[i]) * fp8_scale(scale_inv, cols, block, r, c);
  }
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

}  // namespace latent::cuda::detail
