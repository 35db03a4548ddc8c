#include "engine/scheduler_model.h"

namespace latent {
namespace {

class DeepseekServing final : public ServingModel {
 public:
  explicit DeepseekServing(DeepseekModel& model) : model_(model) {}
  int64_t vocab_size() const override { return model_.config().vocab_size; }
  bool has_mtp() const override { return model_.has_mtp(); }
  Result<ForwardResult> forward(std::span<const SequenceInput> batch, KvCache& cache,
                                const ForwardOptions& options) override {
    return model_.forward(batch, cache, options);
  }
  Result<ForwardResult> forward_mtp(std::span<const MtpSequenceInput> batch, KvCache& cache,
                                    const ForwardOptions& options) override {
    return model_.forward_mtp(batch, cache, options);
  }

 private:
  DeepseekModel& model_;
};

}  // namespace

std::unique_ptr<ServingModel> serve_deepseek(DeepseekModel& model) {
  return std::make_unique<DeepseekServing>(model);
}

}  // namespace latent
