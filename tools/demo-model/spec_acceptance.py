#!/usr/bin/python3
"""MTP draft acceptance of the demo model measured through the C++ engine's speculative decoding:
`latent generate --spec mtp --json` (greedy, 64 tokens) on a prompt from each held-out file (its first 12
lines), summing drafted and accepted tokens.
  /usr/bin/python3 tools/demo-model/spec_acceptance.py --latent build/bin/latent --model models/demo"""
import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--latent", default="build/bin/latent")
    ap.add_argument("--model", default="models/demo")
    ap.add_argument("-n", type=int, default=64)
    ap.add_argument("--depth", type=int, default=1)
    args = ap.parse_args()
    drafted = accepted = 0
    rows = []
    for f in data.HELD_OUT:
        prompt = "".join(data.read(f).splitlines(keepends=True)[:12])
        out = subprocess.run([args.latent, "generate", "--model", args.model, "--prompt", prompt, "-n", str(args.n),
                              "--spec", "mtp", "--spec-depth", str(args.depth), "--json"],
                             capture_output=True, text=True, check=True).stdout
        j = json.loads(out.strip().splitlines()[-1])
        drafted += j["drafted"]
        accepted += j["accepted"]
        rows.append({"file": f, "drafted": j["drafted"], "accepted": j["accepted"],
                     "forward_passes": j["forward_passes"]})
    res = {"drafted": drafted, "accepted": accepted, "acceptance": accepted / max(1, drafted), "per_file": rows}
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
