"""Training data for the demo model: CPython 3.11's standard library as shipped by Debian (PSF-2.0).

Sources and licenses are recorded in DATA.md. Held-out files (HELD_OUT) are never trained on, and the
BPE tokenizer is not trained on them either.

Sample format (DeepSeek-Coder style, one sample = a run of consecutive source lines):
  plain:  BOS text EOS
  FIM:    BOS <｜fim▁begin｜> prefix <｜fim▁hole｜> suffix <｜fim▁end｜> middle EOS     (prefix-suffix-middle)
"""
import glob
import os
import random

import bpe

SRC_ROOT = "/usr/lib/python3.11"
EXCLUDE_DIRS = ("test/", "site-packages/", "dist-packages/", "pydoc_data/", "encodings/", "lib2to3/tests/",
                "idlelib/idle_test/", "__phello__/", "config-3.11")
# Fixed held-out list (relative to SRC_ROOT): evaluated on, never trained on.
HELD_OUT = [
    "textwrap.py", "shlex.py", "fnmatch.py", "colorsys.py", "heapq.py", "bisect.py", "glob.py",
    "json/encoder.py", "base64.py", "calendar.py", "stat.py", "graphlib.py",
]


def train_files():
    out = []
    for p in sorted(glob.glob(os.path.join(SRC_ROOT, "**", "*.py"), recursive=True)):
        rel = os.path.relpath(p, SRC_ROOT)
        if any(rel.startswith(d) or ("/" + d) in rel for d in EXCLUDE_DIRS):
            continue
        if rel in HELD_OUT or os.path.islink(p):
            continue
        out.append(rel)
    return out


def read(rel):
    with open(os.path.join(SRC_ROOT, rel), encoding="utf-8", errors="replace") as f:
        return f.read().replace("\r\n", "\n")


def segments(text, rng, lo_chars=150, hi_chars=700):
    """Split a file into runs of whole lines of lo..hi characters (about 40-220 tokens)."""
    lines = text.splitlines(keepends=True)
    out, cur, n, target = [], [], 0, rng.randint(lo_chars, hi_chars)
    for ln in lines:
        if len(ln) > hi_chars:
            ln = ln[:hi_chars] + "\n"
        cur.append(ln)
        n += len(ln)
        if n >= target:
            out.append("".join(cur))
            cur, n, target = [], 0, rng.randint(lo_chars, hi_chars)
    if cur and n > 20:
        out.append("".join(cur))
    return out


def fim_split(seg, rng):
    """Choose (prefix, middle, suffix): half the time one whole non-blank line (the single-line FIM task),
    otherwise a random character span (as DeepSeek-Coder's character-level FIM)."""
    if rng.random() < 0.5:
        lines = seg.splitlines(keepends=True)
        cand = [i for i, ln in enumerate(lines) if ln.strip()]
        if cand:
            i = rng.choice(cand)
            return "".join(lines[:i]), lines[i], "".join(lines[i + 1:])
    a, b = sorted(rng.randint(0, len(seg)) for _ in range(2))
    return seg[:a], seg[a:b], seg[b:]


def encode_sample(tok, seg, rng, fim_rate=0.5):
    """Token ids and a per-token loss mask (1 = predict this token from the previous ones)."""
    if rng.random() < fim_rate:
        pre, mid, suf = fim_split(seg, rng)
        ids = ([tok.bos_id, tok.fim_begin] + tok.encode(pre) + [tok.fim_hole] + tok.encode(suf) +
               [tok.fim_end] + tok.encode(mid) + [tok.eos_id])
    else:
        ids = [tok.bos_id] + tok.encode(seg) + [tok.eos_id]
    return ids


def fim_prompt(tok, prefix, suffix):
    return [tok.bos_id, tok.fim_begin] + tok.encode(prefix) + [tok.fim_hole] + tok.encode(suffix) + [tok.fim_end]


def pack(samples, row_len, pad_id, window=64):
    """Packs whole samples into rows of row_len+1 tokens, filling each row first-fit from the next `window`
    samples; returns (rows, masks) as lists. A sample longer than a row is cut. Padding is masked out."""
    L = row_len + 1
    queue = [s[:L] for s in samples]
    queue.reverse()                      # pop() from the end = next sample in order
    rows, masks = [], []
    while queue:
        cur = queue.pop()
        free = L - len(cur)
        k = len(queue) - 1
        while free > 0 and k >= 0 and k >= len(queue) - window:
            if len(queue[k]) <= free:
                s = queue.pop(k)
                cur += s
                free -= len(s)
            k -= 1
        masks.append([1] * len(cur) + [0] * free)
        rows.append(cur + [pad_id] * free)
    return rows, masks
