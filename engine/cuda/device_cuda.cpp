// The CUDA device: the ops of engine/device.h on one GPU, wrapping kernels/cuda. Everything is queued on one
// non-blocking stream; the host waits only where it reads a result (fetch_out, to_host, traces). Weights are
// uploaded once into device arenas (chunks of at least 256 MiB); activations are float32 device buffers; the
// latent cache lives in device memory with KvCache's layout [n_blocks, n_layers, 64, R + P] (BF16 rows with the
// fast precision, float32 with exact; attention widens them to float32 in shared memory), so block ids
// index it directly and copy-on-write is a device-to-device copy on the same stream.
//
// Per forward, begin() uploads the step's inputs: token ids [T], positions [T], context lengths [T]
// (n_cached + i + 1: causal) and one block table per row [T, W] (W = the most blocks any sequence needs), so
// that a batch mixing prefill chunks and decodes of several sequences is one launch per op. Linears follow
// cpu::linear_precision() (--precision): exact keeps every linear on the float32 GEMV (golden exactness),
// otherwise 16+ token batches use cuBLAS with BF16 activations (kernels/cuda/ops.h).
#include <cuda_runtime.h>

#include <algorithm>
#include <cstring>

#include "engine/config.h"
#include "engine/device.h"
#include "engine/moe.h"
#include "engine/rope.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/device.h"
#include "kernels/cuda/memory.h"
#include "kernels/cuda/mla.h"
#include "kernels/cuda/moe.h"
#include "kernels/cuda/ops.h"

namespace latent {

namespace {

using cuda::cuda_status;
using cuda::DeviceWeight;

DeviceWeight dw(const cpu::WeightView& w) { return DeviceWeight{w.data, w.dtype, w.rows, w.cols, w.scale_inv, w.block}; }

// "1234.5 MiB free of 80.0 GiB" on the current device.
std::string memory_note() {
  size_t free_b = 0, total_b = 0;
  if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) return "free memory unknown";
  char buf[96];
  std::snprintf(buf, sizeof buf, "%.1f MiB free of %.1f GiB", free_b / 1048576.0, total_b / 1073741824.0);
  return buf;
}

// The stream outlives the device object while a cache made on it lives (the cache's copies run on it).
struct StreamHandle {
  cudaStream_t stream = nullptr;
  int device = 0;
  ~StreamHandle() {
    if (stream) {
      cudaSetDevice(device);
      cudaStreamDestroy(stream);
    }
  }
};

class CudaKvStorage final : public KvStorage {
 public:
  CudaKvStorage(std::shared_ptr<StreamHandle> s, void* base) : s_(std::move(s)), base_(base) {}
  ~CudaKvStorage() override {
    cudaSetDevice(s_->device);
    cudaStreamSynchronize(s_->stream);
    cudaFree(base_);
  }
  void* base() override { return base_; }
  Status copy(size_t dst, size_t src, size_t bytes) override {
    char* b = static_cast<char*>(base_);
    return cuda_status(cudaMemcpyAsync(b + dst, b + src, bytes, cudaMemcpyDeviceToDevice, s_->stream),
                       "KvCache::copy_block on the device");
  }
  std::string where() const override { return "cuda:" + std::to_string(s_->device); }

