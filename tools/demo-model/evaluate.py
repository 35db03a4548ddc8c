#!/usr/bin/python3
"""Measures the exported demo model (weights exactly as stored in model.safetensors, computed in float32)
on the held-out files, and writes the reference logits for the C++ engine test.

  /usr/bin/python3 tools/demo-model/evaluate.py --model models/demo --json /tmp/demo-eval.json \
      --refs tests/data/demo

Metrics (all on data.HELD_OUT, never trained on):
  * held-out loss / next-token accuracy: plain samples (BOS + lines + EOS), teacher forced, mean over tokens.
  * MTP top-1 agreement (teacher forced): argmax of MTP slot i == argmax of the main model at position i+1,
    and MTP accuracy against the true token i+2.
  * MTP draft acceptance in greedy generation (Python measurement, not `latent generate --spec mtp`): at each
    greedy step the MTP draft for the token after next is compared with what the main model then chooses.
  * single-line FIM exact match: a whole non-blank line is the hole (prefix: up to 12 lines before, suffix:
    up to 6 lines after); greedy generation until EOS or a newline; match = generated.rstrip() == line.rstrip()
    (indentation must match).
"""
import argparse
import json
import os
import random
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bpe  # noqa: E402
import data  # noqa: E402
import export  # noqa: E402
from model import Gate  # noqa: E402


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


@torch.no_grad()
def teacher_forced(model, tok, seed):
    rng = random.Random(seed)
    samples = []
    for f in data.HELD_OUT:
        for seg in data.segments(data.read(f), rng):
            samples.append([tok.bos_id] + tok.encode(seg) + [tok.eos_id])
    nll = n = correct = 0
    mtp_agree = mtp_correct = mtp_n = 0
    samples.sort(key=len)
    B = 16
    gates = [m for m in model.modules() if isinstance(m, Gate)]
    loads = [torch.zeros(g.n) for g in gates]
    cur_mask = [None]

    def count(gate, inp, out):
        idx = out[1]                                  # [T, k]
        m = cur_mask[0]
        if idx.size(0) != m.numel():                  # the MTP layer: slot i is real iff token i+1 is
            m = m[:, 1:]
        idx = idx[m.reshape(-1) > 0]
        loads[gates.index(gate)] += torch.bincount(idx.flatten(), minlength=gate.n).float()
    hooks = [g.register_forward_hook(count) for g in gates]
    for i in range(0, len(samples), B):
        chunk = samples[i:i + B]
        S = max(len(s) for s in chunk)
        ids = torch.full((len(chunk), S), tok.added[bpe.PAD], dtype=torch.long)
        mask = torch.zeros(len(chunk), S)
        for j, s in enumerate(chunk):
            ids[j, :len(s)] = torch.tensor(s)
            mask[j, :len(s)] = 1
        cur_mask[0] = mask[:, :-1]
        logits, _, mtp = model(ids[:, :-1])          # right padding: causal attention never sees it
        tgt, m = ids[:, 1:], mask[:, 1:]
        ce = F.cross_entropy(logits.reshape(-1, logits.size(-1)), tgt.reshape(-1), reduction="none").view_as(m)
        nll += float((ce * m).sum())
        n += float(m.sum())
        pred = logits.argmax(-1)
        correct += float(((pred == tgt).float() * m).sum())
        # MTP slot k (k = 0..S-3) predicts ids[k+2]; the main model predicts it at position k+1.
        d = mtp.argmax(-1)                            # [B, S-2]
        m2 = mask[:, 2:]
        mtp_agree += float(((d == pred[:, 1:]).float() * m2).sum())
        mtp_correct += float(((d == ids[:, 2:]).float() * m2).sum())
        mtp_n += float(m2.sum())
    for h in hooks:
        h.remove()
    balance = [{"max_over_mean": float(x.max() / x.mean()), "min_over_mean": float(x.min() / x.mean())}
               for x in loads]
    return {"expert_load_per_moe_layer": balance, "heldout_tokens": int(n), "heldout_loss": nll / n, "heldout_ppl": float(np.exp(nll / n)),
            "next_token_accuracy": correct / n, "mtp_top1_agreement_teacher_forced": mtp_agree / mtp_n,
            "mtp_top1_accuracy_teacher_forced": mtp_correct / mtp_n, "heldout_samples": len(samples)}


