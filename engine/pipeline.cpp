#include "engine/pipeline.h"

#include <algorithm>
#include <string>

namespace latent {

Result<Stage> Stage::of(int64_t n_layers, int index, int count) {
  if (count < 1 || count > n_layers) {
    return make_error(ErrorCode::kInvalidArgument, "--pp " + std::to_string(count) +
                                                       ": expected at most num_hidden_layers (" +
                                                       std::to_string(n_layers) + ") pipeline stages, found " +
                                                       std::to_string(count));
  }
  const int64_t base = n_layers / count, extra = n_layers % count;
  Stage s;
  s.index = index;
  s.count = count;
  s.layer_begin = index * base + std::min<int64_t>(index, extra);
  s.layer_end = s.layer_begin + base + (index < extra ? 1 : 0);
  return s;
}

StageLink::StageLink(Collective& world, Collective* tp, Stage stage)
    : world_(world), tp_(tp), stage_(stage), tp_size_(tp ? tp->size() : 1) {}

Status StageLink::receive_hidden(float* x, int64_t n) {
  if (is_leader()) LATENT_RETURN_IF_ERROR(world_.recv(x, n * 4, leader(stage_.index - 1)));
  if (tp_) LATENT_RETURN_IF_ERROR(tp_->broadcast(x, n * 4, 0));
  return Status::Ok();
}

Status StageLink::send_hidden(const float* x, int64_t n) {
  if (!is_leader()) return Status::Ok();
  sent_bytes_ += n * 4;
  return world_.send(x, n * 4, leader(stage_.index + 1));
}

Status StageLink::send_to_driver(const std::vector<const std::vector<float>*>& parts) {
  if (!is_leader() || world_.rank() == 0) return Status::Ok();
  for (const std::vector<float>* p : parts) {
    sent_bytes_ += static_cast<int64_t>(p->size()) * 4;
    LATENT_RETURN_IF_ERROR(world_.send(p->data(), static_cast<int64_t>(p->size()) * 4, 0));
  }
  return Status::Ok();
}

Status StageLink::receive_from_last(const std::vector<std::vector<float>*>& parts) {
  for (std::vector<float>* p : parts) {
    LATENT_RETURN_IF_ERROR(world_.recv(p->data(), static_cast<int64_t>(p->size()) * 4, leader(stage_.count - 1)));
  }
  return Status::Ok();
}

}  // namespace latent
