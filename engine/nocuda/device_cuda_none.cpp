// A build without CUDA (no nvcc found, or -DLATENT_CUDA=OFF): --device cuda says so; auto takes the CPU.
#include "engine/device.h"

namespace latent {

Result<std::unique_ptr<Device>> make_cuda_device(int index, const ModelConfig&, uint64_t) {
  return make_error(ErrorCode::kUnsupported, "--device cuda:" + std::to_string(index) +
                                                 ": expected a build with the CUDA backend, found a build without "
                                                 "it (no nvcc at configure time, or -DLATENT_CUDA=OFF); use --device cpu");
}

int cuda_device_count() { return 0; }

}  // namespace latent