 private:
  std::shared_ptr<StreamHandle> s_;
  void* base_;
};

// One MoE layer on the device (prepare_moe).
struct CudaMoe {
  DeviceWeight router;
  const float* bias = nullptr;  // [E] float32, or null
  cuda::ExpertTable experts;
  bool has_shared = false;
  DeviceWeight shared_gate, shared_up, shared_down;
};

// A device int32 array grown on demand (step inputs).
struct IntArray {
  int32_t* p = nullptr;
  int64_t cap = 0;
  ~IntArray() { cudaFree(p); }
  Status fit(int64_t n, const char* what) {
    if (n <= cap) return Status::Ok();
    cudaFree(p);
    p = nullptr, cap = 0;
    LATENT_RETURN_IF_ERROR(cuda_status(cudaMalloc(&p, static_cast<size_t>(std::max<int64_t>(n, 1)) * sizeof(int32_t)), what));
    cap = n;
    return Status::Ok();
  }
};

class CudaDevice final : public Device {
 public:
  static Result<std::unique_ptr<Device>> create(int index, const ModelConfig& c, uint64_t random_seed) {
    const int count = cuda::device_count();
    if (count == 0) {
      return make_error(ErrorCode::kUnsupported, "--device cuda:" + std::to_string(index) +
                                                     ": expected a CUDA GPU, found none (no GPU or no driver answers; "
                                                     "use --device cpu or auto)");
    }
    if (index >= count) {
      return make_error(ErrorCode::kInvalidArgument, "--device cuda:" + std::to_string(index) + ": expected an index below " +
                                                         std::to_string(count) + " (the GPUs this process sees), found " +
                                                         std::to_string(index));
    }
    cudaDeviceProp p{};
    LATENT_RETURN_IF_ERROR(cuda_status(cudaGetDeviceProperties(&p, index), "cudaGetDeviceProperties"));
    if (p.major < 9) {  // kernels/cuda is built for sm_90a plus compute_90 PTX
      return make_error(ErrorCode::kUnsupported, "--device cuda:" + std::to_string(index) +
                                                     ": expected compute capability 9.0 or newer (the CUDA kernels are "
                                                     "built for sm_90: H100/H200), found " + std::to_string(p.major) +
                                                     "." + std::to_string(p.minor) + " (" + p.name + ")");
    }
    if (c.rope_mscale() != 1.0) {
      return make_error(ErrorCode::kUnsupported, "--device cuda: expected rope mscale 1 (the CUDA rope has no YaRN "
                                                 "magnitude factor yet), found " + std::to_string(c.rope_mscale()));
    }
    auto d = std::unique_ptr<CudaDevice>(new CudaDevice(c));
    d->index_ = index;
    d->next_seed_ = random_seed;
    d->label_ = "cuda:" + std::to_string(index) + " (" + cuda::device_description(index) + ")";
    LATENT_RETURN_IF_ERROR(cuda_status(cudaSetDevice(index), "cudaSetDevice"));
    d->s_ = std::make_shared<StreamHandle>();
    d->s_->device = index;
    LATENT_RETURN_IF_ERROR(cuda_status(cudaStreamCreateWithFlags(&d->s_->stream, cudaStreamNonBlocking), "cudaStreamCreate"));
    d->stream_ = d->s_->stream;
    LATENT_ASSIGN_OR_RETURN(d->blas_, cuda::Blas::create(d->stream_, 0));
    // --precision as asked (the GPU does not depend on the host CPU's AVX512-BF16, unlike linear_precision_in_effect)
    if (cpu::linear_precision() == cpu::LinearPrecision::kExact) d->blas_.tensor_core_min_tokens = int64_t{1} << 40;
    const std::vector<float> inv = rope_inv_freq(c);
    LATENT_ASSIGN_OR_RETURN(d->inv_freq_, d->allocate(static_cast<int64_t>(inv.size())));
    LATENT_RETURN_IF_ERROR(cuda_status(cudaMemcpy(d->inv_freq_, inv.data(), inv.size() * sizeof(float), cudaMemcpyHostToDevice),
                                       "inv_freq"));
    for (DeviceBuffer* b : {&d->out_[0], &d->out_[1], &d->g_, &d->u_, &d->rlogits_, &d->wts_, &d->idx_, &d->moe_h_, &d->ws_}) {
      b->bind(d.get());
    }
    return std::unique_ptr<Device>(std::move(d));
  }

  ~CudaDevice() override {
    cudaSetDevice(index_);
    if (stream_) cudaStreamSynchronize(stream_);
    (void)free_pinned();
    if (inv_freq_) cudaFree(inv_freq_);
  }

  std::string name() const override { return label_; }
  bool is_host() const override { return false; }

