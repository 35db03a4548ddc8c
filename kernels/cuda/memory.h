#pragma once
// Device memory: one arena per model (weights uploaded once, then activations and the latent cache carved out
// of the same allocation), plus DeviceWeight, the device twin of cpu::WeightView. CUDA-only header.
//
// Not thread-safe: an arena belongs to the engine thread that owns the model.
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/base/result.h"
#include "kernels/cpu/ops.h"

namespace latent::cuda {

// A weight matrix in device memory, laid out exactly like cpu::WeightView ([rows, cols] row-major, FP8 with
// [ceil(rows/block), ceil(cols/block)] float32 scale_inv).
struct DeviceWeight {
  const void* data = nullptr;
  DType dtype = DType::kF32;
  int64_t rows = 0;
  int64_t cols = 0;
  const float* scale_inv = nullptr;
  int64_t block = 128;
};

// Bytes a weight takes on the device (data plus FP8 scales), before alignment.
size_t weight_bytes(const cpu::WeightView& w);

// One cudaMalloc; allocations are 256-byte aligned bumps and live until the arena dies.
class DeviceArena {
 public:
  static Result<DeviceArena> create(size_t bytes);
  DeviceArena() = default;
  DeviceArena(DeviceArena&& o) noexcept { *this = std::move(o); }
  DeviceArena& operator=(DeviceArena&& o) noexcept;
  DeviceArena(const DeviceArena&) = delete;
  DeviceArena& operator=(const DeviceArena&) = delete;
  ~DeviceArena();

  Result<void*> allocate(size_t bytes);
  template <typename T>
  Result<T*> allocate_n(int64_t n) {
    LATENT_ASSIGN_OR_RETURN(void* p, allocate(static_cast<size_t>(n) * sizeof(T)));
    return static_cast<T*>(p);
  }
  // Copies a host weight into the arena (synchronous: done once at load time).
  Result<DeviceWeight> upload(const cpu::WeightView& w);
  // A [rows, cols] F32 or BF16 weight filled on the device with values uniform in [lo, hi) from `seed` (the
  // same seed gives the same values): benchmarks of real-size shapes without a checkpoint on disk.
  Result<DeviceWeight> random(DType dtype, int64_t rows, int64_t cols, uint64_t seed, float lo, float hi);

  size_t used() const { return used_; }
  size_t capacity() const { return capacity_; }

 private:
  char* base_ = nullptr;
  size_t used_ = 0, capacity_ = 0;
};

// data[0, n) of `dtype` (F32 or BF16) = uniform [lo, hi) values hashed from (seed, index), on `stream`.
Status fill_random(void* data, DType dtype, int64_t n, uint64_t seed, float lo, float hi, cudaStream_t stream);

// A standalone device array (tests, benches, scratch that outlives no model). Move-only.
template <typename T>
class DeviceArray {
 public:
  DeviceArray() = default;
  // A failed allocation (or upload) leaves an array that is not ok(); the error is taken from the thread's last
  // error so that the next kernel launch does not report it.
  explicit DeviceArray(int64_t n) : n_(n) {
    if (n > 0 && cudaMalloc(&p_, static_cast<size_t>(n) * sizeof(T)) != cudaSuccess) {
      cudaGetLastError();
      p_ = nullptr, n_ = 0, failed_ = true;
    }
  }
  explicit DeviceArray(const std::vector<T>& host) : DeviceArray(static_cast<int64_t>(host.size())) {
    if (p_ && cudaMemcpy(p_, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice) != cudaSuccess) {
      cudaGetLastError();
      failed_ = true;
    }
  }
  DeviceArray(DeviceArray&& o) noexcept : p_(o.p_), n_(o.n_), failed_(o.failed_) {
    o.p_ = nullptr, o.n_ = 0, o.failed_ = false;
  }
  DeviceArray& operator=(DeviceArray&& o) noexcept {
    std::swap(p_, o.p_), std::swap(n_, o.n_), std::swap(failed_, o.failed_);
    return *this;
  }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  ~DeviceArray() { cudaFree(p_); }

  T* data() { return p_; }
  const T* data() const { return p_; }
  int64_t size() const { return n_; }
  bool ok() const { return !failed_ && (n_ == 0 || p_ != nullptr); }
  std::vector<T> to_host() const {
    std::vector<T> h(static_cast<size_t>(n_));
    cudaDeviceSynchronize();
    cudaMemcpy(h.data(), p_, h.size() * sizeof(T), cudaMemcpyDeviceToHost);
    return h;
  }

 private:
  T* p_ = nullptr;
  int64_t n_ = 0;
  bool failed_ = false;
};

}  // namespace latent::cuda
