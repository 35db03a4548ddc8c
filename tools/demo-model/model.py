"""DeepSeek-V3 architecture in PyTorch, written for training the demo model.

Semantics follow the official deepseek-ai/DeepSeek-V3 inference/model.py as pinned down by
tests/data/golden/README.md:
  * MLA with q_lora: q = q_b(q_a_layernorm(q_a(x))) split per head into [nope | rope];
    kv_a_proj_with_mqa(x) split into [kv_lora_rank | rope]; kv_b(kv_a_layernorm(.)) gives per head [k_nope | v];
    the rope key is one key shared by all heads. RoPE rotates interleaved pairs (x[2i], x[2i+1]).
    YaRN when config has rope_scaling (the demo omits it). Naive (non-absorbed) attention, causal.
  * DeepSeekMoE: sigmoid scores, choice = s + e_score_correction_bias, group score = sum of the top-2 choices
    per group, keep topk_group groups, top-k inside them; weights = unbiased s of the chosen, renormalised,
    x routed_scaling_factor; plus the shared expert(s). Layers < first_k_dense_replace are dense MLPs.
  * MTP (one module): slot i: x = eh_proj(cat[enorm(E[t[i+1]]), hnorm(h_i)]) with h_i the main model's
    output AFTER model.norm, embedding half first; a full decoder layer (causal, RoPE position i);
    logits = head(shared_head.norm(y)), predicting t[i+2]. Embedding and head are shared with the main model.
Training extras (not part of inference): the auxiliary-loss-free balancing bias update (DeepSeek-V3 paper
section 2.1.2) and the complementary sequence-wise balance loss.

Parameter names mirror the Hugging Face checkpoint names (see export.py), e.g.
layers.1.self_attn.kv_a_proj_with_mqa.weight -> model.layers.1.self_attn.kv_a_proj_with_mqa.weight.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).to(x.dtype) * self.weight


def rope_tables(cfg, seqlen, device):
    """cos/sin [seqlen, rope_dim/2] and the attention softmax scale, YaRN included when rope_scaling is set."""
    dim = cfg["qk_rope_head_dim"]
    base = cfg["rope_theta"]
    freqs = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim))
    scale = (cfg["qk_nope_head_dim"] + dim) ** -0.5
    rs = cfg.get("rope_scaling")
    if rs:
        factor = rs["factor"]
        orig = rs["original_max_position_embeddings"]

        def corr_dim(n):
            return dim * math.log(orig / (n * 2 * math.pi)) / (2 * math.log(base))
        low = max(math.floor(corr_dim(rs["beta_fast"])), 0)
        high = min(math.ceil(corr_dim(rs["beta_slow"])), dim - 1)
        if low == high:
            high += 0.001
        ramp = torch.clamp((torch.arange(dim // 2, dtype=torch.float64) - low) / (high - low), 0, 1)
        smooth = 1 - ramp
        freqs = freqs / factor * (1 - smooth) + freqs * smooth
        mscale = 0.1 * rs.get("mscale_all_dim", 0) * math.log(factor) + 1.0
        scale = scale * mscale * mscale
    t = torch.arange(seqlen, dtype=torch.float64)
    ang = torch.outer(t, freqs)
    return ang.cos().float().to(device), ang.sin().float().to(device), scale


def apply_rope(x, cos, sin):
    """x [..., S, H, D] with interleaved pairs; cos/sin [S, D/2]."""
    x0, x1 = x[..., 0::2], x[..., 1::2]
    c = cos[:, None, :]
    s = sin[:, None, :]
    return torch.stack((x0 * c - x1 * s, x0 * s + x1 * c), dim=-1).flatten(-2)


class MLA(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d = cfg["hidden_size"]
        self.h = cfg["num_attention_heads"]
        self.nope = cfg["qk_nope_head_dim"]
        self.rope = cfg["qk_rope_head_dim"]
        self.vdim = cfg["v_head_dim"]
        self.kv_rank = cfg["kv_lora_rank"]
        qk = self.nope + self.rope
        self.q_a_proj = nn.Linear(d, cfg["q_lora_rank"], bias=False)
        self.q_a_layernorm = RMSNorm(cfg["q_lora_rank"], cfg["rms_norm_eps"])
        self.q_b_proj = nn.Linear(cfg["q_lora_rank"], self.h * qk, bias=False)
        self.kv_a_proj_with_mqa = nn.Linear(d, self.kv_rank + self.rope, bias=False)
        self.kv_a_layernorm = RMSNorm(self.kv_rank, cfg["rms_norm_eps"])
        self.kv_b_proj = nn.Linear(self.kv_rank, self.h * (self.nope + self.vdim), bias=False)
        self.o_proj = nn.Linear(self.h * self.vdim, d, bias=False)

    def forward(self, x, cos, sin, scale):
        B, S, _ = x.shape
        q = self.q_b_proj(self.q_a_layernorm(self.q_a_proj(x))).view(B, S, self.h, self.nope + self.rope)
        q_nope, q_pe = q.split([self.nope, self.rope], dim=-1)
        q_pe = apply_rope(q_pe, cos, sin)
        kv = self.kv_a_proj_with_mqa(x)
        c, k_pe = kv.split([self.kv_rank, self.rope], dim=-1)
        k_pe = apply_rope(k_pe.unsqueeze(2), cos, sin)                    # [B,S,1,rope] shared by heads
        kv = self.kv_b_proj(self.kv_a_layernorm(c)).view(B, S, self.h, self.nope + self.vdim)
        k_nope, v = kv.split([self.nope, self.vdim], dim=-1)
        q = torch.cat([q_nope, q_pe], dim=-1).transpose(1, 2)             # [B,H,S,qk]
        k = torch.cat([k_nope, k_pe.expand(B, S, self.h, self.rope)], dim=-1).transpose(1, 2)
        v = v.transpose(1, 2)
        att = torch.matmul(q, k.transpose(-1, -2)) * scale                # [B,H,S,S]
        mask = torch.full((S, S), float("-inf"), device=x.device).triu(1)
        att = torch.softmax(att.float() + mask, dim=-1).to(x.dtype)
        o = torch.matmul(att, v).transpose(1, 2).reshape(B, S, self.h * self.vdim)
        return self.o_proj(o)


class MLP(nn.Module):
    def __init__(self, d, inter):
        super().__init__()
        self.gate_proj = nn.Linear(d, inter, bias=False)
        self.up_proj = nn.Linear(d, inter, bias=False)
        self.down_proj = nn.Linear(inter, d, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Gate(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.n = cfg["n_routed_experts"]
        self.k = cfg["num_experts_per_tok"]
        self.groups = cfg["n_group"]
        self.topk_groups = cfg["topk_group"]
        self.scale = cfg["routed_scaling_factor"]
        self.weight = nn.Parameter(torch.empty(self.n, cfg["hidden_size"]))
        self.register_buffer("e_score_correction_bias", torch.zeros(self.n))

    def forward(self, x):
        """x [T, d] -> (weights [T,k], indices [T,k], sigmoid scores [T,n])."""
        s = torch.sigmoid(F.linear(x.float(), self.weight.float()))
        choice = s.detach() + self.e_score_correction_bias
        if self.groups > 1:
            g = choice.view(x.size(0), self.groups, -1)
            gscore = g.topk(2, dim=-1)[0].sum(dim=-1)
            keep = gscore.topk(self.topk_groups, dim=-1)[1]
            drop = torch.ones(x.size(0), self.groups, dtype=torch.bool, device=x.device).scatter_(1, keep, False)
            choice = g.masked_fill(drop.unsqueeze(-1), float("-inf")).flatten(1)
        idx = choice.topk(self.k, dim=-1)[1]
        w = s.gather(1, idx)
        w = w / w.sum(dim=-1, keepdim=True) * self.scale
        return w.to(x.dtype), idx, s


class MoE(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d = cfg["hidden_size"]
        self.n = cfg["n_routed_experts"]
        self.k = cfg["num_experts_per_tok"]
        self.gate = Gate(cfg)
        self.experts = nn.ModuleList([MLP(d, cfg["moe_intermediate_size"]) for _ in range(self.n)])
        self.shared_experts = MLP(d, cfg["n_shared_experts"] * cfg["moe_intermediate_size"])
        self.last_load = None      # [n] token counts of the last forward (training: bias update)
        self.last_aux = None       # sequence-wise balance loss of the last forward

    def forward(self, x):
        B, S, d = x.shape
        flat = x.reshape(-1, d)
        w, idx, s = self.gate(flat)
        y = torch.zeros_like(flat)
        counts = torch.bincount(idx.flatten(), minlength=self.n)
        if self.training:
            self.last_load = counts.detach()
            # Complementary sequence-wise balance loss: sum_i f_i P_i per sequence, averaged.
            sel = torch.zeros(B * S, self.n, device=x.device).scatter_(1, idx, 1.0).view(B, S, self.n)
            f = sel.mean(1) * (self.n / self.k)                                  # [B,n]
            p = (s / s.sum(-1, keepdim=True)).view(B, S, self.n).mean(1)         # [B,n]
            self.last_aux = (f * p).sum(-1).mean()
        for e in range(self.n):
            if counts[e] == 0:
                continue
            tok, slot = torch.where(idx == e)
            y.index_add_(0, tok, self.experts[e](flat[tok]) * w[tok, slot, None])
        return (y + self.shared_experts(flat)).view(B, S, d)


class Block(nn.Module):
    def __init__(self, cfg, layer_id):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])
        self.self_attn = MLA(cfg)
        self.post_attention_layernorm = RMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])
        if layer_id < cfg["first_k_dense_replace"]:
            self.mlp = MLP(cfg["hidden_size"], cfg["intermediate_size"])
        else:
            self.mlp = MoE(cfg)

    def forward(self, x, cos, sin, scale):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, scale)
        return x + self.mlp(self.post_attention_layernorm(x))


class SharedHead(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.norm = RMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])


class MTPLayer(Block):
    def __init__(self, cfg, layer_id):
        super().__init__(cfg, layer_id)
        d = cfg["hidden_size"]
        self.enorm = RMSNorm(d, cfg["rms_norm_eps"])
        self.hnorm = RMSNorm(d, cfg["rms_norm_eps"])
        self.eh_proj = nn.Linear(2 * d, d, bias=False)
        self.shared_head = SharedHead(cfg)


class DeepseekV3(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        d = cfg["hidden_size"]
        n = cfg["num_hidden_layers"]
        self.embed_tokens = nn.Embedding(cfg["vocab_size"], d)
        self.layers = nn.ModuleList([Block(cfg, i) for i in range(n)])
        self.norm = RMSNorm(d, cfg["rms_norm_eps"])
        self.lm_head = nn.Linear(d, cfg["vocab_size"], bias=False)
        self.mtp = nn.ModuleList([MTPLayer(cfg, n + i) for i in range(cfg.get("num_nextn_predict_layers", 0))])
        self._rope = {}

    def init_weights(self, seed):
        g = torch.Generator().manual_seed(seed)
        std = self.cfg.get("initializer_range", 0.02)
        n_res = 2 * (self.cfg["num_hidden_layers"] + 1)
        for name, p in self.named_parameters():
            if name.endswith("norm.weight") or name.endswith("layernorm.weight") or ".enorm." in name \
                    or ".hnorm." in name:
                nn.init.ones_(p)
            else:
                s = std / math.sqrt(n_res) if name.endswith(("o_proj.weight", "down_proj.weight")) else std
                with torch.no_grad():
                    p.copy_(torch.randn(p.shape, generator=g) * s)

    def rope(self, S, device):
        key = (S, str(device))
        if key not in self._rope:
            self._rope[key] = rope_tables(self.cfg, max(S, 16), device)
        cos, sin, scale = self._rope[key]
        return cos[:S], sin[:S], scale

    def forward(self, ids, mtp=True):
        """ids [B,S] -> (main logits [B,S,V], hidden after model.norm [B,S,d], MTP logits [B,S-1,V] or None)."""
        B, S = ids.shape
        cos, sin, scale = self.rope(S, ids.device)
        x = self.embed_tokens(ids)
        for layer in self.layers:
            x = layer(x, cos, sin, scale)
        h = self.norm(x)
        logits = self.lm_head(h)
        mtp_logits = None
        if mtp and len(self.mtp) > 0 and S > 1:
            m = self.mtp[0]
            e = self.embed_tokens(ids[:, 1:])
            z = m.eh_proj(torch.cat([m.enorm(e), m.hnorm(h[:, :-1])], dim=-1))
            z = m(z, cos[:S - 1], sin[:S - 1], scale)
            mtp_logits = self.lm_head(m.shared_head.norm(z))
        return logits, h, mtp_logits

    def moe_layers(self):
        return [m for m in self.modules() if isinstance(m, MoE)]