  Result<float*> allocate(int64_t n) override {
    void* p = nullptr;
    const size_t bytes = static_cast<size_t>(std::max<int64_t>(n, 1)) * sizeof(float);
    if (cudaMalloc(&p, bytes) != cudaSuccess) {
      cudaGetLastError();  // clear the sticky-free error state of this call
      return make_error(ErrorCode::kResourceExhausted, "cuda:" + std::to_string(index_) + ": expected " +
                                                           std::to_string(bytes >> 20) + " MiB of device memory for "
                                                           "activations, found " + memory_note());
    }
    return static_cast<float*>(p);
  }
  void release(float* p) override {
    cudaStreamSynchronize(stream_);  // a queued kernel may still read it
    cudaFree(p);
  }
  Result<cpu::WeightView> upload(const cpu::WeightView& w) override {
    LATENT_ASSIGN_OR_RETURN(cuda::DeviceArena* arena, room(cuda::weight_bytes(w) + 512));
    // Random weights (Weights::placeholder): BF16 filled on the device on the legacy stream (begin() waits for
    // them once); linears uniform in +-0.035 (sigma ~0.02, make_checkpoint's scale), RMSNorm gains in 1 +- 0.05.
    auto up = next_seed_ == 0 ? upload_pinned(*arena, w)
                              : arena->random(DType::kBF16, w.rows, w.cols, next_seed_++, w.rows == 1 ? 0.95f : -0.035f,
                                              w.rows == 1 ? 1.05f : 0.035f);
    fills_pending_ = fills_pending_ || next_seed_ != 0;
    if (!up.ok()) return up.error();
    max_cols_ = std::max(max_cols_, w.cols);
    return cpu::WeightView{up->data, up->dtype, up->rows, up->cols, up->scale_inv, up->block};
  }
  Result<std::shared_ptr<const void>> prepare_moe(const ModelConfig& c, const MoeWeights& w) override {
    auto m = std::make_shared<CudaMoe>();
    LATENT_ASSIGN_OR_RETURN(cpu::WeightView router, upload(w.gate));
    m->router = dw(router);
    if (w.e_score_correction_bias.data) {
      std::vector<float> b(static_cast<size_t>(c.n_routed_experts));
      for (int64_t e = 0; e < c.n_routed_experts; ++e) b[static_cast<size_t>(e)] = w.e_score_correction_bias.at(0, e);
      LATENT_ASSIGN_OR_RETURN(cuda::DeviceArena* arena, room(b.size() * sizeof(float) + 256));
      LATENT_ASSIGN_OR_RETURN(float* db, arena->allocate_n<float>(c.n_routed_experts));
      LATENT_RETURN_IF_ERROR(cuda_status(cudaMemcpy(db, b.data(), b.size() * sizeof(float), cudaMemcpyHostToDevice), "bias"));
      m->bias = db;
    }
    std::vector<DeviceWeight> eg, eu, ed;
    for (size_t e = 0; e < w.experts.size(); ++e) {
      if (!w.holds(static_cast<int64_t>(e))) {
        return make_error(ErrorCode::kUnsupported, "--device cuda: expected every routed expert on this rank, found "
                                                   "expert " + std::to_string(e) + " missing");
      }
      const MlpWeights& x = w.experts[e];
      LATENT_ASSIGN_OR_RETURN(cpu::WeightView g, upload(x.gate_proj));
      LATENT_ASSIGN_OR_RETURN(cpu::WeightView u, upload(x.up_proj));
      LATENT_ASSIGN_OR_RETURN(cpu::WeightView dn, upload(x.down_proj));
      eg.push_back(dw(g)), eu.push_back(dw(u)), ed.push_back(dw(dn));
      inter_max_ = std::max(inter_max_, x.gate_proj.rows);
    }
    LATENT_ASSIGN_OR_RETURN(cuda::DeviceArena* arena, room(6 * w.experts.size() * sizeof(void*) + 1024));
    LATENT_ASSIGN_OR_RETURN(m->experts, cuda::make_expert_table(*arena, eg, eu, ed));
    m->has_shared = w.has_shared;
    if (w.has_shared) {
      LATENT_ASSIGN_OR_RETURN(cpu::WeightView g, upload(w.shared_experts.gate_proj));
      LATENT_ASSIGN_OR_RETURN(cpu::WeightView u, upload(w.shared_experts.up_proj));
      LATENT_ASSIGN_OR_RETURN(cpu::WeightView dn, upload(w.shared_experts.down_proj));
      m->shared_gate = dw(g), m->shared_up = dw(u), m->shared_down = dw(dn);
      inter_max_ = std::max(inter_max_, g.rows);
    }
    return std::shared_ptr<const void>(m);
  }
  Result<KvCache> make_cache(const ModelConfig& c, int64_t n_blocks, DType dtype) override {
    if (dtype != DType::kF32 && dtype != DType::kBF16) {
      return make_error(ErrorCode::kInvalidArgument, std::string("KvCache: expected dtype F32 or BF16, found ") +
                                                         dtype_name(dtype));
    }
    if (n_blocks <= 0) {
      return make_error(ErrorCode::kInvalidArgument, "KvCache: expected a positive block count, found " + std::to_string(n_blocks));
    }
    const size_t bytes = KvCache::bytes_for(c.n_cache_layers(), c.kv_lora_rank + c.qk_rope_head_dim, n_blocks, dtype);
    void* p = nullptr;
    if (cudaMalloc(&p, bytes) != cudaSuccess) {
      cudaGetLastError();
      return make_error(ErrorCode::kResourceExhausted, "--cache-mb: expected " + std::to_string(bytes >> 20) +
                                                           " MiB of device memory for the latent cache on cuda:" +
                                                           std::to_string(index_) + ", found " + memory_note());
    }
    if (Status st = cuda_status(cudaMemsetAsync(p, 0, bytes, stream_), "cache memset"); !st.ok()) {
      cudaFree(p);
      return st.error();
    }
    return KvCache(c.n_cache_layers(), c.kv_lora_rank, c.qk_rope_head_dim, n_blocks, dtype,
                   std::make_unique<CudaKvStorage>(s_, p));
  }
  // BF16 rows (half the bytes: twice the tokens in --cache-mb) with the fast precision; float32 with exact,
  // where the golden tests want the CPU's numbers.
  DType cache_dtype() const override { return gpu_cache_dtype(); }
  Result<float*> host_out(std::vector<float>& host, int64_t n) override {
    host.resize(static_cast<size_t>(n));
    DeviceBuffer& b = out_[next_out_++ % 2];  // at most two results outstanding (hidden states and logits)
    return b.resize(n);
  }
  Status fetch_out(std::vector<float>& host, const float* written) override {
    if (host.empty()) return Status::Ok();
    LATENT_RETURN_IF_ERROR(cuda_status(cudaMemcpyAsync(host.data(), written, host.size() * sizeof(float),
                                                       cudaMemcpyDeviceToHost, stream_), "result to host"));
    return cuda_status(cudaStreamSynchronize(stream_), "forward");
  }
  Result<std::vector<float>> to_host(const float* src, int64_t n) override {
    std::vector<float> h(static_cast<size_t>(n));
    LATENT_RETURN_IF_ERROR(fetch_out(h, src));
    return h;
  }
  Status from_host(const float* host, int64_t n, float* dst) override {
    if (n <= 0) return Status::Ok();
    return cuda_status(cudaMemcpyAsync(dst, host, static_cast<size_t>(n) * sizeof(float), cudaMemcpyHostToDevice, stream_),
                       "input to device");
  }

