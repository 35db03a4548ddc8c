// The CPU device: the exact reference. Each op is the kernels/cpu call the model made before the device
// interface existed, with the same arguments, so results are bit-identical; buffers are host memory.
#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "engine/config.h"
#include "engine/device.h"
#include "engine/moe.h"
#include "engine/rope.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/ops.h"
#include "kernels/cpu/thread_pool.h"

namespace latent {

namespace {

class CpuDevice final : public Device {
 public:
  CpuDevice(const ModelConfig& c, cpu::ThreadPool* pool)
      : pool_(pool), inv_freq_(rope_inv_freq(c)), mscale_(static_cast<float>(c.rope_mscale())),
        P_(c.qk_rope_head_dim), R_(c.kv_lora_rank) {}

  std::string name() const override { return "cpu"; }
  bool is_host() const override { return true; }

  Result<float*> allocate(int64_t n) override {
    // 64-byte aligned (one 512-bit vector), rounded up to whole vectors as aligned_alloc wants.
    const size_t bytes = (static_cast<size_t>(std::max<int64_t>(n, 1)) * sizeof(float) + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, bytes);
    if (!p) {
      return make_error(ErrorCode::kResourceExhausted, "cpu: expected " + std::to_string(bytes) +
                                                           " bytes of memory for activations, allocation failed");
    }
    return static_cast<float*>(p);
  }
  void release(float* p) override { std::free(p); }
  Result<cpu::WeightView> upload(const cpu::WeightView& w) override { return w; }
  Result<std::shared_ptr<const void>> prepare_moe(const ModelConfig&, const MoeWeights&) override {
    return std::shared_ptr<const void>();
  }
  Result<KvCache> make_cache(const ModelConfig& c, int64_t n_blocks, DType dtype) override {
    return KvCache::for_model(c, n_blocks, dtype);
  }
  DType cache_dtype() const override { return KvCache::dtype_for_precision(); }
  Result<float*> host_out(std::vector<float>& host, int64_t n) override {
    host.resize(static_cast<size_t>(n));
    return host.data();
  }
  Status fetch_out(std::vector<float>&, const float*) override { return Status::Ok(); }
  Result<std::vector<float>> to_host(const float* src, int64_t n) override { return std::vector<float>(src, src + n); }
  Status from_host(const float* host, int64_t n, float* dst) override {
    if (host != dst) std::memcpy(dst, host, static_cast<size_t>(n) * sizeof(float));
    return Status::Ok();
  }

