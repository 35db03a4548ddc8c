#!/usr/bin/env bash
# Reproduces models/demo: trains the tokenizer and the model with the fixed seed and exports it.
# Needs Debian's PyTorch (not the pyenv python3 first on PATH):
#   apt-get install -y python3-torch python3-numpy python3-regex libopenblas0-pthread
# Without arguments: the committed run (docs/demo-model.md): 2400 steps, LR decay from step 1900; about 60
# minutes on 2 idle cores (it was run as two invocations, --resume in between, with the same schedule).
# With arguments: one train.py invocation with them (e.g. --minutes 58, --resume, --export-only, --smoke).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
train=(nice -n 19 /usr/bin/python3 tools/demo-model/train.py --out models/demo)
if [ $# -gt 0 ]; then exec "${train[@]}" "$@"; fi
exec "${train[@]}" --steps 2400 --decay-start 1900
