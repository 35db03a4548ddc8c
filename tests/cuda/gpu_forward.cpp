// GpuDeepseek: the per-layer sequence of engine/deepseek_model.cpp, op for op, on device buffers.
#include "tests/cuda/gpu_forward.h"

#include <cuda_runtime.h>

#include <filesystem>

#include "engine/config.h"
#include "engine/mla.h"
#include "engine/moe.h"
#include "engine/rope.h"
#include "engine/weights.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/memory.h"
#include "kernels/cuda/mla.h"
#include "kernels/cuda/moe.h"
#include "kernels/cuda/ops.h"

namespace latent::cuda {

namespace {

struct Gain {
  const void* data = nullptr;
  DType dtype = DType::kF32;
};

struct Mlp {
  DeviceWeight gate, up, down;
};

struct Layer {
  Gain in_norm, post_norm, q_a_norm, kv_a_norm;
  bool q_lora = false;
  DeviceWeight q_proj, q_a_proj, q_b_proj, kv_a, kv_b, o_proj;
  bool is_moe = false, has_shared = false;
  Mlp mlp, shared;
  DeviceWeight router;
  const float* bias = nullptr;  // f32 on the device or null
  ExpertTable experts;
};

template <typename T>
DeviceArray<T> zeros(int64_t n) {
  DeviceArray<T> a(std::max<int64_t>(n, 1));
  cudaMemset(a.data(), 0, static_cast<size_t>(a.size()) * sizeof(T));
  return a;
}

}  // namespace

// Owners of the step stream and the captured graph. Members are destroyed in reverse order, so declaring the
// stream first makes it outlive the cuBLAS handle and the graph that were made on it.
struct StreamOwner {
  cudaStream_t stream = nullptr;
  ~StreamOwner() {
    if (stream) cudaStreamDestroy(stream);
  }
};
struct GraphOwner {
  cudaGraphExec_t exec = nullptr;
  ~GraphOwner() {
    if (exec) cudaGraphExecDestroy(exec);
  }
};

struct GpuDeepseek::Impl {
  ModelConfig c;
  StreamOwner stream_owner;  // first: destroyed last
  cudaStream_t stream = nullptr;  // non-blocking: graph capture needs a stream other than the legacy one
  DeviceArena arena;
  Blas blas;
  GraphOwner decode_graph;
  std::vector<Layer> layers;
  DeviceWeight embed, lm_head;
  Gain norm;
  RouterParams router;
  int64_t max_tokens = 0, n_blocks = 0, inter_max = 0;
  float softmax_scale = 0;
  // activations [max_tokens, ...] and the cache [n_blocks, L, 64, R + P]
  DeviceArray<float> x, h, q, qa, qa_norm, kv, q_lat, o_lat, attn, ff, g, u, rlogits, wts, moe_h, logits, ws,
      inv_freq, cache;
  DeviceArray<int32_t> ids, pos, table, idx, ctx_len;

  Status enqueue(int64_t n, int64_t n_cached, bool all_logits, bool graph_decode);
  Status finish(int64_t max_tokens, int64_t n_blocks);

