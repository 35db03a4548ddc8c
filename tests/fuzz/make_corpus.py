#!/usr/bin/env python3
"""Writes the seed corpus of every fuzz target (tests/fuzz/<target>/corpus/seed-*). Deterministic; rerun after
changing it. Inputs start with the target's mode byte(s) where the target has modes (see each fuzz_*.cpp)."""
import json, os, random, struct, sys

root = os.path.dirname(os.path.abspath(__file__))
src = os.path.dirname(os.path.dirname(root))
rng = random.Random(19)


def write(target, name, data):
    d = os.path.join(root, target, "corpus")
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def pstr(b):  # fuzz_input.h's bytes(): a length byte, then the bytes
    b = b.encode() if isinstance(b, str) else b
    return bytes([len(b)]) + b


# ---- positions: enc byte, text (two length-prefixed parts), then (line, char) pairs + u32 offsets
texts = ["s = \"héllo 😀\"\nx = 1\n", "a\r\nb\r\n", "\xff\xfe bad\n\xf0\x9f\n", "中文\n\tx", "", "\n\n\n"]
for i, t in enumerate(texts):
    tb = t.encode("utf-8", "surrogateescape") if not t.startswith("\xff") else b"\xff\xfe bad\n\xf0\x9f\n"
    ops = bytes(rng.randrange(256) for _ in range(40))
    for enc in range(3):
        write("positions", f"{i}-{enc}", bytes([enc]) + pstr(tb[:255]) + pstr(b"") + ops)

# ---- safetensors: mode 0 = safetensors image, mode 1 = config.json
def st_image(tensors):
    header, data, off = {"__metadata__": {"format": "pt"}}, b"", 0
    for name, dtype, shape, size in tensors:
        n = size
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + n]}
        data += bytes(rng.randrange(256) for _ in range(n))
        off += n
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + data

write("safetensors", "st-small", b"\0" + st_image([("a.weight", "F32", [2, 3], 24), ("b", "BF16", [4], 8)]))
write("safetensors", "st-fp8", b"\0" + st_image([("w", "F8_E4M3", [4, 4], 16), ("w.scale_inv", "F32", [1, 1], 4)]))
write("safetensors", "st-empty", b"\0" + st_image([("e", "F16", [0, 5], 0)]))
write("safetensors", "st-overflow", b"\0" + struct.pack("<Q", 90) +
      b'{"t":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}}'.ljust(90))
