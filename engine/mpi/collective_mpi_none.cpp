// Built when MPI (libopenmpi-dev) was not found: the MPI body reports that it is missing.
#include <cstdlib>

#include "engine/collective.h"

namespace latent {

Result<std::unique_ptr<Collective>> mpi_collective() {
  return make_error(ErrorCode::kUnsupported,
                    "MPI: expected Latent built with MPI (scripts/setup installs libopenmpi-dev), found a build without it");
}

bool launched_by_mpirun() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"}) {
    if (const char* v = std::getenv(var)) {
      if (std::atoi(v) > 1) return true;
    }
  }
  return false;
}

}  // namespace latent
