#include "engine/mla.h"

namespace latent {

Result<MlaWeights> MlaWeights::load(const Weights& w, const ModelConfig& c, const std::string& p) {
  MlaWeights m;
  const int64_t d = c.hidden_size, H = c.num_attention_heads, R = c.kv_lora_rank;
  const int64_t q_dim = H * c.qk_head_dim();
  m.n_heads = H;
  m.q_lora = c.q_lora_rank.has_value();
  if (m.q_lora) {
    const int64_t qr = *c.q_lora_rank;
    LATENT_ASSIGN_OR_RETURN(m.q_a_proj, w.matrix(p + ".q_a_proj.weight", qr, d));
    LATENT_ASSIGN_OR_RETURN(m.q_a_layernorm, w.vector(p + ".q_a_layernorm.weight", qr));
    LATENT_ASSIGN_OR_RETURN(m.q_b_proj, w.matrix(p + ".q_b_proj.weight", q_dim, qr));
  } else {
    LATENT_ASSIGN_OR_RETURN(m.q_proj, w.matrix(p + ".q_proj.weight", q_dim, d));
  }
  LATENT_ASSIGN_OR_RETURN(m.kv_a_proj_with_mqa, w.matrix(p + ".kv_a_proj_with_mqa.weight", R + c.qk_rope_head_dim, d));
  LATENT_ASSIGN_OR_RETURN(m.kv_a_layernorm, w.vector(p + ".kv_a_layernorm.weight", R));
  LATENT_ASSIGN_OR_RETURN(m.kv_b_proj, w.matrix(p + ".kv_b_proj.weight", H * (c.qk_nope_head_dim + c.v_head_dim), R));
  LATENT_ASSIGN_OR_RETURN(m.o_proj, w.matrix(p + ".o_proj.weight", d, H * c.v_head_dim));
  return m;
}

MlaWeights MlaWeights::shard(const ModelConfig& c, const Shard& shard, ShardStore& store) const {
  const auto [h0, h1] = shard.range(n_heads);
  const int64_t qk = c.qk_head_dim(), kv = c.qk_nope_head_dim + c.v_head_dim, vd = c.v_head_dim;
  MlaWeights m = *this;
  m.n_heads = h1 - h0;
  if (q_lora) {
    m.q_a_proj = store.whole(q_a_proj);
    m.q_a_layernorm = store.whole(q_a_layernorm);
    m.q_b_proj = store.rows(q_b_proj, h0 * qk, h1 * qk);  // [H' * (nope + rope), q_lora_rank]
  } else {
    m.q_proj = store.rows(q_proj, h0 * qk, h1 * qk);  // [H' * (nope + rope), d]
  }
  m.kv_a_proj_with_mqa = store.whole(kv_a_proj_with_mqa);
  m.kv_a_layernorm = store.whole(kv_a_layernorm);
  m.kv_b_proj = store.rows(kv_b_proj, h0 * kv, h1 * kv);  // [H' * (nope + v), kv_lora_rank]
  m.o_proj = store.cols(o_proj, h0 * vd, h1 * vd);        // [d, H' * v]
  return m;
}

}  // namespace latent
