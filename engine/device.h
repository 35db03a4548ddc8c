#pragma once
// Device: where the DeepSeek forward runs. engine/deepseek_model.cpp is written once against this interface;
// each device gives the op bodies (CTranslate2's op.h + op_cpu + op_gpu): engine/device_cpu.cpp wraps
// kernels/cpu and is the exact reference, engine/cuda/device_cuda.cpp wraps kernels/cuda (built where nvcc
// exists; engine/nocuda/device_cuda_none.cpp says it is missing elsewhere).
//
// Memory model. Activations are float32 buffers in the device's memory (DeviceBuffer, grown on demand and
// kept between forwards). Weights are cpu::WeightView: the CPU device reads the mapped checkpoint, the CUDA
// device returns from upload() a view whose data (and FP8 scales) are device addresses. The latent cache is a
// KvCache (block ids, ref counts and the prefix tree stay on the host) whose storage the device provides
// (make_cache). Results the host reads (logits, hidden states) are written where host_out() says: the host
// vector itself on the CPU (no copy), a device buffer on CUDA, then fetch_out() copies it.
//
// Per forward: begin() takes the flattened batch (new token ids, their positions and block tables); the ops
// after it read them (embed, rope, write_cache, mla_attention). Every op queues work in order; the CPU runs it
// at once. Not thread-safe: one model, one engine thread.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/kv_cache.h"
#include "engine/request.h"
#include "kernels/base/result.h"
#include "kernels/cpu/ops.h"

namespace latent {

struct ModelConfig;
struct MlpWeights;
struct MoeWeights;

// --device cpu|cuda[:N]|auto. auto: CUDA device 0 when a GPU is present and the build has CUDA, else CPU.
struct DeviceSpec {
  enum class Kind { kCpu, kCuda, kAuto };
  Kind kind = Kind::kCpu;
  int index = 0;  // cuda:N
  // "cpu", "cuda", "cuda:1", "auto"; anything else is an error naming what was expected.
  static Result<DeviceSpec> parse(std::string_view text);
  std::string name() const;  // "cpu", "cuda:0", "auto"
};

// One sequence's share of the flattened batch: rows [offset, offset + n_new) of the [T, ...] activations.
struct SeqSpan {
  int64_t offset = 0;
  int64_t n_new = 0;
  int64_t n_cached = 0;  // position of the first new token
  std::span<const BlockId> blocks;
  bool all_logits = false;
};

class Device;

// One logits row's token selection (sampler.h's pipeline): the request's parameters and the ids before the
// token (penalised ids, and their count is the position whose uniform draws it). params == nullptr: the row's
// token is not wanted (a prompt chunk's last row), its id is -1.
struct TokenSelect {
  const SamplingParams* params = nullptr;
  std::span<const int32_t> history;
};

// The host's selection, the reference every device matches: ids[r] = Sampler(*rows[r].params).sample(logits
// row r, rows[r].history), or -1. logits: [rows.size(), vocab] in host memory. With a pool the rows are selected
// in parallel (each is independent: its own parameters, seed and history; the ids are the same): a ranked
// completion samples 15 rows per step beside its greedy one.
void select_on_host(const float* logits, int64_t vocab, std::span<const TokenSelect> rows, std::vector<int32_t>* ids,
                    cpu::ThreadPool* pool = nullptr);

// A float32 buffer in a device's memory. resize() keeps the allocation when it is large enough (contents are
// not kept across a growth: these are scratch activations). Move-only.
class DeviceBuffer {
 public:
  explicit DeviceBuffer(Device* device = nullptr) : device_(device) {}
  DeviceBuffer(DeviceBuffer&& o) noexcept { swap(o); }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    swap(o);
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer();
  void bind(Device* device) { device_ = device; }
  // n floats; kResourceExhausted when the device is out of memory.
  Result<float*> resize(int64_t n);
  float* data() const { return p_; }
  int64_t size() const { return n_; }

 private:
  void swap(DeviceBuffer& o) noexcept {
    std::swap(device_, o.device_), std::swap(p_, o.p_), std::swap(n_, o.n_), std::swap(cap_, o.cap_);
  }
  Device* device_ = nullptr;
  float* p_ = nullptr;
  int64_t n_ = 0, cap_ = 0;
};

class Device {
 public:
  virtual ~Device() = default;
  virtual std::string name() const = 0;  // "cpu", "cuda:0 (NVIDIA H100 80GB HBM3, sm_90)"
  virtual bool is_host() const = 0;      // buffers are host memory (collectives and pipeline links need it)

