// The DeepSeek-V2/V3 forward pass: embed -> [RMSNorm -> MLA -> RMSNorm -> MLP | MoE] x L -> norm -> lm_head,
// plus the MTP module, written once against engine/device.h: every computation is a Device op (the CPU's
// bodies are the exact reference, CUDA's run on a GPU); only collectives and pipeline links touch host memory
// here, and they exist on the CPU only. Reads top to bottom; T = new tokens of all sequences, d = hidden_size, H = heads,
// R = kv_lora_rank, P = qk_rope_head_dim, V = vocab_size. With several ranks, H and the intermediate sizes are
// this rank's share; the all-reduces make the residual stream x whole (and bit-identical) on every rank. With
// pipeline stages a rank runs its stage's layers: x arrives from the previous stage and goes on to the next.
#include "engine/deepseek_model.h"

#include <algorithm>

#include "engine/collective.h"
#include "engine/device.h"
#include "engine/mla.h"
#include "engine/model_step.h"
#include "engine/moe.h"
#include "engine/pipeline.h"
#include "engine/repack.h"
#include "engine/rope.h"
#include "engine/weight_upload.h"
#include "kernels/base/log.h"

namespace latent {

using cpu::WeightView;
using Vec = std::vector<float>;

namespace {

struct LayerWeights {
  WeightView input_layernorm;           // [d]
  WeightView post_attention_layernorm;  // [d]
  MlaWeights attn;
  bool is_moe = false;
  MlpWeights mlp;  // dense layers
  MoeWeights moe;  // MoE layers
  std::shared_ptr<const void> moe_prepared;  // Device::prepare_moe's (null on the CPU)
};

struct MtpWeights {
  WeightView embed_tokens;      // [V, d] (equal to the main model's in the V3 release)
  WeightView enorm, hnorm;      // [d]
  WeightView eh_proj;           // [d, 2d]
  WeightView shared_head_norm;  // [d]
  WeightView shared_head_head;  // [V, d]
  LayerWeights block;
};

// Layer i's weights, this rank's shard of them (the whole layer when alone).
Result<LayerWeights> load_layer(const Weights& w, const ModelConfig& c, int64_t i, const Shard& shard,
                                const Shard& attn_shard, bool expert_parallel, ShardStore& store) {
  const std::string p = "model.layers." + std::to_string(i);
  LayerWeights L;
  LATENT_ASSIGN_OR_RETURN(L.input_layernorm, w.vector(p + ".input_layernorm.weight", c.hidden_size));
  LATENT_ASSIGN_OR_RETURN(L.post_attention_layernorm, w.vector(p + ".post_attention_layernorm.weight", c.hidden_size));
  store.whole(L.input_layernorm);
  store.whole(L.post_attention_layernorm);
  LATENT_ASSIGN_OR_RETURN(MlaWeights attn, MlaWeights::load(w, c, p + ".self_attn"));
  L.attn = attn.shard(c, attn_shard, store);
  L.is_moe = c.is_moe_layer(i);
  if (L.is_moe) {
    LATENT_ASSIGN_OR_RETURN(MoeWeights moe, MoeWeights::load(w, c, p + ".mlp"));
    L.moe = moe.shard(shard, expert_parallel, store);
  } else {
    LATENT_ASSIGN_OR_RETURN(MlpWeights mlp, MlpWeights::load(w, p + ".mlp", c.hidden_size, c.intermediate_size));
    L.mlp = mlp.shard(shard, store);
  }
  return L;
}

// The layer's dense tensors (the MoE's experts go through Device::prepare_moe, see upload_layer).
std::vector<cpu::WeightView*> dense_views(LayerWeights& L) {
  return {&L.input_layernorm, &L.post_attention_layernorm, &L.attn.q_proj, &L.attn.q_a_proj, &L.attn.q_a_layernorm,
          &L.attn.q_b_proj, &L.attn.kv_a_proj_with_mqa, &L.attn.kv_a_layernorm, &L.attn.kv_b_proj, &L.attn.o_proj,
          &L.mlp.gate_proj, &L.mlp.up_proj, &L.mlp.down_proj};
}

// Bytes prepare_moe copies: the router, the bias and every expert.
int64_t moe_bytes(const MoeWeights& m) {
  int64_t n = weight_view_bytes(m.gate) + weight_view_bytes(m.e_score_correction_bias);
  for (const MlpWeights& e : m.experts) {
    n += weight_view_bytes(e.gate_proj) + weight_view_bytes(e.up_proj) + weight_view_bytes(e.down_proj);
  }
  if (m.has_shared) {
    n += weight_view_bytes(m.shared_experts.gate_proj) + weight_view_bytes(m.shared_experts.up_proj) +
         weight_view_bytes(m.shared_experts.down_proj);
  }
  return n;
}

void plan_layer(WeightUploader& up, LayerWeights& L) {
  for (cpu::WeightView* v : dense_views(L)) up.plan(*v);
  if (L.is_moe) up.plan_bytes(moe_bytes(L.moe));
}

// The layer's weights into the device's memory (the CPU keeps the views as they are).
Status upload_layer(Device& dev, WeightUploader& up, const ModelConfig& c, LayerWeights& L) {
  for (cpu::WeightView* v : dense_views(L)) {
    LATENT_ASSIGN_OR_RETURN(*v, up.upload(*v));
  }
  if (L.is_moe) {
    LATENT_ASSIGN_OR_RETURN(L.moe_prepared, dev.prepare_moe(c, L.moe));
    LATENT_RETURN_IF_ERROR(up.advance(moe_bytes(L.moe)));
  }
  return Status::Ok();
}

// The rows whose attention this rank computes: every row, or with data-parallel attention its share of the
// sequences, rows [begin, end) (`seqs` rebased to begin); rank q's rows are [bounds[q], bounds[q + 1]).
struct AttendRows {
  int64_t begin = 0, end = 0;
  std::vector<SeqSpan> seqs;
  std::vector<int64_t> bounds;  // empty without data-parallel attention
};

AttendRows attend_rows(const std::vector<SeqSpan>& seqs, const Shard* dp) {
  AttendRows a;
  a.end = seqs.empty() ? 0 : seqs.back().offset + seqs.back().n_new;
  if (!dp) {
    a.seqs = seqs;
    return a;
  }
  const auto row_of = [&](int64_t s) { return s < static_cast<int64_t>(seqs.size()) ? seqs[static_cast<size_t>(s)].offset : a.end; };
  for (int q = 0; q < dp->size; ++q) a.bounds.push_back(row_of(Shard{q, dp->size}.range(static_cast<int64_t>(seqs.size())).first));
  a.bounds.push_back(a.end);
  const auto [s0, s1] = dp->range(static_cast<int64_t>(seqs.size()));
  a.begin = row_of(s0);
  a.end = row_of(s1);
  for (int64_t s = s0; s < s1; ++s) {
    SeqSpan r = seqs[static_cast<size_t>(s)];
    r.offset -= a.begin;
    a.seqs.push_back(r);
  }
  return a;
}

// A result's offsets for the batch, and in `rows` the tokens that want logits (every new token of an
// all_logits sequence, else its last).
ForwardResult result_layout(const std::vector<SeqSpan>& seqs, int64_t V, int64_t d, std::vector<int64_t>* rows) {
  ForwardResult r;
  r.vocab_size = V;
  r.hidden_size = d;
  r.logit_offset.push_back(0);
  r.token_offset.push_back(0);
  for (const SeqSpan& s : seqs) {
    for (int64_t i = s.all_logits ? 0 : s.n_new - 1; i < s.n_new; ++i) rows->push_back(s.offset + i);
    r.logit_offset.push_back(static_cast<int64_t>(rows->size()));
    r.token_offset.push_back(s.offset + s.n_new);
  }
  return r;
}

}  // namespace

struct DeepseekModel::Impl {
  ModelConfig config;
  Weights weights;
  ModelOptions options;
  Collective* comm = nullptr;     // set when several ranks share the tensors (this stage's)
  Collective* control = nullptr;  // every rank, when there are several: rank 0 drives through it
  int rank = 0;                   // in control
  Shard shard;                    // this rank's part of the tensors; {0, 1} alone
  Stage stage;                    // this rank's layers: all of them without pipeline stages
  std::unique_ptr<StageLink> link;  // with pipeline stages
  bool has_mtp = false;           // the model has an MTP module (held by the last stage)
  bool dp_attention = false;      // attention by sequences over comm's ranks (ModelOptions::dp_attention)
  ShardStore store;
  RepackedWeights repacked;  // BF16 linear weights in the CPU kernels' tile order (the views point into it)
  bool following = false;      // inside follow(): forward runs rank 0's step
  bool stopped = false;        // rank 0 sent the stop step
  std::unique_ptr<KvCache> replica;  // follower ranks: the latent cache, replicated
  WeightView embed_tokens;  // [V, d] (first stage)
  WeightView norm;          // [d] (last stage)
  WeightView lm_head;       // [V', d]: this rank's vocabulary rows (last stage)
  std::vector<LayerWeights> layers;  // this stage's: layer stage.layer_begin + i
  std::vector<MtpWeights> mtp;  // empty, or module 0 of num_nextn_predict_layers (last stage)
  float softmax_scale = 0;
  std::unique_ptr<Device> dev;  // where the ops run (ModelOptions::device)
  UploadStats upload_stats;     // the weights' copy into dev's memory at load
  // Activation buffers in the device's memory, kept between layers and forwards (a 512-token prefill needs
  // tens of MB: allocated per call they cost page faults and munmap). The model runs one forward at a time.
  struct Scratch {
    DeviceBuffer x, h, q, qa, qa_norm, kv, q_lat, o_lat, attn, ff, y, sel, e, cat, hid, logits;
    std::vector<int32_t> ids;       // [T] the batch's token ids
    std::vector<int32_t> idx;       // traces: one MoE layer's routing
    std::vector<float> wt;
    Vec part, gathered;             // data-parallel attention (host): this rank's rows, every rank's
    void bind(Device* d) {
      for (DeviceBuffer* b : {&x, &h, &q, &qa, &qa_norm, &kv, &q_lat, &o_lat, &attn, &ff, &y, &sel, &e, &cat, &hid, &logits}) b->bind(d);
    }
  };
  mutable Scratch scratch;

