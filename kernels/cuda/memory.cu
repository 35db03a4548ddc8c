#include "kernels/cuda/memory.h"

#include <cuda_bf16.h>

#include <algorithm>
#include <string>

#include "kernels/cuda/check.h"

namespace latent::cuda {

namespace {

// splitmix64 of (seed, i): independent of the launch shape, so a value depends only on its index.
__device__ __forceinline__ uint64_t mix(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

__global__ void fill_random_kernel(void* data, bool bf16, int64_t n, uint64_t seed, float lo, float hi) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const float u = static_cast<float>(mix(seed * 0x100000001b3ull + static_cast<uint64_t>(i)) >> 40) * (1.f / 16777216.f);
    const float v = lo + (hi - lo) * u;
    if (bf16) {
      static_cast<__nv_bfloat16*>(data)[i] = __float2bfloat16(v);
    } else {
      static_cast<float*>(data)[i] = v;
    }
  }
}

}  // namespace

Status fill_random(void* data, DType dtype, int64_t n, uint64_t seed, float lo, float hi, cudaStream_t stream) {
  if (dtype != DType::kF32 && dtype != DType::kBF16) {
    return make_error(ErrorCode::kInvalidArgument,
                      std::string("fill_random: expected F32 or BF16, found ") + dtype_name(dtype));
  }
  if (n <= 0) return Status();
  const int64_t blocks = std::min<int64_t>((n + 255) / 256, 65535);
  fill_random_kernel<<<static_cast<unsigned>(blocks), 256, 0, stream>>>(data, dtype == DType::kBF16, n, seed, lo, hi);
  return launch_status("fill_random_kernel");
}

size_t weight_bytes(const cpu::WeightView& w) {
  size_t b = static_cast<size_t>(w.rows * w.cols) * static_cast<size_t>(dtype_size(w.dtype));
  if (w.dtype == DType::kF8E4M3 && w.scale_inv) {
    const int64_t sr = (w.rows + w.block - 1) / w.block, sc = (w.cols + w.block - 1) / w.block;
    b += static_cast<size_t>(sr * sc) * sizeof(float);
  }
  return b;
}

Result<DeviceArena> DeviceArena::create(size_t bytes) {
  DeviceArena a;
  LATENT_RETURN_IF_ERROR(cuda_status(cudaMalloc(&a.base_, bytes),
                                     ("cudaMalloc(" + std::to_string(bytes >> 20) + " MiB) for the arena").c_str()));
  a.capacity_ = bytes;
  return Result<DeviceArena>(std::move(a));
}

DeviceArena& DeviceArena::operator=(DeviceArena&& o) noexcept {
  std::swap(base_, o.base_), std::swap(used_, o.used_), std::swap(capacity_, o.capacity_);
  return *this;
}

DeviceArena::~DeviceArena() { cudaFree(base_); }

Result<void*> DeviceArena::allocate(size_t bytes) {
  const size_t start = (used_ + 255) & ~size_t{255};
  if (start + bytes > capacity_) {
    return make_error(ErrorCode::kResourceExhausted,
                      "device arena: expected " + std::to_string(bytes) + " free bytes, found " +
                          std::to_string(capacity_ - std::min(capacity_, start)));
  }
  used_ = start + bytes;
  return static_cast<void*>(base_ + start);
}

Result<DeviceWeight> DeviceArena::random(DType dtype, int64_t rows, int64_t cols, uint64_t seed, float lo, float hi) {
  if (rows <= 0 || cols <= 0) {
    return make_error(ErrorCode::kInvalidArgument, "random weight: expected a positive shape, found [" +
                                                       std::to_string(rows) + ", " + std::to_string(cols) + "]");
  }
  LATENT_ASSIGN_OR_RETURN(void* p, allocate(static_cast<size_t>(rows * cols) * static_cast<size_t>(dtype_size(dtype))));
  LATENT_RETURN_IF_ERROR(fill_random(p, dtype, rows * cols, seed, lo, hi, nullptr));
  return DeviceWeight{p, dtype, rows, cols, nullptr, 128};
}

Result<DeviceWeight> DeviceArena::upload(const cpu::WeightView& w) {
  if (w.dtype == DType::kF8E4M3 && w.scale_inv && (w.block <= 0 || w.block % 8 != 0)) {
    // The kernels widen eight columns at a time under one scale (weight_load.cuh load8).
    return make_error(ErrorCode::kInvalidArgument, "upload: an FP8 weight's scale block must be a positive multiple "
                                                   "of 8, found " + std::to_string(w.block));
  }
  DeviceWeight d{nullptr, w.dtype, w.rows, w.cols, nullptr, w.block};
  const size_t data_bytes = static_cast<size_t>(w.rows * w.cols) * static_cast<size_t>(dtype_size(w.dtype));
  LATENT_ASSIGN_OR_RETURN(void* p, allocate(data_bytes));
  LATENT_RETURN_IF_ERROR(cuda_status(cudaMemcpy(p, w.data, data_bytes, cudaMemcpyHostToDevice), "upload weight"));
  d.data = p;
  if (w.dtype == DType::kF8E4M3 && w.scale_inv) {
    const int64_t n = ((w.rows + w.block - 1) / w.block) * ((w.cols + w.block - 1) / w.block);
    LATENT_ASSIGN_OR_RETURN(float* s, allocate_n<float>(n));
    LATENT_RETURN_IF_ERROR(cuda_status(
        cudaMemcpy(s, w.scale_inv, static_cast<size_t>(n) * sizeof(float), cudaMemcpyHostToDevice), "upload scales"));
    d.scale_inv = s;
  }
  return d;
}

}  // namespace latent::cuda