  // ---- memory
  virtual Result<float*> allocate(int64_t n) = 0;  // n floats
  virtual void release(float* p) = 0;
  // A weight in this device's memory (the CPU: the same view). Done once at load.
  virtual Result<cpu::WeightView> upload(const cpu::WeightView& w) = 0;
  // The MoE layer prepared for moe() (the CUDA device uploads the router, bias and experts and builds its
  // expert table); the CPU needs nothing (null).
  virtual Result<std::shared_ptr<const void>> prepare_moe(const ModelConfig& c, const MoeWeights& w) = 0;
  // The latent cache with this device's storage (CUDA: device memory; copy_block is a device copy).
  virtual Result<KvCache> make_cache(const ModelConfig& c, int64_t n_blocks, DType dtype) = 0;
  // The cache dtype this device keeps (the CPU: KvCache::dtype_for_precision()).
  virtual DType cache_dtype() const = 0;
  // Where an op writes n floats the host reads next (fetch_out() then makes them readable in `host`).
  virtual Result<float*> host_out(std::vector<float>& host, int64_t n) = 0;
  virtual Status fetch_out(std::vector<float>& host, const float* written) = 0;
  // The step's end when the caller wants tokens rather than logits: ids[r] for each of the rows.size() rows of
  // `logits` [rows.size(), vocab] (written by an op into device memory, like host_out's), as select_on_host picks
  // them; only the ids come back to the host. The base reads the rows back and selects on the host (the CPU's
  // logits are host memory: no copy).
  virtual Status select_tokens(const float* logits, int64_t vocab, std::span<const TokenSelect> rows,
                               std::vector<int32_t>* ids);
  // n floats at `src` as a host vector (traces), and host floats into device memory.
  virtual Result<std::vector<float>> to_host(const float* src, int64_t n) = 0;
  virtual Status from_host(const float* host, int64_t n, float* dst) = 0;

