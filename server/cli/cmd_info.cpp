// latent info: what this build and machine can do (CPU features, CUDA devices).
#include <cstdio>
#include <string>

#include "kernels/base/version.h"
#include "kernels/cpu/cpu_features.h"
#include "server/cli/command.h"
#ifdef LATENT_HAVE_CUDA
#include "kernels/cuda/device.h"
#endif

namespace latent::cli {
namespace {

int run_info(int argc, char** argv) {
  if (argc > 2) {
    std::printf("usage: latent info\n\nPrints the version, CPU features and CUDA devices.\n");
    return std::string(argv[2]) == "--help" ? 0 : 2;
  }
  std::printf("latent %s\ncpu: %s\n", LATENT_VERSION, cpu::cpu_features_string());
#ifdef LATENT_HAVE_CUDA
  int n = cuda::device_count();
  std::printf("cuda: built in, %d device(s)\n", n);
  for (int i = 0; i < n; ++i) std::printf("  %d: %s\n", i, cuda::device_description(i).c_str());
#else
  std::printf("cuda: not built\n");
#endif
  return 0;
}

const CommandRegistration kReg{"info", "print version, CPU features and GPUs", run_info};

}  // namespace
}  // namespace latent::cli
