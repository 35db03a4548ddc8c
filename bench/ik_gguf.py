#!/usr/bin/python3
"""Convert a DeepSeek-V2 family checkpoint (as written by Latent's make_checkpoint) to a BF16 GGUF that
ik_llama.cpp loads, for the side-by-side anchor in bench/ik_compare.sh.

Why not ik_llama.cpp's convert_hf_to_gguf.py: it needs torch and transformers (its DeepseekV2 vocab goes through
AutoTokenizer), which Debian 12 does not package (transformers) or packages only with ~200 dependencies (torch).
This script needs numpy (Debian: python3-numpy) and the gguf-py package of the ik_llama.cpp source tree (pass its
path with --gguf-py). The tensors and metadata follow convert_hf_to_gguf.py's DeepseekV2Model at ik_llama.cpp
8337e4cd: experts stacked into [n_expert, rows, cols], kv_b_proj also split into k_b (transposed per head) and v_b,
norms and the router gate in F32, everything else BF16 bit for bit. The vocabulary is synthetic (the checkpoint
has none of the model's size): 256 byte tokens, one merge, the rest unique placeholder strings; llama-bench uses
random token ids, so this only has to load.

q_lora_rank: written as 0 when the config has none (Coder-V2-Lite); ik_llama.cpp's loader needs the local
two-line change described in bench/README.md to honour it for layer counts other than 26/27.

Usage: /usr/bin/python3 bench/ik_gguf.py --model DIR --out FILE.gguf --gguf-py /path/to/ik_llama.cpp/gguf-py
"""
import argparse
import json
import os
import struct
import sys


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="checkpoint directory: config.json + model.safetensors")
    p.add_argument("--out", required=True, help="output .gguf path")
    p.add_argument("--gguf-py", required=True, help="ik_llama.cpp's gguf-py directory")
    return p.parse_args()


