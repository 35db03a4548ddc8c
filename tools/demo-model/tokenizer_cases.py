#!/usr/bin/python3
"""Writes tokenizer test cases (text + ids from bpe.py) for check_tokenizer.mjs: every held-out file, FIM
prompts with the special tokens inside the text, and edge cases (digits, CJK, tabs, CRLF, emoji).
  /usr/bin/python3 tools/demo-model/tokenizer_cases.py <model_dir> <out.json>"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bpe  # noqa: E402
import data  # noqa: E402

tok = bpe.Tokenizer.load(sys.argv[1])
texts = [data.read(f) for f in data.HELD_OUT]
texts += [
    bpe.FIM_BEGIN + "def add(a, b):\n    " + bpe.FIM_HOLE + "\n\nprint(add(1, 2))\n" + bpe.FIM_END,
    bpe.BOS + "x = 12345678 + 0.5e-3\n" + bpe.EOS,
    "\tif x:\r\n\t\treturn '日本語テキスト 中文' # émoji 🎉\n\n\n   \n",
    "a  b   c\n    \n\n", "1234567890", "" + "__init__(self, *args, **kwargs) -> None:",
]
cases = [{"text": t, "ids": tok.encode(t)} for t in texts]
with open(sys.argv[2], "w", encoding="utf-8") as f:
    json.dump(cases, f, ensure_ascii=False)
print(f"{len(cases)} cases")
