// The CUDA device: the ops of engine/device.h on one GPU, wrapping kernels/cuda. Everything is queued on one
// non-blocking stream; the host waits only where it reads a result (fetch_out, to_host, traces). Weights are
// uploaded once into device arenas (chunks of at least 256 MiB); activations are float32 device buffers; the
// latent cache lives in device memory with KvCache's layout [n_blocks, n_layers, 64, R + P] (BF16 rows with the
// fast precision, float32 with exact; attention widens them to float32 in shared memory), so block ids
// index it directly and copy-on-write is a device-to-device copy on the same stream.
//
// Per forward, begin() uploads the step's inputs in one asynchronous copy out of pinned memory: token ids [T],
// positions [T], context lengths [T] (n_cached + i + 1: causal), the rows that want logits, and one block table
// per row [T, W] (W = the most blocks any sequence needs), so that a batch mixing prefill chunks and decodes of
// several sequences is one launch per op. The host waits once per step: in select_tokens() for the step's token ids
// (the scheduler's default: logits stay on the device) or in fetch_out() for logits when a caller wants them.
//
// CUDA graphs (LATENT_CUDA_GRAPHS=0 turns them off): a uniform step (every sequence feeds the same 1 to 8 tokens
// with the same logit rows: decodes, and verifications of as many drafts each) whose model says its ops are the
// same for the batch shape (begin's graph_key) is captured once per bucket (graph_key, tokens, tokens per
// sequence and rows) and replayed afterwards: the first step of a bucket runs eagerly (buffers reach their size), the next is
// captured, later ones replay it (the ops return at once; fetch_out launches the graph). A graph bakes in the
// addresses of every buffer, so one made before an allocation (a longer prefill grew a buffer) or for another
// cache is dropped and made again. Graph steps use the widest block table the cache allows and a split plan for
// the longest context; each row cuts its own context into the splits (kernels/cuda/mla.cu), so a short context
// never does a whole cache's work. A capture that fails is discarded (its graph destroyed) and its bucket runs
// eagerly from then on; the model reruns that step (take_capture_failure). Linears follow
// cpu::linear_precision() (--precision): exact keeps every linear on the float32 GEMV (golden exactness),
// otherwise 16+ token batches use cuBLAS with BF16 activations (kernels/cuda/ops.h).
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <tuple>
#include <utility>

#include "engine/config.h"
#include "engine/device.h"
#include "engine/moe.h"
#include "engine/rope.h"
#include "engine/sampler.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/device.h"
#include "kernels/cuda/memory.h"
#include "kernels/cuda/mla.h"
#include "kernels/cuda/moe.h"
#include "kernels/cuda/ops.h"
#include "kernels/base/log.h"
#include "kernels/cpu/thread_pool.h"

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

// Page-locked host memory grown on demand, with the event of the last copy out of it: refilled only once that
// copy is done (steps alternate between two, so the wait is for a copy that ended a step ago).
struct Pinned {
  void* p = nullptr;
  size_t cap = 0;
  cudaEvent_t used = nullptr;
  ~Pinned() {
    if (used) cudaEventSynchronize(used), cudaEventDestroy(used);
    if (p) cudaFreeHost(p);
  }
  Result<void*> fit(size_t bytes, const char* what) {
    if (!used) LATENT_RETURN_IF_ERROR(cuda_status(cudaEventCreateWithFlags(&used, cudaEventDisableTiming), what));
    LATENT_RETURN_IF_ERROR(cuda_status(cudaEventSynchronize(used), what));
    if (bytes > cap) {
      if (p) cudaFreeHost(p);
      p = nullptr, cap = 0;
      LATENT_RETURN_IF_ERROR(cuda_status(cudaHostAlloc(&p, std::max<size_t>(bytes, 4096), cudaHostAllocDefault), what));
      cap = std::max<size_t>(bytes, 4096);
    }
    return p;
  }
};

// What a captured step baked in besides buffer addresses (those are the allocation epoch's): the cache it writes
// (its address alone can come back for a new cache of another size), the block table's width and the split plan's
// context. A graph is replayed only for the same shape.
struct GraphShape {
  const void* cache = nullptr;
  int64_t cache_blocks = 0;
  DType cache_dtype = DType::kF32;
  int64_t W = 0, max_ctx = 0;
  bool operator==(const GraphShape&) const = default;
};