def read_safetensors_header(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    header.pop("__metadata__", None)
    return header, 8 + n


def gpt2_byte_chars():
    # GPT-2's byte -> printable unicode map (as in every byte-level BPE vocabulary).
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1)) + \
        list(range(ord("\xae"), ord("\xff") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    table = dict(zip(bs, cs))
    return [chr(table[b]) for b in range(256)]


class Lazy:
    """A tensor written on demand: GGUFWriter only asks for nbytes and tofile()."""

    def __init__(self, nbytes, make):
        self.nbytes = nbytes
        self._make = make

    def tofile(self, f):
        self._make().tofile(f)


def main():
    args = parse_args()
    sys.path.insert(0, args.gguf_py)
    import numpy as np
    import gguf

    cfg = json.load(open(os.path.join(args.model, "config.json")))
    arch = cfg.get("architectures", ["?"])[0]
    if arch not in ("DeepseekV2ForCausalLM", "DeepseekV3ForCausalLM"):
        sys.exit(f"ik_gguf: expected a DeepseekV2/V3 checkpoint, found architectures={cfg.get('architectures')}")
    st_path = os.path.join(args.model, "model.safetensors")
    header, data_start = read_safetensors_header(st_path)
    mm = np.memmap(st_path, dtype=np.uint8, mode="r")

    def raw(name):
        info = header[name]
        b, e = info["data_offsets"]
        dt = {"BF16": np.uint16, "F32": np.float32}.get(info["dtype"])
        if dt is None:
            sys.exit(f"ik_gguf: {name}: expected BF16 or F32, found {info['dtype']} (convert BF16 checkpoints only)")
        return mm[data_start + b: data_start + e].view(dt).reshape(info["shape"]), info["dtype"]

    def bf16_to_f32(a):
        return (a.astype(np.uint32) << 16).view(np.float32)

    n_layer = cfg["num_hidden_layers"]
    w = gguf.GGUFWriter(args.out, gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.DEEPSEEK2])
    # Model.set_gguf_parameters
    w.add_block_count(n_layer)
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(cfg["num_attention_heads"])
    w.add_head_count_kv(cfg["num_key_value_heads"])
    w.add_rope_freq_base(cfg["rope_theta"])
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    w.add_expert_used_count(cfg["num_experts_per_tok"])
    w.add_file_type(gguf.LlamaFileType.MOSTLY_BF16)
    # DeepseekV2Model.set_gguf_parameters
    w.add_leading_dense_block_count(cfg.get("first_k_dense_replace", 0))
    w.add_vocab_size(cfg["vocab_size"])
    w.add_q_lora_rank(cfg.get("q_lora_rank") or 0)
    w.add_kv_lora_rank(cfg["kv_lora_rank"])
    w.add_key_length(cfg["qk_nope_head_dim"] + cfg["qk_rope_head_dim"])
    w.add_value_length(cfg["v_head_dim"])
    w.add_expert_feed_forward_length(cfg["moe_intermediate_size"])
    w.add_expert_count(cfg["n_routed_experts"])
    w.add_expert_shared_count(cfg["n_shared_experts"])
    w.add_expert_weights_scale(cfg["routed_scaling_factor"])
    w.add_expert_weights_norm(bool(cfg["norm_topk_prob"]))
    scoring = cfg.get("scoring_func", "softmax")
    w.add_expert_gating_func(gguf.ExpertGatingFuncType.SIGMOID if scoring == "sigmoid"
                             else gguf.ExpertGatingFuncType.SOFTMAX)
    w.add_rope_dimension_count(cfg["qk_rope_head_dim"])
    rs = cfg.get("rope_scaling")
    if rs and rs.get("type") == "yarn" and "mscale_all_dim" in rs:
        w.add_rope_scaling_type(gguf.RopeScalingType.YARN)
        w.add_rope_scaling_factor(rs["factor"])
        w.add_rope_scaling_orig_ctx_len(rs["original_max_position_embeddings"])
        w.add_rope_scaling_yarn_log_mul(0.1 * rs["mscale_all_dim"])

    # Synthetic byte-level BPE vocabulary of the model's size.
    n_vocab = cfg["vocab_size"]
    tokens = gpt2_byte_chars() + ["\u0120t"]
    tokens += [f"<|t{i}|>" for i in range(len(tokens), n_vocab)]
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("deepseek-coder")
    w.add_token_list(tokens)
    w.add_token_types([gguf.TokenType.NORMAL] * n_vocab)
    w.add_token_merges(["\u0120 t"])
    w.add_bos_token_id(cfg.get("bos_token_id", 0) if cfg.get("bos_token_id", 0) < n_vocab else 0)
    w.add_eos_token_id(cfg.get("eos_token_id", 1) if cfg.get("eos_token_id", 1) < n_vocab else 1)

    tmap = gguf.get_tensor_name_map(gguf.MODEL_ARCH.DEEPSEEK2, n_layer)

    def gname(hf):
        n = tmap.get_name(hf, try_suffixes=(".weight", ".bias"))
        if n is None:
            sys.exit(f"ik_gguf: no GGUF name for tensor {hf}")
        return n

    def add(name, shape, make_u16=None, make_f32=None):
        if make_f32 is not None:
            nbytes = 4 * int(np.prod(shape))
            w.add_tensor_info(name, shape, np.dtype(np.float32), nbytes)
            w.tensors[-1][name].tensor = Lazy(nbytes, make_f32)
        else:
            nbytes = 2 * int(np.prod(shape))
            w.add_tensor_info(name, shape, np.dtype(np.uint16), nbytes, raw_dtype=gguf.GGMLQuantizationType.BF16)
            w.tensors[-1][name].tensor = Lazy(nbytes, make_u16)

    n_exp = cfg["n_routed_experts"]
    nh = cfg["num_key_value_heads"]
    dv, dn = cfg["v_head_dim"], cfg["qk_nope_head_dim"]
    names = sorted(header.keys())
    done_experts = set()
    for hf in names:
        parts = hf.split(".")
        bid = int(parts[2]) if hf.startswith("model.layers.") else None
        if bid is not None and bid >= n_layer:
            continue  # MTP layers are skipped, as in convert_hf_to_gguf.py
        info = header[hf]
        shape = info["shape"]
        if ".mlp.experts." in hf:
            if bid in done_experts:
                continue
            done_experts.add(bid)
            for proj in ("down_proj", "gate_proj", "up_proj"):
                first = f"model.layers.{bid}.mlp.experts.0.{proj}.weight"
                eshape = [n_exp] + header[first]["shape"]

                def make(bid=bid, proj=proj):
                    return np.stack([raw(f"model.layers.{bid}.mlp.experts.{x}.{proj}.weight")[0]
                                     for x in range(n_exp)])
                add(gname(f"model.layers.{bid}.mlp.experts.{proj}.weight"), eshape, make_u16=make)
            continue
        if hf.endswith("e_score_correction_bias"):
            hfn = hf.replace("e_score_correction_bias", "e_score_correction.bias")
            add(gname(hfn), shape, make_f32=lambda hf=hf: raw(hf)[0].astype(np.float32))
            continue
        is_f32 = len(shape) == 1 or hf.endswith("mlp.gate.weight")
        if is_f32:
            def mk(hf=hf):
                a, dt = raw(hf)
                return bf16_to_f32(a) if dt == "BF16" else a.astype(np.float32)
            add(gname(hf), shape, make_f32=mk)
        else:
            if info["dtype"] != "BF16":
                sys.exit(f"ik_gguf: {hf}: expected BF16, found {info['dtype']}")
            add(gname(hf), shape, make_u16=lambda hf=hf: raw(hf)[0])
        if hf.endswith("kv_b_proj.weight"):
            rank = shape[-1]
            assert shape[0] == nh * (dv + dn), (hf, shape)

            def kb(hf=hf, rank=rank):
                kv = raw(hf)[0].reshape(nh, dn + dv, rank)
                return np.ascontiguousarray(kv[:, :dn, :].transpose(0, 2, 1)).reshape(nh * rank, dn)

            def vb(hf=hf, rank=rank):
                kv = raw(hf)[0].reshape(nh, dn + dv, rank)
                return np.ascontiguousarray(kv[:, dn:, :]).reshape(nh * dv, rank)
            add(gname(hf.replace("kv_b_proj", "k_b_proj")), [nh * rank, dn], make_u16=kb)
            add(gname(hf.replace("kv_b_proj", "v_b_proj")), [nh * dv, rank], make_u16=vb)

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(json.dumps({"gguf": args.out, "tensors": sum(len(t) for t in w.tensors), "layers": n_layer}))


if __name__ == "__main__":
    main()