  Status begin(const std::vector<SeqSpan>& seqs, std::span<const int32_t> ids, const KvCache& cache) override {
    if (fills_pending_) {  // random weights were filled on the legacy stream, which stream_ does not wait for
      LATENT_RETURN_IF_ERROR(cuda_status(cudaDeviceSynchronize(), "random weights"));
      fills_pending_ = false;
    }
    if (pinned_[0]) LATENT_RETURN_IF_ERROR(free_pinned());  // the weights are all uploaded by the first forward
    if (cache.on_host() || (cache.dtype() != DType::kF32 && cache.dtype() != DType::kBF16)) {
      return make_error(ErrorCode::kInvalidArgument, "--device " + label_ + ": expected a float32 or BF16 latent "
                                                     "cache in device memory (DeepseekModel::make_cache), found one in " +
                                                     cache.where() + " of " + dtype_name(cache.dtype()));
    }
    const int64_t T = seqs.empty() ? 0 : seqs.back().offset + seqs.back().n_new;
    int64_t W = 1;
    max_ctx_ = 1;
    for (const SeqSpan& s : seqs) {
      W = std::max(W, KvCache::blocks_needed(s.n_cached + s.n_new));
      max_ctx_ = std::max(max_ctx_, s.n_cached + s.n_new);
    }
    h_pos_.resize(static_cast<size_t>(T));
    h_ctx_.resize(static_cast<size_t>(T));
    h_table_.assign(static_cast<size_t>(T * W), 0);
    for (const SeqSpan& s : seqs) {
      const int64_t nb = KvCache::blocks_needed(s.n_cached + s.n_new);
      for (int64_t i = 0; i < s.n_new; ++i) {
        const size_t t = static_cast<size_t>(s.offset + i);
        h_pos_[t] = static_cast<int32_t>(s.n_cached + i);
        h_ctx_[t] = static_cast<int32_t>(s.n_cached + i + 1);
        std::copy(s.blocks.begin(), s.blocks.begin() + nb, h_table_.begin() + static_cast<int64_t>(t) * W);
      }
    }
    if (static_cast<int64_t>(ids.size()) != T) {
      return make_error(ErrorCode::kInternal, "cuda begin: expected " + std::to_string(T) + " ids, found " +
                                                  std::to_string(ids.size()));
    }
    LATENT_RETURN_IF_ERROR(ids_.fit(T, "step ids"));
    LATENT_RETURN_IF_ERROR(pos_.fit(T, "step positions"));
    LATENT_RETURN_IF_ERROR(ctx_.fit(T, "step lengths"));
    LATENT_RETURN_IF_ERROR(table_.fit(T * W, "step block tables"));
    const auto up = [&](int32_t* dst, const int32_t* src, int64_t n) {
      return cuda_status(cudaMemcpyAsync(dst, src, static_cast<size_t>(n) * sizeof(int32_t), cudaMemcpyHostToDevice, stream_),
                         "step inputs");
    };
    if (T > 0) {
      LATENT_RETURN_IF_ERROR(up(ids_.p, ids.data(), T));
      LATENT_RETURN_IF_ERROR(up(pos_.p, h_pos_.data(), T));
      LATENT_RETURN_IF_ERROR(up(ctx_.p, h_ctx_.data(), T));
      LATENT_RETURN_IF_ERROR(up(table_.p, h_table_.data(), T * W));
    }
    T_ = T, W_ = W;
    // The tensor-core path rounds activations into Blas's staging: large enough for this step's widest linear.
    if (T >= blas_.tensor_core_min_tokens && T * max_cols_ > blas_.staging_elems()) {
      LATENT_RETURN_IF_ERROR(cuda_status(cudaStreamSynchronize(stream_), "staging resize"));
      const int64_t keep = blas_.tensor_core_min_tokens;
      LATENT_ASSIGN_OR_RETURN(blas_, cuda::Blas::create(stream_, T * max_cols_));
      blas_.tensor_core_min_tokens = keep;
    }
    return Status::Ok();
  }
  Status embed(const cpu::WeightView& table, float* x) override {
    return cuda::embedding(dw(table), ids_.p, T_, x, stream_);
  }
  Status rms_norm(const float* x, int64_t ldx, int64_t n, const cpu::WeightView& gain, float eps, float* y,
                  int64_t ldy) override {
    const int64_t d = gain.cols;
    if (ldx == d && ldy == d) return cuda::rms_norm(x, n, d, gain.data, gain.dtype, eps, y, stream_);
    return cuda::rms_norm_strided(x, ldx, n, d, gain.data, gain.dtype, eps, y, ldy, stream_);
  }
  Status linear(const float* x, int64_t ldx, int64_t n, const cpu::WeightView& w, float* y, int64_t ldy) override {
    if (n <= 0) return Status::Ok();
    return cuda::linear(blas_, x, ldx, n, dw(w), y, ldy);
  }
  Status rope_q(float* q, int64_t row0, int64_t n, int64_t H, int64_t nope, int64_t P) override {
    if (n <= 0) return Status::Ok();
    return cuda::rope(q, n, H, H * (nope + P), nope + P, nope, P, pos_.p + row0, inv_freq_, stream_);
  }
  Status write_cache(float* kv, const cpu::WeightView& kv_norm, float eps, int64_t layer, KvCache& cache) override {
    const int64_t D = R_ + P_;
    LATENT_RETURN_IF_ERROR(cuda::rms_norm_strided(kv, D, T_, R_, kv_norm.data, kv_norm.dtype, eps, kv, D, stream_));
    LATENT_RETURN_IF_ERROR(cuda::rope(kv, T_, 1, D, 0, R_, P_, pos_.p, inv_freq_, stream_));
    return cuda::mla_cache_write(kv, D, T_, D, pos_.p, layer_base(cache, layer), block_stride(cache), table_.p, W_, stream_,
                                 cache.dtype());
  }
  Status mla_absorb_q(const float* q, int64_t n, int64_t q_stride, const cpu::WeightView& kv_b, int64_t H,
                      int64_t nope, int64_t P, int64_t vd, float* q_lat) override {
    if (n <= 0) return Status::Ok();
    return cuda::mla_absorb_q(q, n, q_stride, dw(kv_b), H, nope, P, vd, q_lat, stream_);
  }
  Status mla_attention(const float* q_lat, const float* q, int64_t q_stride, const std::vector<SeqSpan>& seqs,
                       int64_t H, int64_t nope, int64_t layer, const KvCache& cache, float scale,
                       float* o_lat) override {
    const int64_t n = seqs.empty() ? 0 : seqs.back().offset + seqs.back().n_new;
    if (n != T_) {  // one rank: every row of the batch (data-parallel attention runs on the CPU only)
      return make_error(ErrorCode::kUnsupported, "cuda mla_attention: expected all " + std::to_string(T_) +
                                                     " rows of the batch, found " + std::to_string(n));
    }
    if (n == 0) return Status::Ok();
    cuda::MlaAttentionArgs a;
    a.q_lat = q_lat, a.q = q, a.q_stride = q_stride, a.nope = nope, a.n = n, a.n_heads = H, a.R = R_, a.P = P_;
    a.scale = scale, a.ctx_lens = ctx_.p, a.max_ctx = max_ctx_, a.o_lat = o_lat;
    LATENT_ASSIGN_OR_RETURN(float* ws, ws_.resize(cuda::mla_attention_workspace(a)));
    return cuda::mla_attention(a, {layer_base(cache, layer), block_stride(cache), table_.p, W_, cache.dtype()}, ws, stream_);
  }
  Status mla_apply_uv(const float* o_lat, int64_t n, const cpu::WeightView& kv_b, int64_t H, int64_t nope,
                      int64_t vd, float* out) override {
    if (n <= 0) return Status::Ok();
    return cuda::mla_apply_uv(o_lat, n, dw(kv_b), H, nope, vd, out, stream_);
  }
  Status mlp(const MlpWeights& w, const float* x, int64_t n, float* y) override {
    return run_mlp(dw(w.gate_proj), dw(w.up_proj), dw(w.down_proj), x, n, y);
  }
  Status moe(const ModelConfig& c, const MoeWeights&, const void* prepared, const float* x, int64_t n, float* y,
             std::vector<int32_t>* topk_idx, std::vector<float>* topk_weight) override {
    const CudaMoe& m = *static_cast<const CudaMoe*>(prepared);
    const int64_t E = c.n_routed_experts, K = c.num_experts_per_tok;
    cuda::RouterParams rp;
    rp.n_experts = E, rp.top_k = K, rp.n_group = c.n_group, rp.topk_group = c.topk_group;
    rp.sigmoid = c.scoring_func == ScoringFunc::kSigmoid;
    rp.method = static_cast<cuda::RouterParams::Method>(static_cast<int>(c.topk_method));
    rp.norm_topk_prob = c.norm_topk_prob;
    rp.routed_scaling_factor = static_cast<float>(c.routed_scaling_factor);
    LATENT_ASSIGN_OR_RETURN(float* logits, rlogits_.resize(n * E));
    LATENT_ASSIGN_OR_RETURN(float* wts, wts_.resize(n * K));
    LATENT_ASSIGN_OR_RETURN(float* idx_f, idx_.resize(n * K));  // int32 in a float buffer (same size)
    int32_t* idx = reinterpret_cast<int32_t*>(idx_f);
    LATENT_RETURN_IF_ERROR(cuda::linear(blas_, x, m.router.cols, n, m.router, logits, E));  // [n, E]
    LATENT_RETURN_IF_ERROR(cuda::route(rp, logits, n, m.bias, idx, wts, stream_));
    if (m.has_shared) LATENT_RETURN_IF_ERROR(run_mlp(m.shared_gate, m.shared_up, m.shared_down, x, n, y));  // [n, d]
    LATENT_ASSIGN_OR_RETURN(float* h, moe_h_.resize(n * K * m.experts.inter));
    LATENT_RETURN_IF_ERROR(cuda::moe_experts(m.experts, x, n, K, idx, wts, h, y, m.has_shared, stream_));
    if (topk_idx) {
      topk_idx->resize(static_cast<size_t>(n * K));
      LATENT_RETURN_IF_ERROR(cuda_status(cudaMemcpyAsync(topk_idx->data(), idx, topk_idx->size() * sizeof(int32_t),
                                                         cudaMemcpyDeviceToHost, stream_), "routing to host"));
      LATENT_RETURN_IF_ERROR(cuda_status(cudaStreamSynchronize(stream_), "routing"));
    }
    if (topk_weight) {
      topk_weight->resize(static_cast<size_t>(n * K));
      LATENT_RETURN_IF_ERROR(fetch_out(*topk_weight, wts));
    }
    return Status::Ok();
  }
  Status add(const float* a, int64_t n, float* y) override { return cuda::add_inplace(a, n, y, stream_); }
  Status gather_rows(const float* x, int64_t d, std::span<const int64_t> rows, float* y) override {
    for (size_t i = 0; i < rows.size(); ++i) {
      LATENT_RETURN_IF_ERROR(cuda_status(cudaMemcpyAsync(y + static_cast<int64_t>(i) * d, x + rows[i] * d,
                                                         static_cast<size_t>(d) * sizeof(float), cudaMemcpyDeviceToDevice,
                                                         stream_), "gather rows"));
    }
    return Status::Ok();
  }

