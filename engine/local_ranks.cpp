#include "engine/local_ranks.h"

#include <future>
#include <optional>

#include "kernels/base/log.h"

namespace latent {

Status ParallelOptions::validate() const {
  if (tp < 1) return make_error(ErrorCode::kInvalidArgument, "--tp: expected at least 1 rank, found " + std::to_string(tp));
  if (pp < 1) return make_error(ErrorCode::kInvalidArgument, "--pp: expected at least 1 stage, found " + std::to_string(pp));
  if (dp_attention && tp < 2) {
    return make_error(ErrorCode::kInvalidArgument, "--dp-attention: expected --tp of at least 2 (it splits a batch's "
                                                   "sequences across the tensor-parallel ranks), found --tp " +
                                                       std::to_string(tp));
  }
  if (device.kind == DeviceSpec::Kind::kCuda && world() > 1) {
    return make_error(ErrorCode::kUnsupported, "--device " + device.name() + ": expected one rank (--tp 1 --pp 1; "
                                               "several ranks run on the CPU only for now), found " +
                                               std::to_string(world()) + " ranks");
  }
  if (ep != 1 && ep != tp) {
    return make_error(ErrorCode::kInvalidArgument, "--ep: expected 1 (experts split like the MLPs) or the --tp value " +
                                                       std::to_string(tp) + " (experts by id), found " + std::to_string(ep));
  }
  return Status::Ok();
}

Result<std::unique_ptr<Collective>> wire_rank(Collective& world, const ParallelOptions& p, ModelOptions& o) {
  o.world = &world;
  o.pipeline_stages = p.pp;
  o.expert_parallel = p.expert_parallel();
  o.dp_attention = p.dp_attention;
  o.comm = &world;
  if (p.pp == 1) return std::unique_ptr<Collective>();
  o.comm = nullptr;
  if (p.tp == 1) return std::unique_ptr<Collective>();
  const int stage = world.rank() / p.tp;
  std::vector<int> members;
  for (int t = 0; t < p.tp; ++t) members.push_back(stage * p.tp + t);
  LATENT_ASSIGN_OR_RETURN(auto group, sub_group(world, members));
  o.comm = group.get();
  return group;
}

Result<std::unique_ptr<LocalRanks>> LocalRanks::load(const std::string& dir, const ModelOptions& base,
                                                     const ParallelOptions& p) {
  LATENT_RETURN_IF_ERROR(p.validate());
  std::unique_ptr<LocalRanks> g(new LocalRanks());
  const int n = p.world();
  g->comms_ = thread_group(n);
  const int threads = std::max(1, cpu::ThreadPool::default_threads() / n);
  g->lost_->fn = base.on_ranks_lost;
  std::vector<std::future<Result<std::unique_ptr<DeepseekModel>>>> loads;
  for (int r = 0; r < n; ++r) {
    g->pools_.push_back(std::make_unique<cpu::ThreadPool>(threads));
    ModelOptions o = base;
    o.pool = g->pools_.back().get();
    LATENT_ASSIGN_OR_RETURN(auto stage_tp, wire_rank(*g->comms_[static_cast<size_t>(r)], p, o));
    g->stage_comms_.push_back(std::move(stage_tp));
    if (r > 0) o.weights.progress = false;
    if (r > 0) o.on_upload = nullptr;  // rank 0 reports for all (the ranks load at once, alike)
    o.on_ranks_lost = [lost = g->lost_](const Error& e) { lost->report(e, false); };
    loads.push_back(std::async(std::launch::async, [dir, o] { return DeepseekModel::load(dir, o); }));
  }
  std::optional<Error> first_error;
  for (int r = 0; r < n; ++r) {
    auto m = loads[static_cast<size_t>(r)].get();
    if (!m.ok()) {
      if (!first_error) first_error = make_error(m.error().code, "rank " + std::to_string(r) + ": " + m.error().message);
      g->models_.push_back(nullptr);
    } else {
      g->models_.push_back(std::move(*m));
    }
  }
  if (first_error) {
    g->comms_[0]->abort(first_error->message);  // nobody follows: rank 0's stop must not wait for them
    g->models_.clear();
    return *first_error;
  }
  g->follower_status_.resize(static_cast<size_t>(n));
  for (int r = 1; r < n; ++r) {
    g->followers_.emplace_back([gp = g.get(), r] {
      Status st = gp->models_[static_cast<size_t>(r)]->follow();
      if (!st.ok()) gp->lost_->report(make_error(st.error().code, "rank " + std::to_string(r) + " stopped: " + st.error().message), true);
      gp->follower_status_[static_cast<size_t>(r)] = st;
    });
  }
  LATENT_LOG_INFO("%d in-process ranks (pp %d, tp %d, ep %d), %d threads each; rank 0 holds %.1f MB of weights", n,
                  p.pp, p.tp, p.ep, threads, static_cast<double>(g->models_[0]->weight_bytes()) / 1e6);
  return g;
}

void LocalRanks::Lost::report(const Error& e, bool log_without_fn) {
  std::call_once(once, [&] {
    if (fn) {
      fn(e);
    } else if (log_without_fn) {
      LATENT_LOG_ERROR("%s", e.to_string().c_str());
    }
  });
}

LocalRanks::~LocalRanks() {
  if (!models_.empty() && models_[0]) {
    Status st = models_[0]->stop_followers();
    if (!st.ok()) comms_[0]->abort("rank 0 could not stop the followers: " + st.error().message);
  }
  for (auto& t : followers_) t.join();
  models_.clear();  // rank 0's destructor would send the stop again: already stopped
  stage_comms_.clear();  // before the world ranks they are built on
}

}  // namespace latent
