#pragma once
// CUDA device discovery. Compiled only when nvcc is found; callers guard with LATENT_HAVE_CUDA.
#include <string>

namespace latent::cuda {

// Number of usable CUDA devices; 0 when there is no driver or no GPU (never an error).
int device_count();
// "NVIDIA H200, sm_90, 139 GiB, 132 SMs" for logs and benchmarks; empty when device is absent.
std::string device_description(int device);

}  // namespace latent::cuda