for d in ["v2lite-tiny", "v3-tiny", "v3-tiny-bf16"]:
    with open(os.path.join(src, "tests/data/golden", d, "config.json"), "rb") as f:
        write("safetensors", "config-" + d, b"\1" + f.read())
    with open(os.path.join(src, "tests/data/golden", d, "model.safetensors"), "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = f.read(n)
    write("safetensors", "header-" + d, b"\0" + struct.pack("<Q", n) + header)  # the data section is missing
with open(os.path.join(src, "models/demo/config.json"), "rb") as f:
    write("safetensors", "config-demo", b"\1" + f.read())

# ---- openai: mode byte (0 completions, 1 chat, 2 infill) + JSON body
bodies = [
    (0, {"prompt": "def is_prime(n):\n", "max_tokens": 48, "temperature": 0}),
    (0, {"prompt": "x", "suffix": "y", "stream": True, "stream_options": {"include_usage": True}, "stop": ["\n", "#"],
         "seed": -5, "top_p": 0.9, "ignore_eos": True}),
    (1, {"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
         "max_completion_tokens": 20}),
    (1, {"messages": [{"role": "user", "content": [{"type": "text", "text": "weather?"}]}],
         "tools": [{"type": "function", "function": {"name": "get", "parameters": {"type": "object"}}}],
         "tool_choice": "auto"}),
    (2, {"input_prefix": "def f(", "input_suffix": "):\n  pass", "input_extra": [{"filename": "a.py", "text": "x=1"}],
         "prompt": "a", "n_predict": 16, "t_max_predict_ms": 100, "cache_prompt": True, "top_k": 40, "min_p": 0.05}),
    (2, {"input_prefix": "", "input_suffix": "", "n_predict": 0}),
]
for i, (mode, body) in enumerate(bodies):
    write("openai", f"{i}", bytes([mode]) + json.dumps(body).encode())

# ---- tokenizer: mode 1 = text for the demo tokenizer; mode 0 = config, text, tokenizer.json
for i, t in enumerate(["def f(x):\n    return x + 1\n", "<｜begin▁of▁sentence｜>hi<｜fim▁hole｜>", "   \t\n\n  ",
                       "中文 😀 héllo", "x" * 300, "1234567890 3.14 0x1f", "\xc3\x28 broken"]):
    write("tokenizer", f"text-{i}", b"\1" + t.encode("utf-8", "surrogateescape"))
def byte_char(b):
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for x in range(256):
        if x not in bs:
            bs.append(x); cs.append(256 + n); n += 1
    return dict(zip(bs, map(chr, cs)))[b]
vocab = {byte_char(b): b for b in range(256)}
vocab.update({"ab": 256, "abc": 257, "Ġab": 258})
tiny = {"version": "1.0", "added_tokens": [{"id": 259, "content": "<eos>", "special": True}], "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True},
        "decoder": {"type": "ByteLevel"}, "model": {"type": "BPE", "vocab": vocab, "merges": ["a b", "ab c", "Ġ ab"]}}
write("tokenizer", "json-tiny", b"\0" + pstr('{"bos_token": "<eos>"}') + pstr("abc ab<eos>") +
      json.dumps(tiny).encode())

# ---- didchange: language byte, encoding byte, initial text, then random notifications
for i in range(12):
    init = rng.choice([b"def f(x):\n    return x\n", b"int main() { return 0; }\n", b"fn main() {}\n", b"",
                       "let s = \"ü😀\";\n".encode()])
    ops = bytes(rng.randrange(256) for _ in range(rng.randrange(20, 200)))
    write("didchange", f"{i}", bytes([i % 7, i % 3]) + pstr(init) + ops)

# ---- lsp: piece-size byte, then framed JSON-RPC messages
def frame(obj):
    body = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body
uri = "file:///w/a.py"
session = [
    {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"capabilities": {
        "general": {"positionEncodings": ["utf-8"]},
        "workspace": {"didChangeWatchedFiles": {"dynamicRegistration": True}}},
        "workspaceFolders": [{"uri": "file:///nonexistent-latent-fuzz", "name": "w"}]}},
    {"jsonrpc": "2.0", "method": "initialized", "params": {}},
    {"jsonrpc": "2.0", "method": "textDocument/didOpen",
     "params": {"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": "def f(x):\n    return x\n"}}},
    {"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {"textDocument": {"uri": uri, "version": 2},
     "contentChanges": [{"range": {"start": {"line": 1, "character": 12}, "end": {"line": 1, "character": 12}},
                         "text": " + 1"}, {"range": {"start": {"line": 1, "character": 9}, "end": {"line": 0,
                         "character": 2}}, "text": ""}]}},
    {"jsonrpc": "2.0", "id": 1, "method": "textDocument/inlineCompletion", "params": {
        "textDocument": {"uri": uri}, "position": {"line": 1, "character": 4}, "context": {"triggerKind": 1}}},
    {"jsonrpc": "2.0", "id": 2, "method": "latent/explainContext", "params": {
        "textDocument": {"uri": uri}, "position": {"line": 1, "character": 4}}},
    {"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": 1}},
    {"jsonrpc": "2.0", "method": "workspace/didChangeWatchedFiles", "params": {"changes": [
        {"uri": "file:///etc/hostname", "type": 2}]}},
    {"jsonrpc": "2.0", "method": "workspace/didChangeWorkspaceFolders", "params": {"event": {
        "added": [{"uri": "file:///nonexistent-b", "name": "b"}], "removed": [{"uri": "file:///x", "name": "x"}]}}},
    {"jsonrpc": "2.0", "method": "textDocument/didClose", "params": {"textDocument": {"uri": uri}}},
    {"jsonrpc": "2.0", "id": 3, "method": "shutdown"},
    {"jsonrpc": "2.0", "method": "exit"},
]
write("lsp", "session", bytes([63]) + b"".join(frame(m) for m in session))
write("lsp", "session-split", bytes([2]) + b"".join(frame(m) for m in session[:6]))
write("lsp", "bad-frames", bytes([7]) + b"Content-Length: 99999999999\r\n\r\n{}" + b"Content-Type: x\r\n\r\n" +
      frame(b"{not json") + frame(b"[]") + frame({"jsonrpc": "2.0", "id": {"a": 1}, "method": 5}))
