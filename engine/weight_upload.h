#pragma once
// WeightUploader: a model's weights into its device's memory at load, each distinct tensor once, with progress.
//   - Views of the same bytes (a tied lm_head over embed_tokens: one mapping, same shape) share one upload.
//   - Tensors the checkpoint stores twice with the same contents (DeepSeek-V3's MTP embed_tokens and
//     shared_head.head, copies of the model's embedding and head) share one when the caller names the pair
//     (upload(w, &same_as)) and contents are compared (off on the CPU, whose "upload" is the mapped view itself).
// plan() every view first (the total), then upload() them; MoE layers, uploaded by the device as a whole
// (Device::prepare_moe), are planned with plan_bytes() and reported with advance().
// Not thread-safe: one loading thread.
#include <cstdint>
#include <functional>
#include <map>
#include <tuple>

#include "kernels/base/result.h"
#include "kernels/cpu/ops.h"

namespace latent {

struct UploadStats {
  int64_t tensors = 0, bytes = 0;                // distinct uploads
  int64_t shared_tensors = 0, shared_bytes = 0;  // uploads avoided: views that reuse one made before
};

// Bytes of a weight's data plus its FP8 block scales.
int64_t weight_view_bytes(const cpu::WeightView& w);

class WeightUploader {
 public:
  using UploadFn = std::function<Result<cpu::WeightView>(const cpu::WeightView&)>;
  // progress(done, total) in bytes after each upload; returning false stops the load (kCancelled).
  WeightUploader(UploadFn upload, bool compare_contents,
                 std::function<bool(int64_t done, int64_t total)> progress = nullptr)
      : upload_(std::move(upload)), compare_(compare_contents), progress_(std::move(progress)) {}

  void plan(const cpu::WeightView& w);
  void plan_bytes(int64_t bytes) { total_ += bytes; }
  // The device's view of w (the one uploaded before for the same bytes, or for `same_as` when its contents
  // are equal). A view without data stays as it is.
  Result<cpu::WeightView> upload(const cpu::WeightView& w, const cpu::WeightView* same_as = nullptr);
  Status advance(int64_t bytes);  // bytes uploaded outside upload() (prepare_moe)

  const UploadStats& stats() const { return stats_; }
  int64_t total() const { return total_; }
  int64_t done() const { return done_; }

 private:
  using Key = std::tuple<const void*, int, int64_t, int64_t, const float*, int64_t>;
  static Key key(const cpu::WeightView& w) {
    return {w.data, static_cast<int>(w.dtype), w.rows, w.cols, w.scale_inv, w.block};
  }
  Status report();
  UploadFn upload_;
  bool compare_;
  std::function<bool(int64_t, int64_t)> progress_;
  std::map<Key, bool> planned_;
  std::map<Key, cpu::WeightView> uploaded_;  // host view -> device view
  UploadStats stats_;
  int64_t total_ = 0, done_ = 0;
};

}  // namespace latent
