#pragma once
// CUDA/cuBLAS return codes as Status: "cudaMalloc(1.5 GiB): out of memory". CUDA-only header.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <string>

#include "kernels/base/result.h"

namespace latent::cuda {

// A failed call also leaves its error as the thread's "last error" (unless the context is gone): it is taken here, so
// that the next launch_status() reports that launch, not this older failure. Out of memory is kResourceExhausted.
inline Status cuda_status(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return Status();
  cudaGetLastError();
  const ErrorCode code = e == cudaErrorMemoryAllocation ? ErrorCode::kResourceExhausted : ErrorCode::kInternal;
  return make_error(code, std::string(what) + ": " + cudaGetErrorString(e));
}

inline Status cublas_status(cublasStatus_t e, const char* what) {
  if (e == CUBLAS_STATUS_SUCCESS) return Status();
  return make_error(ErrorCode::kInternal, std::string(what) + ": " + cublasGetStatusString(e));
}

// Kernels queued by this process so far (each launch_status() call, each cuBLAS call in cuda::linear): the
// device counts launches per decoded token with it (scripts/gpu-check). Defined in device.cu.
int64_t launch_count();
void count_launch();

// The launch error of the kernel just queued (bad configuration, too much shared memory); counts the launch.
inline Status launch_status(const char* kernel) {
  count_launch();
  return cuda_status(cudaGetLastError(), kernel);
}

}  // namespace latent::cuda