 private:
  explicit CudaDevice(const ModelConfig& c) : R_(c.kv_lora_rank), P_(c.qk_rope_head_dim) {}

  // A checkpoint tensor into the arena through two pinned host buffers of kPinnedBytes: the copy of chunk i+1
  // out of the mapped file overlaps the DMA of chunk i (asynchronous on stream_; a buffer is refilled only
  // after the event of its previous copy). FP8 scales follow the same way.
  static constexpr size_t kPinnedBytes = size_t{32} << 20;
  Result<DeviceWeight> upload_pinned(cuda::DeviceArena& arena, const cpu::WeightView& w) {
    if (w.dtype == DType::kF8E4M3 && w.scale_inv && (w.block <= 0 || w.block % 8 != 0)) {
      return make_error(ErrorCode::kInvalidArgument, "upload: an FP8 weight's scale block must be a positive multiple "
                                                     "of 8, found " + std::to_string(w.block));
    }
    DeviceWeight d{nullptr, w.dtype, w.rows, w.cols, nullptr, w.block};
    const size_t data_bytes = static_cast<size_t>(w.rows * w.cols) * static_cast<size_t>(dtype_size(w.dtype));
    LATENT_ASSIGN_OR_RETURN(void* p, arena.allocate(data_bytes));
    LATENT_RETURN_IF_ERROR(copy_pinned(p, w.data, data_bytes));
    d.data = p;
    if (w.dtype == DType::kF8E4M3 && w.scale_inv) {
      const int64_t n = ((w.rows + w.block - 1) / w.block) * ((w.cols + w.block - 1) / w.block);
      LATENT_ASSIGN_OR_RETURN(float* s, arena.allocate_n<float>(n));
      LATENT_RETURN_IF_ERROR(copy_pinned(s, w.scale_inv, static_cast<size_t>(n) * sizeof(float)));
      d.scale_inv = s;
    }
    return d;
  }
  Status copy_pinned(void* dst, const void* src, size_t bytes) {
    if (!pinned_[0]) {
      for (int i = 0; i < 2; ++i) {
        LATENT_RETURN_IF_ERROR(cuda_status(cudaHostAlloc(&pinned_[i], kPinnedBytes, cudaHostAllocDefault),
                                           "cudaHostAlloc (pinned upload buffers)"));
        LATENT_RETURN_IF_ERROR(cuda_status(cudaEventCreateWithFlags(&copied_[i], cudaEventDisableTiming), "cudaEventCreate"));
      }
    }
    for (size_t off = 0; off < bytes; off += kPinnedBytes) {
      const size_t n = std::min(kPinnedBytes, bytes - off);
      const int b = next_pinned_++ % 2;
      LATENT_RETURN_IF_ERROR(cuda_status(cudaEventSynchronize(copied_[b]), "upload"));  // its last DMA is done
      std::memcpy(pinned_[b], static_cast<const char*>(src) + off, n);
      LATENT_RETURN_IF_ERROR(cuda_status(cudaMemcpyAsync(static_cast<char*>(dst) + off, pinned_[b], n,
                                                         cudaMemcpyHostToDevice, stream_), "upload weight"));
      LATENT_RETURN_IF_ERROR(cuda_status(cudaEventRecord(copied_[b], stream_), "cudaEventRecord"));
    }
    return Status::Ok();
  }
  Status free_pinned() {
    if (!pinned_[0]) return Status::Ok();
    Status st = cuda_status(cudaStreamSynchronize(stream_), "weights upload");
    for (int i = 0; i < 2; ++i) {
      if (pinned_[i]) cudaFreeHost(pinned_[i]);
      if (copied_[i]) cudaEventDestroy(copied_[i]);
      pinned_[i] = nullptr, copied_[i] = nullptr;
    }
    return st;
  }

