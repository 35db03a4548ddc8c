#!/usr/bin/env bash
# Reproduces models/demo: trains the tokenizer and the model with the fixed seed and exports it.
# Needs Debian's PyTorch (not the pyenv python3 first on PATH):
#   apt-get install -y python3-torch python3-numpy python3-regex libopenblas0-pthread
# Without arguments: the two phases of the committed run (docs/demo-model.md; about 50 minutes on 2 cores).
# With arguments: one train.py invocation with them (e.g. --minutes 58, --resume, --export-only, --smoke).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
train=(nice -n 19 /usr/bin/python3 tools/demo-model/train.py --out models/demo)
if [ $# -gt 0 ]; then exec "${train[@]}" "$@"; fi
"${train[@]}" --steps 82 --decay-start 66
exec "${train[@]}" --resume --continue-steps 400 --decay-start 402 --lr 2e-3
