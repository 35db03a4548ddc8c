#pragma once
// KvCache: MLA's paged latent cache. Per layer and token it stores only kv_lora_rank values (the latent after
// kv_a_layernorm) then qk_rope_head_dim values (the shared rope key after RoPE), float32 or (opt-in,
// LATENT_KV_CACHE=bf16, see dtype_for_precision) BF16: half the bytes per token. Tokens live in fixed blocks
// of kBlockSize; a sequence owns a block table (block ids, position p in block_table[p / kBlockSize], slot
// p % kBlockSize). Blocks are reference counted so that running requests and the prefix cache can share them;
// a block returns to the free list when its count drops to 0. Capacity is fixed at construction and memory is
// allocated once; running out is an error, never a crash.
//
// Not thread-safe: owned by the engine thread (the Scheduler), like the model.
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "kernels/base/result.h"
#include "kernels/cpu/dtype.h"

namespace latent {

struct ModelConfig;
using BlockId = int32_t;

// Where a cache's rows live when not in host memory (a GPU's memory, engine/device.h): the same layout at
// base(), and copy() moves bytes within it (copy-on-write of a block is then a device-to-device copy).
class KvStorage {
 public:
  virtual ~KvStorage() = default;
  virtual void* base() = 0;
  virtual Status copy(size_t dst_offset, size_t src_offset, size_t bytes) = 0;
  virtual std::string where() const = 0;  // "cuda:0"
};

class KvCache {
 public:
  static constexpr int64_t kBlockSize = 64;

  // n_layers: decoder layers plus MTP layers (ModelConfig::n_cache_layers()).
  // dtype: DType::kF32 or kBF16.
  KvCache(int64_t n_layers, int64_t kv_lora_rank, int64_t rope_dim, int64_t n_blocks,
          DType dtype = DType::kF32);
  static Result<KvCache> for_model(const ModelConfig& config, int64_t n_blocks, DType dtype = DType::kF32);
  // The same layout in `storage` (of at least bytes_for(...) bytes): block_ptr() gives its addresses, and
  // write_token/read_token/token/block_data, which touch rows from the host, must not be used.
  KvCache(int64_t n_layers, int64_t kv_lora_rank, int64_t rope_dim, int64_t n_blocks, DType dtype,
          std::unique_ptr<KvStorage> storage);
  static size_t bytes_for(int64_t n_layers, int64_t token_dim, int64_t n_blocks, DType dtype) {
    return static_cast<size_t>(n_blocks * n_layers * kBlockSize * token_dim) * static_cast<size_t>(dtype_size(dtype));
  }
  bool on_host() const { return storage_ == nullptr; }
  std::string where() const { return storage_ ? storage_->where() : "host"; }
  // Blocks that fit in `bytes` for this model.
  static int64_t blocks_for_bytes(const ModelConfig& config, size_t bytes, DType dtype = DType::kF32);
  // The cache dtype latentd and the CLI use: float32, or BF16 when LATENT_KV_CACHE=bf16 and linear() rounds
  // activations to BF16 (cpu::linear_precision_in_effect() is "bf16"). Not the default: on the random golden
  // models the rounded cache changes greedy ids (near ties), which the fast path must keep.
  static DType dtype_for_precision();

  // ---- block allocator
  Result<BlockId> allocate();                      // ref count 1; kResourceExhausted when full
  Result<std::vector<BlockId>> allocate(int64_t n);  // all or nothing
  Status ref(BlockId b);                           // share: count += 1
  Status unref(BlockId b);                         // count -= 1; at 0 back to the free list
  int32_t ref_count(BlockId b) const;              // 0 for a free block
  int64_t free_count() const { return static_cast<int64_t>(free_.size()); }
  int64_t capacity() const { return n_blocks_; }
  static int64_t blocks_needed(int64_t n_tokens) { return (n_tokens + kBlockSize - 1) / kBlockSize; }
  // Copies the first n_slots tokens of every layer from src to dst (copy-on-write of a shared partial block).
  Status copy_block(BlockId src, BlockId dst, int64_t n_slots = kBlockSize);

  // ---- replicas on other ranks (the latent cache is replicated per rank). Rank 0's model turns the log on;
  // the copies made since its last forward travel with the next step, so that every replica repeats them.
  struct Copy {
    BlockId src = 0, dst = 0;
    int64_t n_slots = 0;
  };
  void log_copies(bool on) { log_copies_ = on; }
  std::vector<Copy> take_copies() { return std::exchange(copies_, {}); }

  // ---- views the model reads and writes
  int64_t n_layers() const { return n_layers_; }
  int64_t kv_lora_rank() const { return kv_lora_rank_; }
  int64_t rope_dim() const { return rope_dim_; }
  int64_t token_dim() const { return kv_lora_rank_ + rope_dim_; }
  DType dtype() const { return dtype_; }
  size_t element_size() const { return static_cast<size_t>(dtype_size(dtype_)); }
  // One layer of one block: [kBlockSize, kv_lora_rank + rope_dim] of dtype(), row = slot.
  void* block_ptr(int64_t layer, BlockId b);
  const void* block_ptr(int64_t layer, BlockId b) const;
  // The same for a float32 cache only.
  float* block_data(int64_t layer, BlockId b);
  const float* block_data(int64_t layer, BlockId b) const;
  // One token of a float32 cache: [kv_lora_rank latent | rope_dim rope key].
  float* token(int64_t layer, BlockId b, int64_t slot) { return block_data(layer, b) + slot * token_dim(); }
  // Any dtype: stores token_dim() floats (rounded to nearest even for BF16), or reads them back widened.
  void write_token(int64_t layer, BlockId b, int64_t slot, const float* src);
  void read_token(int64_t layer, BlockId b, int64_t slot, float* dst) const;
  size_t bytes() const {
    return storage_ ? bytes_for(n_layers_, token_dim(), n_blocks_, dtype_) : data_.size() * sizeof(uint16_t);
  }

 private:
  int64_t n_layers_, kv_lora_rank_, rope_dim_, n_blocks_;
  DType dtype_;
  std::vector<uint16_t> data_;  // [n_blocks, n_layers, kBlockSize, token_dim] of dtype_ (a float is 2 words)
  std::unique_ptr<KvStorage> storage_;  // the rows elsewhere (data_ empty), or null
  std::vector<int32_t> refs_;
  std::vector<BlockId> free_;  // stack; lowest ids handed out first
  bool log_copies_ = false;
  std::vector<Copy> copies_;   // since the last take_copies()
};

}  // namespace latent
