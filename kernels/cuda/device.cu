#include "kernels/cuda/device.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <nccl.h>

#include <atomic>
#include <cstdint>
#include <cstdio>

#include "kernels/cuda/check.h"

namespace latent::cuda {

namespace {
std::atomic<int64_t> g_launches{0};
}  // namespace

int64_t launch_count() { return g_launches.load(std::memory_order_relaxed); }
void count_launch() { g_launches.fetch_add(1, std::memory_order_relaxed); }

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error
    return 0;
  }
  return n;
}

std::string device_description(int device) {
  cudaDeviceProp p{};
  if (cudaGetDeviceProperties(&p, device) != cudaSuccess) return {};
  int nccl_version = 0;
  ncclGetVersion(&nccl_version);
  char buf[256];
  std::snprintf(buf, sizeof buf, "%s, sm_%d%d, %.0f GiB, %d SMs, NCCL %d", p.name, p.major, p.minor,
                p.totalGlobalMem / 1073741824.0, p.multiProcessorCount, nccl_version);
  return buf;
}

}  // namespace latent::cuda