  // An arena with `bytes` free: the last one, or a new chunk of at least 256 MiB.
  Result<cuda::DeviceArena*> room(size_t bytes) {
    if (!arenas_.empty() && arenas_.back().capacity() - arenas_.back().used() >= bytes) return &arenas_.back();
    const size_t chunk = std::max<size_t>(bytes, size_t{256} << 20);
    auto a = cuda::DeviceArena::create(chunk);
    if (!a.ok()) {
      cudaGetLastError();
      return make_error(ErrorCode::kResourceExhausted, "--device " + label_ + ": expected " + std::to_string(chunk >> 20) +
                                                           " MiB more of device memory for the weights (" +
                                                           std::to_string(uploaded_bytes() >> 20) + " MiB uploaded), found " +
                                                           memory_note());
    }
    arenas_.push_back(std::move(*a));
    return &arenas_.back();
  }
  size_t uploaded_bytes() const {
    size_t n = 0;
    for (const cuda::DeviceArena& a : arenas_) n += a.used();
    return n;
  }
  void* layer_base(const KvCache& cache, int64_t layer) const { return const_cast<void*>(cache.block_ptr(layer, 0)); }
  int64_t block_stride(const KvCache& cache) const { return cache.n_layers() * KvCache::kBlockSize * (R_ + P_); }
  Status run_mlp(const DeviceWeight& gate, const DeviceWeight& up, const DeviceWeight& down, const float* x, int64_t n,
                 float* y) {
    if (n <= 0) return Status::Ok();
    const int64_t inter = gate.rows;
    LATENT_ASSIGN_OR_RETURN(float* g, g_.resize(n * inter));
    LATENT_ASSIGN_OR_RETURN(float* u, u_.resize(n * inter));
    LATENT_RETURN_IF_ERROR(cuda::linear(blas_, x, n, gate, g));  // [n, inter]
    LATENT_RETURN_IF_ERROR(cuda::linear(blas_, x, n, up, u));    // [n, inter]
    LATENT_RETURN_IF_ERROR(cuda::swiglu(g, u, n * inter, g, stream_));
    return cuda::linear(blas_, g, n, down, y);  // [n, d]
  }

