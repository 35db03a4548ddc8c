#include "engine/ranked_model.h"

#include "kernels/base/log.h"

namespace latent {

Result<std::unique_ptr<RankedModel>> RankedModel::load(const std::string& dir, const ModelOptions& base,
                                                       const ParallelOptions& parallel) {
  LATENT_RETURN_IF_ERROR(parallel.validate());
  std::unique_ptr<RankedModel> m(new RankedModel());
  ModelOptions options = base;
  options.device = parallel.device;
  if (parallel.world() > 1 && options.device.kind == DeviceSpec::Kind::kAuto) options.device = DeviceSpec{};  // CPU ranks
  if (launched_by_mpirun()) {
    LATENT_ASSIGN_OR_RETURN(m->mpi_, mpi_collective());
    if (m->mpi_->size() != parallel.world()) {
      return make_error(ErrorCode::kInvalidArgument, "--tp " + std::to_string(parallel.tp) + " x --pp " +
                                                         std::to_string(parallel.pp) + ": expected the " +
                                                         std::to_string(m->mpi_->size()) +
                                                         " ranks that mpirun started (-np), found " +
                                                         std::to_string(parallel.world()));
    }
    ModelOptions o = options;
    LATENT_ASSIGN_OR_RETURN(m->stage_tp_, wire_rank(*m->mpi_, parallel, o));
    if (m->mpi_->rank() != 0) o.weights.progress = false;
    auto own = DeepseekModel::load(dir, o);
    if (!own.ok()) {  // the other ranks would wait for this one: end the job, saying why
      Error e = make_error(own.error().code, "rank " + std::to_string(m->mpi_->rank()) + ": " + own.error().message);
      m->mpi_->abort(e.to_string());
      return e;
    }
    m->own_ = std::move(*own);
    if (m->mpi_->rank() == 0) {
      m->driver_ = m->own_.get();
    } else {
      m->followed_ = m->own_->follow();
    }
    LATENT_LOG_DEBUG("MPI rank %d of %d held %.1f MB of weights", m->mpi_->rank(), m->mpi_->size(),
                     static_cast<double>(m->own_->weight_bytes()) / 1e6);
    return m;
  }
  if (parallel.world() == 1) {
    LATENT_ASSIGN_OR_RETURN(m->own_, DeepseekModel::load(dir, options));
    m->driver_ = m->own_.get();
    return m;
  }
  LATENT_ASSIGN_OR_RETURN(m->local_, LocalRanks::load(dir, options, parallel));
  m->driver_ = &m->local_->model();
  return m;
}

RankedModel::~RankedModel() {
  local_.reset();
  own_.reset();  // rank 0 stops its MPI followers here
}

int RankedModel::size() const {
  if (mpi_) return mpi_->size();
  return local_ ? local_->size() : 1;
}

std::string RankedModel::transport() const { return mpi_ ? "mpi" : local_ ? "threads" : "single"; }

}  // namespace latent
