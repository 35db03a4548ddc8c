#pragma once
// ModelStep: what rank 0 broadcasts before each forward when several ranks share a model (the batch as the
// scheduler built it: token ids, positions, block tables, plus the cache block copies made since the last
// step), so that every other rank runs the same forward on its shard and its replica of the latent cache.
#include <cstdint>
#include <vector>

#include "engine/collective.h"
#include "engine/kv_cache.h"

namespace latent {

struct ModelStep {
  enum class Kind : int64_t { kStop = 0, kForward = 1, kForwardMtp = 2 };
  struct Seq {
    std::vector<int32_t> tokens;  // forward: new tokens; MTP: next_tokens
    int64_t n_cached = 0;
    std::vector<BlockId> blocks;
    bool all_logits = false;
    std::vector<float> hidden;    // MTP only: [n_new, hidden_size]
  };
  Kind kind = Kind::kStop;
  int64_t cache_blocks = 0;  // rank 0's KvCache capacity: the replicas match it
  bool return_hidden = false;
  std::vector<KvCache::Copy> copies;
  std::vector<Seq> seqs;
};

// Rank 0: broadcasts the step (its size, then its bytes).
Status send_step(Collective& comm, const ModelStep& step);
// Other ranks: waits for rank 0's next step without a time limit (a daemon may idle for hours); only the
// transfer after the size has arrived is held to the timeout.
Result<ModelStep> receive_step(Collective& comm);

// Test hook: LATENT_TEST_RANK_FAIL=R:S makes rank R (not 0) fail on receiving its S-th step (1-based), as a rank
// whose forward failed or whose process died would; unset (the normal case), always Ok. Tests of "a rank dies,
// the service stops" use it in-process and under mpirun.
Status test_rank_failure(int rank, int64_t step);

}  // namespace latent
