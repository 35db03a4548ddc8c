#include "kernels/cuda/memory.h"

#include <string>

#include "kernels/cuda/check.h"

namespace latent::cuda {

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
