#pragma once
// Pipeline stages (--pp): consecutive layer ranges on groups of ranks, the hidden state passed from stage to
// stage (GPipe / Megatron's pipeline parallelism, one micro-batch: the scheduler's batch). With pp stages of tp
// ranks each, world rank = stage * tp + tp rank: a hostfile with tp slots per machine puts one stage on each
// machine, so tensor parallelism stays inside a machine and only the hidden state [T, d] crosses between them.
//
//   stage 0        embedding, layers [0, l1)          rank 0 drives: broadcasts the step, gets the logits back
//   stage s        layers [l_s, l_{s+1})
//   stage pp - 1   layers [.., L), final norm, lm_head, the MTP module
//
// Each stage's leader (tp rank 0) receives x from the previous stage's leader and broadcasts it over its TP
// group; the last stage's leader sends the logits (and the hidden states when asked) to rank 0.
#include <cstdint>
#include <vector>

#include "engine/collective.h"

namespace latent {

struct Stage {
  int index = 0, count = 1;
  int64_t layer_begin = 0, layer_end = 0;  // decoder layers [begin, end)
  bool first() const { return index == 0; }
  bool last() const { return index == count - 1; }
  // Stage `index` of `count` over n_layers: consecutive ranges, the first n_layers % count one layer longer.
  // Error when count > n_layers (a stage without layers).
  static Result<Stage> of(int64_t n_layers, int index, int count);
};

// The messages between stages, over the Collective of every rank (`world`); `tp` is this stage's group (null
// when the stage has one rank).
class StageLink {
 public:
  StageLink(Collective& world, Collective* tp, Stage stage);
  const Stage& stage() const { return stage_; }
  // Stage > 0: x [n] from the previous stage, on every rank of this stage.
  Status receive_hidden(float* x, int64_t n);
  // Every stage but the last: x [n] to the next stage (its leader sends).
  Status send_hidden(const float* x, int64_t n);
  // The last stage: the forward's outputs to rank 0 (its leader sends each buffer, in order).
  Status send_to_driver(const std::vector<const std::vector<float>*>& parts);
  // Rank 0, when it is not on the last stage: the buffers send_to_driver sent, sized by the caller.
  Status receive_from_last(const std::vector<std::vector<float>*>& parts);
  // Bytes this rank sent to other stages (hidden states, results to rank 0): for bench/.
  int64_t sent_bytes() const { return sent_bytes_; }

 private:
  int leader(int stage) const { return stage * tp_size_; }
  bool is_leader() const { return !tp_ || tp_->rank() == 0; }
  Collective& world_;
  Collective* tp_;
  Stage stage_;
  int tp_size_;
  int64_t sent_bytes_ = 0;
};

}  // namespace latent