@torch.no_grad()
def greedy_with_drafts(model, ids, max_new, stop, stats):
    """Greedy generation (full recomputation each step). The forward on out = prompt + generated gives both the
    main model's next token (last row of logits) and the MTP draft made one step earlier for that same token
    (MTP slot -1 = MTP(emb(last token), h at the position before)); their agreement is the acceptance of a
    one-token MTP speculation."""
    out = list(ids)
    new = []
    for step in range(max_new):
        logits, _, mtp = model(torch.tensor([out]))
        nxt = int(logits[0, -1].argmax())
        if step > 0 and mtp is not None:
            # mtp[0, -1] uses h[-2] and emb(out[-1]) to predict the token at position len(out): it is the draft
            # the MTP module made for nxt when out[-1] had just been chosen.
            stats["drafts"] += 1
            stats["accepted"] += int(int(mtp[0, -1].argmax()) == nxt)
        out.append(nxt)
        new.append(nxt)
        if stop(new):
            break
    return new


def fim_cases(seed, per_file):
    rng = random.Random(seed)
    cases = []
    for f in data.HELD_OUT:
        lines = data.read(f).splitlines(keepends=True)
        cand = [i for i, ln in enumerate(lines) if ln.strip() and len(ln) < 100]
        for i in sorted(rng.sample(cand, min(per_file, len(cand)))):
            pre = "".join(lines[max(0, i - 12):i])
            suf = "".join(lines[i + 1:i + 7])
            cases.append({"file": f, "line": i + 1, "prefix": pre, "middle": lines[i], "suffix": suf})
    return cases


@torch.no_grad()
def fim_eval(model, tok, seed, per_file, stats):
    results = []
    eos = tok.eos_id
    for c in fim_cases(seed, per_file):
        prompt = data.fim_prompt(tok, c["prefix"], c["suffix"])

        def stop(new):
            return new[-1] == eos or "\n" in tok.decode([t for t in new if t != eos])
        new = greedy_with_drafts(model, prompt, 40, stop, stats)
        text = tok.decode([t for t in new if t != eos], skip_special=True)
        text = text.split("\n")[0] + ("\n" if "\n" in text else "")
        results.append({"file": c["file"], "line": c["line"], "expected": c["middle"], "got": text,
                        "match": text.rstrip() == c["middle"].rstrip()})
    return results


SAMPLE_PROMPTS = [
    "def is_prime(n):\n",
    "import os\n\n\ndef list_python_files(root):\n    \"\"\"Return the .py files under root.\"\"\"\n",
    "class Stack:\n    def __init__(self):\n        self.items = []\n\n    def push(self, item):\n",
    "for i, line in enumerate(",
]


@torch.no_grad()
def routing_margin(model, ids):
    """Smallest routing margin over all MoE layers and tokens of a forward: the gap between the k-th chosen and
    the best unchosen expert (choice scores inside the kept groups), and between the last kept and the best
    dropped group score. Reference logits are only robust where it is well above float32 noise."""
    worst = [float("inf")]

    def hook(gate, inp, out):
        x = inp[0]
        s = torch.sigmoid(F.linear(x.float(), gate.weight.float()))
        ch = s + gate.e_score_correction_bias
        g = ch.view(x.size(0), gate.groups, -1)
        gs = g.topk(2, dim=-1)[0].sum(-1).sort(-1, descending=True)[0]
        worst[0] = min(worst[0], float((gs[:, gate.topk_groups - 1] - gs[:, gate.topk_groups]).min()))
        keep = g.topk(2, dim=-1)[0].sum(-1).topk(gate.topk_groups, dim=-1)[1]
        drop = torch.ones(x.size(0), gate.groups, dtype=torch.bool).scatter_(1, keep, False)
        c = g.masked_fill(drop.unsqueeze(-1), float("-inf")).flatten(1).sort(-1, descending=True)[0]
        worst[0] = min(worst[0], float((c[:, gate.k - 1] - c[:, gate.k]).min()))

    hs = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, Gate)]
    model(torch.tensor([ids]))
    for h in hs:
        h.remove()
    return worst[0]


def ref_candidates(tok):
    """Candidate reference cases per name: (text, ids = BOS + encode(text)). The FIM texts hold the FIM tokens as
    text, so the C++ tokenizer's added-token matching is checked too; ids equal data.fim_prompt()."""
    shorts = ["def is_prime(n):\n", "import os\nimport sys\n\n", "class Node:\n    def __init__(self",
              "for i in range(10):\n", "    return self._", "if __name__ == '__main__':\n"]
    tw = data.read("textwrap.py").splitlines(keepends=True)
    plains = ["".join(tw[i:i + 6]) for i in range(200, 400, 7)]
    hq = data.read("heapq.py").splitlines(keepends=True)
    fims = []
    for i in range(130, 300, 9):
        pre, mid, suf = "".join(hq[i:i + 4]), hq[i + 4], "".join(hq[i + 5:i + 7])
        fims.append(bpe.FIM_BEGIN + pre + bpe.FIM_HOLE + suf + bpe.FIM_END)
        assert [tok.bos_id] + tok.encode(fims[-1]) == data.fim_prompt(tok, pre, suf)
    return {"plain_short": shorts, "plain_heldout": plains, "fim": fims}


