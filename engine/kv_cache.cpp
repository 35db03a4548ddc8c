#include "engine/kv_cache.h"

#include <algorithm>
#include <cassert>
#include <string>
#include <cstdlib>
#include <cstring>

#include "engine/config.h"
#include "kernels/cpu/ops.h"

namespace latent {

namespace {
// data_ is kept in 16-bit words: a float32 element takes 2, a BF16 one 1.
size_t words_per(DType dtype) { return static_cast<size_t>(dtype_size(dtype)) / sizeof(uint16_t); }
// Slack after the last block (64 bytes, one 512-bit vector), so that a SIMD load running past the end of the
// last row stays inside the allocation.
constexpr size_t kTailSlackWords = 64 / sizeof(uint16_t);
}  // namespace

KvCache::KvCache(int64_t n_layers, int64_t kv_lora_rank, int64_t rope_dim, int64_t n_blocks, DType dtype)
    : n_layers_(n_layers), kv_lora_rank_(kv_lora_rank), rope_dim_(rope_dim), n_blocks_(n_blocks),
      dtype_(dtype == DType::kBF16 ? DType::kBF16 : DType::kF32),
      data_(static_cast<size_t>(n_blocks * n_layers * kBlockSize * (kv_lora_rank + rope_dim)) * words_per(dtype_) + kTailSlackWords, 0),
      refs_(static_cast<size_t>(n_blocks), 0) {
  free_.reserve(static_cast<size_t>(n_blocks));
  for (int64_t b = n_blocks - 1; b >= 0; --b) free_.push_back(static_cast<BlockId>(b));
}

KvCache::KvCache(int64_t n_layers, int64_t kv_lora_rank, int64_t rope_dim, int64_t n_blocks, DType dtype,
                 std::unique_ptr<KvStorage> storage)
    : n_layers_(n_layers), kv_lora_rank_(kv_lora_rank), rope_dim_(rope_dim), n_blocks_(n_blocks),
      dtype_(dtype == DType::kBF16 ? DType::kBF16 : DType::kF32), storage_(std::move(storage)),
      refs_(static_cast<size_t>(n_blocks), 0) {
  free_.reserve(static_cast<size_t>(n_blocks));
  for (int64_t b = n_blocks - 1; b >= 0; --b) free_.push_back(static_cast<BlockId>(b));
}

Result<KvCache> KvCache::for_model(const ModelConfig& config, int64_t n_blocks, DType dtype) {
  if (n_blocks <= 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "KvCache: expected a positive block count, found " + std::to_string(n_blocks));
  }
  if (dtype != DType::kF32 && dtype != DType::kBF16) {
    return make_error(ErrorCode::kInvalidArgument, std::string("KvCache: expected dtype F32 or BF16, found ") +
                                                       dtype_name(dtype));
  }
  return KvCache(config.n_cache_layers(), config.kv_lora_rank, config.qk_rope_head_dim, n_blocks, dtype);
}

int64_t KvCache::blocks_for_bytes(const ModelConfig& config, size_t bytes, DType dtype) {
  size_t per_block = static_cast<size_t>(config.n_cache_layers() * kBlockSize * config.kv_cache_dim()) *
                     static_cast<size_t>(dtype_size(dtype == DType::kBF16 ? DType::kBF16 : DType::kF32));
  return static_cast<int64_t>(bytes / per_block);
}

DType KvCache::dtype_for_precision() {
  // LATENT_KV_CACHE=bf16 asks for BF16 rows; they are kept only with the fast precision (the exact path, which
  // the golden tests use, stays float32 throughout).
  static const bool bf16 = [] {
    const char* e = std::getenv("LATENT_KV_CACHE");
    return e && std::string(e) == "bf16";
  }();
  return bf16 && cpu::linear_precision_in_effect() == std::string("bf16") ? DType::kBF16 : DType::kF32;
}

Result<BlockId> KvCache::allocate() {
  if (free_.empty()) {
    return make_error(ErrorCode::kResourceExhausted,
                      "KV cache full: expected a free block, found none of " + std::to_string(n_blocks_));
  }
  BlockId b = free_.back();
  free_.pop_back();
  refs_[static_cast<size_t>(b)] = 1;
  return b;
}

