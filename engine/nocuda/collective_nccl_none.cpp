// Built without CUDA: the NCCL body reports that it is missing.
#include "engine/collective.h"

namespace latent {

Result<std::unique_ptr<Collective>> nccl_collective(Collective& bootstrap, int device, void* stream) {
  (void)bootstrap;
  (void)device;
  (void)stream;
  return make_error(ErrorCode::kUnsupported, "NCCL: expected Latent built with CUDA (nvcc and NCCL), found a CPU-only build");
}

}  // namespace latent