// One captured step: its executable graph and what it baked in.
struct StepGraph {
  cudaGraphExec_t exec = nullptr;
  uint64_t epoch = 0;  // the device's allocation epoch at capture
  GraphShape shape;
  int64_t nodes = 0;   // the kernels it replays (a cuBLAS call may be several)
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
    auto d = std::unique_ptr<CudaDevice>(new CudaDevice(c));
    d->index_ = index;
    const char* graphs = std::getenv("LATENT_CUDA_GRAPHS");
    d->graphs_on_ = !(graphs && std::string(graphs) == "0");
    d->launch_base_ = cuda::launch_count();
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
    d->mscale_ = static_cast<float>(c.rope_mscale());  // YaRN's cos/sin magnitude, 1 without it
    LATENT_ASSIGN_OR_RETURN(d->inv_freq_, d->allocate(static_cast<int64_t>(inv.size())));
    LATENT_RETURN_IF_ERROR(cuda_status(cudaMemcpy(d->inv_freq_, inv.data(), inv.size() * sizeof(float), cudaMemcpyHostToDevice),
                                       "inv_freq"));
    for (DeviceBuffer* b : {&d->out_[0], &d->out_[1], &d->g_, &d->u_, &d->rlogits_, &d->wts_, &d->idx_, &d->moe_h_, &d->ws_, &d->sel_}) {
      b->bind(d.get());
    }
    return std::unique_ptr<Device>(std::move(d));
  }

  ~CudaDevice() override {
    cudaSetDevice(index_);
    if (mode_ == Mode::kCapture) discard_capture();
    if (stream_) cudaStreamSynchronize(stream_);
    drop_graphs();
    (void)free_pinned();
    if (inv_freq_) cudaFree(inv_freq_);
  }

  std::string name() const override { return label_; }
  bool is_host() const override { return false; }

  Result<float*> allocate(int64_t n) override {
    on_device();
    ++epoch_;  // graphs made before hold old addresses
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
    on_device();
    ++epoch_;
    cudaStreamSynchronize(stream_);  // a queued kernel may still read it (inside a capture: invalidates it)
    cudaFree(p);
  }
  Result<cpu::WeightView> upload(const cpu::WeightView& w) override {
    on_device();
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
    on_device();
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
    on_device();
    ++epoch_;  // graphs of an earlier cache are made again (StepGraph also checks the cache it wrote)
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
    // At most two results outstanding (hidden states and logits); the count restarts each step, so a replayed
    // graph's results are where its capture wrote them.
    DeviceBuffer& b = out_[next_out_++ % 2];
    return b.resize(n);
  }
  // The step's end: a captured step is instantiated and launched, a replayed one launched; then the result comes
  // back through pinned memory, the one wait of the step.
  Status fetch_out(std::vector<float>& host, const float* written) override {
    LATENT_RETURN_IF_ERROR(run_graph());
    if (host.empty()) return Status::Ok();
    const size_t bytes = host.size() * sizeof(float);
    LATENT_ASSIGN_OR_RETURN(void* pin, pin_out_.fit(bytes, "pinned results"));
    LATENT_RETURN_IF_ERROR(cuda_status(cudaMemcpyAsync(pin, written, bytes, cudaMemcpyDeviceToHost, stream_), "result to host"));
    LATENT_RETURN_IF_ERROR(cuda_status(cudaStreamSynchronize(stream_), "forward"));
    std::memcpy(host.data(), pin, bytes);
    return Status::Ok();
  }
  // Tokens instead of logits: after the step's graph, greedy rows (no repetition penalty) take cuda::argmax and
  // sampled rows (temperature, top-p, top-k, min-p: a ranked completion's samples too) cuda::sample with the
  // uniform of their position (sampler.h's u(seed, n)); only those ids come back. A row with a repetition
  // penalty brings its logits back and is selected on the host (select_on_host), in the same copy and the
  // step's one wait.
  Status select_tokens(const float* logits, int64_t vocab, std::span<const TokenSelect> rows,
                       std::vector<int32_t>* ids) override {
    const int64_t n = static_cast<int64_t>(rows.size());
    // Sized before the step's end: an allocation after a bucket's warm-up step would move the epoch it recorded,
    // and the next step would warm up again instead of being captured.
    LATENT_ASSIGN_OR_RETURN(float* dev, sel_.resize(std::max<int64_t>(2 * n, 1)));
    LATENT_RETURN_IF_ERROR(run_graph());
    ids->assign(rows.size(), -1);
    if (n == 0) return Status::Ok();
    enum Kind { kNone, kArgmax, kSample, kHost };
    std::vector<Kind> kind(rows.size(), kNone);
    std::vector<int64_t> host_rows;
    bool any_argmax = false;
    for (int64_t r = 0; r < n; ++r) {
      const SamplingParams* p = rows[r].params;
      if (!p) continue;
      if (p->repetition_penalty != 1.0f ||
          (p->temperature > 0 && (!(p->top_p > 0 && p->top_p <= 1) || p->top_k < 0 || !(p->min_p >= 0 && p->min_p <= 1)))) {
        kind[r] = kHost;
        host_rows.push_back(r);
      } else if (p->temperature <= 0) {
        kind[r] = kArgmax;
        any_argmax = true;
      } else {
        kind[r] = kSample;
      }
    }
    // Pinned: [ids n][uniforms n][host rows' logits]; device: [ids n][uniforms n] (int32 and float slots).
    const size_t small = static_cast<size_t>(2 * n) * sizeof(float);
    const size_t bytes = small + host_rows.size() * static_cast<size_t>(vocab) * sizeof(float);
    LATENT_ASSIGN_OR_RETURN(void* pin, pin_out_.fit(bytes, "pinned token selection"));
    auto* pin_ids = static_cast<int32_t*>(pin);
    float* pin_u = static_cast<float*>(pin) + n;
    float* pin_logits = static_cast<float*>(pin) + 2 * n;
    auto* dev_ids = reinterpret_cast<int32_t*>(dev);
    float* dev_u = dev + n;
    for (int64_t r = 0; r < n; ++r) {
      const double u = kind[r] == kSample ? position_uniform(rows[r].params->seed, rows[r].history.size()) : 0.0;
      pin_u[r] = std::min(static_cast<float>(u), std::nextafter(1.0f, 0.0f));
    }
    LATENT_RETURN_IF_ERROR(cuda_status(cudaMemcpyAsync(dev_u, pin_u, static_cast<size_t>(n) * sizeof(float),
                                                       cudaMemcpyHostToDevice, stream_), "uniforms to device"));
    if (any_argmax) {
      LATENT_RETURN_IF_ERROR(cuda::argmax(logits, n, vocab, dev_ids, stream_));
      ++counters_.launches;
    }
    for (int64_t r = 0; r < n; ++r) {
      if (kind[r] != kSample) continue;
      const SamplingParams& p = *rows[r].params;
      LATENT_RETURN_IF_ERROR(cuda::sample(logits + r * vocab, 1, vocab, p.temperature, p.top_p, p.top_k, p.min_p,
                                          dev_u + r, dev_ids + r, stream_));
      ++counters_.launches;
    }
    LATENT_RETURN_IF_ERROR(cuda_status(cudaMemcpyAsync(pin_ids, dev_ids, static_cast<size_t>(n) * sizeof(int32_t),
                                                       cudaMemcpyDeviceToHost, stream_), "token ids to host"));
    for (size_t k = 0; k < host_rows.size(); ++k) {
      LATENT_RETURN_IF_ERROR(cuda_status(cudaMemcpyAsync(pin_logits + static_cast<int64_t>(k) * vocab,
                                                         logits + host_rows[k] * vocab,
                                                         static_cast<size_t>(vocab) * sizeof(float),
                                                         cudaMemcpyDeviceToHost, stream_), "logits to host"));
    }
    LATENT_RETURN_IF_ERROR(cuda_status(cudaStreamSynchronize(stream_), "token selection"));
    for (int64_t r = 0; r < n; ++r) {
      if (kind[r] == kArgmax || kind[r] == kSample) (*ids)[r] = pin_ids[r];
    }
    // The host rows side by side on the CPU's pool (a ranked completion's 15 top-k samples per step).
    std::vector<TokenSelect> on_host;
    for (int64_t r : host_rows) on_host.push_back(rows[r]);
    std::vector<int32_t> host_ids;
    select_on_host(pin_logits, vocab, on_host, &host_ids, &cpu::ThreadPool::global());
    for (size_t k = 0; k < host_rows.size(); ++k) (*ids)[host_rows[k]] = host_ids[k];
    return Status::Ok();
  }
  bool take_capture_failure() override { return std::exchange(capture_failed_, false); }
  // A step that failed before its end (an error no op reported, e.g. the model's own checks): a capture still open
  // would record the next work queued on the stream (a cache block copy) instead of running it.
  void abandon_step() override {
    if (mode_ == Mode::kCapture) discard_capture();
    mode_ = Mode::kEager;
  }
  Counters counters() const override {
    Counters c = counters_;
    c.launches = cuda::launch_count() - launch_base_ + replayed_nodes_;
    return c;
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

  Status begin(const std::vector<SeqSpan>& seqs, std::span<const int32_t> ids, const KvCache& cache,
               int graph_key) override {
    // The engine thread's current device (the model was loaded on another thread: kernels launched into a stream
    // of another device than the current one fail).
    LATENT_RETURN_IF_ERROR(cuda_status(cudaSetDevice(index_), "cudaSetDevice"));
    if (mode_ == Mode::kCapture) discard_capture();  // the last step ended inside a capture (an error)
    mode_ = Mode::kEager;
    ++counters_.steps;
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
    if (static_cast<int64_t>(ids.size()) != T) {
      return make_error(ErrorCode::kInternal, "cuda begin: expected " + std::to_string(T) + " ids, found " +
                                                  std::to_string(ids.size()));
    }
    // A uniform step of a graph key may run as a graph of its bucket: every sequence feeds the same k <=
    // kMaxGraphTokens tokens with the same logit rows (a decode: k = 1; a verification of the same number of
    // drafts in each: k = 1 + drafts, a row per token). It then uses the widest table the cache allows and plans
    // its splits for the longest context, so that every step of the bucket has the same shape; positions, lengths
    // and tables are per-token device data. Mixed steps (prefill chunks beside decodes) run eagerly.
    const int64_t k = seqs.empty() ? 0 : seqs.front().n_new;
    const bool all_logits = !seqs.empty() && seqs.front().all_logits;
    bool uniform = T > 0 && T <= kMaxGraphBatch && k <= kMaxGraphTokens;
    for (const SeqSpan& s : seqs) uniform = uniform && s.n_new == k && s.all_logits == all_logits;
    const Bucket bucket{graph_key, T, 2 * k + (all_logits ? 1 : 0)};
    bool graph = graphs_on_ && graph_key != 0 && uniform && !eager_buckets_.count(bucket);
    const int64_t cap_blocks = std::max<int64_t>(1, std::min<int64_t>(cache.capacity(), KvCache::blocks_needed(max_pos_)));
    int64_t W = 1;
    max_ctx_ = 1;
    for (const SeqSpan& s : seqs) {
      W = std::max(W, KvCache::blocks_needed(s.n_cached + s.n_new));
      max_ctx_ = std::max(max_ctx_, s.n_cached + s.n_new);
      for (int64_t i = 0; i < KvCache::blocks_needed(s.n_cached + s.n_new); ++i) {
        const BlockId b = s.blocks[static_cast<size_t>(i)];
        if (b < 0 || b >= cache.capacity()) {
          return make_error(ErrorCode::kInvalidArgument, "cuda begin: expected block ids in [0, " +
                                                             std::to_string(cache.capacity()) + "), found " +
                                                             std::to_string(b));
        }
      }
    }
    // A context past max_position_embeddings (the cache holds more) needs a wider table than the graph's: eagerly.
    if (W > cap_blocks) graph = false;
    if (graph) {
      W = cap_blocks;
      max_ctx_ = cap_blocks * KvCache::kBlockSize;
    }
    // The rows that want logits (result_layout's rule: every new token of an all_logits sequence, else its last).
    h_rows_.clear();
    for (const SeqSpan& s : seqs) {
      for (int64_t i = s.all_logits ? 0 : s.n_new - 1; i < s.n_new; ++i) h_rows_.push_back(s.offset + i);
    }
    const int64_t n_rows = static_cast<int64_t>(h_rows_.size());
    // [ids T | positions T | lengths T | rows n_rows | tables T * W], filled in pinned memory, one copy up.
    const int64_t n_int = 3 * T + n_rows + T * W;
    Pinned& pin = pin_in_[next_in_++ % 2];
    LATENT_ASSIGN_OR_RETURN(void* hp, pin.fit(static_cast<size_t>(n_int) * sizeof(int32_t), "pinned step inputs"));
    int32_t* h = static_cast<int32_t*>(hp);
    std::copy(ids.begin(), ids.end(), h);
    int32_t* hpos = h + T;
    int32_t* hctx = hpos + T;
    int32_t* hrows = hctx + T;
    int32_t* htab = hrows + n_rows;
    std::fill(htab, htab + T * W, 0);
    for (const SeqSpan& s : seqs) {
      const int64_t nb = KvCache::blocks_needed(s.n_cached + s.n_new);
      for (int64_t i = 0; i < s.n_new; ++i) {
        const int64_t t = s.offset + i;
        hpos[t] = static_cast<int32_t>(s.n_cached + i);
        hctx[t] = static_cast<int32_t>(s.n_cached + i + 1);
        std::copy(s.blocks.begin(), s.blocks.begin() + nb, htab + t * W);
      }
    }
    for (int64_t i = 0; i < n_rows; ++i) hrows[i] = static_cast<int32_t>(h_rows_[static_cast<size_t>(i)]);
    if (n_int > step_.cap) ++epoch_;  // a new device array: graphs read the old one
    LATENT_RETURN_IF_ERROR(step_.fit(n_int, "step inputs"));
    if (n_int > 0) {
      LATENT_RETURN_IF_ERROR(cuda_status(cudaMemcpyAsync(step_.p, h, static_cast<size_t>(n_int) * sizeof(int32_t),
                                                         cudaMemcpyHostToDevice, stream_), "step inputs"));
      LATENT_RETURN_IF_ERROR(cuda_status(cudaEventRecord(pin.used, stream_), "step inputs"));
    }
    ids_ = step_.p, pos_ = ids_ + T, ctx_ = pos_ + T, rows_ = ctx_ + T, table_ = rows_ + n_rows;
    T_ = T, W_ = W;
    next_out_ = 0;
    // The tensor-core path rounds activations into Blas's staging: large enough for this step's widest linear.
    if (T >= blas_.tensor_core_min_tokens && T * max_cols_ > blas_.staging_elems()) {
      LATENT_RETURN_IF_ERROR(cuda_status(cudaStreamSynchronize(stream_), "staging resize"));
      const int64_t keep = blas_.tensor_core_min_tokens;
      LATENT_ASSIGN_OR_RETURN(blas_, cuda::Blas::create(stream_, T * max_cols_));
      blas_.tensor_core_min_tokens = keep;
      ++epoch_;
    }
    if (!graph) return Status::Ok();
    // Replay a graph made at this epoch for this cache; else capture, once the bucket has run eagerly at this
    // epoch (its buffers sized); else run eagerly and remember the epoch.
    bucket_ = bucket;
    const GraphShape shape{cache.block_ptr(0, 0), cache.capacity(), cache.dtype(), W_, max_ctx_};
    if (auto it = graphs_.find(bucket_); it != graphs_.end()) {
      if (it->second.epoch == epoch_ && it->second.shape == shape) {
        mode_ = Mode::kReplay;
        return Status::Ok();
      }
      cudaGraphExecDestroy(it->second.exec);
      graphs_.erase(it);
    }
    if (auto w = warm_.find(bucket_); w != warm_.end() && w->second == epoch_) {
      if (cudaStreamBeginCapture(stream_, cudaStreamCaptureModeRelaxed) == cudaSuccess) {
        mode_ = Mode::kCapture;
        capture_shape_ = shape;
        return Status::Ok();
      }
      cudaGetLastError();
      fail_bucket();
      return Status::Ok();  // eagerly, this once and from now on
    }
    mode_ = Mode::kWarm;
    return Status::Ok();
  }
  Status embed(const cpu::WeightView& table, float* x) override {
    if (replaying()) return Status::Ok();  // the step's graph does it
    return track(cuda::embedding(dw(table), ids_, T_, x, stream_));
  }
  Status rms_norm(const float* x, int64_t ldx, int64_t n, const cpu::WeightView& gain, float eps, float* y,
                  int64_t ldy) override {
    if (replaying()) return Status::Ok();  // the step's graph does it
    const int64_t d = gain.cols;
    if (ldx == d && ldy == d) return track(cuda::rms_norm(x, n, d, gain.data, gain.dtype, eps, y, stream_));
    return track(cuda::rms_norm_strided(x, ldx, n, d, gain.data, gain.dtype, eps, y, ldy, stream_));
  }
  Status linear(const float* x, int64_t ldx, int64_t n, const cpu::WeightView& w, float* y, int64_t ldy) override {
    if (replaying()) return Status::Ok();  // the step's graph does it
    if (n <= 0) return Status::Ok();
    return track(cuda::linear(blas_, x, ldx, n, dw(w), y, ldy));
  }
  Status rope_q(float* q, int64_t row0, int64_t n, int64_t H, int64_t nope, int64_t P) override {
    if (replaying()) return Status::Ok();  // the step's graph does it
    if (n <= 0) return Status::Ok();
    return track(cuda::rope(q, n, H, H * (nope + P), nope + P, nope, P, pos_ + row0, inv_freq_, mscale_, stream_));
  }
  Status write_cache(float* kv, const cpu::WeightView& kv_norm, float eps, int64_t layer, KvCache& cache) override {
    if (replaying()) return Status::Ok();  // the step's graph does it
    const int64_t D = R_ + P_;
    LATENT_RETURN_IF_ERROR(track(cuda::rms_norm_strided(kv, D, T_, R_, kv_norm.data, kv_norm.dtype, eps, kv, D, stream_)));
    LATENT_RETURN_IF_ERROR(track(cuda::rope(kv, T_, 1, D, 0, R_, P_, pos_, inv_freq_, mscale_, stream_)));
    return track(cuda::mla_cache_write(kv, D, T_, D, pos_, layer_base(cache, layer), block_stride(cache), table_, W_, stream_,
                                 cache.dtype()));
  }
  Status mla_absorb_q(const float* q, int64_t n, int64_t q_stride, const cpu::WeightView& kv_b, int64_t H,
                      int64_t nope, int64_t P, int64_t vd, float* q_lat) override {
    if (replaying()) return Status::Ok();  // the step's graph does it
    if (n <= 0) return Status::Ok();
    return track(cuda::mla_absorb_q(q, n, q_stride, dw(kv_b), H, nope, P, vd, q_lat, stream_));
  }
  Status mla_attention(const float* q_lat, const float* q, int64_t q_stride, const std::vector<SeqSpan>& seqs,
                       int64_t H, int64_t nope, int64_t layer, const KvCache& cache, float scale,
                       float* o_lat) override {
    if (replaying()) return Status::Ok();  // the step's graph does it
    const int64_t n = seqs.empty() ? 0 : seqs.back().offset + seqs.back().n_new;
    if (n != T_) {  // one rank: every row of the batch (data-parallel attention runs on the CPU only)
      return make_error(ErrorCode::kUnsupported, "cuda mla_attention: expected all " + std::to_string(T_) +
                                                     " rows of the batch, found " + std::to_string(n));
    }
    if (n == 0) return Status::Ok();
    cuda::MlaAttentionArgs a;
    a.q_lat = q_lat, a.q = q, a.q_stride = q_stride, a.nope = nope, a.n = n, a.n_heads = H, a.R = R_, a.P = P_;
    a.scale = scale, a.ctx_lens = ctx_, a.max_ctx = max_ctx_, a.o_lat = o_lat;
    LATENT_ASSIGN_OR_RETURN(float* ws, ws_.resize(cuda::mla_attention_workspace(a)));
    return track(cuda::mla_attention(a, {layer_base(cache, layer), block_stride(cache), table_, W_, cache.dtype()}, ws, stream_));
  }
  Status mla_apply_uv(const float* o_lat, int64_t n, const cpu::WeightView& kv_b, int64_t H, int64_t nope,
                      int64_t vd, float* out) override {
    if (replaying()) return Status::Ok();  // the step's graph does it
    if (n <= 0) return Status::Ok();
    return track(cuda::mla_apply_uv(o_lat, n, dw(kv_b), H, nope, vd, out, stream_));
  }
  Status mlp(const MlpWeights& w, const float* x, int64_t n, float* y) override {
    if (replaying()) return Status::Ok();  // the step's graph does it
    return track(run_mlp(dw(w.gate_proj), dw(w.up_proj), dw(w.down_proj), x, n, y));
  }
  Status moe(const ModelConfig& c, const MoeWeights&, const void* prepared, const float* x, int64_t n, float* y,
             std::vector<int32_t>* topk_idx, std::vector<float>* topk_weight) override {
    if (replaying()) return Status::Ok();  // the step's graph does it
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
    LATENT_RETURN_IF_ERROR(track(cuda::linear(blas_, x, m.router.cols, n, m.router, logits, E)));  // [n, E]
    LATENT_RETURN_IF_ERROR(track(cuda::route(rp, logits, n, m.bias, idx, wts, stream_)));
    if (m.has_shared) LATENT_RETURN_IF_ERROR(track(run_mlp(m.shared_gate, m.shared_up, m.shared_down, x, n, y)));  // [n, d]
    LATENT_ASSIGN_OR_RETURN(float* h, moe_h_.resize(n * K * m.experts.inter));
    LATENT_RETURN_IF_ERROR(track(cuda::moe_experts(m.experts, x, n, K, idx, wts, h, y, m.has_shared, stream_)));
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
  Status add(const float* a, int64_t n, float* y) override {
    if (replaying()) return Status::Ok();  // the step's graph does it
    return track(cuda::add_inplace(a, n, y, stream_));
  }
  Status gather_rows(const float* x, int64_t d, std::span<const int64_t> rows, float* y) override {
    if (replaying()) return Status::Ok();  // the step's graph does it
    // begin() uploaded the rows result_layout picks; any other rows go up through a copy of their own.
    const int32_t* dev_rows = rows_;
    if (!std::equal(rows.begin(), rows.end(), h_rows_.begin(), h_rows_.end())) {
      if (mode_ == Mode::kCapture) return track(make_error(ErrorCode::kInternal, "gather_rows: rows other than begin()'s in a graph"));
      std::vector<int32_t> r(rows.begin(), rows.end());
      LATENT_RETURN_IF_ERROR(extra_rows_.fit(static_cast<int64_t>(r.size()), "gather rows"));
      ++epoch_;
      // On the step's stream (a plain cudaMemcpy runs on the legacy stream, which stream_ does not wait for); from
      // pageable memory the call returns once r has been staged.
      LATENT_RETURN_IF_ERROR(cuda_status(cudaMemcpyAsync(extra_rows_.p, r.data(), r.size() * sizeof(int32_t),
                                                         cudaMemcpyHostToDevice, stream_), "gather rows"));
      dev_rows = extra_rows_.p;
    }
    return track(cuda::gather_rows(x, d, dev_rows, static_cast<int64_t>(rows.size()), y, stream_));
  }


 private:
  explicit CudaDevice(const ModelConfig& c)
      : R_(c.kv_lora_rank), P_(c.qk_rope_head_dim), max_pos_(std::max<int64_t>(1, c.max_position_embeddings)) {}

  // ---- graphs
  static constexpr int64_t kMaxGraphBatch = 64;   // uniform steps of up to this many tokens get graphs
  static constexpr int64_t kMaxGraphTokens = 8;   // of up to this many tokens per sequence (1 + drafts)
  enum class Mode { kEager, kWarm, kCapture, kReplay };  // kWarm: eager, the bucket's first step
  using Bucket = std::tuple<int, int64_t, int64_t>;     // graph key, tokens, 2 * tokens per sequence + all_logits
  bool replaying() const { return mode_ == Mode::kReplay; }
  // An op's status; a failure inside a capture ends it (its graph destroyed) and sends the bucket to eager.
  Status track(Status st) {
    if (!st.ok() && mode_ == Mode::kCapture) {
      discard_capture();
      fail_bucket();
      capture_failed_ = true;
    }
    return st;
  }
  void discard_capture() {
    cudaGraph_t g = nullptr;
    cudaStreamEndCapture(stream_, &g);
    if (g) cudaGraphDestroy(g);
    cudaGetLastError();
    mode_ = Mode::kEager;
  }
  void fail_bucket() {
    eager_buckets_.insert(bucket_);
    ++counters_.capture_failures;
    LATENT_LOG_WARN("cuda graphs: capturing a step of %lld tokens (%lld per sequence) failed; that shape runs eagerly",
                    static_cast<long long>(std::get<1>(bucket_)), static_cast<long long>(std::get<2>(bucket_) / 2));
  }
  void drop_graphs() {
    for (auto& [k, g] : graphs_) cudaGraphExecDestroy(g.exec);
    graphs_.clear();
  }
  // At the step's end (fetch_out): ends a capture and instantiates it, then launches the bucket's graph; after
  // an eager first step, remembers the epoch its buffers were sized at.
  Status run_graph() {
    const Mode mode = std::exchange(mode_, Mode::kEager);
    if (mode == Mode::kWarm) warm_[bucket_] = epoch_;
    if (mode != Mode::kCapture && mode != Mode::kReplay) return Status::Ok();
    if (mode == Mode::kCapture) {
      cudaGraph_t g = nullptr;
      const cudaError_t end = cudaStreamEndCapture(stream_, &g);
      cudaGraphExec_t exec = nullptr;
      size_t nodes = 0;
      cudaError_t made = end == cudaSuccess && g ? cudaGraphGetNodes(g, nullptr, &nodes) : end;
      int64_t kernels = 0;  // the kernel nodes (not copies, memsets or allocations): what counters() calls launches
      if (made == cudaSuccess && nodes > 0) {
        std::vector<cudaGraphNode_t> all(nodes);
        made = cudaGraphGetNodes(g, all.data(), &nodes);
        for (size_t i = 0; made == cudaSuccess && i < nodes; ++i) {
          cudaGraphNodeType type{};
          made = cudaGraphNodeGetType(all[i], &type);
          kernels += type == cudaGraphNodeTypeKernel ? 1 : 0;
        }
      }
      if (made == cudaSuccess) made = cudaGraphInstantiate(&exec, g, 0);
      if (g) cudaGraphDestroy(g);
      if (made != cudaSuccess || !exec) {
        cudaGetLastError();
        if (exec) cudaGraphExecDestroy(exec);
        fail_bucket();
        capture_failed_ = true;
        return make_error(ErrorCode::kInternal, std::string("cuda graph capture: ") + cudaGetErrorString(made) +
                                                    " (the step runs again eagerly)");
      }
      graphs_[bucket_] = StepGraph{exec, epoch_, capture_shape_, kernels};
      ++counters_.graph_captures;  // its kernels were counted as they were queued into the capture
    } else {
      ++counters_.graph_replays;
      replayed_nodes_ += graphs_.at(bucket_).nodes;
    }
    const StepGraph& g = graphs_.at(bucket_);
    return cuda_status(cudaGraphLaunch(g.exec, stream_), "cudaGraphLaunch");
  }

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
  // This device current on the calling thread (the model loads on one thread and runs on another; a buffer may be
  // released on a third). Cheap when it already is.
  void on_device() const { cudaSetDevice(index_); }
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
  float mscale_ = 1.0f;                   // ModelConfig::rope_mscale(), folded into cos/sin as on the CPU
  int64_t R_, P_, max_cols_ = 0, inter_max_ = 0;
  uint64_t next_seed_ = 0;      // random weights: the next weight's seed; 0 = upload the checkpoint's
  void* pinned_[2] = {nullptr, nullptr};           // upload_pinned's buffers, freed by the first forward
  cudaEvent_t copied_[2] = {nullptr, nullptr};     // the last DMA out of each
  unsigned next_pinned_ = 0;
  bool fills_pending_ = false;  // random fills queued on the legacy stream
  // the step (begin): its inputs, one device array [ids | positions | lengths | rows | tables]
  int64_t T_ = 0, W_ = 1, max_ctx_ = 1, max_pos_ = 1;
  std::vector<int64_t> h_rows_;
  Pinned pin_in_[2], pin_out_;
  unsigned next_in_ = 0;
  IntArray step_, extra_rows_;
  const int32_t *ids_ = nullptr, *pos_ = nullptr, *ctx_ = nullptr, *rows_ = nullptr, *table_ = nullptr;
  DeviceBuffer out_[2];
  unsigned next_out_ = 0;
  // graphs
  bool graphs_on_ = true;
  Mode mode_ = Mode::kEager;
  Bucket bucket_{0, 0, 0};
  uint64_t epoch_ = 0;  // allocations so far: a graph is good while nothing it reads moved
  GraphShape capture_shape_;  // the step being captured
  std::map<Bucket, StepGraph> graphs_;
  std::map<Bucket, uint64_t> warm_;  // the epoch of each bucket's last eager step
  std::set<Bucket> eager_buckets_;   // captures failed
  bool capture_failed_ = false;
  Counters counters_;
  int64_t launch_base_ = 0, replayed_nodes_ = 0;
  DeviceBuffer g_, u_, rlogits_, wts_, idx_, moe_h_, ws_, sel_;
};

}  // namespace

Result<std::unique_ptr<Device>> make_cuda_device(int index, const ModelConfig& c, uint64_t random_seed) {
  return CudaDevice::create(index, c, random_seed);
}

int cuda_device_count() { return cuda::device_count(); }

}  // namespace latent