Result<std::vector<BlockId>> KvCache::allocate(int64_t n) {
  if (n > free_count()) {
    return make_error(ErrorCode::kResourceExhausted, "KV cache full: expected " + std::to_string(n) +
                                                         " free blocks, found " + std::to_string(free_count()) +
                                                         " of " + std::to_string(n_blocks_));
  }
  std::vector<BlockId> out;
  out.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) out.push_back(*allocate());
  return out;
}

static Status bad_block(const char* what, BlockId b, int64_t n) {
  return make_error(ErrorCode::kInvalidArgument, std::string("KvCache::") + what + ": expected an allocated block id in [0, " +
                                                     std::to_string(n) + "), found " + std::to_string(b));
}

Status KvCache::ref(BlockId b) {
  if (b < 0 || b >= n_blocks_ || refs_[static_cast<size_t>(b)] == 0) return bad_block("ref", b, n_blocks_);
  ++refs_[static_cast<size_t>(b)];
  return Status::Ok();
}

Status KvCache::unref(BlockId b) {
  if (b < 0 || b >= n_blocks_ || refs_[static_cast<size_t>(b)] == 0) return bad_block("unref", b, n_blocks_);
  if (--refs_[static_cast<size_t>(b)] == 0) free_.push_back(b);
  return Status::Ok();
}

int32_t KvCache::ref_count(BlockId b) const {
  return (b < 0 || b >= n_blocks_) ? 0 : refs_[static_cast<size_t>(b)];
}

Status KvCache::copy_block(BlockId src, BlockId dst, int64_t n_slots) {
  if (ref_count(src) == 0) return bad_block("copy_block(src)", src, n_blocks_);
  if (ref_count(dst) == 0) return bad_block("copy_block(dst)", dst, n_blocks_);
  n_slots = std::clamp<int64_t>(n_slots, 0, kBlockSize);
  for (int64_t l = 0; l < n_layers_; ++l) {
    if (storage_) {
      const auto offset = [&](BlockId b) {
        return static_cast<size_t>(static_cast<char*>(block_ptr(l, b)) - static_cast<char*>(storage_->base()));
      };
      LATENT_RETURN_IF_ERROR(storage_->copy(offset(dst), offset(src), static_cast<size_t>(n_slots * token_dim()) * element_size()));
      continue;
    }
    std::memcpy(block_ptr(l, dst), block_ptr(l, src), static_cast<size_t>(n_slots * token_dim()) * element_size());
  }
  if (log_copies_) copies_.push_back({src, dst, n_slots});
  return Status::Ok();
}

void* KvCache::block_ptr(int64_t layer, BlockId b) {
  const size_t words = static_cast<size_t>((static_cast<int64_t>(b) * n_layers_ + layer) * kBlockSize * token_dim());
  if (storage_) return static_cast<uint16_t*>(storage_->base()) + words * words_per(dtype_);
  return data_.data() + words * words_per(dtype_);
}

const void* KvCache::block_ptr(int64_t layer, BlockId b) const {
  return const_cast<KvCache*>(this)->block_ptr(layer, b);
}

float* KvCache::block_data(int64_t layer, BlockId b) {
  assert(dtype_ == DType::kF32);
  return static_cast<float*>(block_ptr(layer, b));
}

const float* KvCache::block_data(int64_t layer, BlockId b) const {
  assert(dtype_ == DType::kF32);
  return static_cast<const float*>(block_ptr(layer, b));
}

void KvCache::write_token(int64_t layer, BlockId b, int64_t slot, const float* src) {
  assert(!storage_ && "KvCache::write_token: the rows are not in host memory");
  const int64_t D = token_dim();
  if (dtype_ == DType::kF32) {
    std::memcpy(token(layer, b, slot), src, static_cast<size_t>(D) * sizeof(float));
    return;
  }
  uint16_t* dst = static_cast<uint16_t*>(block_ptr(layer, b)) + slot * D;
  for (int64_t i = 0; i < D; ++i) dst[i] = f32_to_bf16(src[i]);
}

void KvCache::read_token(int64_t layer, BlockId b, int64_t slot, float* dst) const {
  assert(!storage_ && "KvCache::read_token: the rows are not in host memory");
  const int64_t D = token_dim();
  if (dtype_ == DType::kF32) {
    std::memcpy(dst, block_data(layer, b) + slot * D, static_cast<size_t>(D) * sizeof(float));
    return;
  }
  const uint16_t* src = static_cast<const uint16_t*>(block_ptr(layer, b)) + slot * D;
  for (int64_t i = 0; i < D; ++i) dst[i] = bf16_to_f32(src[i]);
}

}  // namespace latent
