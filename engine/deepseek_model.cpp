// The DeepSeek-V2/V3 forward pass: embed -> [RMSNorm -> MLA -> RMSNorm -> MLP | MoE] x L -> norm -> lm_head,
// plus the MTP module. Reads top to bottom; T = new tokens of all sequences, d = hidden_size, H = heads,
// R = kv_lora_rank, P = qk_rope_head_dim, V = vocab_size. With several ranks, H and the intermediate sizes are
// this rank's share; the all-reduces make the residual stream x whole (and bit-identical) on every rank. With
// pipeline stages a rank runs its stage's layers: x arrives from the previous stage and goes on to the next.
#include "engine/deepseek_model.h"

#include <algorithm>

#include "engine/collective.h"
#include "engine/mla.h"
#include "engine/model_step.h"
#include "engine/moe.h"
#include "engine/pipeline.h"
#include "engine/rope.h"
#include "kernels/base/log.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/ops.h"

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

// One sequence's share of the flattened batch.
struct SeqSpan {
  int64_t offset = 0;  // first row in the [T, ...] activations
  int64_t n_new = 0;
  int64_t n_cached = 0;
  std::span<const BlockId> blocks;
  bool all_logits = false;
};

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

void rms_norm(const float* x, int64_t n, const WeightView& gain, float eps, float* y) {
  cpu::rms_norm(x, n, gain.cols, gain.data, gain.dtype, eps, y);
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
  bool following = false;      // inside follow(): forward runs rank 0's step
  bool stopped = false;        // rank 0 sent the stop step
  std::unique_ptr<KvCache> replica;  // follower ranks: the latent cache, replicated
  WeightView embed_tokens;  // [V, d] (first stage)
  WeightView norm;          // [d] (last stage)
  WeightView lm_head;       // [V', d]: this rank's vocabulary rows (last stage)
  std::vector<LayerWeights> layers;  // this stage's: layer stage.layer_begin + i
  std::vector<MtpWeights> mtp;  // empty, or module 0 of num_nextn_predict_layers (last stage)
  std::vector<float> inv_freq;  // [P / 2]
  float softmax_scale = 0;
  float rope_mscale = 1;  // YaRN's factor on cos/sin (ModelConfig::rope_mscale)
  // Activation buffers of decoder_layer, kept between layers and forwards (a 512-token prefill needs tens of
  // MB: allocated per call they cost page faults and munmap). The model runs one forward at a time.
  struct Scratch {
    Vec h, q, qa, qa_norm, kv, q_lat, o_lat, attn, ff, wt;
    std::vector<int32_t> idx;
    std::vector<const void*> blocks;
    std::vector<float> cache_row;  // [R + P]: one token's cache row before it is stored
    Vec part, gathered;            // data-parallel attention: this rank's rows, every rank's
  };
  mutable Scratch scratch;

  Status check_batch(const std::vector<SeqSpan>& seqs, const KvCache& cache) const;
  Status drive(ModelStep::Kind kind, std::vector<ModelStep::Seq>& payload, KvCache& cache, bool return_hidden);
  // A failure once the ranks started a step leaves them out of step: end the group (Collective::abort).
  Error out_of_step(const Error& e) const {
    if (control && !following && options.on_ranks_lost) options.on_ranks_lost(e);
    if (control) control->abort(e.message);
    return e;
  }
  // Not the last stage: x goes on to the next stage (null: nothing to send, the MTP module runs on the last
  // stage only); rank 0 gets the logits (and hidden states) back from the last, the others return nothing.
  Result<ForwardResult> pass_on(const std::vector<SeqSpan>& seqs, const Vec* x, bool return_hidden) const;
  Status decoder_layer(const LayerWeights& L, int64_t cache_layer, const std::vector<SeqSpan>& seqs,
                       const AttendRows& at, const Vec& rope_cs, Vec& x, KvCache& cache, ForwardTrace* trace) const;
  AttendRows attending(const std::vector<SeqSpan>& seqs) const { return attend_rows(seqs, dp_attention ? &shard : nullptr); }
  Result<ForwardResult> finish(const std::vector<SeqSpan>& seqs, const Vec& x, const WeightView& final_norm,
                               const WeightView& head, const ForwardOptions& opt) const;
};

