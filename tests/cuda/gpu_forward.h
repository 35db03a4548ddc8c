#pragma once
// GpuDeepseek: the DeepSeek-V2/V3 forward pass (main model, one sequence) composed only of kernels/cuda ops,
// with weights uploaded once into one device arena and the latent cache on the device. It lives beside the
// tests because the engine has no CUDA hook yet (docs/cuda.md); it is the blueprint of that hook and what
// the golden-logits GPU test runs. Exact float32 linears (no tensor-core rounding), like the CPU engine.
//
// Not thread-safe: one caller at a time; every op is queued on the legacy stream.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kernels/base/result.h"

namespace latent::cuda {

class GpuDeepseek {
 public:
  // dir: config.json + model.safetensors. max_tokens: largest forward; n_blocks: 64-token cache blocks.
  static Result<std::unique_ptr<GpuDeepseek>> load(const std::string& dir, int64_t max_tokens, int64_t n_blocks);
  // The same model shape from dir/config.json alone, with random BF16 weights generated on the device (same
  // seed, same weights): real-size benchmarks without writing or reading a checkpoint.
  static Result<std::unique_ptr<GpuDeepseek>> random(const std::string& dir, int64_t max_tokens, int64_t n_blocks,
                                                     uint64_t seed = 1);
  ~GpuDeepseek();

  // tokens at positions n_cached.. of the sequence whose cache blocks are block_table (ids < n_blocks).
  // Returns logits [rows, vocab]: every new token when all_logits, else the last one. use_graph: a
  // one-token step replays a CUDA graph captured on the first such call (inputs are read from device
  // buffers; attention is planned for the whole cache and reads the context length on the device).
  Result<std::vector<float>> forward(const std::vector<int32_t>& tokens, int64_t n_cached,
                                     const std::vector<int32_t>& block_table, bool all_logits,
                                     bool use_graph = false);
  int64_t vocab() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace latent::cuda