  Result<Gain> gain(const cpu::WeightView& v) {
    LATENT_ASSIGN_OR_RETURN(DeviceWeight w, arena.upload(v));
    return Gain{w.data, w.dtype};
  }
  Result<Mlp> mlp_of(const MlpWeights& m) {
    Mlp r;
    LATENT_ASSIGN_OR_RETURN(r.gate, arena.upload(m.gate_proj));
    LATENT_ASSIGN_OR_RETURN(r.up, arena.upload(m.up_proj));
    LATENT_ASSIGN_OR_RETURN(r.down, arena.upload(m.down_proj));
    inter_max = std::max(inter_max, r.gate.rows);
    return r;
  }
  Status run_mlp(const Mlp& m, const float* in, int64_t n, float* out) {
    const int64_t inter = m.gate.rows;
    LATENT_RETURN_IF_ERROR(linear(blas, in, n, m.gate, g.data()));  // [n, inter]
    LATENT_RETURN_IF_ERROR(linear(blas, in, n, m.up, u.data()));    // [n, inter]
    LATENT_RETURN_IF_ERROR(swiglu(g.data(), u.data(), n * inter, g.data(), stream));
    return linear(blas, g.data(), n, m.down, out);  // [n, d]
  }
};

GpuDeepseek::~GpuDeepseek() = default;
int64_t GpuDeepseek::vocab() const { return impl_->c.vocab_size; }

Result<std::unique_ptr<GpuDeepseek>> GpuDeepseek::load(const std::string& dir, int64_t max_tokens, int64_t n_blocks) {
  auto m = std::unique_ptr<GpuDeepseek>(new GpuDeepseek());
  m->impl_ = std::make_unique<Impl>();
  Impl& I = *m->impl_;
  LATENT_ASSIGN_OR_RETURN(I.c, ModelConfig::load(dir));
  LATENT_ASSIGN_OR_RETURN(Weights w, Weights::open(dir));
  const ModelConfig& c = I.c;
  std::error_code ec;
  size_t bytes = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    if (e.path().extension() == ".safetensors") bytes += e.file_size();
  }
  LATENT_ASSIGN_OR_RETURN(I.arena, DeviceArena::create(bytes + (size_t{64} << 20)));
  LATENT_RETURN_IF_ERROR(cuda_status(cudaStreamCreateWithFlags(&I.stream_owner.stream, cudaStreamNonBlocking),
                                     "cudaStreamCreate"));
  I.stream = I.stream_owner.stream;
  LATENT_ASSIGN_OR_RETURN(I.blas, Blas::create(I.stream, 0));
  I.blas.tensor_core_min_tokens = int64_t{1} << 40;  // exact float32 everywhere (golden tolerance 1e-4)
  const int64_t d = c.hidden_size, V = c.vocab_size, L = c.num_hidden_layers;
  LATENT_ASSIGN_OR_RETURN(cpu::WeightView embed, w.matrix("model.embed_tokens.weight", V, d));
  LATENT_ASSIGN_OR_RETURN(I.embed, I.arena.upload(embed));
  if (c.tie_word_embeddings && !w.has("lm_head.weight")) {
    I.lm_head = I.embed;
  } else {
    LATENT_ASSIGN_OR_RETURN(cpu::WeightView head, w.matrix("lm_head.weight", V, d));
    LATENT_ASSIGN_OR_RETURN(I.lm_head, I.arena.upload(head));
  }
  LATENT_ASSIGN_OR_RETURN(cpu::WeightView norm, w.vector("model.norm.weight", d));
  LATENT_ASSIGN_OR_RETURN(I.norm, I.gain(norm));
  for (int64_t l = 0; l < L; ++l) {
    const std::string p = "model.layers." + std::to_string(l);
    Layer ly;
    LATENT_ASSIGN_OR_RETURN(cpu::WeightView in_norm, w.vector(p + ".input_layernorm.weight", d));
    LATENT_ASSIGN_OR_RETURN(cpu::WeightView post_norm, w.vector(p + ".post_attention_layernorm.weight", d));
    LATENT_ASSIGN_OR_RETURN(ly.in_norm, I.gain(in_norm));
    LATENT_ASSIGN_OR_RETURN(ly.post_norm, I.gain(post_norm));
    LATENT_ASSIGN_OR_RETURN(MlaWeights a, MlaWeights::load(w, c, p + ".self_attn"));
    ly.q_lora = a.q_lora;
    if (a.q_lora) {
      LATENT_ASSIGN_OR_RETURN(ly.q_a_proj, I.arena.upload(a.q_a_proj));
      LATENT_ASSIGN_OR_RETURN(ly.q_a_norm, I.gain(a.q_a_layernorm));
      LATENT_ASSIGN_OR_RETURN(ly.q_b_proj, I.arena.upload(a.q_b_proj));
    } else {
      LATENT_ASSIGN_OR_RETURN(ly.q_proj, I.arena.upload(a.q_proj));
    }
    LATENT_ASSIGN_OR_RETURN(ly.kv_a, I.arena.upload(a.kv_a_proj_with_mqa));
    LATENT_ASSIGN_OR_RETURN(ly.kv_a_norm, I.gain(a.kv_a_layernorm));
    LATENT_ASSIGN_OR_RETURN(ly.kv_b, I.arena.upload(a.kv_b_proj));
    LATENT_ASSIGN_OR_RETURN(ly.o_proj, I.arena.upload(a.o_proj));
    ly.is_moe = c.is_moe_layer(l);
    if (ly.is_moe) {
      LATENT_ASSIGN_OR_RETURN(MoeWeights moe, MoeWeights::load(w, c, p + ".mlp"));
      LATENT_ASSIGN_OR_RETURN(ly.router, I.arena.upload(moe.gate));
      if (moe.e_score_correction_bias.data) {
        std::vector<float> b(static_cast<size_t>(c.n_routed_experts));
        for (int64_t e = 0; e < c.n_routed_experts; ++e) b[static_cast<size_t>(e)] = moe.e_score_correction_bias.at(0, e);
        LATENT_ASSIGN_OR_RETURN(float* db, I.arena.allocate_n<float>(c.n_routed_experts));
        LATENT_RETURN_IF_ERROR(cuda_status(cudaMemcpy(db, b.data(), b.size() * sizeof(float), cudaMemcpyHostToDevice), "bias"));
        ly.bias = db;
      }
      std::vector<DeviceWeight> eg, eu, ed;
      for (const MlpWeights& e : moe.experts) {
        LATENT_ASSIGN_OR_RETURN(Mlp em, I.mlp_of(e));
        eg.push_back(em.gate), eu.push_back(em.up), ed.push_back(em.down);
      }
      LATENT_ASSIGN_OR_RETURN(ly.experts, make_expert_table(I.arena, eg, eu, ed));
      ly.has_shared = moe.has_shared;
      if (moe.has_shared) {
        LATENT_ASSIGN_OR_RETURN(ly.shared, I.mlp_of(moe.shared_experts));
      }
    } else {
      LATENT_ASSIGN_OR_RETURN(MlpWeights mw, MlpWeights::load(w, p + ".mlp", d, c.intermediate_size));
      LATENT_ASSIGN_OR_RETURN(ly.mlp, I.mlp_of(mw));
    }
    I.layers.push_back(ly);
  }
  LATENT_RETURN_IF_ERROR(I.finish(max_tokens, n_blocks));
  return m;
}

