#!/usr/bin/python3
"""Checks the training code's model (model.py) against the golden outputs of the official DeepSeek-V3
inference code (tests/data/golden/v3-tiny and v3-tiny-bf16): full-sequence logits (prefill + decode rows),
post-norm hidden states and MTP logits. Exits non-zero when any |Δ| exceeds the README's 1e-4.
  /usr/bin/python3 tools/demo-model/check_golden.py"""
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export  # noqa: E402

root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
worst = 0.0
for name in ["v3-tiny", "v3-tiny-bf16"]:
    d = os.path.join(root, "tests/data/golden", name)
    model = export.load_model(d)
    with open(os.path.join(d, "golden/manifest.json")) as f:
        man = json.load(f)
    for k, p in enumerate(man["prompts"]):
        def ref(key):
            return np.load(os.path.join(d, "golden", p["files"][key]["file"]))
        with torch.no_grad():
            logits, h, mtp = model(torch.tensor([p["full_sequence_ids"]]))
        full = np.concatenate([ref("prefill_logits"), ref("decode_logits")])
        n = full.shape[0]
        diffs = {"logits": np.abs(logits[0].numpy()[:n] - full).max(),
                 "hidden_postnorm": np.abs(h[0].numpy() - ref("hidden_postnorm")).max(),
                 "mtp_logits": np.abs(mtp[0].numpy() - ref("mtp_logits")).max()}
        worst = max(worst, *diffs.values())
        print(name, f"p{k}", " ".join(f"{a} {b:.2e}" for a, b in diffs.items()))
print(f"max |Δ| {worst:.2e} (tolerance 1e-4)")
sys.exit(0 if worst <= 1e-4 else 1)
