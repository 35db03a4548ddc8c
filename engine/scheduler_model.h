#pragma once
// The model as the Scheduler sees it: batched forward over the paged latent cache, plus the MTP module.
// DeepseekModel is the real one (adapter below); tests add doubles that check the block tables they are given.
#include <memory>
#include <span>

#include "engine/deepseek_model.h"
#include "engine/kv_cache.h"

namespace latent {

class ServingModel {
 public:
  virtual ~ServingModel() = default;
  virtual int64_t vocab_size() const = 0;
  virtual bool has_mtp() const = 0;
  // Same contracts as DeepseekModel::forward / forward_mtp.
  virtual Result<ForwardResult> forward(std::span<const SequenceInput> batch, KvCache& cache,
                                        const ForwardOptions& options) = 0;
  virtual Result<ForwardResult> forward_mtp(std::span<const MtpSequenceInput> batch, KvCache& cache,
                                            const ForwardOptions& options) = 0;
};

// Borrows `model` (it must outlive the adapter).
std::unique_ptr<ServingModel> serve_deepseek(DeepseekModel& model);

}  // namespace latent