// After the weights: routing parameters, activations [max_tokens, ...], the cache and the step inputs.
Status GpuDeepseek::Impl::finish(int64_t tokens_cap, int64_t blocks) {
  const int64_t d = c.hidden_size, V = c.vocab_size, L = c.num_hidden_layers;
  router.n_experts = c.n_routed_experts, router.top_k = c.num_experts_per_tok, router.n_group = c.n_group;
  router.topk_group = c.topk_group, router.sigmoid = c.scoring_func == ScoringFunc::kSigmoid;
  router.method = static_cast<RouterParams::Method>(static_cast<int>(c.topk_method));
  router.norm_topk_prob = c.norm_topk_prob;
  router.routed_scaling_factor = static_cast<float>(c.routed_scaling_factor);
  softmax_scale = static_cast<float>(c.softmax_scale());
  max_tokens = tokens_cap, n_blocks = blocks;

  const int64_t T = max_tokens, H = c.num_attention_heads, R = c.kv_lora_rank, P = c.qk_rope_head_dim;
  const int64_t qk = c.qk_nope_head_dim + P, K = std::max<int64_t>(1, c.num_experts_per_tok);
  x = zeros<float>(T * d), h = zeros<float>(T * d), q = zeros<float>(T * H * qk);
  qa = zeros<float>(T * c.q_lora_rank.value_or(0)), qa_norm = zeros<float>(T * c.q_lora_rank.value_or(0));
  kv = zeros<float>(T * (R + P)), q_lat = zeros<float>(T * H * R), o_lat = zeros<float>(T * H * R);
  attn = zeros<float>(T * H * c.v_head_dim), ff = zeros<float>(T * d);
  g = zeros<float>(T * inter_max), u = zeros<float>(T * inter_max);
  rlogits = zeros<float>(T * std::max<int64_t>(1, c.n_routed_experts)), wts = zeros<float>(T * K);
  moe_h = zeros<float>(T * K * std::max<int64_t>(1, c.moe_intermediate_size)), logits = zeros<float>(T * V);
  cache = zeros<float>(n_blocks * L * 64 * (R + P));
  ids = zeros<int32_t>(T), pos = zeros<int32_t>(T), table = zeros<int32_t>(n_blocks), idx = zeros<int32_t>(T * K);
  ctx_len = zeros<int32_t>(1);
  MlaAttentionArgs probe;  // prefill of max_tokens, and the graph's decode row planned for the whole cache
  probe.n = T, probe.n_heads = H, probe.R = R, probe.P = P, probe.max_ctx = n_blocks * 64;
  int64_t ws_floats = mla_attention_workspace(probe);
  probe.n = 1;
  ws_floats = std::max(ws_floats, mla_attention_workspace(probe));
  ws = zeros<float>(ws_floats);
  inv_freq = DeviceArray<float>(rope_inv_freq(c));
  for (const auto* a : {&x, &h, &q, &qa, &qa_norm, &kv, &q_lat, &o_lat, &attn, &ff, &g, &u,
                        &rlogits, &wts, &moe_h, &logits, &ws, &inv_freq, &cache}) {
    if (!a->ok()) {
      return make_error(ErrorCode::kResourceExhausted, "GpuDeepseek: expected " + std::to_string(a->size()) +
                                                           " floats of device memory for activations, cudaMalloc failed");
    }
  }
  for (const auto* a : {&ids, &pos, &table, &idx, &ctx_len}) {
    if (!a->ok()) return make_error(ErrorCode::kResourceExhausted, "GpuDeepseek: cudaMalloc of step inputs failed");
  }
  // The memsets above ran on the legacy stream, which the non-blocking step stream does not wait for.
  return cuda_status(cudaDeviceSynchronize(), "GpuDeepseek: device buffers");
}

