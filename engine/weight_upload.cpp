#include "engine/weight_upload.h"

#include <algorithm>
#include <cstring>

namespace latent {

int64_t weight_view_bytes(const cpu::WeightView& w) {
  if (!w.data) return 0;
  int64_t n = w.rows * w.cols * static_cast<int64_t>(dtype_size(w.dtype));
  if (w.dtype == DType::kF8E4M3 && w.scale_inv && w.block > 0) {
    n += ((w.rows + w.block - 1) / w.block) * ((w.cols + w.block - 1) / w.block) * static_cast<int64_t>(sizeof(float));
  }
  return n;
}

namespace {

// Same dtype, shape and bytes (scales included).
bool same_contents(const cpu::WeightView& a, const cpu::WeightView& b) {
  if (!a.data || !b.data || a.dtype != b.dtype || a.rows != b.rows || a.cols != b.cols || a.block != b.block ||
      a.layout != b.layout ||
      (a.scale_inv == nullptr) != (b.scale_inv == nullptr)) {
    return false;
  }
  const size_t data = static_cast<size_t>(a.rows * a.cols) * dtype_size(a.dtype);
  if (a.data != b.data && std::memcmp(a.data, b.data, data) != 0) return false;
  if (a.scale_inv && a.scale_inv != b.scale_inv) {
    const size_t scales = static_cast<size_t>(weight_view_bytes(a)) - data;
    if (std::memcmp(a.scale_inv, b.scale_inv, scales) != 0) return false;
  }
  return true;
}

}  // namespace

void WeightUploader::plan(const cpu::WeightView& w) {
  if (!w.data) return;
  if (planned_.emplace(key(w), true).second) total_ += weight_view_bytes(w);
}

Result<cpu::WeightView> WeightUploader::upload(const cpu::WeightView& w, const cpu::WeightView* same_as) {
  if (!w.data) return w;
  if (w.layout != cpu::WeightLayout::kRowMajor) return upload_(w);  // repacked on the host: never shared
  const int64_t bytes = weight_view_bytes(w);
  auto shared = [&](const cpu::WeightView& device_view) -> Result<cpu::WeightView> {
    stats_.shared_tensors += 1;
    stats_.shared_bytes += bytes;
    return device_view;
  };
  if (auto it = uploaded_.find(key(w)); it != uploaded_.end()) return shared(it->second);
  if (same_as && compare_) {
    if (auto it = uploaded_.find(key(*same_as)); it != uploaded_.end() && same_contents(w, *same_as)) {
      uploaded_.emplace(key(w), it->second);
      LATENT_RETURN_IF_ERROR(advance(bytes));  // planned as its own tensor: done without a copy
      return shared(it->second);
    }
  }
  LATENT_ASSIGN_OR_RETURN(cpu::WeightView d, upload_(w));
  uploaded_.emplace(key(w), d);
  stats_.tensors += 1;
  stats_.bytes += bytes;
  LATENT_RETURN_IF_ERROR(advance(bytes));
  return d;
}

Status WeightUploader::advance(int64_t bytes) {
  done_ = std::min(total_, done_ + bytes);
  return report();
}

Status WeightUploader::report() {
  if (progress_ && !progress_(done_, total_)) {
    return make_error(ErrorCode::kCancelled, "model load: stopped after " + std::to_string(done_ >> 20) + " of " +
                                                 std::to_string(total_ >> 20) + " MiB of weights");
  }
  return Status::Ok();
}

}  // namespace latent
