#pragma once
// DeepseekModel: the DeepSeek-V2/V3 forward pass, written once against engine/device.h's ops and run on the
// device ModelOptions::device names: the CPU (the exact reference) or a CUDA GPU (float32 activations, weights
// read in their stored dtype). A batch holds several sequences, each with its new tokens, the number of tokens already in the
// latent cache and its block table; prefill (many new tokens) and decode (one) take the same path:
// embed -> [RMSNorm -> MLA over the latent cache -> RMSNorm -> MLP | MoE] x L -> norm -> lm_head.
// The MTP module (DeepSeek-V3 layer num_hidden_layers) drafts the token after next from the main model's
// post-norm hidden state; it has its own cache layer(s) in the same KvCache and block tables.
//
// Several ranks can share the model (ModelOptions::comm): attention by heads, dense and shared-expert MLPs by
// their intermediate dimension, routed experts by id (or each split), lm_head by vocabulary; one all-reduce
// after attention and one after the MLP/MoE of each layer, an all-gather of the logits. Each rank holds only
// its shard of the weights and a replica of the latent cache. Pipeline stages (ModelOptions::world) split the
// layers into ranges, each on its own group of such ranks; the hidden state goes from stage to stage and the
// logits come back to rank 0 (engine/pipeline.h). Rank 0 is driven like a single-rank model (forward,
// forward_mtp); before each forward it broadcasts the batch, and the other ranks, inside follow(), run the same
// forward on their shards and stages.
//
// Not thread-safe: one thread (the engine thread) calls forward at a time; ops parallelize internally.
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "engine/config.h"
#include "engine/device.h"
#include "engine/kv_cache.h"
#include "engine/weight_upload.h"
#include "engine/weights.h"
#include "kernels/base/result.h"

namespace latent {

namespace cpu {
class ThreadPool;
}
class Collective;

struct SequenceInput {
  std::span<const int32_t> tokens;       // [n_new] new token ids
  int64_t n_cached = 0;                   // tokens already cached = position of tokens[0]
  std::span<const BlockId> block_table;   // blocks covering positions [0, n_cached + n_new)
  bool all_logits = false;                // logits for every new token, else only for the last
};

// MTP slot i predicts token i+2 from token i+1 and the main model's post-norm hidden state at position i.
struct MtpSequenceInput {
  std::span<const int32_t> next_tokens;  // [n_new] t[i+1] for slots i = n_cached .. n_cached+n_new-1
  const float* hidden = nullptr;          // [n_new, hidden_size] main-model hidden_postnorm at positions i
  int64_t n_cached = 0;                   // MTP slots already cached = RoPE position of the first slot
  std::span<const BlockId> block_table;   // blocks covering slots [0, n_cached + n_new)
  bool all_logits = false;
};

// Intermediate values for tests and diagnosis (golden debug arrays); costs copies, off by default.
// With pipeline stages, rank 0's trace holds its own stage's layers only.
struct ForwardTrace {
  std::vector<std::vector<float>> layer_outputs;    // [1 + n_layers][n_tokens * hidden]: embedding, then
                                                    // the residual stream after each decoder layer
  std::vector<std::vector<int32_t>> moe_topk_idx;   // per MoE layer [n_tokens * top_k], ids ascending
  std::vector<std::vector<float>> moe_topk_weight;  // same order: the final multipliers
  std::vector<float> hidden_prenorm;                // [n_tokens, hidden] before the final norm
};

struct ForwardOptions {
  bool return_hidden = false;     // fill ForwardResult::hidden (post-norm, every new token)
  ForwardTrace* trace = nullptr;  // tokens of all sequences concatenated in batch order
  // Not empty: one entry per logit row (result_layout's rows, in order), and the forward returns the selected
  // token ids (ForwardResult::ids) instead of logits; on one device the logits never leave it (engine/device.h's
  // select_tokens), with several ranks rank 0 selects on the host from the gathered logits.
  std::span<const TokenSelect> select;
};

struct ForwardResult {
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  std::vector<float> logits;            // [n_logit_rows, vocab]; empty when ForwardOptions::select was given
  std::vector<int32_t> ids;             // [n_logit_rows] with ForwardOptions::select: the tokens (-1: not wanted)
  std::vector<int64_t> logit_offset;    // [n_seq + 1]: rows of sequence s are [logit_offset[s], [s+1])
  std::vector<float> hidden;            // [n_tokens, hidden] post-norm, when return_hidden
  std::vector<int64_t> token_offset;    // [n_seq + 1]: new tokens of sequence s in `hidden`
  const float* logits_row(int64_t row) const { return logits.data() + row * vocab_size; }
  const float* hidden_row(int64_t token) const { return hidden.data() + token * hidden_size; }
};

struct ModelOptions {
  WeightsOptions weights;
  DeviceSpec device;                  // --device: cpu (default), cuda[:N], auto
  // Not 0: load() reads only DIR/config.json and the device generates random BF16 weights from this seed
  // (Weights::placeholder; benchmarks of real-size models without a checkpoint on disk). CUDA only.
  uint64_t random_weights_seed = 0;
  bool load_mtp = true;               // load the MTP module when the config declares one
  cpu::ThreadPool* pool = nullptr;    // passed to the ops; nullptr = their default
  // The ranks sharing this model's tensors (borrowed; outlives the model): with pipeline stages, this stage's
  // tensor-parallel group. nullptr or size 1: whole tensors here.
  Collective* comm = nullptr;
  // Pipeline stages (engine/pipeline.h): `world` holds every rank of every stage (world rank = stage * tp + tp
  // rank; rank 0 drives) and this rank runs stage world->rank() / tp of `pipeline_stages`, its layers only.
  // nullptr: the world is `comm`, one stage.
  Collective* world = nullptr;
  int pipeline_stages = 1;
  // Data-parallel attention (with comm): every rank of the TP group holds the whole attention weights and
  // attends its share of the batch's sequences (consecutive sequences, rows [r0, r1)); the o_proj outputs are
  // all-gathered, and the MLP/MoE stays split over all tokens. Every rank writes every token's latent row (the
  // replicated cache). For large batches: no attention all-reduce, and attention compute divides by sequences.
  bool dp_attention = false;
  // Routed experts by id across the ranks (--ep = ranks); false: every expert split on its intermediate
  // dimension like the shared experts (--ep 1).
  bool expert_parallel = true;
  // On the CPU under the fast precision (AVX512-BF16): BF16 weights that only linear() reads are repacked at
  // load into the tile order of the vdpbf16ps kernels, and the mapping's pages of each are given back (one copy
  // held; engine/repack.h). false: every weight is read from the mapping as stored (for A/B runs).
  bool repack_weights = true;
  // Rank 0 of several: called when the ranks fall out of step for good (a rank died or failed its part of a
  // forward, a collective timed out), on the thread that ran the forward, before the group is ended. No forward
  // can succeed after it: a daemon stops (latentd logs it and exits non-zero); empty = the error is only returned.
  std::function<void(const Error&)> on_ranks_lost;
  // Progress of the weights' copy into the device's memory, in bytes (engine/weight_upload.h), on the loading
  // thread: once with the total before the first copy, then after each tensor; not called on a host device
  // (nothing is copied). Returning false stops the load with kCancelled.
  std::function<bool(int64_t done, int64_t total)> on_upload;
  // Tests: wraps the device made for the model (a double around the real one, e.g. one whose graph captures fail).
  std::function<std::unique_ptr<Device>(std::unique_ptr<Device>)> wrap_device;
};

class DeepseekModel {
 public:
  // Reads DIR/config.json and the safetensors beside it; checks every tensor's dtype and shape up front.
  static Result<std::unique_ptr<DeepseekModel>> load(const std::string& dir, const ModelOptions& options = {});
  static Result<std::unique_ptr<DeepseekModel>> create(ModelConfig config, Weights weights,
                                                      const ModelOptions& options = {});
  ~DeepseekModel();