DeepseekModel::DeepseekModel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DeepseekModel::~DeepseekModel() {
  if (impl_) (void)stop_followers();
}
const ModelConfig& DeepseekModel::config() const { return impl_->config; }
const Weights& DeepseekModel::weights() const { return impl_->weights; }
bool DeepseekModel::has_mtp() const { return impl_->has_mtp; }
int64_t DeepseekModel::weight_bytes() const { return impl_->store.held_bytes(); }
size_t DeepseekModel::touch_weights(const std::function<bool(size_t done, size_t total)>& progress) const {
  return impl_->store.touch_mapped(progress);
}
int64_t DeepseekModel::stage_link_bytes() const { return impl_->link ? impl_->link->sent_bytes() : 0; }

Result<std::unique_ptr<DeepseekModel>> DeepseekModel::load(const std::string& dir, const ModelOptions& options) {
  LATENT_ASSIGN_OR_RETURN(ModelConfig config, ModelConfig::load(dir));
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
  ShardStore& store = m->store;
  const Stage& stage = m->stage;
  const auto [v0, v1] = m->shard.range(V);
  const Shard attn_shard = m->dp_attention ? Shard{} : m->shard;  // whole attention with DP attention
  LATENT_ASSIGN_OR_RETURN(WeightView embed, w.matrix("model.embed_tokens.weight", V, d));
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
  m->inv_freq = rope_inv_freq(c);
  m->softmax_scale = static_cast<float>(c.softmax_scale());
  m->rope_mscale = static_cast<float>(c.rope_mscale());
  LATENT_LOG_DEBUG("DeepseekModel: %s, %lld layers, %s MTP, rank %d (stage %d of %d, layers [%lld, %lld), tensor "
                   "part %d of %d) holds %.1f MB of weights (%.1f MB copied)",
                   c.architecture.c_str(), static_cast<long long>(c.num_hidden_layers), m->has_mtp ? "with" : "no",
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

// One decoder block over the flattened batch; x [T, d] is the residual stream, updated in place.
Status DeepseekModel::Impl::decoder_layer(const LayerWeights& L, int64_t cache_layer, const std::vector<SeqSpan>& seqs,
                                          const AttendRows& at, const Vec& rope_cs, Vec& x, KvCache& cache,
                                          ForwardTrace* trace) const {
  const ModelConfig& c = config;
  cpu::ThreadPool* pool = options.pool;
  const int64_t d = c.hidden_size, H = L.attn.n_heads, R = c.kv_lora_rank, P = c.qk_rope_head_dim;
  const int64_t nope = c.qk_nope_head_dim, vd = c.v_head_dim, qk = nope + P;
  const int64_t T = static_cast<int64_t>(x.size()) / d;
  const float eps = static_cast<float>(c.rms_norm_eps);
  const MlaWeights& a = L.attn;

  // ---- attention: every token's latent row into the cache; queries for the rows this rank attends, A of them
  // from row a0 (all T, or its sequences' with data-parallel attention)
  const int64_t a0 = at.begin, A = at.end - at.begin;
  Scratch& S = scratch;
  const auto sized = [](Vec& v, int64_t n) -> Vec& {
    v.resize(static_cast<size_t>(n));
    return v;
  };
  Vec& h = sized(S.h, T * d);
  rms_norm(x.data(), T, L.input_layernorm, eps, h.data());  // [T, d]
  Vec& q = sized(S.q, A * H * qk);                           // [A, H, nope + P]
  if (A > 0 && a.q_lora) {
    const int64_t qr = a.q_a_proj.rows;
    Vec& qa = sized(S.qa, A * qr);
    Vec& qa_norm = sized(S.qa_norm, A * qr);
    cpu::linear(h.data() + a0 * d, A, a.q_a_proj, qa.data(), pool);  // [A, q_lora_rank]
    rms_norm(qa.data(), A, a.q_a_layernorm, eps, qa_norm.data());
    cpu::linear(qa_norm.data(), A, a.q_b_proj, q.data(), pool);  // [A, H * (nope + P)]
  } else if (A > 0) {
    cpu::linear(h.data() + a0 * d, A, a.q_proj, q.data(), pool);  // [A, H * (nope + P)]
  }
  for (int64_t t = 0; t < A; ++t) {
    for (int64_t hd = 0; hd < H; ++hd) rope_rotate(q.data() + t * H * qk + hd * qk + nope, P, rope_cs.data() + (a0 + t) * P);
  }
  Vec& kv = sized(S.kv, T * (R + P));
  cpu::linear(h.data(), T, a.kv_a_proj_with_mqa, kv.data(), pool);  // [T, R + P]: [latent | rope key]
  // Cache row of each new token: [kv_a_layernorm(latent) R | rope(k_rope) P]
  S.cache_row.resize(static_cast<size_t>(R + P));
  for (const SeqSpan& s : seqs) {
    for (int64_t i = 0; i < s.n_new; ++i) {
      const int64_t t = s.offset + i, pos = s.n_cached + i;
      float* row = S.cache_row.data();
      const float* src = kv.data() + t * (R + P);
      rms_norm(src, 1, a.kv_a_layernorm, eps, row);
      std::copy(src + R, src + R + P, row + R);
      rope_rotate(row + R, P, rope_cs.data() + t * P);
      cache.write_token(cache_layer, s.blocks[static_cast<size_t>(pos / KvCache::kBlockSize)],
                        pos % KvCache::kBlockSize, row);  // float32, or rounded to BF16
    }
  }
  // Weight absorption: attention runs in the latent space (MQA with one KV head of width R + P).
  Vec& q_lat = sized(S.q_lat, A * H * R);  // [A, H, R]
  if (A > 0) cpu::mla_absorb_q(q.data(), A, H * qk, a.kv_b_proj, H, nope, P, vd, q_lat.data(), pool);
  Vec& o_lat = sized(S.o_lat, A * H * R);  // [A, H, R]
  std::vector<const void*>& blocks = S.blocks;
  for (const SeqSpan& s : at.seqs) {
    blocks.clear();
    for (int64_t b = 0; b < KvCache::blocks_needed(s.n_cached + s.n_new); ++b) {
      blocks.push_back(cache.block_ptr(cache_layer, s.blocks[static_cast<size_t>(b)]));
    }
    cpu::mla_attention(q_lat.data() + s.offset * H * R, q.data() + s.offset * H * qk, H * qk, s.n_new, H, nope, R,
                       P, s.n_cached, blocks.data(), cache.dtype(), KvCache::kBlockSize, softmax_scale,
                       o_lat.data() + s.offset * H * R, pool);
  }
  Vec& attn = sized(S.attn, A * H * vd);  // [A, H * v]
  if (A > 0) cpu::mla_apply_uv(o_lat.data(), A, a.kv_b_proj, H, nope, vd, attn.data(), pool);
  if (at.bounds.empty()) {
    cpu::linear(attn.data(), T, a.o_proj, h.data(), pool);  // [T, d]
    if (comm) LATENT_RETURN_IF_ERROR(comm->all_reduce_sum(h.data(), T * d));  // the heads' parts, rank order
  } else {  // every rank's rows, padded to the most any rank has: [ranks, chunk, d] -> h [T, d]
    int64_t chunk = 0;
    for (size_t q = 0; q + 1 < at.bounds.size(); ++q) chunk = std::max(chunk, at.bounds[q + 1] - at.bounds[q]);
    Vec& part = sized(S.part, chunk * d);
    Vec& all = sized(S.gathered, shard.size * chunk * d);
    if (A > 0) cpu::linear(attn.data(), A, a.o_proj, part.data(), pool);  // [A, d]
    LATENT_RETURN_IF_ERROR(comm->all_gather(part.data(), chunk * d, all.data()));
    for (int q = 0; q < shard.size; ++q) {
      const int64_t r0 = at.bounds[static_cast<size_t>(q)], r1 = at.bounds[static_cast<size_t>(q) + 1];
      std::copy(all.begin() + q * chunk * d, all.begin() + (q * chunk + r1 - r0) * d, h.begin() + r0 * d);
    }
  }
  for (int64_t i = 0; i < T * d; ++i) x[static_cast<size_t>(i)] += h[static_cast<size_t>(i)];

  // ---- feed-forward
  rms_norm(x.data(), T, L.post_attention_layernorm, eps, h.data());  // [T, d]
  Vec& ff = sized(S.ff, T * d);                                       // [T, d]
  if (L.is_moe) {
    const int64_t K = c.num_experts_per_tok;
    S.idx.resize(static_cast<size_t>(T * K));
    Vec& wt = sized(S.wt, T * K);
    moe_forward(c, L.moe, h.data(), T, ff.data(), pool, S.idx.data(), wt.data());
    if (trace) {
      trace->moe_topk_idx.push_back(S.idx);
      trace->moe_topk_weight.push_back(wt);
    }
  } else {
    mlp_forward(L.mlp, h.data(), T, ff.data(), pool);
  }
  if (comm) LATENT_RETURN_IF_ERROR(comm->all_reduce_sum(ff.data(), T * d));  // experts' / intermediate parts
  for (int64_t i = 0; i < T * d; ++i) x[static_cast<size_t>(i)] += ff[static_cast<size_t>(i)];
  return Status::Ok();
}

// Final norm, then the head over the rows that want logits (each rank its vocabulary rows, then all-gathered).
Result<ForwardResult> DeepseekModel::Impl::finish(const std::vector<SeqSpan>& seqs, const Vec& x,
                                                  const WeightView& final_norm, const WeightView& head,
                                                  const ForwardOptions& opt) const {
  const int64_t d = config.hidden_size, V = config.vocab_size, T = static_cast<int64_t>(x.size()) / d;
  std::vector<int64_t> rows;
  ForwardResult r = result_layout(seqs, V, d, &rows);
  Vec y(static_cast<size_t>(T * d));
  rms_norm(x.data(), T, final_norm, static_cast<float>(config.rms_norm_eps), y.data());  // [T, d]
  const int64_t n = static_cast<int64_t>(rows.size());
  Vec sel(static_cast<size_t>(n * d));  // [n, d]
  for (int64_t i = 0; i < n; ++i) std::copy(y.begin() + rows[i] * d, y.begin() + (rows[i] + 1) * d, sel.begin() + i * d);
  r.logits.resize(static_cast<size_t>(n * V));
  if (!comm) {
    cpu::linear(sel.data(), n, head, r.logits.data(), options.pool);  // [n, V]
  } else {
    const int64_t chunk = (V + shard.size - 1) / shard.size;  // rows per rank, padded to the largest part
    Vec part(static_cast<size_t>(n * chunk), 0.f), all(static_cast<size_t>(shard.size * n * chunk));
    cpu::linear_strided(sel.data(), d, n, head, part.data(), chunk, options.pool);  // [n, V'] in [n, chunk]
    LATENT_RETURN_IF_ERROR(comm->all_gather(part.data(), n * chunk, all.data()));   // [ranks, n, chunk]
    for (int q = 0; q < shard.size; ++q) {
      const auto [q0, q1] = Shard{q, shard.size}.range(V);
      for (int64_t i = 0; i < n; ++i) {
        const float* src = all.data() + (q * n + i) * chunk;
        std::copy(src, src + (q1 - q0), r.logits.begin() + i * V + q0);
      }
    }
  }
  if (opt.return_hidden) r.hidden = std::move(y);
  if (link) {  // the last stage's leader sends the result to rank 0
    std::vector<const Vec*> parts = {&r.logits};
    if (opt.return_hidden) parts.push_back(&r.hidden);
    LATENT_RETURN_IF_ERROR(link->send_to_driver(parts));
  }
  return r;
}

Result<ForwardResult> DeepseekModel::Impl::pass_on(const std::vector<SeqSpan>& seqs, const Vec* x,
                                                   bool return_hidden) const {
  if (x) LATENT_RETURN_IF_ERROR(link->send_hidden(x->data(), static_cast<int64_t>(x->size())));
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

// Flattens the batch: row offsets and the cos/sin of each new token's position ([T, P]).
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

Vec rope_table(const std::vector<SeqSpan>& seqs, const std::vector<float>& inv_freq, int64_t P, float mscale) {
  const int64_t T = seqs.empty() ? 0 : seqs.back().offset + seqs.back().n_new;
  Vec cs(static_cast<size_t>(T * P));
  for (const SeqSpan& s : seqs) {
    for (int64_t i = 0; i < s.n_new; ++i) {
      rope_cos_sin(inv_freq, s.n_cached + i, cs.data() + (s.offset + i) * P, mscale);
    }
  }
  return cs;
}

}  // namespace

Result<ForwardResult> DeepseekModel::forward(std::span<const SequenceInput> batch, KvCache& cache,
                                             const ForwardOptions& options) {
  Impl& m = *impl_;
  const ModelConfig& c = m.config;
  const int64_t d = c.hidden_size;
  if (batch.empty()) return make_error(ErrorCode::kInvalidArgument, "forward: expected at least one sequence, found 0");
  auto seqs = flatten<SequenceInput>(batch, [](const SequenceInput& s) { return static_cast<int64_t>(s.tokens.size()); });
  LATENT_RETURN_IF_ERROR(m.check_batch(seqs, cache));
  const int64_t T = seqs.back().offset + seqs.back().n_new;

  // Embedding (the first stage): x [T, d]
  Vec x(static_cast<size_t>(T * d));
  for (size_t s = 0; s < batch.size(); ++s) {
    for (int64_t i = 0; i < seqs[s].n_new; ++i) {
      const int32_t id = batch[s].tokens[static_cast<size_t>(i)];
      if (id < 0 || id >= c.vocab_size) {
        return make_error(ErrorCode::kInvalidArgument, "sequence " + std::to_string(s) + ": token id " +
                                                           std::to_string(id) + " out of range [0, " +
                                                           std::to_string(c.vocab_size) + ")");
      }
      if (m.stage.first()) cpu::embedding_row(m.embed_tokens, id, x.data() + (seqs[s].offset + i) * d);
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
  ForwardTrace* trace = options.trace;
  if (trace) *trace = ForwardTrace{};
  const Vec rope_cs = rope_table(seqs, m.inv_freq, c.qk_rope_head_dim, m.rope_mscale);  // [T, P]
  if (!m.stage.first()) {  // x from the previous stage
    if (Status st = m.link->receive_hidden(x.data(), T * d); !st.ok()) return m.out_of_step(st.error());
  }
  if (trace) trace->layer_outputs.push_back(x);
  const AttendRows at = m.attending(seqs);

  for (int64_t l = m.stage.layer_begin; l < m.stage.layer_end; ++l) {
    const LayerWeights& L = m.layers[static_cast<size_t>(l - m.stage.layer_begin)];
    Status st = m.decoder_layer(L, l, seqs, at, rope_cs, x, cache, trace);  // x [T, d]
    if (!st.ok()) return m.out_of_step(st.error());
    if (trace) trace->layer_outputs.push_back(x);
  }
  if (!m.stage.last()) {  // on to the next stage; rank 0 gets the logits back
    auto r = m.pass_on(seqs, &x, options.return_hidden);
    if (!r.ok()) return m.out_of_step(r.error());
    return r;
  }
  if (trace) trace->hidden_prenorm = x;
  auto r = m.finish(seqs, x, m.norm, m.lm_head, options);  // logits [rows, V]
  if (!r.ok()) return m.out_of_step(r.error());
  return r;
}

Result<ForwardResult> DeepseekModel::forward_mtp(std::span<const MtpSequenceInput> batch, KvCache& cache,
                                                 const ForwardOptions& options) {
  Impl& m = *impl_;
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
  for (size_t s = 0; s < batch.size(); ++s) {
    if (!batch[s].hidden) return make_error(ErrorCode::kInvalidArgument, "forward_mtp: sequence " + std::to_string(s) + ": hidden is null");
    for (int64_t i = 0; i < seqs[s].n_new; ++i) {
      const int32_t id = batch[s].next_tokens[static_cast<size_t>(i)];
      if (id < 0 || id >= c.vocab_size) {
        return make_error(ErrorCode::kInvalidArgument, "forward_mtp: sequence " + std::to_string(s) + ": token id " +
                                                           std::to_string(id) + " out of range");
      }
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
    auto r = m.pass_on(seqs, nullptr, false);
    if (!r.ok()) return m.out_of_step(r.error());
    return r;
  }
  const MtpWeights& t = m.mtp[0];
  const float eps = static_cast<float>(c.rms_norm_eps);

  // x = eh_proj([enorm(E[t_{i+1}]) | hnorm(h_i)]): cat [T, 2d] -> x [T, d]
  Vec cat(static_cast<size_t>(T * 2 * d)), e(static_cast<size_t>(d));
  for (size_t s = 0; s < batch.size(); ++s) {
    for (int64_t i = 0; i < seqs[s].n_new; ++i) {
      float* row = cat.data() + (seqs[s].offset + i) * 2 * d;
      cpu::embedding_row(t.embed_tokens, batch[s].next_tokens[static_cast<size_t>(i)], e.data());
      rms_norm(e.data(), 1, t.enorm, eps, row);
      rms_norm(batch[s].hidden + i * d, 1, t.hnorm, eps, row + d);
    }
  }
  Vec x(static_cast<size_t>(T * d));
  cpu::linear(cat.data(), T, t.eh_proj, x.data(), m.options.pool);  // [T, d]

  ForwardTrace* trace = options.trace;
  if (trace) *trace = ForwardTrace{};
  if (trace) trace->layer_outputs.push_back(x);
  const Vec rope_cs = rope_table(seqs, m.inv_freq, c.qk_rope_head_dim, m.rope_mscale);  // [T, P]
  Status st = m.decoder_layer(t.block, c.num_hidden_layers, seqs, m.attending(seqs), rope_cs, x, cache, trace);  // x [T, d]
  if (!st.ok()) return m.out_of_step(st.error());
  if (trace) {
    trace->layer_outputs.push_back(x);
    trace->hidden_prenorm = x;
  }
  auto r = m.finish(seqs, x, t.shared_head_norm, t.shared_head_head, options);  // logits [rows, V]
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
      auto cache = KvCache::for_model(m.config, step->cache_blocks, KvCache::dtype_for_precision());
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