  Status begin(const std::vector<SeqSpan>& seqs, std::span<const int32_t> ids, const KvCache&, int) override {
    seqs_ = &seqs;
    ids_ = ids;
    // cos/sin of each new token's position: [T, P]
    const int64_t T = seqs.empty() ? 0 : seqs.back().offset + seqs.back().n_new;
    rope_cs_.resize(static_cast<size_t>(T * P_));
    for (const SeqSpan& s : seqs) {
      for (int64_t i = 0; i < s.n_new; ++i) rope_cos_sin(inv_freq_, s.n_cached + i, rope_cs_.data() + (s.offset + i) * P_, mscale_);
    }
    return Status::Ok();
  }
  Status embed(const cpu::WeightView& table, float* x) override {
    for (size_t t = 0; t < ids_.size(); ++t) cpu::embedding_row(table, ids_[t], x + static_cast<int64_t>(t) * table.cols);
    return Status::Ok();
  }
  Status rms_norm(const float* x, int64_t ldx, int64_t n, const cpu::WeightView& gain, float eps, float* y,
                  int64_t ldy) override {
    const int64_t d = gain.cols;
    if (ldx == d && ldy == d) {
      cpu::rms_norm(x, n, d, gain.data, gain.dtype, eps, y);
    } else {
      for (int64_t t = 0; t < n; ++t) cpu::rms_norm(x + t * ldx, 1, d, gain.data, gain.dtype, eps, y + t * ldy);
    }
    return Status::Ok();
  }
  Status linear(const float* x, int64_t ldx, int64_t n, const cpu::WeightView& w, float* y, int64_t ldy) override {
    if (ldx == w.cols && ldy == w.rows) {
      cpu::linear(x, n, w, y, pool_);
    } else {
      cpu::linear_strided(x, ldx, n, w, y, ldy, pool_);
    }
    return Status::Ok();
  }
  Status rope_q(float* q, int64_t row0, int64_t n, int64_t H, int64_t nope, int64_t P) override {
    const int64_t qk = nope + P;
    for (int64_t t = 0; t < n; ++t) {
      for (int64_t h = 0; h < H; ++h) rope_rotate(q + t * H * qk + h * qk + nope, P, rope_cs_.data() + (row0 + t) * P);
    }
    return Status::Ok();
  }
  Status write_cache(float* kv, const cpu::WeightView& kv_norm, float eps, int64_t layer, KvCache& cache) override {
    const int64_t R = R_, P = P_;
    row_.resize(static_cast<size_t>(R + P));
    for (const SeqSpan& s : *seqs_) {
      for (int64_t i = 0; i < s.n_new; ++i) {
        const int64_t t = s.offset + i, pos = s.n_cached + i;
        float* row = row_.data();
        const float* src = kv + t * (R + P);
        cpu::rms_norm(src, 1, kv_norm.cols, kv_norm.data, kv_norm.dtype, eps, row);
        std::copy(src + R, src + R + P, row + R);
        rope_rotate(row + R, P, rope_cs_.data() + t * P);
        cache.write_token(layer, s.blocks[static_cast<size_t>(pos / KvCache::kBlockSize)], pos % KvCache::kBlockSize,
                          row);  // float32, or rounded to BF16
      }
    }
    return Status::Ok();
  }
  Status mla_absorb_q(const float* q, int64_t n, int64_t q_stride, const cpu::WeightView& kv_b, int64_t H,
                      int64_t nope, int64_t P, int64_t vd, float* q_lat) override {
    if (n > 0) cpu::mla_absorb_q(q, n, q_stride, kv_b, H, nope, P, vd, q_lat, pool_);
    return Status::Ok();
  }
  Status mla_attention(const float* q_lat, const float* q, int64_t q_stride, const std::vector<SeqSpan>& seqs,
                       int64_t H, int64_t nope, int64_t layer, const KvCache& cache, float scale,
                       float* o_lat) override {
    const int64_t R = R_, P = P_;
    for (const SeqSpan& s : seqs) {
      blocks_.clear();
      for (int64_t b = 0; b < KvCache::blocks_needed(s.n_cached + s.n_new); ++b) {
        blocks_.push_back(cache.block_ptr(layer, s.blocks[static_cast<size_t>(b)]));
      }
      cpu::mla_attention(q_lat + s.offset * H * R, q + s.offset * q_stride, q_stride, s.n_new, H, nope, R, P,
                         s.n_cached, blocks_.data(), cache.dtype(), KvCache::kBlockSize, scale,
                         o_lat + s.offset * H * R, pool_);
    }
    return Status::Ok();
  }
  Status mla_apply_uv(const float* o_lat, int64_t n, const cpu::WeightView& kv_b, int64_t H, int64_t nope,
                      int64_t vd, float* out) override {
    if (n > 0) cpu::mla_apply_uv(o_lat, n, kv_b, H, nope, vd, out, pool_);
    return Status::Ok();
  }
  // Per sequence: absorbed, or (fast precision, BF16 kv_b_proj, long chunk) decompressed K/V. Absorbed sequences
  // share the batched W_UK and W_UV; decompressed ones write their rows of attn after W_UV. F32 weights and the
  // exact precision always absorb (their results stay bit for bit the exact path's).
  Status mla(const float* q, int64_t n, int64_t q_stride, const std::vector<SeqSpan>& seqs, const cpu::WeightView& kv_b,
             int64_t H, int64_t nope, int64_t P, int64_t vd, int64_t layer, const KvCache& cache, float scale,
             float* q_lat, float* o_lat, float* attn) override {
    const bool fast = cpu::bf16_activations_available() &&
                      cpu::linear_precision() == cpu::LinearPrecision::kBf16Activations && kv_b.dtype == DType::kBF16;
    absorbed_.clear();
    decompressed_.clear();
    for (const SeqSpan& s : seqs) {
      const bool d = fast && cpu::mla_prefill_decompressed(s.n_new, s.n_cached, H, nope, vd, R_, P, cache.dtype());
      (d ? decompressed_ : absorbed_).push_back(s);
    }
    if (!absorbed_.empty()) {
      if (decompressed_.empty()) return Device::mla(q, n, q_stride, seqs, kv_b, H, nope, P, vd, layer, cache, scale, q_lat, o_lat, attn);
      LATENT_RETURN_IF_ERROR(Device::mla(q, n, q_stride, absorbed_, kv_b, H, nope, P, vd, layer, cache, scale, q_lat, o_lat, attn));
    }
    for (const SeqSpan& s : decompressed_) {
      blocks_.clear();
      for (int64_t b = 0; b < KvCache::blocks_needed(s.n_cached + s.n_new); ++b) {
        blocks_.push_back(cache.block_ptr(layer, s.blocks[static_cast<size_t>(b)]));
      }
      cpu::mla_attention_decompressed(q + s.offset * q_stride, q_stride, s.n_new, kv_b, H, nope, vd, P, s.n_cached,
                                      blocks_.data(), cache.dtype(), KvCache::kBlockSize, scale,
                                      attn + s.offset * H * vd, H * vd, pool_);  // [n_new, H * v]
    }
    return Status::Ok();
  }
  Status mlp(const MlpWeights& w, const float* x, int64_t n, float* y) override {
    mlp_forward(w, x, n, y, pool_);
    return Status::Ok();
  }
  Status moe(const ModelConfig& c, const MoeWeights& w, const void*, const float* x, int64_t n, float* y,
             std::vector<int32_t>* topk_idx, std::vector<float>* topk_weight) override {
    const size_t nk = static_cast<size_t>(n * c.num_experts_per_tok);
    idx_.resize(nk);
    wt_.resize(nk);
    moe_forward(c, w, x, n, y, pool_, idx_.data(), wt_.data());
    if (topk_idx) *topk_idx = idx_;
    if (topk_weight) *topk_weight = wt_;
    return Status::Ok();
  }
  Status add(const float* a, int64_t n, float* y) override {
    for (int64_t i = 0; i < n; ++i) y[i] += a[i];
    return Status::Ok();
  }
  // The step's rows in parallel on the model's pool (select_on_host's ids).
  Status select_tokens(const float* logits, int64_t vocab, std::span<const TokenSelect> rows,
                       std::vector<int32_t>* ids) override {
    select_on_host(logits, vocab, rows, ids, pool_);
    return Status::Ok();
  }
  Status gather_rows(const float* x, int64_t d, std::span<const int64_t> rows, float* y) override {
    for (size_t i = 0; i < rows.size(); ++i) std::copy(x + rows[i] * d, x + (rows[i] + 1) * d, y + static_cast<int64_t>(i) * d);
    return Status::Ok();
  }

 private:
  cpu::ThreadPool* pool_;
  std::vector<float> inv_freq_;
  float mscale_;
  int64_t P_, R_;
  const std::vector<SeqSpan>* seqs_ = nullptr;  // begin()'s, alive through the forward
  std::span<const int32_t> ids_;
  std::vector<float> rope_cs_;   // [T, P]
  std::vector<float> row_;       // [R + P]: one token's cache row before it is stored
  std::vector<const void*> blocks_;
  std::vector<SeqSpan> absorbed_, decompressed_;  // mla(): the batch split by path
  std::vector<int32_t> idx_;
  std::vector<float> wt_;
};

}  // namespace

std::unique_ptr<Device> make_cpu_device(const ModelConfig& c, cpu::ThreadPool* pool) {
  return std::make_unique<CpuDevice>(c, pool);
}

}  // namespace latent