  const ModelConfig& config() const;
  const Weights& weights() const;
  bool has_mtp() const;

  const Device& device() const;
  // The latent cache this model's device reads (host memory on the CPU, the GPU's memory on CUDA), with the
  // device's cache dtype; forward() wants a cache made here (or, on the CPU, any KvCache::for_model).
  Result<KvCache> make_cache(int64_t n_blocks) const;
  int64_t cache_blocks_for_bytes(size_t bytes) const;

  // Writes the new tokens' latents into `cache` (every decoder layer) and returns their logits.
  // The block tables must already hold enough blocks (KvCache::blocks_needed(n_cached + n_new)).
  Result<ForwardResult> forward(std::span<const SequenceInput> batch, KvCache& cache,
                                const ForwardOptions& options = {});
  // The MTP module's draft logits; writes its own cache layer (cache layer num_hidden_layers).
  Result<ForwardResult> forward_mtp(std::span<const MtpSequenceInput> batch, KvCache& cache,
                                    const ForwardOptions& options = {});

  // Ranks other than 0: runs rank 0's forwards on this shard until rank 0 stops them; an error (rank 0 gone,
  // a collective timed out) ends the loop and is returned.
  Status follow();
  // Rank 0: ends the other ranks' follow(). Idempotent; the destructor calls it.
  Status stop_followers();
  // Bytes of weights this rank holds (its shard; the whole checkpoint's tensors when alone).
  int64_t weight_bytes() const;
  // Bytes of weights repacked at load (ModelOptions::repack_weights); 0 when none were.
  int64_t repacked_bytes() const;
  // The weights' upload at load: distinct tensors copied, and views that shared one (a tied head).
  const UploadStats& upload_stats() const;
  // With pipeline stages: bytes this rank sent to other stages (hidden states; the last stage's results to
  // rank 0); 0 without.
  int64_t stage_link_bytes() const;
  // Reads this rank's tensors into the page cache (one byte per page of each mapped view; a rank of several
  // reads only its shard or stage, unlike Weights::touch_pages). progress as Weights::touch_pages.
  size_t touch_weights(const std::function<bool(size_t done, size_t total)>& progress) const;

 private:
  struct Impl;
  explicit DeepseekModel(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace latent