Result<std::unique_ptr<GpuDeepseek>> GpuDeepseek::random(const std::string& dir, int64_t max_tokens,
                                                          int64_t n_blocks, uint64_t seed) {
  auto m = std::unique_ptr<GpuDeepseek>(new GpuDeepseek());
  m->impl_ = std::make_unique<Impl>();
  Impl& I = *m->impl_;
  LATENT_ASSIGN_OR_RETURN(I.c, ModelConfig::load(dir));  // config.json only: no weights are read
  const ModelConfig& c = I.c;
  const int64_t d = c.hidden_size, V = c.vocab_size, L = c.num_hidden_layers, H = c.num_attention_heads;
  const int64_t R = c.kv_lora_rank, P = c.qk_rope_head_dim, nope = c.qk_nope_head_dim, vd = c.v_head_dim;
  const int64_t qk = nope + P, qr = c.q_lora_rank.value_or(0), E = c.n_routed_experts, mi = c.moe_intermediate_size;
  // BF16 parameters, as many as the released checkpoint's (without MTP layers), plus 256-byte alignment slack.
  int64_t params = 2 * V * d + d, tensors = 3;
  for (int64_t l = 0; l < L; ++l) {
    params += 2 * d + (qr ? qr * d + qr + H * qk * qr : H * qk * d) + (R + P) * d + R + H * (nope + vd) * R + d * H * vd;
    tensors += 10;
    if (c.is_moe_layer(l)) {
      params += E * d + 3 * d * mi * (E + c.n_shared_experts);
      tensors += 3 * (E + 1) + 2;
    } else {
      params += 3 * d * c.intermediate_size;
      tensors += 3;
    }
  }
  LATENT_ASSIGN_OR_RETURN(I.arena, DeviceArena::create(static_cast<size_t>(2 * params + 256 * tensors) + (size_t{64} << 20)));
  LATENT_RETURN_IF_ERROR(cuda_status(cudaStreamCreateWithFlags(&I.stream_owner.stream, cudaStreamNonBlocking),
                                     "cudaStreamCreate"));
  I.stream = I.stream_owner.stream;
  LATENT_ASSIGN_OR_RETURN(I.blas, Blas::create(I.stream, 0));
  I.blas.tensor_core_min_tokens = int64_t{1} << 40;
  // Linear weights uniform in ±0.035 (σ ≈ 0.02, make_checkpoint's scale), RMSNorm gains in 1 ± 0.05.
  uint64_t next = seed;
  auto mat = [&](int64_t rows, int64_t cols) { return I.arena.random(DType::kBF16, rows, cols, next++, -0.035f, 0.035f); };
  auto gain = [&](int64_t n) -> Result<Gain> {
    LATENT_ASSIGN_OR_RETURN(DeviceWeight w, I.arena.random(DType::kBF16, 1, n, next++, 0.95f, 1.05f));
    return Gain{w.data, w.dtype};
  };
  auto mlp = [&](int64_t inter) -> Result<Mlp> {
    Mlp r;
    LATENT_ASSIGN_OR_RETURN(r.gate, mat(inter, d));
    LATENT_ASSIGN_OR_RETURN(r.up, mat(inter, d));
    LATENT_ASSIGN_OR_RETURN(r.down, mat(d, inter));
    I.inter_max = std::max(I.inter_max, inter);
    return r;
  };
  LATENT_ASSIGN_OR_RETURN(I.embed, mat(V, d));
  LATENT_ASSIGN_OR_RETURN(I.lm_head, mat(V, d));
  LATENT_ASSIGN_OR_RETURN(I.norm, gain(d));
  for (int64_t l = 0; l < L; ++l) {
    Layer ly;
    LATENT_ASSIGN_OR_RETURN(ly.in_norm, gain(d));
    LATENT_ASSIGN_OR_RETURN(ly.post_norm, gain(d));
    ly.q_lora = qr > 0;
    if (ly.q_lora) {
      LATENT_ASSIGN_OR_RETURN(ly.q_a_proj, mat(qr, d));
      LATENT_ASSIGN_OR_RETURN(ly.q_a_norm, gain(qr));
      LATENT_ASSIGN_OR_RETURN(ly.q_b_proj, mat(H * qk, qr));
    } else {
      LATENT_ASSIGN_OR_RETURN(ly.q_proj, mat(H * qk, d));
    }
    LATENT_ASSIGN_OR_RETURN(ly.kv_a, mat(R + P, d));
    LATENT_ASSIGN_OR_RETURN(ly.kv_a_norm, gain(R));
    LATENT_ASSIGN_OR_RETURN(ly.kv_b, mat(H * (nope + vd), R));
    LATENT_ASSIGN_OR_RETURN(ly.o_proj, mat(d, H * vd));
    ly.is_moe = c.is_moe_layer(l);
    if (ly.is_moe) {
      LATENT_ASSIGN_OR_RETURN(ly.router, mat(E, d));
      if (c.topk_method == TopkMethod::kNoauxTc) {  // V3's e_score_correction_bias, float32
        LATENT_ASSIGN_OR_RETURN(DeviceWeight b, I.arena.random(DType::kF32, 1, E, next++, -0.01f, 0.01f));
        ly.bias = static_cast<const float*>(b.data);
      }
      std::vector<DeviceWeight> eg, eu, ed;
      for (int64_t e = 0; e < E; ++e) {
        LATENT_ASSIGN_OR_RETURN(Mlp em, mlp(mi));
        eg.push_back(em.gate), eu.push_back(em.up), ed.push_back(em.down);
      }
      LATENT_ASSIGN_OR_RETURN(ly.experts, make_expert_table(I.arena, eg, eu, ed));
      ly.has_shared = c.n_shared_experts > 0;
      if (ly.has_shared) {
        LATENT_ASSIGN_OR_RETURN(ly.shared, mlp(mi * c.n_shared_experts));
      }
    } else {
      LATENT_ASSIGN_OR_RETURN(ly.mlp, mlp(c.intermediate_size));
    }
    I.layers.push_back(ly);
  }
  LATENT_RETURN_IF_ERROR(I.finish(max_tokens, n_blocks));  // also waits for the fills (legacy stream)
  return m;
}

