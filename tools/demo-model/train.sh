#!/usr/bin/env bash
# Reproduces models/demo: trains the tokenizer and the model with the fixed seed and exports it.
# Needs Debian's PyTorch (not the pyenv python3 first on PATH):
#   apt-get install -y python3-torch python3-numpy python3-regex libopenblas0-pthread
# Extra arguments go to train.py (e.g. --minutes 58 to cap wall time, --resume, --export-only).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
exec nice -n 19 /usr/bin/python3 tools/demo-model/train.py --out models/demo "$@"