  int index_ = 0;
  std::string label_;
  std::shared_ptr<StreamHandle> s_;
  cudaStream_t stream_ = nullptr;
  cuda::Blas blas_;
  std::vector<cuda::DeviceArena> arenas_;  // weights
  float* inv_freq_ = nullptr;             // [P / 2]
  int64_t R_, P_, max_cols_ = 0, inter_max_ = 0;
  uint64_t next_seed_ = 0;      // random weights: the next weight's seed; 0 = upload the checkpoint's
  void* pinned_[2] = {nullptr, nullptr};           // upload_pinned's buffers, freed by the first forward
  cudaEvent_t copied_[2] = {nullptr, nullptr};     // the last DMA out of each
  unsigned next_pinned_ = 0;
  bool fills_pending_ = false;  // random fills queued on the legacy stream
  // the step (begin)
  int64_t T_ = 0, W_ = 1, max_ctx_ = 1;
  std::vector<int32_t> h_pos_, h_ctx_, h_table_;
  IntArray ids_, pos_, ctx_, table_;
  DeviceBuffer out_[2];
  unsigned next_out_ = 0;
  DeviceBuffer g_, u_, rlogits_, wts_, idx_, moe_h_, ws_;
};

}  // namespace

Result<std::unique_ptr<Device>> make_cuda_device(int index, const ModelConfig& c, uint64_t random_seed) {
  return CudaDevice::create(index, c, random_seed);
}

int cuda_device_count() { return cuda::device_count(); }

}  // namespace latent