write("lsp", "batch", bytes([20]) + frame([{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": None}]))

# ---- http: mode 0 = an HTTP request, 1 = WebSocket frames after an upgrade, 2 = a query string
def req(method, target, body=b"", headers=()):
    h = b"%s %s HTTP/1.1\r\nHost: localhost\r\n" % (method, target)
    for k, v in headers:
        h += b"%s: %s\r\n" % (k, v)
    if body:
        h += b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
    return h + b"\r\n" + body
write("http", "models", b"\0" + req(b"GET", b"/v1/models"))
write("http", "metrics", b"\0" + req(b"GET", b"/metrics?x=1"))
write("http", "completions", b"\0" + req(b"POST", b"/v1/completions", json.dumps(bodies[0][1]).encode()))
write("http", "chat", b"\0" + req(b"POST", b"/v1/chat/completions", json.dumps(bodies[2][1]).encode()))
write("http", "infill", b"\0" + req(b"POST", b"/infill", json.dumps(bodies[4][1]).encode()))
write("http", "chunked", b"\0" + b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      b"5\r\n{\"pro\r\n0\r\n\r\n")
def ws_frame(payload, opcode=1, fin=True, mask=b"\x01\x02\x03\x04"):
    b0 = (0x80 if fin else 0) | opcode
    n = len(payload)
    if n < 126:
        hdr = bytes([b0, 0x80 | n])
    elif n < 65536:
        hdr = bytes([b0, 0x80 | 126]) + struct.pack(">H", n)
    else:
        hdr = bytes([b0, 0x80 | 127]) + struct.pack(">Q", n)
    return hdr + mask + bytes(p ^ mask[i % 4] for i, p in enumerate(payload))
msg = json.dumps(session[0]).encode()
write("http", "ws-text", b"\1" + ws_frame(msg))
write("http", "ws-fragmented", b"\1" + ws_frame(msg[:10], fin=False) + ws_frame(b"", opcode=9) +
      ws_frame(msg[10:], opcode=0))
write("http", "ws-close", b"\1" + ws_frame(b"\x03\xe8bye", opcode=8))
write("http", "ws-big", b"\1" + ws_frame(b"x" * 70000))
write("http", "query", b"\2" + b"a=1&token=x%2Fy&b=%zz&token")

# ---- editcheck: language byte (python cpp rust typescript go javascript java none), mode byte, the file (two
# length-prefixed parts), then mode 0: a JSON request; mode 1: how byte, its operands, then `new`
files = {
    0: "class A:\n    def f(self):\n        return 1\n\ndef g(x):\n    return x + 1\n",
    1: "struct A {\n  int f() { return 1; }\n};\nint g(int x) { return x + 1; }\n",
    2: "struct A;\nimpl A {\n    fn f(&self) -> i32 { 1 }\n}\nfn g(x: i32) -> i32 { x + 1 }\n",
    3: "class A {\n  f(): number { return 1; }\n}\nfunction g(x: number) { return x + 1; }\n",
    4: "package p\n\nfunc g(x int) int {\n\treturn x + 1\n}\n",
    5: "function g(x) {\n  return x + 1;\n}\nconst a = { f() { return 1; } };\n",
    6: "class A {\n  int f() { return 1; }\n}\n",
    7: "plain text\nline two\nline two\n",
}
for lang, text in files.items():
    tb = text.encode()
    body = pstr(tb[:255]) + pstr(tb[255:])
    reqs = [{"path": "f", "symbol": "g", "new": "def g(x):\n    return x\n"},
            {"path": "f", "old": "x + 1", "new": "x + 2", "version": 3},
            {"path": "f", "old": "return", "new": "yield"},
            {"path": "f", "symbol": "A.f", "new": "", "version": "h:1"},
            {"path": "f", "old": "line two", "new": "(", "extra": 1}]
    for k, r in enumerate(reqs):
        write("editcheck", f"{lang}-json{k}", bytes([lang, 2 * k]) + body + json.dumps(r).encode())
    write("editcheck", f"{lang}-old", bytes([lang, 1]) + body + bytes([1, 10, 6]) + b"x + 3")
    write("editcheck", f"{lang}-symbol", bytes([lang, 3 | 0x20]) + body + bytes([0x10, 1, 0x20]) + b"fn g() {}")
    write("editcheck", f"{lang}-free", bytes([lang, 1]) + body + bytes([2]) + pstr(b"return") + b"\xff(")