  Status check_batch(const std::vector<SeqSpan>& seqs, const KvCache& cache) const;
  // forward() after its checks: begin() with scratch.ids, the layers, the head.
  Result<ForwardResult> forward_once(const std::vector<SeqSpan>& seqs, KvCache& cache, const ForwardOptions& options,
                                     int graph_key);
  // forward_mtp() after its checks, on the last stage: begin() with scratch.ids; hid [T, d] holds the main model's
  // hidden states in device memory (uploaded before begin(), so that the step itself reads only device memory).
  Result<ForwardResult> mtp_once(const std::vector<SeqSpan>& seqs, const float* hid, KvCache& cache,
                                 const ForwardOptions& options, int graph_key);
  // One step, step(graph_key) being forward_once or mtp_once. A step without a trace (and on one rank) may be
  // captured into a graph of its batch bucket (engine/device.h), one per kind of step and result, as the result
  // buffers differ. Keys: 1 logits, 2 logits + hidden, 3 tokens, 4 tokens + hidden; an MTP-module step 5-8 in the
  // same order. A capture that fails leaves the step unrun: it runs again eagerly. A step that still fails is
  // abandoned on the device (a capture left open would record the next work on its stream).
  template <class Step>
  Result<ForwardResult> run_step(const ForwardOptions& options, bool mtp, Step&& step) {
    const int graph_key = options.trace || control ? 0
                                                   : (mtp ? 5 : 1) + (options.return_hidden ? 1 : 0) +
                                                         (options.select.empty() ? 0 : 2);
    auto r = step(graph_key);
    if (!r.ok() && graph_key != 0 && dev->take_capture_failure()) r = step(0);
    if (!r.ok()) dev->abandon_step();
    return r;
  }
  Status drive(ModelStep::Kind kind, std::vector<ModelStep::Seq>& payload, KvCache& cache, bool return_hidden);
  // A failure once the ranks started a step leaves them out of step: end the group (Collective::abort).
  Error out_of_step(const Error& e) const {
    if (control && !following && options.on_ranks_lost) options.on_ranks_lost(e);
    if (control) control->abort(e.message);
    return e;
  }
  // Not the last stage: x goes on to the next stage (null: nothing to send, the MTP module runs on the last
  // stage only); rank 0 gets the logits (and hidden states) back from the last, the others return nothing.
  Result<ForwardResult> pass_on(const std::vector<SeqSpan>& seqs, const float* x, int64_t n, bool return_hidden) const;
  Status decoder_layer(const LayerWeights& L, int64_t cache_layer, const std::vector<SeqSpan>& seqs,
                       const AttendRows& at, int64_t T, float* x, KvCache& cache, ForwardTrace* trace) const;
  AttendRows attending(const std::vector<SeqSpan>& seqs) const { return attend_rows(seqs, dp_attention ? &shard : nullptr); }
  Result<ForwardResult> finish(const std::vector<SeqSpan>& seqs, const float* x, int64_t T, const WeightView& final_norm,
                               const WeightView& head, const ForwardOptions& opt) const;
  // Trace: n floats of device memory, as a host vector.
  Status trace_push(std::vector<std::vector<float>>& into, const float* x, int64_t n) const {
    LATENT_ASSIGN_OR_RETURN(std::vector<float> v, dev->to_host(x, n));
    into.push_back(std::move(v));
    return Status::Ok();
  }
};

DeepseekModel::DeepseekModel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DeepseekModel::~DeepseekModel() {
  if (impl_) (void)stop_followers();
}
const ModelConfig& DeepseekModel::config() const { return impl_->config; }
const Weights& DeepseekModel::weights() const { return impl_->weights; }
bool DeepseekModel::has_mtp() const { return impl_->has_mtp; }
int64_t DeepseekModel::weight_bytes() const { return impl_->store.held_bytes(); }
const UploadStats& DeepseekModel::upload_stats() const { return impl_->upload_stats; }
size_t DeepseekModel::touch_weights(const std::function<bool(size_t done, size_t total)>& progress) const {
  // Random weights: nothing mapped to read; on a GPU the weights were uploaded at load and the mapping is cold.
  if (impl_->weights.is_placeholder() || !impl_->dev->is_host()) return 0;
  return impl_->store.touch_mapped(progress);
}
int64_t DeepseekModel::stage_link_bytes() const { return impl_->link ? impl_->link->sent_bytes() : 0; }
const Device& DeepseekModel::device() const { return *impl_->dev; }
Result<KvCache> DeepseekModel::make_cache(int64_t n_blocks) const {
  return impl_->dev->make_cache(impl_->config, n_blocks, impl_->dev->cache_dtype());
}
int64_t DeepseekModel::cache_blocks_for_bytes(size_t bytes) const {
  return KvCache::blocks_for_bytes(impl_->config, bytes, impl_->dev->cache_dtype());
}

namespace {

// The weights only linear() reads (repack_linears' candidates): every layer's projections, router and experts,
// the MTP module's, and the head unless it is the embedding table (embedding_row reads that row-major).
std::vector<WeightView*> linear_weights(std::vector<LayerWeights>& layers, std::vector<MtpWeights>& mtp, WeightView* head) {
  std::vector<WeightView*> v;
  const auto mlp = [&](MlpWeights& w) { v.insert(v.end(), {&w.gate_proj, &w.up_proj, &w.down_proj}); };
  const auto layer = [&](LayerWeights& L) {
    v.insert(v.end(), {&L.attn.q_proj, &L.attn.q_a_proj, &L.attn.q_b_proj, &L.attn.kv_a_proj_with_mqa, &L.attn.o_proj});
    mlp(L.mlp);
    if (!L.is_moe) return;
    v.push_back(&L.moe.gate);
    for (MlpWeights& e : L.moe.experts) mlp(e);
    if (L.moe.has_shared) mlp(L.moe.shared_experts);
  };
  for (LayerWeights& L : layers) layer(L);
  for (MtpWeights& t : mtp) {
    v.insert(v.end(), {&t.eh_proj, &t.shared_head_head});
    layer(t.block);
  }
  if (head) v.push_back(head);
  return v;
}

}  // namespace

int64_t DeepseekModel::repacked_bytes() const { return static_cast<int64_t>(impl_->repacked.bytes); }

Result<std::unique_ptr<DeepseekModel>> DeepseekModel::load(const std::string& dir, const ModelOptions& options) {
  LATENT_ASSIGN_OR_RETURN(ModelConfig config, ModelConfig::load(dir));
  if (options.random_weights_seed != 0) return create(std::move(config), Weights::placeholder(), options);
  LATENT_ASSIGN_OR_RETURN(Weights weights, Weights::open(dir, options.weights));
  return create(std::move(config), std::move(weights), options);
}

Result<std::unique_ptr<DeepseekModel>> DeepseekModel::create(ModelConfig config, Weights weights,
                                                             const ModelOptions& options) {
  auto m = std::make_unique<Impl>();
  m->config = std::move(config);
  m->weights = std::move(weights);
  m->options = options;
  const ModelConfig& c = m->config;
  const Weights& w = m->weights;
  const int64_t d = c.hidden_size, V = c.vocab_size;
  Collective* world = options.world ? options.world : options.comm;
  if (world && world->size() > 1) {
    m->control = world;
    m->rank = world->rank();
  }
  const int stages = std::max(1, options.pipeline_stages);
  const uint64_t seed = w.is_placeholder() ? std::max<uint64_t>(options.random_weights_seed, 1) : 0;
  LATENT_ASSIGN_OR_RETURN(m->dev, make_device(options.device, m->config, options.pool, seed));
  if (options.wrap_device) m->dev = options.wrap_device(std::move(m->dev));
  m->scratch.bind(m->dev.get());
  if (!m->dev->is_host() && (world && world->size() > 1)) {
    return make_error(ErrorCode::kUnsupported, "--device " + m->dev->name() + ": expected one rank (several ranks, "
                                               "--tp/--pp, run on the CPU only for now), found " +
                                               std::to_string(world->size()) + " ranks");
  }
  if (!world && stages > 1) {
    return make_error(ErrorCode::kInvalidArgument, "--pp " + std::to_string(stages) + ": expected the ranks of "
                                                   "the stages (ModelOptions::world), found none");
  }
  const int per_stage = world ? world->size() / stages : 1;
  if (world && (world->size() % stages != 0 || (options.comm ? options.comm->size() : 1) != per_stage)) {
    return make_error(ErrorCode::kInvalidArgument, "--pp " + std::to_string(stages) + ": expected " +
                                                       std::to_string(world->size()) + " ranks in stages of " +
                                                       std::to_string(per_stage) + " (--tp), found " +
                                                       std::to_string(options.comm ? options.comm->size() : 1));
  }
  LATENT_ASSIGN_OR_RETURN(m->stage, Stage::of(c.num_hidden_layers, m->rank / per_stage, stages));
  if (stages > 1) m->link = std::make_unique<StageLink>(*world, options.comm, m->stage);
  if (options.comm && options.comm->size() > 1) {
    m->comm = options.comm;
    m->shard = Shard{options.comm->rank(), options.comm->size()};
    m->dp_attention = options.dp_attention;
    if (!m->dp_attention && c.num_attention_heads % m->shard.size != 0) {
      return make_error(ErrorCode::kInvalidArgument, "tensor parallel: expected num_attention_heads (" +
                                                         std::to_string(c.num_attention_heads) +
                                                         ") divisible by the ranks, found " +
                                                         std::to_string(m->shard.size) + " ranks");
    }
  }
  // This rank's tensors only: the embedding on the first stage, its stage's layers, the head and MTP on the last.
  // First every view (the mapping, nothing read), then their upload, each distinct tensor once (a tied head,
  // MTP's copies of the embedding and head: engine/weight_upload.h), with progress.
  ShardStore& store = m->store;
  const Stage& stage = m->stage;
  const auto [v0, v1] = m->shard.range(V);
  const Shard attn_shard = m->dp_attention ? Shard{} : m->shard;  // whole attention with DP attention
  LATENT_ASSIGN_OR_RETURN(WeightView embed, w.matrix("model.embed_tokens.weight", V, d));
  WeightView head_host;  // lm_head as mapped (MTP's shared head is compared with it)
  if (stage.first()) m->embed_tokens = store.whole(embed);
  if (stage.last()) {
    LATENT_ASSIGN_OR_RETURN(m->norm, w.vector("model.norm.weight", d));
    store.whole(m->norm);
    if (c.tie_word_embeddings && !w.has("lm_head.weight")) {
      m->lm_head = store.rows(embed, v0, v1);
    } else {
      LATENT_ASSIGN_OR_RETURN(WeightView head, w.matrix("lm_head.weight", V, d));
      m->lm_head = store.rows(head, v0, v1);
    }
    head_host = m->lm_head;
  }
  for (int64_t i = stage.layer_begin; i < stage.layer_end; ++i) {
    LATENT_ASSIGN_OR_RETURN(LayerWeights L, load_layer(w, c, i, m->shard, attn_shard, options.expert_parallel, store));
    m->layers.push_back(std::move(L));
  }
  m->has_mtp = c.num_nextn_predict_layers > 0 && options.load_mtp;
  if (m->has_mtp && stage.last()) {
    const int64_t i = c.num_hidden_layers;
    const std::string p = "model.layers." + std::to_string(i);
    MtpWeights t;
    LATENT_ASSIGN_OR_RETURN(t.embed_tokens, w.matrix(p + ".embed_tokens.weight", V, d));
    LATENT_ASSIGN_OR_RETURN(t.enorm, w.vector(p + ".enorm.weight", d));
    LATENT_ASSIGN_OR_RETURN(t.hnorm, w.vector(p + ".hnorm.weight", d));
    LATENT_ASSIGN_OR_RETURN(t.eh_proj, w.matrix(p + ".eh_proj.weight", d, 2 * d));
    LATENT_ASSIGN_OR_RETURN(t.shared_head_norm, w.vector(p + ".shared_head.norm.weight", d));
    LATENT_ASSIGN_OR_RETURN(WeightView head, w.matrix(p + ".shared_head.head.weight", V, d));
    for (const WeightView* v : {&t.embed_tokens, &t.enorm, &t.hnorm, &t.eh_proj, &t.shared_head_norm}) store.whole(*v);
    t.shared_head_head = store.rows(head, v0, v1);
    LATENT_ASSIGN_OR_RETURN(t.block, load_layer(w, c, i, m->shard, attn_shard, options.expert_parallel, store));
    m->mtp.push_back(std::move(t));
  }
  if (m->dev->is_host() && options.repack_weights && repack_applies() && !w.is_placeholder()) {
    const bool tied_head = stage.last() && c.tie_word_embeddings && !w.has("lm_head.weight");
    LATENT_RETURN_IF_ERROR(repack_linears(linear_weights(m->layers, m->mtp, tied_head || !stage.last() ? nullptr : &m->lm_head), m->weights, store, m->repacked, options.pool));
  }
  // Contents are compared only where an upload copies (the CPU's views are the mapping: nothing to share) and
  // there are contents (random weights: a placeholder's data is a marker, never read).
  const bool copies = !m->dev->is_host();
  WeightUploader up([dev = m->dev.get()](const WeightView& v) { return dev->upload(v); }, copies && !w.is_placeholder(),
                    copies ? options.on_upload : nullptr);
  for (WeightView* v : {&m->embed_tokens, &m->norm, &m->lm_head}) up.plan(*v);
  for (LayerWeights& L : m->layers) plan_layer(up, L);
  for (MtpWeights& t : m->mtp) {
    plan_layer(up, t.block);
    for (WeightView* v : {&t.embed_tokens, &t.enorm, &t.hnorm, &t.eh_proj, &t.shared_head_norm, &t.shared_head_head}) {
      up.plan(*v);
    }
  }
  LATENT_RETURN_IF_ERROR(up.advance(0));  // the total, before the first copy
  LATENT_ASSIGN_OR_RETURN(m->embed_tokens, up.upload(m->embed_tokens));
  LATENT_ASSIGN_OR_RETURN(m->norm, up.upload(m->norm));
  LATENT_ASSIGN_OR_RETURN(m->lm_head, up.upload(m->lm_head));
  for (LayerWeights& L : m->layers) LATENT_RETURN_IF_ERROR(upload_layer(*m->dev, up, c, L));
  for (MtpWeights& t : m->mtp) {
    LATENT_RETURN_IF_ERROR(upload_layer(*m->dev, up, c, t.block));
    LATENT_ASSIGN_OR_RETURN(t.embed_tokens, up.upload(t.embed_tokens, &embed));
    LATENT_ASSIGN_OR_RETURN(t.shared_head_head, up.upload(t.shared_head_head, head_host.data ? &head_host : nullptr));
    for (WeightView* v : {&t.enorm, &t.hnorm, &t.eh_proj, &t.shared_head_norm}) {
      LATENT_ASSIGN_OR_RETURN(*v, up.upload(*v));
    }
  }
  m->upload_stats = up.stats();
  m->softmax_scale = static_cast<float>(c.softmax_scale());
  LATENT_LOG_DEBUG("DeepseekModel on %s: %s, %lld layers, %s MTP, rank %d (stage %d of %d, layers [%lld, %lld), tensor "
                   "part %d of %d) holds %.1f MB of weights (%.1f MB copied)",
                   m->dev->name().c_str(), c.architecture.c_str(), static_cast<long long>(c.num_hidden_layers), m->has_mtp ? "with" : "no",
                   m->rank, stage.index, stage.count, static_cast<long long>(stage.layer_begin),
                   static_cast<long long>(stage.layer_end), m->shard.rank, m->shard.size, store.held_bytes() / 1e6,
                   store.copied_bytes() / 1e6);
  return std::unique_ptr<DeepseekModel>(new DeepseekModel(std::move(m)));
}

Status DeepseekModel::Impl::check_batch(const std::vector<SeqSpan>& seqs, const KvCache& cache) const {
  if (cache.n_layers() != config.n_cache_layers() || cache.kv_lora_rank() != config.kv_lora_rank ||
      cache.rope_dim() != config.qk_rope_head_dim) {
    return make_error(ErrorCode::kInvalidArgument,
                      "KvCache: expected " + std::to_string(config.n_cache_layers()) + " layers x [" +
                          std::to_string(config.kv_lora_rank) + " + " + std::to_string(config.qk_rope_head_dim) +
                          "], found " + std::to_string(cache.n_layers()) + " x [" +
                          std::to_string(cache.kv_lora_rank()) + " + " + std::to_string(cache.rope_dim()) + "]");
  }
  for (size_t s = 0; s < seqs.size(); ++s) {
    const SeqSpan& q = seqs[s];
    const std::string who = "sequence " + std::to_string(s) + ": ";
    if (q.n_new <= 0) return make_error(ErrorCode::kInvalidArgument, who + "expected at least one new token, found 0");
    if (q.n_cached < 0) return make_error(ErrorCode::kInvalidArgument, who + "n_cached < 0");
    const int64_t need = KvCache::blocks_needed(q.n_cached + q.n_new);
    if (static_cast<int64_t>(q.blocks.size()) < need) {
      return make_error(ErrorCode::kInvalidArgument, who + "expected a block table of at least " +
                                                         std::to_string(need) + " blocks for " +
                                                         std::to_string(q.n_cached + q.n_new) + " tokens, found " +
                                                         std::to_string(q.blocks.size()));
    }
    for (int64_t b = 0; b < need; ++b) {
      if (cache.ref_count(q.blocks[static_cast<size_t>(b)]) <= 0) {
        return make_error(ErrorCode::kInvalidArgument, who + "block table entry " + std::to_string(b) +
                                                           ": expected an allocated block, found id " +
                                                           std::to_string(q.blocks[static_cast<size_t>(b)]));
      }
    }
  }
  return Status::Ok();
}

// One decoder block over the flattened batch; x [T, d] is the residual stream (device memory), updated in place.
Status DeepseekModel::Impl::decoder_layer(const LayerWeights& L, int64_t cache_layer, const std::vector<SeqSpan>& seqs,
                                          const AttendRows& at, int64_t T, float* x, KvCache& cache,
                                          ForwardTrace* trace) const {
  const ModelConfig& c = config;
  Device& D = *dev;
  const int64_t d = c.hidden_size, H = L.attn.n_heads, R = c.kv_lora_rank, P = c.qk_rope_head_dim;
  const int64_t nope = c.qk_nope_head_dim, vd = c.v_head_dim, qk = nope + P;
  const float eps = static_cast<float>(c.rms_norm_eps);
  const MlaWeights& a = L.attn;
  Scratch& S = scratch;

  // ---- attention: every token's latent row into the cache; queries for the rows this rank attends, A of them
  // from row a0 (all T, or its sequences' with data-parallel attention)
  const int64_t a0 = at.begin, A = at.end - at.begin;
  LATENT_ASSIGN_OR_RETURN(float* h, S.h.resize(T * d));
  LATENT_RETURN_IF_ERROR(D.rms_norm(x, T, L.input_layernorm, eps, h));  // [T, d]
  LATENT_ASSIGN_OR_RETURN(float* q, S.q.resize(A * H * qk));          // [A, H, nope + P]
  if (A > 0 && a.q_lora) {
    const int64_t qr = a.q_a_proj.rows;
    LATENT_ASSIGN_OR_RETURN(float* qa, S.qa.resize(A * qr));
    LATENT_ASSIGN_OR_RETURN(float* qa_norm, S.qa_norm.resize(A * qr));
    LATENT_RETURN_IF_ERROR(D.linear(h + a0 * d, A, a.q_a_proj, qa));  // [A, q_lora_rank]
    LATENT_RETURN_IF_ERROR(D.rms_norm(qa, A, a.q_a_layernorm, eps, qa_norm));
    LATENT_RETURN_IF_ERROR(D.linear(qa_norm, A, a.q_b_proj, q));  // [A, H * (nope + P)]
  } else if (A > 0) {
    LATENT_RETURN_IF_ERROR(D.linear(h + a0 * d, A, a.q_proj, q));  // [A, H * (nope + P)]
  }
  LATENT_RETURN_IF_ERROR(D.rope_q(q, a0, A, H, nope, P));
  LATENT_ASSIGN_OR_RETURN(float* kv, S.kv.resize(T * (R + P)));
  LATENT_RETURN_IF_ERROR(D.linear(h, T, a.kv_a_proj_with_mqa, kv));  // [T, R + P]: [latent | rope key]
  // Cache row of each new token: [kv_a_layernorm(latent) R | rope(k_rope) P]
  LATENT_RETURN_IF_ERROR(D.write_cache(kv, a.kv_a_layernorm, eps, cache_layer, cache));
  // MLA core (Device::mla): weight absorption (attention in the latent space, MQA with one KV head of width
  // R + P), or on the CPU's fast precision decompressed K/V for long prefill chunks.
  LATENT_ASSIGN_OR_RETURN(float* q_lat, S.q_lat.resize(A * H * R));  // [A, H, R]
  LATENT_ASSIGN_OR_RETURN(float* o_lat, S.o_lat.resize(A * H * R));  // [A, H, R]
  LATENT_ASSIGN_OR_RETURN(float* attn, S.attn.resize(A * H * vd));   // [A, H * v]
  LATENT_RETURN_IF_ERROR(D.mla(q, A, H * qk, at.seqs, a.kv_b_proj, H, nope, P, vd, cache_layer, cache, softmax_scale,
                               q_lat, o_lat, attn));
  if (at.bounds.empty()) {
    LATENT_RETURN_IF_ERROR(D.linear(attn, T, a.o_proj, h));  // [T, d]
    if (comm) LATENT_RETURN_IF_ERROR(comm->all_reduce_sum(h, T * d));  // the heads' parts, rank order
  } else {  // (host memory: several ranks) every rank's rows, padded to the most any rank has: [ranks, chunk, d] -> h [T, d]
    int64_t chunk = 0;
    for (size_t r = 0; r + 1 < at.bounds.size(); ++r) chunk = std::max(chunk, at.bounds[r + 1] - at.bounds[r]);
    S.part.resize(static_cast<size_t>(chunk * d));
    S.gathered.resize(static_cast<size_t>(shard.size * chunk * d));
    if (A > 0) LATENT_RETURN_IF_ERROR(D.linear(attn, A, a.o_proj, S.part.data()));  // [A, d]
    LATENT_RETURN_IF_ERROR(comm->all_gather(S.part.data(), chunk * d, S.gathered.data()));
    for (int r = 0; r < shard.size; ++r) {
      const int64_t r0 = at.bounds[static_cast<size_t>(r)], r1 = at.bounds[static_cast<size_t>(r) + 1];
      std::copy(S.gathered.begin() + r * chunk * d, S.gathered.begin() + (r * chunk + r1 - r0) * d, h + r0 * d);
    }
  }
  LATENT_RETURN_IF_ERROR(D.add(h, T * d, x));  // x += attention

  // ---- feed-forward
  LATENT_RETURN_IF_ERROR(D.rms_norm(x, T, L.post_attention_layernorm, eps, h));  // [T, d]
  LATENT_ASSIGN_OR_RETURN(float* ff, S.ff.resize(T * d));                     // [T, d]
  if (L.is_moe) {
    LATENT_RETURN_IF_ERROR(D.moe(c, L.moe, L.moe_prepared.get(), h, T, ff, trace ? &S.idx : nullptr,
                                 trace ? &S.wt : nullptr));
    if (trace) {
      trace->moe_topk_idx.push_back(S.idx);
      trace->moe_topk_weight.push_back(S.wt);
    }
  } else {
    LATENT_RETURN_IF_ERROR(D.mlp(L.mlp, h, T, ff));
  }
  if (comm) LATENT_RETURN_IF_ERROR(comm->all_reduce_sum(ff, T * d));  // experts' / intermediate parts
  return D.add(ff, T * d, x);  // x += feed-forward
}

// Final norm, then the head over the rows that want logits (each rank its vocabulary rows, then all-gathered).
Result<ForwardResult> DeepseekModel::Impl::finish(const std::vector<SeqSpan>& seqs, const float* x, int64_t T,
                                                  const WeightView& final_norm, const WeightView& head,
                                                  const ForwardOptions& opt) const {
  Device& D = *dev;
  const int64_t d = config.hidden_size, V = config.vocab_size;
  std::vector<int64_t> rows;
  ForwardResult r = result_layout(seqs, V, d, &rows);
  float* y = nullptr;  // [T, d]: straight into the result when the caller wants it
  if (opt.return_hidden) {
    LATENT_ASSIGN_OR_RETURN(y, D.host_out(r.hidden, T * d));
  } else {
    LATENT_ASSIGN_OR_RETURN(y, scratch.y.resize(T * d));
  }
  LATENT_RETURN_IF_ERROR(D.rms_norm(x, T, final_norm, static_cast<float>(config.rms_norm_eps), y));  // [T, d]
  const int64_t n = static_cast<int64_t>(rows.size());
  if (!opt.select.empty() && static_cast<int64_t>(opt.select.size()) != n) {
    return make_error(ErrorCode::kInvalidArgument, "forward: expected one token selection per logit row (" +
                                                       std::to_string(n) + "), found " + std::to_string(opt.select.size()));
  }
  LATENT_ASSIGN_OR_RETURN(float* sel, scratch.sel.resize(n * d));  // [n, d]
  LATENT_RETURN_IF_ERROR(D.gather_rows(y, d, rows, sel));
  if (!comm && !opt.select.empty() && !link) {  // tokens, not logits: selected where the logits are
    LATENT_ASSIGN_OR_RETURN(float* logits, scratch.logits.resize(n * V));
    LATENT_RETURN_IF_ERROR(D.linear(sel, n, head, logits));  // [n, V]
    LATENT_RETURN_IF_ERROR(D.select_tokens(logits, V, opt.select, &r.ids));
  } else if (!comm) {
    LATENT_ASSIGN_OR_RETURN(float* logits, D.host_out(r.logits, n * V));
    LATENT_RETURN_IF_ERROR(D.linear(sel, n, head, logits));  // [n, V]
    LATENT_RETURN_IF_ERROR(D.fetch_out(r.logits, logits));
  } else {  // several ranks (host memory)
    r.logits.resize(static_cast<size_t>(n * V));
    const int64_t chunk = (V + shard.size - 1) / shard.size;  // rows per rank, padded to the largest part
    Vec part(static_cast<size_t>(n * chunk), 0.f), all(static_cast<size_t>(shard.size * n * chunk));
    LATENT_RETURN_IF_ERROR(D.linear(sel, d, n, head, part.data(), chunk));  // [n, V'] in [n, chunk]
    LATENT_RETURN_IF_ERROR(comm->all_gather(part.data(), n * chunk, all.data()));   // [ranks, n, chunk]
    for (int q = 0; q < shard.size; ++q) {
      const auto [q0, q1] = Shard{q, shard.size}.range(V);
      for (int64_t i = 0; i < n; ++i) {
        const float* src = all.data() + (q * n + i) * chunk;
        std::copy(src, src + (q1 - q0), r.logits.begin() + i * V + q0);
      }
    }
  }
  if (opt.return_hidden) LATENT_RETURN_IF_ERROR(D.fetch_out(r.hidden, y));
  if (link) {  // the last stage's leader sends the result to rank 0
    std::vector<const Vec*> parts = {&r.logits};
    if (opt.return_hidden) parts.push_back(&r.hidden);
    LATENT_RETURN_IF_ERROR(link->send_to_driver(parts));
  }
  return r;
}

Result<ForwardResult> DeepseekModel::Impl::pass_on(const std::vector<SeqSpan>& seqs, const float* x, int64_t n,
                                                   bool return_hidden) const {
  if (x) LATENT_RETURN_IF_ERROR(link->send_hidden(x, n));
  if (rank != 0) return ForwardResult{};
  std::vector<int64_t> rows;
  ForwardResult r = result_layout(seqs, config.vocab_size, config.hidden_size, &rows);
  r.logits.resize(rows.size() * static_cast<size_t>(config.vocab_size));
  std::vector<Vec*> parts = {&r.logits};
  if (return_hidden) {
    r.hidden.resize(static_cast<size_t>(r.token_offset.back() * config.hidden_size));
    parts.push_back(&r.hidden);
  }
  LATENT_RETURN_IF_ERROR(link->receive_from_last(parts));
  return r;
}

namespace {

// Flattens the batch: each sequence's row offset in the [T, ...] activations.
template <typename Input>
std::vector<SeqSpan> flatten(std::span<const Input> batch, int64_t (*n_of)(const Input&)) {
  std::vector<SeqSpan> seqs;
  int64_t off = 0;
  for (const Input& in : batch) {
    SeqSpan s{off, n_of(in), in.n_cached, in.block_table, in.all_logits};
    off += s.n_new;
    seqs.push_back(s);
  }
  return seqs;
}

// A result whose logits came to the host (several ranks, pipeline stages) gets its tokens selected here.
Result<ForwardResult> with_selection(Result<ForwardResult> r, const ForwardOptions& options) {
  if (!r.ok() || options.select.empty() || !r->ids.empty()) return r;
  const int64_t rows = r->vocab_size > 0 ? static_cast<int64_t>(r->logits.size()) / r->vocab_size : 0;
  if (rows != static_cast<int64_t>(options.select.size())) {
    return make_error(ErrorCode::kInvalidArgument, "forward: expected one token selection per logit row (" +
                                                       std::to_string(rows) + "), found " +
                                                       std::to_string(options.select.size()));
  }
  select_on_host(r->logits.data(), r->vocab_size, options.select, &r->ids);
  r->logits.clear();
  return r;
}

}  // namespace

Result<ForwardResult> DeepseekModel::forward(std::span<const SequenceInput> batch, KvCache& cache,
                                             const ForwardOptions& options) {
  Impl& m = *impl_;
  const ModelConfig& c = m.config;
  if (batch.empty()) return make_error(ErrorCode::kInvalidArgument, "forward: expected at least one sequence, found 0");
  auto seqs = flatten<SequenceInput>(batch, [](const SequenceInput& s) { return static_cast<int64_t>(s.tokens.size()); });
  LATENT_RETURN_IF_ERROR(m.check_batch(seqs, cache));
  std::vector<int32_t>& ids = m.scratch.ids;  // [T]
  ids.clear();
  for (size_t s = 0; s < batch.size(); ++s) {
    for (const int32_t id : batch[s].tokens) {
      if (id < 0 || id >= c.vocab_size) {
        return make_error(ErrorCode::kInvalidArgument, "sequence " + std::to_string(s) + ": token id " +
                                                           std::to_string(id) + " out of range [0, " +
                                                           std::to_string(c.vocab_size) + ")");
      }
      ids.push_back(id);
    }
  }
  if (m.control) {  // rank 0 tells the other ranks to run this forward too
    std::vector<ModelStep::Seq> payload;
    for (const SequenceInput& in : batch) {
      payload.push_back({{in.tokens.begin(), in.tokens.end()}, in.n_cached, {in.block_table.begin(), in.block_table.end()},
                         in.all_logits, {}});
    }
    LATENT_RETURN_IF_ERROR(m.drive(ModelStep::Kind::kForward, payload, cache, options.return_hidden));
  }
  auto r = m.run_step(options, /*mtp=*/false, [&](int key) { return m.forward_once(seqs, cache, options, key); });
  return with_selection(std::move(r), options);
}

Result<ForwardResult> DeepseekModel::Impl::forward_once(const std::vector<SeqSpan>& seqs, KvCache& cache,
                                                        const ForwardOptions& options, int graph_key) {
  Impl& m = *this;
  Device& D = *m.dev;
  const int64_t d = m.config.hidden_size;
  const int64_t T = seqs.back().offset + seqs.back().n_new;
  ForwardTrace* trace = options.trace;
  if (trace) *trace = ForwardTrace{};
  LATENT_RETURN_IF_ERROR(D.begin(seqs, m.scratch.ids, cache, graph_key));  // positions, block tables, ids
  LATENT_ASSIGN_OR_RETURN(float* x, m.scratch.x.resize(T * d));  // [T, d]
  if (m.stage.first()) {
    LATENT_RETURN_IF_ERROR(D.embed(m.embed_tokens, x));  // embedding: x [T, d]
  } else {  // x from the previous stage
    if (Status st = m.link->receive_hidden(x, T * d); !st.ok()) return m.out_of_step(st.error());
  }
  if (trace) LATENT_RETURN_IF_ERROR(m.trace_push(trace->layer_outputs, x, T * d));
  const AttendRows at = m.attending(seqs);

  for (int64_t l = m.stage.layer_begin; l < m.stage.layer_end; ++l) {
    const LayerWeights& L = m.layers[static_cast<size_t>(l - m.stage.layer_begin)];
    Status st = m.decoder_layer(L, l, seqs, at, T, x, cache, trace);  // x [T, d]
    if (!st.ok()) return m.out_of_step(st.error());
    if (trace) LATENT_RETURN_IF_ERROR(m.trace_push(trace->layer_outputs, x, T * d));
  }
  if (!m.stage.last()) {  // on to the next stage; rank 0 gets the logits back
    auto r = m.pass_on(seqs, x, T * d, options.return_hidden);
    if (!r.ok()) return m.out_of_step(r.error());
    return r;
  }
  if (trace) {
    LATENT_ASSIGN_OR_RETURN(trace->hidden_prenorm, D.to_host(x, T * d));
  }
  auto r = m.finish(seqs, x, T, m.norm, m.lm_head, options);  // logits [rows, V]
  if (!r.ok()) return m.out_of_step(r.error());
  return r;
}

Result<ForwardResult> DeepseekModel::forward_mtp(std::span<const MtpSequenceInput> batch, KvCache& cache,
                                                 const ForwardOptions& options) {
  Impl& m = *impl_;
  Device& D = *m.dev;
  const ModelConfig& c = m.config;
  const int64_t d = c.hidden_size;
  if (!m.has_mtp) {
    return make_error(ErrorCode::kUnsupported, "forward_mtp: expected a model with an MTP module "
                                               "(num_nextn_predict_layers > 0 and load_mtp), found none");
  }
  if (batch.empty()) return make_error(ErrorCode::kInvalidArgument, "forward_mtp: expected at least one sequence");
  auto seqs = flatten<MtpSequenceInput>(batch, [](const MtpSequenceInput& s) { return static_cast<int64_t>(s.next_tokens.size()); });
  LATENT_RETURN_IF_ERROR(m.check_batch(seqs, cache));
  const int64_t T = seqs.back().offset + seqs.back().n_new;
  std::vector<int32_t>& ids = m.scratch.ids;  // [T] t[i+1]
  ids.clear();
  for (size_t s = 0; s < batch.size(); ++s) {
    if (!batch[s].hidden) return make_error(ErrorCode::kInvalidArgument, "forward_mtp: sequence " + std::to_string(s) + ": hidden is null");
    for (const int32_t id : batch[s].next_tokens) {
      if (id < 0 || id >= c.vocab_size) {
        return make_error(ErrorCode::kInvalidArgument, "forward_mtp: sequence " + std::to_string(s) + ": token id " +
                                                           std::to_string(id) + " out of range");
      }
      ids.push_back(id);
    }
  }
  if (m.control) {
    std::vector<ModelStep::Seq> payload;
    for (size_t s = 0; s < batch.size(); ++s) {
      const MtpSequenceInput& in = batch[s];
      payload.push_back({{in.next_tokens.begin(), in.next_tokens.end()}, in.n_cached,
                         {in.block_table.begin(), in.block_table.end()}, in.all_logits,
                         {in.hidden, in.hidden + seqs[s].n_new * d}});
    }
    LATENT_RETURN_IF_ERROR(m.drive(ModelStep::Kind::kForwardMtp, payload, cache, false));
  }
  if (!m.stage.last()) {  // the MTP module is on the last stage: rank 0 gets its logits back
    auto r = m.pass_on(seqs, nullptr, 0, false);
    if (!r.ok()) return m.out_of_step(r.error());
    return with_selection(std::move(r), options);
  }
  // The main model's hidden states [T, d] into device memory (the CPU: a copy into scratch, T x d floats) before
  // the step begins, so that the step reads device memory only and a device with graphs may capture it.
  Impl::Scratch& S = m.scratch;
  auto hid_or = S.hid.resize(T * d);
  if (!hid_or.ok()) return m.out_of_step(hid_or.error());  // the other ranks are in the step already
  float* hid = *hid_or;
  for (size_t s = 0; s < batch.size(); ++s) {
    const int64_t off = seqs[s].offset, n = seqs[s].n_new;
    if (D.is_host()) {
      std::copy(batch[s].hidden, batch[s].hidden + n * d, hid + off * d);
    } else if (Status st = D.from_host(batch[s].hidden, n * d, hid + off * d); !st.ok()) {
      return m.out_of_step(st.error());
    }
  }
  auto r = m.run_step(options, /*mtp=*/true, [&](int key) { return m.mtp_once(seqs, hid, cache, options, key); });
  return with_selection(std::move(r), options);
}

Result<ForwardResult> DeepseekModel::Impl::mtp_once(const std::vector<SeqSpan>& seqs, const float* hid, KvCache& cache,
                                                    const ForwardOptions& options, int graph_key) {
  Impl& m = *this;
  Device& D = *m.dev;
  const ModelConfig& c = m.config;
  const int64_t d = c.hidden_size;
  const int64_t T = seqs.back().offset + seqs.back().n_new;
  const MtpWeights& t = m.mtp[0];
  const float eps = static_cast<float>(c.rms_norm_eps);
  Impl::Scratch& S = m.scratch;
  LATENT_RETURN_IF_ERROR(D.begin(seqs, S.ids, cache, graph_key));

  // x = eh_proj([enorm(E[t_{i+1}]) | hnorm(h_i)]): cat [T, 2d] -> x [T, d]
  LATENT_ASSIGN_OR_RETURN(float* e, S.e.resize(T * d));
  LATENT_ASSIGN_OR_RETURN(float* cat, S.cat.resize(T * 2 * d));
  LATENT_RETURN_IF_ERROR(D.embed(t.embed_tokens, e));                      // [T, d]
  LATENT_RETURN_IF_ERROR(D.rms_norm(e, d, T, t.enorm, eps, cat, 2 * d));    // left halves
  LATENT_RETURN_IF_ERROR(D.rms_norm(hid, d, T, t.hnorm, eps, cat + d, 2 * d));  // right halves
  LATENT_ASSIGN_OR_RETURN(float* x, S.x.resize(T * d));
  LATENT_RETURN_IF_ERROR(D.linear(cat, T, t.eh_proj, x));  // [T, d]

  ForwardTrace* trace = options.trace;
  if (trace) *trace = ForwardTrace{};
  if (trace) LATENT_RETURN_IF_ERROR(m.trace_push(trace->layer_outputs, x, T * d));
  Status st = m.decoder_layer(t.block, c.num_hidden_layers, seqs, m.attending(seqs), T, x, cache, trace);  // x [T, d]
  if (!st.ok()) return m.out_of_step(st.error());
  if (trace) {
    LATENT_RETURN_IF_ERROR(m.trace_push(trace->layer_outputs, x, T * d));
    trace->hidden_prenorm = trace->layer_outputs.back();
  }
  auto r = m.finish(seqs, x, T, t.shared_head_norm, t.shared_head_head, options);  // logits [rows, V]
  if (!r.ok()) return m.out_of_step(r.error());
  return r;
}


// ---- several ranks: rank 0 drives, the others follow

// Rank 0 broadcasts the step (with the cache block copies made since the last one); inside follow() the step
// came from rank 0 and there is nothing to send.
Status DeepseekModel::Impl::drive(ModelStep::Kind kind, std::vector<ModelStep::Seq>& payload, KvCache& cache,
                                  bool return_hidden) {
  if (following) return Status::Ok();
  if (rank != 0) {
    return make_error(ErrorCode::kInvalidArgument, "forward on rank " + std::to_string(rank) +
                                                       ": expected rank 0 (the other ranks run its steps in follow())");
  }
  if (stopped) return make_error(ErrorCode::kInvalidArgument, "forward: expected running ranks, found them stopped");
  cache.log_copies(true);
  ModelStep step;
  step.kind = kind;
  step.cache_blocks = cache.capacity();
  step.copies = cache.take_copies();
  step.return_hidden = return_hidden;
  step.seqs = std::move(payload);
  if (Status st = send_step(*control, step); !st.ok()) return out_of_step(st.error());
  return Status::Ok();
}

Status DeepseekModel::follow() {
  Impl& m = *impl_;
  if (!m.control || m.rank == 0) {
    return make_error(ErrorCode::kInvalidArgument, "follow: expected a rank other than 0 of several, found rank " +
                                                       std::to_string(m.rank) + " of " +
                                                       std::to_string(m.control ? m.control->size() : 1));
  }
  const auto fail = [&](const Error& e) {
    m.control->abort(e.message);  // in-process ranks learn at once; across processes rank 0 times out naming us
    return e;
  };
  for (int64_t steps = 1;; ++steps) {
    auto step = receive_step(*m.control);
    if (!step.ok()) return fail(step.error());
    if (step->kind == ModelStep::Kind::kStop) return Status::Ok();
    if (Status st = test_rank_failure(m.rank, steps); !st.ok()) return fail(st.error());
    if (!m.replica || m.replica->capacity() != step->cache_blocks) {  // every block allocated: rank 0 owns the ids
      auto cache = m.dev->make_cache(m.config, step->cache_blocks, m.dev->cache_dtype());
      if (!cache.ok()) return fail(cache.error());
      m.replica = std::make_unique<KvCache>(std::move(*cache));
      if (auto all = m.replica->allocate(step->cache_blocks); !all.ok()) return fail(all.error());
    }
    for (const KvCache::Copy& cp : step->copies) {
      if (Status st = m.replica->copy_block(cp.src, cp.dst, cp.n_slots); !st.ok()) return fail(st.error());
    }
    m.following = true;
    Status st = Status::Ok();
    if (step->kind == ModelStep::Kind::kForward) {
      std::vector<SequenceInput> batch;
      for (const ModelStep::Seq& q : step->seqs) batch.push_back({q.tokens, q.n_cached, q.blocks, q.all_logits});
      ForwardOptions fo;
      fo.return_hidden = step->return_hidden;  // the last stage sends them to rank 0
      auto r = forward(batch, *m.replica, fo);
      if (!r.ok()) st = r.error();
    } else {
      std::vector<MtpSequenceInput> batch;
      for (const ModelStep::Seq& q : step->seqs) {
        if (static_cast<int64_t>(q.hidden.size()) != static_cast<int64_t>(q.tokens.size()) * m.config.hidden_size) {
          st = make_error(ErrorCode::kCorrupt, "MTP step: expected hidden [n_new, hidden_size], found " +
                                                   std::to_string(q.hidden.size()) + " floats");
        }
        batch.push_back({q.tokens, q.hidden.data(), q.n_cached, q.blocks, q.all_logits});
      }
      if (st.ok()) {
        auto r = forward_mtp(batch, *m.replica);
        if (!r.ok()) st = r.error();
      }
    }
    m.following = false;
    if (!st.ok()) return fail(st.error());
  }
}

Status DeepseekModel::stop_followers() {
  Impl& m = *impl_;
  if (!m.control || m.rank != 0 || m.stopped) return Status::Ok();
  m.stopped = true;
  ModelStep stop;
  return send_step(*m.control, stop);
}

}  // namespace latent