  // ---- the forward's ops (shapes: T = new tokens of the batch, d = hidden)
  // The batch of the next forward: `ids` [T] are the token ids embed() reads; seqs give each row's position
  // (n_cached + i) and block table; `cache` is the cache the forward writes. graph_key 0: run the ops as they come;
  // else the ops from here to the step's first fetch_out() touch device memory only (no trace read back, no host
  // inputs) and are the same for every step of this key and batch shape, so a device with graphs may capture them
  // once per batch bucket (the key and the decode batch size) and replay them.
  virtual Status begin(const std::vector<SeqSpan>& seqs, std::span<const int32_t> ids, const KvCache& cache,
                       int graph_key) = 0;
  // True once after a step whose graph capture failed: its ops were recorded, not run, so the model runs the step
  // again (the device runs that bucket eagerly from then on). The CPU never captures.
  virtual bool take_capture_failure() { return false; }
  // The step since begin() failed before its end (an error of the model's, not of an op): a device that was
  // capturing it drops the capture, so that later work on its stream (a cache block copy) runs. The CPU: nothing.
  virtual void abandon_step() {}
  // For benchmarks and scripts/gpu-check: kernels queued (own kernels, each cuBLAS call as one), steps, and how
  // they ran. The CPU counts nothing.
  struct Counters {
    int64_t launches = 0, steps = 0, graph_captures = 0, graph_replays = 0, capture_failures = 0;
  };
  virtual Counters counters() const { return {}; }
  // x[T, d] = rows ids of table [V, d].
  virtual Status embed(const cpu::WeightView& table, float* x) = 0;
  // y row t (at y + t * ldy) = RMSNorm(x row t at x + t * ldx) * gain, for n rows of gain.cols.
  virtual Status rms_norm(const float* x, int64_t ldx, int64_t n, const cpu::WeightView& gain, float eps, float* y,
                          int64_t ldy) = 0;
  Status rms_norm(const float* x, int64_t n, const cpu::WeightView& gain, float eps, float* y) {
    return rms_norm(x, gain.cols, n, gain, eps, y, gain.cols);
  }
  // y[n, rows] (row t at y + t * ldy) = x[n, cols] (row t at x + t * ldx) · Wᵀ.
  virtual Status linear(const float* x, int64_t ldx, int64_t n, const cpu::WeightView& w, float* y, int64_t ldy) = 0;
  Status linear(const float* x, int64_t n, const cpu::WeightView& w, float* y) {
    return linear(x, w.cols, n, w, y, w.rows);
  }
  // RoPE on the queries of rows [row0, row0 + n) of the batch: q [n, H, nope + P], the last P of each head.
  virtual Status rope_q(float* q, int64_t row0, int64_t n, int64_t n_heads, int64_t nope, int64_t rope_dim) = 0;
  // Every new token's cache row into `layer`: [RMSNorm(latent) R | RoPE(k_rope) P] from kv [T, R + P] (kv may be
  // overwritten).
  virtual Status write_cache(float* kv, const cpu::WeightView& kv_norm, float eps, int64_t layer, KvCache& cache) = 0;
  // q_lat[n, H, R] = W_UK_hᵀ q_nope (q [n, q_stride], head h at h * (nope + P)).
  virtual Status mla_absorb_q(const float* q, int64_t n, int64_t q_stride, const cpu::WeightView& kv_b,
                              int64_t n_heads, int64_t nope, int64_t rope_dim, int64_t v_dim, float* q_lat) = 0;
  // o_lat of the rows of `seqs` (offsets relative to q_lat's first row; positions n_cached + i, causal over the
  // cached tokens and the earlier new ones) = MQA over layer `layer` of the cache.
  virtual Status mla_attention(const float* q_lat, const float* q, int64_t q_stride, const std::vector<SeqSpan>& seqs,
                               int64_t n_heads, int64_t nope, int64_t layer, const KvCache& cache, float scale,
                               float* o_lat) = 0;
  // out[n, H * v] = W_UV_h o_lat[n, h].
  virtual Status mla_apply_uv(const float* o_lat, int64_t n, const cpu::WeightView& kv_b, int64_t n_heads,
                              int64_t nope, int64_t v_dim, float* out) = 0;
  // The MLA core, attn[n, H * v] from q [n, q_stride] (head h at h * (nope + P), q_rope rotated) over the rows
  // of `seqs` and layer `layer` of the cache; q_lat, o_lat [n, H, R] are scratch. Default: the three ops above
  // (absorb, MQA over the latent cache, W_UV). The CPU device runs long prefill chunks under its fast precision
  // with decompressed K/V instead (kernels/cpu/attention.h, mla_prefill_decompressed).
  virtual Status mla(const float* q, int64_t n, int64_t q_stride, const std::vector<SeqSpan>& seqs,
                     const cpu::WeightView& kv_b, int64_t n_heads, int64_t nope, int64_t rope_dim, int64_t v_dim,
                     int64_t layer, const KvCache& cache, float scale, float* q_lat, float* o_lat, float* attn) {
    LATENT_RETURN_IF_ERROR(mla_absorb_q(q, n, q_stride, kv_b, n_heads, nope, rope_dim, v_dim, q_lat));
    LATENT_RETURN_IF_ERROR(mla_attention(q_lat, q, q_stride, seqs, n_heads, nope, layer, cache, scale, o_lat));
    return mla_apply_uv(o_lat, n, kv_b, n_heads, nope, v_dim, attn);
  }
  // y[n, d] = down(silu(gate x) * up x).
  virtual Status mlp(const MlpWeights& w, const float* x, int64_t n, float* y) = 0;
  // y[n, d] = MoE(x) (prepared: prepare_moe's); the routing [n, top_k] into the vectors when not null.
  virtual Status moe(const ModelConfig& c, const MoeWeights& w, const void* prepared, const float* x, int64_t n,
                     float* y, std::vector<int32_t>* topk_idx, std::vector<float>* topk_weight) = 0;
  // y[i] += a[i], i < n (the residual stream).
  virtual Status add(const float* a, int64_t n, float* y) = 0;
  // y row i = x row rows[i], rows of d floats.
  virtual Status gather_rows(const float* x, int64_t d, std::span<const int64_t> rows, float* y) = 0;
};

// The device a spec names, or an error naming what was expected and what was found (no GPU, built without
// CUDA, unsupported compute capability, the config needing something the device lacks). auto never fails
// for want of a GPU: it takes the CPU. pool: the CPU ops' thread pool (nullptr = their default).
// random_seed != 0: the weights are Weights::placeholder()'s and upload() generates them (CUDA only).
Result<std::unique_ptr<Device>> make_device(const DeviceSpec& spec, const ModelConfig& c, cpu::ThreadPool* pool,
                                            uint64_t random_seed = 0);
std::unique_ptr<Device> make_cpu_device(const ModelConfig& c, cpu::ThreadPool* pool);
// engine/cuda/device_cuda.cpp, or engine/nocuda/device_cuda_none.cpp (an error: built without CUDA).
Result<std::unique_ptr<Device>> make_cuda_device(int index, const ModelConfig& c, uint64_t random_seed = 0);
// GPUs this process sees (0 where the build has no CUDA or no driver answers).
int cuda_device_count();
// The latent cache's dtype on a GPU: BF16 rows, float32 under --precision exact (where the golden tests want the
// CPU's numbers). CudaDevice::cache_dtype() answers this.
DType gpu_cache_dtype();
// The cache dtype the device `spec` names will keep, known before it is made (a daemon sizes its cache and
// advertises its context length while the weights are still loading).
DType cache_dtype_for(const DeviceSpec& spec);

}  // namespace latent
