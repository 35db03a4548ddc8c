"""Hugging Face layout export / import of the demo model (config.json, model.safetensors, tokenizer files).

model.safetensors is written by hand (the format is: u64-LE header length, JSON header, raw little-endian data):
all tensors BF16 (round to nearest even, as torch's .to(bfloat16)), except the router
e_score_correction_bias which stays F32. Tensor names are exactly those of tests/data/golden/v3-tiny.
"""
import json
import os
import struct

import numpy as np
import torch

from model import DeepseekV3

DTYPES = {"BF16": (torch.bfloat16, 2), "F32": (torch.float32, 4)}


def hf_state(model):
    """HF-named tensors of the model (MTP module as layer num_hidden_layers, with its own copies of the shared
    embedding and head as in the released V3 checkpoint)."""
    n = model.cfg["num_hidden_layers"]
    out = {}
    for k, v in model.state_dict().items():
        if k.startswith("mtp."):
            i = int(k.split(".")[1])
            rest = k.split(".", 2)[2]
            out[f"model.layers.{n + i}.{rest}"] = v
        elif k == "lm_head.weight":
            out[k] = v
        else:
            out["model." + k] = v
    for i in range(len(model.mtp)):
        out[f"model.layers.{n + i}.embed_tokens.weight"] = model.embed_tokens.weight.detach()
        out[f"model.layers.{n + i}.shared_head.head.weight"] = model.lm_head.weight.detach()
    return out


def save_safetensors(tensors, path):
    header = {"__metadata__": {"format": "pt"}}
    blobs = []
    off = 0
    for name in sorted(tensors):
        t = tensors[name].detach().cpu()
        if name.endswith("e_score_correction_bias"):
            dt = "F32"
        else:
            dt = "BF16"
        t = t.to(DTYPES[dt][0]).contiguous()
        raw = t.view(torch.int16).numpy().tobytes() if dt == "BF16" else t.numpy().astype("<f4").tobytes()
        header[name] = {"dtype": dt, "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def load_safetensors(path):
    """name -> float32 torch tensor (BF16 widened exactly)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        if info["dtype"] == "BF16":
            u = np.frombuffer(data[a:b], dtype="<u2").astype(np.uint32) << 16
            arr = u.view(np.float32)
        elif info["dtype"] == "F32":
            arr = np.frombuffer(data[a:b], dtype="<f4")
        else:
            raise ValueError(f"{name}: expected dtype BF16 or F32, found {info['dtype']}")
        out[name] = torch.from_numpy(arr.reshape(info["shape"]).copy())
    return out


def hf_config(cfg):
    c = dict(cfg)
    c.update({
        "architectures": ["DeepseekV3ForCausalLM"], "model_type": "deepseek_v3",
        "attention_bias": False, "attention_dropout": 0.0, "hidden_act": "silu", "ep_size": 1,
        "moe_layer_freq": 1, "norm_topk_prob": True, "scoring_func": "sigmoid", "topk_method": "noaux_tc",
        "seq_aux": True, "pretraining_tp": 1, "tie_word_embeddings": False, "use_cache": True,
        "torch_dtype": "bfloat16", "bos_token_id": 0, "eos_token_id": 1,
        "num_key_value_heads": cfg["num_attention_heads"],
    })
    return dict(sorted(c.items()))


def export(model, tok, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(hf_config(model.cfg), f, indent=2)
        f.write("\n")
    save_safetensors(hf_state(model), os.path.join(out_dir, "model.safetensors"))
    tok.save(out_dir)


MODEL_KEYS = ["hidden_size", "intermediate_size", "moe_intermediate_size", "num_hidden_layers",
              "num_attention_heads", "q_lora_rank", "kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim",
              "v_head_dim", "n_routed_experts", "n_shared_experts", "num_experts_per_tok", "n_group",
              "topk_group", "routed_scaling_factor", "first_k_dense_replace", "rms_norm_eps", "rope_theta",
              "rope_scaling", "vocab_size", "num_nextn_predict_layers", "max_position_embeddings",
              "initializer_range", "aux_loss_alpha"]


def load_model(model_dir):
    """The exported model (weights as stored, widened to float32) in the training code's module."""
    with open(os.path.join(model_dir, "config.json")) as f:
        hc = json.load(f)
    cfg = {k: hc[k] for k in MODEL_KEYS if k in hc}
    model = DeepseekV3(cfg)
    st = load_safetensors(os.path.join(model_dir, "model.safetensors"))
    n = cfg["num_hidden_layers"]
    sd = {}
    for k, v in st.items():
        if k == "lm_head.weight":
            sd[k] = v
            continue
        assert k.startswith("model."), k
        rest = k[len("model."):]
        if rest.startswith("layers."):
            i = int(rest.split(".")[1])
            if i >= n:
                sub = rest.split(".", 2)[2]
                if sub in ("embed_tokens.weight", "shared_head.head.weight"):
                    continue   # shared with the main model
                sd[f"mtp.{i - n}.{sub}"] = v
                continue
        sd[rest] = v
    missing, unexpected = model.load_state_dict(sd, strict=False)
    if missing or unexpected:
        raise ValueError(f"checkpoint mismatch: missing {missing}, unexpected {unexpected}")
    model.eval()
    return model
