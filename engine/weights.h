#pragma once
// Weights: a checkpoint's tensors, memory-mapped in their stored dtype (one model.safetensors, or shards listed
// in model.safetensors.index.json). Looked up with the dtypes and shape the model expects (calm's
// tensors_get): a mismatch is an error naming the tensor, the expected and the found value:
//   "model.layers.1.self_attn.kv_b_proj.weight: expected [256, 32], got [256, 16]".
// FP8 (F8_E4M3) matrices carry 128x128 block scales in `<name>_scale_inv` (DeepSeek-V3 release naming:
// `...weight_scale_inv` beside `...weight`). Immutable after open(); safe to read from many threads.
#include <cstdint>
#include <initializer_list>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/safetensors.h"
#include "kernels/base/result.h"
#include "kernels/cpu/ops.h"

namespace latent {

struct WeightsOptions {
  // Progress bar on stderr while loading; only drawn when stderr is a TTY.
  bool progress = true;
  // Touch every page after mapping (reads the whole checkpoint into the page cache up front).
  bool prefault = false;
};

class Weights {
 public:
  // `path`: a model directory (model.safetensors.index.json, else model.safetensors, else the only
  // *.safetensors file) or a .safetensors file.
  static Result<Weights> open(const std::string& path, const WeightsOptions& options = {});
  // A checkpoint without data, for benchmarks of real-size shapes (ModelOptions::random_weights_seed): every
  // lookup answers a BF16 (else the first allowed dtype) tensor of exactly the shape asked, whose data is a
  // non-null marker, distinct per tensor name, that must never be read (a device that generates weights replaces it on upload); has() is
  // true for every name except e_score_correction_bias. Not thread-safe while the model loads.
  static Weights placeholder();
  bool is_placeholder() const;

  Weights();
  Weights(Weights&&) noexcept;
  Weights& operator=(Weights&&) noexcept;
  ~Weights();

  bool has(const std::string& name) const;
  const TensorInfo* find(const std::string& name) const;  // nullptr when absent
  size_t size() const;                                    // number of tensors
  std::vector<std::string> names() const;                 // sorted
  size_t total_bytes() const;                             // sum of tensor bytes
  size_t file_bytes() const;                              // sum of the mapped files' sizes

  // Reads one byte of every page of the mapped files (except released ones), so that the page cache holds the checkpoint before the
  // first forward needs it (a daemon warms up in the background). `progress(done, total)` is called every
  // 64 MiB and at the end; returning false stops early. Returns the bytes touched.
  size_t touch_pages(const std::function<bool(size_t done, size_t total)>& progress = {}) const;

  // Whether [p, p + n) lies inside one of the mapped files.
  bool maps(const void* p, size_t n) const;
  // Gives back the mapping's pages wholly inside [p, p + n) (maps() must hold), for a tensor whose data now lives
  // elsewhere (BF16 weights repacked at load, engine/repack.h): madvise(MADV_DONTNEED) drops them from this
  // process (its RSS; the page cache keeps the file's pages as long as the kernel likes), and touch_pages skips
  // them from then on. Reading them again would fault them back in: nothing must. Not thread-safe: at load only.
  void release(const void* p, size_t n);
  size_t released_bytes() const;

  // The tensor with one of `dtypes` and exactly `shape` (checked in that order: missing, dtype, shape).
  Result<const TensorInfo*> get(const std::string& name, std::initializer_list<DType> dtypes,
                                const std::vector<int64_t>& shape) const;

  // A [rows, cols] matrix in F32/BF16/F16, or F8_E4M3 with its `<name>_scale_inv` F32
  // [ceil(rows/128), ceil(cols/128)] block scales.
  Result<cpu::WeightView> matrix(const std::string& name, int64_t rows, int64_t cols) const;
  // A [n] vector (norm gains, router bias) in F32/BF16/F16, viewed as a 1 x n matrix.
  Result<cpu::WeightView> vector(const std::string& name, int64_t n) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace latent
