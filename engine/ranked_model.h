#pragma once
// RankedModel: the model a front end (latent logits|generate, latentd) drives, on however many ranks:
//   alone                      --tp 1 (the default);
//   in-process ranks            --tp N [--ep N] [--pp P]: LocalRanks, one thread group;
//   this process's rank of mpirun's world, when started by mpirun with more than one process: --tp x --pp must
//   equal the world size; rank 0 drives, every other rank follows rank 0 inside load() until it stops.
#include <memory>
#include <string>

#include "engine/collective.h"
#include "engine/deepseek_model.h"
#include "engine/local_ranks.h"

namespace latent {

class RankedModel {
 public:
  static Result<std::unique_ptr<RankedModel>> load(const std::string& dir, const ModelOptions& options,
                                                   const ParallelOptions& parallel);
  ~RankedModel();

  // The model to drive; nullptr on an MPI rank other than 0, which has followed rank 0 to the end by the time
  // load() returns (followed() says how that ended: ok when rank 0 stopped it).
  DeepseekModel* driver() { return driver_; }
  const Status& followed() const { return followed_; }
  int rank() const { return mpi_ ? mpi_->rank() : 0; }
  int size() const;
  std::string transport() const;  // "single", "threads", "mpi"
  // This process's rank's weight bytes (under mpirun; rank 0's with in-process ranks).
  int64_t weight_bytes() const { return own_ ? own_->weight_bytes() : driver_ ? driver_->weight_bytes() : 0; }

 private:
  RankedModel() = default;
  std::unique_ptr<Collective> mpi_;      // before own_: destroyed after the model that uses it
  std::unique_ptr<Collective> stage_tp_; // --pp with --tp > 1: this rank's stage group, over mpi_
  std::unique_ptr<DeepseekModel> own_;   // alone, or this MPI rank's shard
  std::unique_ptr<LocalRanks> local_;
  DeepseekModel* driver_ = nullptr;
  Status followed_;
};

}  // namespace latent