Result<std::vector<float>> GpuDeepseek::forward(const std::vector<int32_t>& tokens, int64_t n_cached,
                                                const std::vector<int32_t>& block_table, bool all_logits,
                                                bool use_graph) {
  Impl& I = *impl_;
  const int64_t n = static_cast<int64_t>(tokens.size()), V = I.c.vocab_size;
  if (n <= 0 || n > I.max_tokens || static_cast<int64_t>(block_table.size()) * 64 < n_cached + n ||
      static_cast<int64_t>(block_table.size()) > I.n_blocks) {
    return make_error(ErrorCode::kInvalidArgument, "GpuDeepseek::forward: expected 1.." + std::to_string(I.max_tokens) +
                                                       " tokens covered by the block table, found " + std::to_string(n));
  }
  for (size_t b = 0; b < block_table.size(); ++b) {
    if (block_table[b] < 0 || block_table[b] >= I.n_blocks) {
      return make_error(ErrorCode::kInvalidArgument, "GpuDeepseek::forward: expected block ids in [0, " +
                                                         std::to_string(I.n_blocks) + "), found " +
                                                         std::to_string(block_table[b]) + " at entry " + std::to_string(b));
    }
  }
  std::vector<int32_t> positions(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) positions[static_cast<size_t>(i)] = static_cast<int32_t>(n_cached + i);
  const int32_t ctx = static_cast<int32_t>(n_cached + n);
  // Step inputs into fixed device buffers (a captured graph reads them there on every replay).
  LATENT_RETURN_IF_ERROR(cuda_status(cudaMemcpyAsync(I.ids.data(), tokens.data(), n * sizeof(int32_t), cudaMemcpyHostToDevice, I.stream), "ids"));
  LATENT_RETURN_IF_ERROR(cuda_status(cudaMemcpyAsync(I.pos.data(), positions.data(), n * sizeof(int32_t), cudaMemcpyHostToDevice, I.stream), "pos"));
  LATENT_RETURN_IF_ERROR(cuda_status(cudaMemcpyAsync(I.table.data(), block_table.data(), block_table.size() * sizeof(int32_t),
                                                     cudaMemcpyHostToDevice, I.stream), "table"));
  LATENT_RETURN_IF_ERROR(cuda_status(cudaMemcpyAsync(I.ctx_len.data(), &ctx, sizeof(int32_t), cudaMemcpyHostToDevice, I.stream), "ctx"));
  const bool graph = use_graph && n == 1 && !all_logits;
  if (!graph) {
    LATENT_RETURN_IF_ERROR(I.enqueue(n, n_cached, all_logits, false));
  } else {
    if (!I.decode_graph.exec) {  // capture once: every later decode step replays it with new inputs
      cudaGraph_t g = nullptr;
      LATENT_RETURN_IF_ERROR(cuda_status(cudaStreamBeginCapture(I.stream, cudaStreamCaptureModeRelaxed), "BeginCapture"));
      const Status st = I.enqueue(1, 0, false, true);
      const cudaError_t end = cudaStreamEndCapture(I.stream, &g);  // always ends the capture, even after an error
      cudaError_t inst = cudaSuccess;
      if (st.ok() && end == cudaSuccess) inst = cudaGraphInstantiate(&I.decode_graph.exec, g, 0);
      if (g) cudaGraphDestroy(g);  // the captured graph is not needed once instantiated, nor after a failure
      LATENT_RETURN_IF_ERROR(st);
      LATENT_RETURN_IF_ERROR(cuda_status(end, "EndCapture"));
      LATENT_RETURN_IF_ERROR(cuda_status(inst, "cudaGraphInstantiate"));
    }
    LATENT_RETURN_IF_ERROR(cuda_status(cudaGraphLaunch(I.decode_graph.exec, I.stream), "cudaGraphLaunch"));
  }
  const int64_t rows = all_logits ? n : 1;
  std::vector<float> out(static_cast<size_t>(rows * V));
  LATENT_RETURN_IF_ERROR(cuda_status(cudaMemcpyAsync(out.data(), I.logits.data(), out.size() * sizeof(float),
                                                     cudaMemcpyDeviceToHost, I.stream), "logits"));
  LATENT_RETURN_IF_ERROR(cuda_status(cudaStreamSynchronize(I.stream), "step"));
  return out;
}

