#!/usr/bin/env python3
"""Is what latentd completes at the start of a held-out Python function syntactically plausible Python?

  /usr/bin/python3 tools/demo-model/function_starts.py [--latentd build/bin/latentd] [--model models/demo] [--json F]

Starts `latentd --listen 127.0.0.1:0 --model DIR` (the real daemon and engine), and for every function of the
held-out files (data.HELD_OUT, never trained on) sends POST /v1/completions with the 10 lines before the `def`
plus the whole signature as the prompt (greedy, 64 tokens). No torch needed (python3-regex for data.py).

A completion is *plausible* when the function it starts parses: the signature, then the completion's whole
lines up to where the body ends (the first non-blank line indented no deeper than the `def`), dedented, parse
with `ast.parse`, possibly after one indented `pass` closing a trailing block opener (`if x:` at the end of
the cut; when the completion stopped (64-token limit, a stop) before the body ended, its last one or two whole
lines may be dropped: they may belong to a statement it did not finish). A body with no statement at all counts as not plausible. Because a degenerate loop (`x = x` ten
times) parses too, also reported: the plausible completions whose non-blank lines are at least half distinct.
"""
import argparse
import ast
import json
import os
import re
import subprocess
import sys
import textwrap
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402  (standard library only: the file list)


def function_starts(max_per_file):
    out = []
    for f in data.HELD_OUT:
        text = data.read(f)
        lines = text.splitlines(keepends=True)
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        funcs = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
        funcs.sort(key=lambda n: n.lineno)
        for n in funcs[:max_per_file]:
            first = n.lineno - 1 - len(n.decorator_list)
            body0 = n.body[0].lineno - 1  # the signature may span lines
            sig = "".join(lines[n.lineno - 1:body0])
            if not sig.rstrip().endswith(":") or "\n" not in sig:
                continue  # one-line def (def f(): return x)
            prompt = "".join(lines[max(0, first - 10):body0])
            indent = len(lines[n.lineno - 1]) - len(lines[n.lineno - 1].lstrip())
            out.append({"file": f, "line": n.lineno, "name": n.name, "prompt": prompt, "signature": sig,
                        "indent": indent})
    return out


def body_lines(completion, indent):
    """Whole lines of the completion up to where the function's body ends; and whether it ended there."""
    whole = completion.split("\n")[:-1] if "\n" in completion else []
    kept, ended = [], False
    for ln in whole:
        if ln.strip() and len(ln) - len(ln.lstrip()) <= indent:
            ended = True
            break
        kept.append(ln)
    while kept and not kept[-1].strip():
        kept.pop()
    return kept, ended


def parses(code):
    try:
        ast.parse(code)
        return True
    except (SyntaxError, ValueError):
        return False


def parses_closed(sig, kept):
    if not any(ln.strip() and not ln.strip().startswith("#") for ln in kept):
        return False
    if parses(textwrap.dedent(sig + "\n".join(kept) + "\n")):
        return True
    last = kept[-1]
    if last.rstrip().endswith(":"):
        pad = " " * (len(last) - len(last.lstrip()) + 4)
        return parses(textwrap.dedent(sig + "\n".join(kept) + "\n" + pad + "pass\n"))
    return False


def plausible(sig, kept, cut):
    """When the completion ended (token limit, a stop) before the body did, inside a statement that spans lines,
    the last one or two whole lines may belong to it: they may be dropped."""
    for drop in range(0, 3 if cut else 1):
        if len(kept) - drop >= 1 and parses_closed(sig, kept[:len(kept) - drop]):
            return True
    return False


def distinct_enough(kept):
    lines = [ln.strip() for ln in kept if ln.strip()]
    return bool(lines) and len(set(lines)) * 2 >= len(lines)


def start_latentd(latentd, model):
    p = subprocess.Popen([latentd, "--listen", "127.0.0.1:0", "--model", model, "--log-level", "warn"],
                         stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        line = p.stderr.readline()
        m = re.search(r"listening on [^:]+:(\d+)", line)
        if m:
            return p, int(m.group(1))
        if p.poll() is not None:
            break
    p.kill()
    raise SystemExit("latentd did not start (expected 'listening on HOST:PORT' on stderr)")


def complete(port, prompt, max_tokens):
    body = json.dumps({"prompt": prompt, "max_tokens": max_tokens, "temperature": 0}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/completions", body,
                                 {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        choice = json.load(r)["choices"][0]
        return choice["text"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--latentd", default="build/bin/latentd")
    ap.add_argument("--model", default="models/demo")
    ap.add_argument("--per-file", type=int, default=4, help="first N functions of each held-out file")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--json", default=None)
    ap.add_argument("--show", type=int, default=6, help="examples printed")
    args = ap.parse_args()
    cases = function_starts(args.per_file)
    proc, port = start_latentd(args.latentd, args.model)
    try:
        results = []
        for c in cases:
            text = complete(port, c["prompt"], args.max_tokens)
            kept, ended = body_lines(text, c["indent"])
            ok = plausible(c["signature"], kept, not ended)
            results.append({"file": c["file"], "line": c["line"], "name": c["name"], "completion": text,
                            "body_lines": len(kept), "plausible": ok,
                            "plausible_not_repetitive": ok and distinct_enough(kept)})
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    n = len(results)
    summary = {
        "model": args.model, "functions": n, "max_tokens": args.max_tokens,
        "plausible": sum(r["plausible"] for r in results) / max(1, n),
        "plausible_not_repetitive": sum(r["plausible_not_repetitive"] for r in results) / max(1, n),
    }
    print(json.dumps(summary))
    for r in results[:args.show]:
        print(f"---- {r['file']}:{r['line']} {r['name']} plausible={r['plausible']}\n{r['completion']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"summary": summary, "results": results}, f, indent=1, ensure_ascii=False)


if __name__ == "__main__":
    main()