MIN_MARGIN = 2e-5      # routing margin required of a reference case (float32 noise is ~1e-7 here)


@torch.no_grad()
def write_refs(model, tok, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    cases = []
    for name, texts in ref_candidates(tok).items():
        best = None
        for text in texts:
            ids = [tok.bos_id] + tok.encode(text)
            if len(ids) > 96:
                continue
            margin = routing_margin(model, ids)
            logits = model(torch.tensor([ids]))[0][0, -1]
            top = logits.topk(2)[0]
            gap = float(top[0] - top[1])
            if best is None or min(margin / MIN_MARGIN, gap / 1e-3) > best[0]:
                best = (min(margin / MIN_MARGIN, gap / 1e-3), text, ids)
            if margin >= MIN_MARGIN and gap >= 1e-3:
                break
        cases.append((name, best[1], best[2]))
    manifest = {"model": "models/demo", "note": "float32 forward of tools/demo-model/model.py on the bf16 "
                "weights as stored; logits[i] predicts ids[i+1]; mtp_logits[i] = MTP slot i (uses ids[i+1] "
                "and the post-norm hidden state at i) predicts ids[i+2]", "cases": []}
    with torch.no_grad():
        for name, text, ids in cases:
            logits, h, mtp = model(torch.tensor([ids]))
            np.save(os.path.join(out_dir, f"{name}.logits.npy"), logits[0].numpy().astype("<f4"))
            np.save(os.path.join(out_dir, f"{name}.mtp_logits.npy"), mtp[0].numpy().astype("<f4"))
            top = logits[0, -1].topk(2)[0]
            manifest["cases"].append({
                "name": name, "text": text, "ids": ids, "logits": f"{name}.logits.npy", "mtp_logits": f"{name}.mtp_logits.npy",
                "greedy_next": int(logits[0, -1].argmax()),
                "last_top1_top2_gap": float(top[0] - top[1]),
                "min_routing_margin": routing_margin(model, ids)})
    with open(os.path.join(out_dir, "manifest.json"), "w") as fo:
        json.dump(manifest, fo, indent=1)
    return manifest


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="models/demo")
    ap.add_argument("--json", default=None)
    ap.add_argument("--refs", default=None)
    ap.add_argument("--fim-per-file", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=99)
    ap.add_argument("--refs-only", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = export.load_model(args.model)
    tok = bpe.Tokenizer.load(args.model)
    res = {"model": args.model}
    res["params_total"] = sum(p.numel() for p in model.parameters())
    if args.refs:
        m = write_refs(model, tok, args.refs)
        log("refs: " + json.dumps([(c["name"], len(c["ids"]), c["min_routing_margin"], c["last_top1_top2_gap"])
                                   for c in m["cases"]]))
        if args.refs_only:
            return
    log("teacher-forced held-out metrics")
    res.update(teacher_forced(model, tok, args.seed))
    log(json.dumps(res))
    stats = {"drafts": 0, "accepted": 0}
    log("single-line FIM")
    fim = fim_eval(model, tok, args.seed, args.fim_per_file, stats)
    res["fim_cases"] = len(fim)
    res["fim_exact_match"] = sum(r["match"] for r in fim) / len(fim)
    res["fim_examples"] = fim
    log(f"FIM exact match {res['fim_exact_match']:.3f} over {len(fim)}")
    samples = []
    for p in SAMPLE_PROMPTS:
        new = greedy_with_drafts(model, [tok.bos_id] + tok.encode(p), 64, lambda n: n[-1] == tok.eos_id, stats)
        samples.append({"prompt": p, "completion": tok.decode(new, skip_special=False)})
    res["samples"] = samples
    res["mtp_draft_acceptance_greedy"] = stats["accepted"] / max(1, stats["drafts"])
    res["mtp_drafts"] = stats["drafts"]
    log(f"MTP acceptance in greedy generation {res['mtp_draft_acceptance_greedy']:.3f} over {stats['drafts']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1, ensure_ascii=False)
    for s in samples:
        print("----\n" + s["prompt"] + "<<<" + s["completion"])


if __name__ == "__main__":
    main()