Status GpuDeepseek::Impl::enqueue(int64_t n, int64_t n_cached, bool all_logits, bool graph_decode) {
  const int64_t d = c.hidden_size;
  const int64_t H = c.num_attention_heads, R = c.kv_lora_rank, P = c.qk_rope_head_dim, nope = c.qk_nope_head_dim;
  const int64_t qk = nope + P, vd = c.v_head_dim, L = c.num_hidden_layers, K = c.num_experts_per_tok;
  const float eps = static_cast<float>(c.rms_norm_eps);
  float *x = this->x.data(), *h = this->h.data(), *q = this->q.data(), *kv = this->kv.data();
  LATENT_RETURN_IF_ERROR(embedding(embed, ids.data(), n, x, stream));  // [n, d]
  for (int64_t l = 0; l < L; ++l) {
    const Layer& ly = layers[static_cast<size_t>(l)];
    // ---- attention
    LATENT_RETURN_IF_ERROR(rms_norm(x, n, d, ly.in_norm.data, ly.in_norm.dtype, eps, h, stream));  // [n, d]
    if (ly.q_lora) {
      const int64_t qr = ly.q_a_proj.rows;
      LATENT_RETURN_IF_ERROR(linear(blas, h, n, ly.q_a_proj, qa.data()));  // [n, q_lora_rank]
      LATENT_RETURN_IF_ERROR(rms_norm(qa.data(), n, qr, ly.q_a_norm.data, ly.q_a_norm.dtype, eps, qa_norm.data(), stream));
      LATENT_RETURN_IF_ERROR(linear(blas, qa_norm.data(), n, ly.q_b_proj, q));  // [n, H * qk]
    } else {
      LATENT_RETURN_IF_ERROR(linear(blas, h, n, ly.q_proj, q));  // [n, H * qk]
    }
    LATENT_RETURN_IF_ERROR(rope(q, n, H, H * qk, qk, nope, P, pos.data(), inv_freq.data(), stream));
    LATENT_RETURN_IF_ERROR(linear(blas, h, n, ly.kv_a, kv));  // [n, R + P]: [latent | rope key]
    LATENT_RETURN_IF_ERROR(rms_norm_strided(kv, R + P, n, R, ly.kv_a_norm.data, ly.kv_a_norm.dtype, eps, kv, R + P, stream));
    LATENT_RETURN_IF_ERROR(rope(kv, n, 1, R + P, 0, R, P, pos.data(), inv_freq.data(), stream));
    float* layer_base = cache.data() + l * 64 * (R + P);
    const int64_t block_stride = L * 64 * (R + P);
    LATENT_RETURN_IF_ERROR(mla_cache_write(kv, R + P, n, R + P, pos.data(), layer_base, block_stride, table.data(), 0, stream));
    LATENT_RETURN_IF_ERROR(mla_absorb_q(q, n, H * qk, ly.kv_b, H, nope, P, vd, q_lat.data(), stream));  // [n, H, R]
    MlaAttentionArgs a;
    a.q_lat = q_lat.data(), a.q = q, a.q_stride = H * qk, a.nope = nope, a.n = n, a.n_heads = H, a.R = R, a.P = P;
    a.scale = softmax_scale, a.start_pos = n_cached, a.max_ctx = n_cached + n, a.o_lat = o_lat.data();
    if (graph_decode) a.ctx_lens = ctx_len.data(), a.max_ctx = n_blocks * 64;  // lengths read at replay
    if (mla_attention_workspace(a) > ws.size()) {
      return make_error(ErrorCode::kInternal, "GpuDeepseek: attention workspace too small");
    }
    LATENT_RETURN_IF_ERROR(mla_attention(a, {layer_base, block_stride, table.data(), 0}, ws.data(), stream));
    LATENT_RETURN_IF_ERROR(mla_apply_uv(o_lat.data(), n, ly.kv_b, H, nope, vd, attn.data(), stream));  // [n, H * v]
    LATENT_RETURN_IF_ERROR(linear(blas, attn.data(), n, ly.o_proj, h));  // [n, d]
    LATENT_RETURN_IF_ERROR(add_inplace(h, n * d, x, stream));
    // ---- feed-forward
    LATENT_RETURN_IF_ERROR(rms_norm(x, n, d, ly.post_norm.data, ly.post_norm.dtype, eps, h, stream));  // [n, d]
    float* ff = this->ff.data();
    if (ly.is_moe) {
      LATENT_RETURN_IF_ERROR(linear(blas, h, n, ly.router, rlogits.data()));  // [n, E]
      LATENT_RETURN_IF_ERROR(route(router, rlogits.data(), n, ly.bias, idx.data(), wts.data(), stream));
      if (ly.has_shared) LATENT_RETURN_IF_ERROR(run_mlp(ly.shared, h, n, ff));  // [n, d]
      LATENT_RETURN_IF_ERROR(moe_experts(ly.experts, h, n, K, idx.data(), wts.data(), moe_h.data(), ff,
                                         ly.has_shared, stream));
    } else {
      LATENT_RETURN_IF_ERROR(run_mlp(ly.mlp, h, n, ff));
    }
    LATENT_RETURN_IF_ERROR(add_inplace(ff, n * d, x, stream));
  }
  LATENT_RETURN_IF_ERROR(rms_norm(x, n, d, norm.data, norm.dtype, eps, h, stream));  // [n, d]
  const int64_t first = all_logits ? 0 : n - 1, rows = n - first;
  LATENT_RETURN_IF_ERROR(linear(blas, h + first * d, rows, lm_head, logits.data()));  // [rows, V]
  return Status();
}

}  // namespace latent::cuda
