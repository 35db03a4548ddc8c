#pragma once
// LocalRanks: a model shared by n in-process ranks (threads over a thread_group Collective): on one machine
// without MPI, `latent ... --tp N --ep M` and `latentd --tp N --ep M`. Rank 0's DeepseekModel is driven by the
// caller like a single-rank model; ranks 1..n-1 each load their shard and follow rank 0 on their own thread,
// each with its own share of the CPU threads.
//
// A rank that stops (its forward failed, a collective timed out) ends the group: base.on_ranks_lost is called
// once, by rank 0's failed forward or by the follower's thread, whichever learns first (without a callback a
// follower's failure is logged and rank 0's next forward returns it).
//
// Thread-safety: model() is used by one thread at a time (as DeepseekModel). The destructor stops and joins
// the follower threads.
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "engine/collective.h"
#include "engine/deepseek_model.h"
#include "kernels/cpu/thread_pool.h"

namespace latent {

struct ParallelOptions {
  int tp = 1;  // ranks sharing attention (by heads), dense/shared MLPs and lm_head
  int ep = 1;  // ranks sharing the routed experts by id: 1 (each expert split across the tp ranks) or tp
  int pp = 1;  // pipeline stages (layer ranges), each of tp ranks
  bool dp_attention = false;  // attention by sequences across each stage's tp ranks (ModelOptions::dp_attention)
  DeviceSpec device;          // --device (ModelOptions::device): a GPU takes one rank only, for now
  // The checks every front end shares: tp >= 1, pp >= 1, ep in {1, tp}, dp_attention only with tp > 1.
  Status validate() const;
  bool expert_parallel() const { return ep > 1; }
  int world() const { return tp * pp; }  // ranks in all
};

// Wires this rank of `world` (world->size() = p.world()) into `o`: o.comm (its TP ranks), o.world and
// o.pipeline_stages, o.expert_parallel. With pipeline stages and tp > 1 the TP ranks are a sub_group of world,
// returned for the caller to keep beside the model; else null.
Result<std::unique_ptr<Collective>> wire_rank(Collective& world, const ParallelOptions& p, ModelOptions& o);

class LocalRanks {
 public:
  // Loads the n = p.tp shards (concurrently) and starts the followers; `base.pool` and `base.comm` are replaced.
  static Result<std::unique_ptr<LocalRanks>> load(const std::string& dir, const ModelOptions& base,
                                                  const ParallelOptions& p);
  ~LocalRanks();

  DeepseekModel& model() { return *models_[0]; }
  int size() const { return static_cast<int>(models_.size()); }
  const Collective& comm(int rank) const { return *comms_[static_cast<size_t>(rank)]; }
  int64_t weight_bytes(int rank) const { return models_[static_cast<size_t>(rank)]->weight_bytes(); }
  // With pipeline stages and tp > 1: rank's stage group, else its world Collective (what its tensors use).
  const Collective& tp_comm(int rank) const {
    const auto& g = stage_comms_[static_cast<size_t>(rank)];
    return g ? *g : *comms_[static_cast<size_t>(rank)];
  }
  int64_t stage_link_bytes(int rank) const { return models_[static_cast<size_t>(rank)]->stage_link_bytes(); }

 private:
  LocalRanks() = default;
  std::vector<std::unique_ptr<Collective>> comms_;        // world ranks
  std::vector<std::unique_ptr<Collective>> stage_comms_;  // with --pp: each rank's stage TP group (or null)
  std::vector<std::unique_ptr<cpu::ThreadPool>> pools_;
  std::vector<std::unique_ptr<DeepseekModel>> models_;
  std::vector<std::thread> followers_;
  std::vector<Status> follower_status_;
  struct Lost {  // the first report of a lost rank wins
    std::once_flag once;
    std::function<void(const Error&)> fn;
    void report(const Error& e, bool log_without_fn);
  };
  std::shared_ptr<Lost> lost_ = std::make_shared<Lost>();
};

}  // namespace latent
