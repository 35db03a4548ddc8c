#!/usr/bin/env python3
"""Do latentd's code completions parse? Held-out function starts completed through the daemon's /infill,
with the syntax check off, trim and rank side by side (one daemon; the request's "syntax_check" selects),
and through its LSP inline completions (modes lsp-off, lsp-trim, lsp-rank: one `latentd --stdio` per mode,
as an editor starts it: initialize with initializationOptions.latent.syntaxCheck, then per case didOpen,
textDocument/inlineCompletion, latent/explainContext for the verdict, didClose).

  /usr/bin/python3 bench/syntax_bench.py [--latentd build/bin/latentd] [--model models/demo] [--json F]
      [--modes off,trim,rank,lsp-off,lsp-trim,lsp-rank]

Cases (none of them in the demo model's training data, which is the CPython 3.11 standard library, nor in
tests/data):
  python      the first functions of modules in /usr/lib/python3/dist-packages (third-party packages:
              pyflakes, jwt, oauthlib, ...), cursor at the start of the body, the body removed
  javascript  methods of npm's own source (/usr/lib/node_modules/npm/lib), same
The daemon gets the 10 lines before the cursor and the 4 after (the demo model was trained on 256-token
windows); over the LSP the document is the whole file, as an editor has it (--lsp-document window: the same
window), and the daemon's context builder picks the prompt; the judge
inserts the completion into the whole file and parses it with an independent parser (Python's ast; V8 for
JavaScript through node), never with tree-sitter.

Per completion:
  shown       non-empty
  code        has a statement that is not a docstring or comment
  parses      the whole file parses with it (Python: or with one `pass` after it, closing a trailing block
              opener or an empty body)
  loop_free   non-blank lines at least half distinct, and no line twice in a row
  good        code and parses and loop_free (the issue's target: >= 60 %)
  good_strict good, and the first line has the file's own indentation there, and every name the completion reads
              is bound in the file, in the completion or by the language (Python: ast; JavaScript: a token scan):
              string soup and made-up names fail it
  adds_error  shown and does not parse (the issue's target: < 1 % of shown)
Cost: the check's time (latent_syntax.check_ms; LSP: explainContext's syntaxCheck.last.milliseconds) over the
request's time (timings.prompt_ms + predicted_ms; LSP: the client's wall time from request to answer).
Prints one JSON object per mode, then a summary; no timing thresholds.
"""
import argparse
import ast
import glob
import json
import os
import re
import subprocess
import sys
import time
import urllib.request

PY_PACKAGES = ["pyflakes", "jwt", "oauthlib", "distro", "argcomplete", "blinker", "httplib2", "yaml", "lazr",
               "crcmod", "pygments/lexers", "apt", "aptsources", "gi"]
JS_ROOT = "/usr/lib/node_modules/npm/lib"


def python_cases(limit, per_file, per_package=6):
    files = []
    for pkg in PY_PACKAGES:
        files += [(pkg, f) for f in sorted(glob.glob(f"/usr/lib/python3/dist-packages/{pkg}/**/*.py", recursive=True))]
    cases = []
    from_package = {}
    for pkg, path in files:
        if from_package.get(pkg, 0) >= per_package:
            continue
        try:
            text = open(path, encoding="utf-8").read()
            tree = ast.parse(text)
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        lines = text.splitlines(keepends=True)
        funcs = sorted((n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))),
                       key=lambda n: n.lineno)
        taken = 0
        for n in funcs:
            if taken >= per_file or len(cases) >= limit or from_package.get(pkg, 0) >= per_package:
                break
            body0 = n.body[0].lineno - 1
            if body0 <= n.lineno - 1 or not lines[body0 - 1].rstrip().endswith(":"):
                continue  # one-line def, or a signature that does not end its line
            end = n.end_lineno  # the body's last line (1-based, inclusive)
            prefix = "".join(lines[:body0])
            suffix = "".join(lines[end:])
            if suffix.strip() == "" or len(n.body) < 2:
                continue
            cases.append({"lang": "python", "file": path, "line": n.lineno, "name": n.name, "prefix": prefix,
                          "truth": "".join(lines[body0:end]),
                          "suffix": suffix, "indent": len(lines[n.lineno - 1]) - len(lines[n.lineno - 1].lstrip())})
            taken += 1
            from_package[pkg] = from_package.get(pkg, 0) + 1
        if len(cases) >= limit:
            break
    return cases


def js_cases(limit, per_file):
    cases = []
    files = sorted(glob.glob(f"{JS_ROOT}/**/*.js", recursive=True))
    head = re.compile(r"^(  )(?:async |static )*[A-Za-z_$][\w$]* \([^)]*\) \{\n$")
    for path in files:
        text = open(path, encoding="utf-8").read()
        lines = text.splitlines(keepends=True)
        taken = 0
        for i, ln in enumerate(lines):
            if taken >= per_file or len(cases) >= limit:
                break
            m = head.match(ln)
            if not m or ln.lstrip().startswith(("if ", "for ", "while ", "switch ", "catch ")):
                continue
            close = m.group(1) + "}\n"
            end = next((k for k in range(i + 1, len(lines)) if lines[k] == close), None)
            if end is None or end - i < 3:
                continue
            cases.append({"lang": "javascript", "file": path, "line": i + 1, "name": ln.strip()[:40],
                          "prefix": "".join(lines[:i + 1]), "suffix": "".join(lines[end:]), "indent": 2,
                          "truth": "".join(lines[i + 1:end])})
            taken += 1
        if len(cases) >= limit:
            break
    return cases


# ---- judges (independent of tree-sitter) ----

def py_error(code):
    """CPython's message for `code`, or None when it parses."""
    try:
        ast.parse(code)
        return None
    except (SyntaxError, ValueError) as e:
        return getattr(e, "msg", None) or str(e)


def py_parses(code):
    return py_error(code) is None


def py_parse(code):
    try:
        return ast.parse(code)
    except (SyntaxError, ValueError):
        return None


def py_judge(case, completion):
    """(parses, code, strict): strict also wants the file's own indentation on the first line and every name the
    completion reads bound somewhere (the file, the completion, builtins)."""
    body = completion.rstrip()
    tree = py_parse(case["prefix"] + body + "\n" + case["suffix"])
    if tree is None:  # a trailing block opener or an empty body: the user goes on typing
        last = body.split("\n")[-1] if body.strip() else ""
        pad = len(last) - len(last.lstrip()) + (4 if last.rstrip().endswith(":") else 0) if last.strip() \
            else case["indent"] + 4
        tree = py_parse(case["prefix"] + body + "\n" + " " * pad + "pass\n" + case["suffix"])
    if tree is None or not body.strip():
        return tree is not None, False, False
    # The completion's statements: those of the function's body on the completion's lines (not a `pass` added
    # after it). (Until 2026-12-06 evening the judge appended `pass` at the body's usual indentation, so that a
    # completion indented deeper, which parses, counted as no code.)
    first = case["prefix"].count("\n") + 1
    last_line = first + body.count("\n")
    stmts = []
    for n in ast.walk(tree):
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.lineno == case["line"]:
            stmts = [s for s in n.body if first <= s.lineno <= last_line]
    code_stmts = [s for s in stmts if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
    if not code_stmts:
        return True, False, False
    truth_lines = [ln for ln in case["truth"].split("\n") if ln.strip()]
    want = len(truth_lines[0]) - len(truth_lines[0].lstrip()) if truth_lines else case["indent"] + 4
    got_lines = [ln for ln in body.split("\n") if ln.strip()]
    indent_ok = len(got_lines[0]) - len(got_lines[0].lstrip()) == want
    known = set(dir(__builtins__)) | set(re.findall(r"[A-Za-z_]\w*", case["prefix"] + case["suffix"]))
    stored, loaded = set(), set()
    for s in stmts:
        for n in ast.walk(s):
            if isinstance(n, ast.Name):
                (loaded if isinstance(n.ctx, ast.Load) else stored).add(n.id)
            elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                stored.add(n.name)
            elif isinstance(n, ast.arg):
                stored.add(n.arg)
            elif isinstance(n, ast.alias):
                stored.add((n.asname or n.name).split(".")[0])
    names_ok = loaded <= known | stored
    return True, True, indent_ok and names_ok


def strip_js_comments_and_strings(s):
    s = re.sub(r"/\*.*?\*/", " ", s, flags=re.S)
    s = re.sub(r"//[^\n]*", " ", s)
    s = re.sub(r"'(?:\\.|[^'\\\n])*'|\"(?:\\.|[^\"\\\n])*\"|`(?:\\.|[^`\\])*`", " ", s)
    return s


def js_judge_all(cases, completions):
    """V8 compiles each file (as a CommonJS module body) with the completion inserted."""
    files = [c["prefix"] + comp.rstrip() + "\n" + c["suffix"] for c, comp in zip(cases, completions)]
    script = ("const vm=require('vm');const files=JSON.parse(require('fs').readFileSync(0,'utf8'));"
              "console.log(JSON.stringify(files.map(f=>{try{new vm.Script('(function(exports,require,module,"
              "__filename,__dirname){'+f+'\\n})');return true}catch(e){return false}})))")
    out = subprocess.run(["node", "-e", script], input=json.dumps(files), capture_output=True, text=True, check=True)
    parses = json.loads(out.stdout)
    return [(p, code, p and code and js_strict(case, comp))
            for p, comp, case in zip(parses, completions, cases)
            for code in [bool(re.search(r"[A-Za-z0-9_$]", strip_js_comments_and_strings(comp)))]]


JS_GLOBALS = set("""break case catch class const continue debugger default delete do else export extends finally for
function if import in instanceof let new return super switch this throw try typeof var void while with yield await
async of null true false undefined NaN Infinity Object Array String Number Boolean Symbol Map Set WeakMap Promise
Error TypeError RangeError JSON Math Date RegExp console process require module exports Buffer globalThis
setTimeout clearTimeout setImmediate parseInt parseFloat isNaN arguments get set static""".split())


def js_strict(case, completion):
    """The file's indentation on the first line, and every name the completion uses (outside strings and
    comments, not after a '.', not an object key) known: in the file, declared or assigned in the completion,
    or a JavaScript keyword or global. String soup (`'s.pyclass of the'`) and made-up names fail it."""
    lines = [ln for ln in completion.rstrip().split("\n") if ln.strip()]
    truth = [ln for ln in case["truth"].split("\n") if ln.strip()]
    if not lines or (truth and len(lines[0]) - len(lines[0].lstrip()) != len(truth[0]) - len(truth[0].lstrip())):
        return False
    code = strip_js_comments_and_strings(completion)
    known = JS_GLOBALS | set(re.findall(r"[A-Za-z_$][\w$]*", case["prefix"] + case["suffix"]))
    known |= set(re.findall(r"(?:const|let|var|function|class)\s+([A-Za-z_$][\w$]*)", code))
    known |= set(re.findall(r"([A-Za-z_$][\w$]*)\s*=(?!=)", code))
    used = {m.group(1) for m in re.finditer(r"(?<![\w$.])([A-Za-z_$][\w$]*)(?!\s*:)", code)}
    return bool(used) and used <= known


def loop_free(completion):
    """Lines with a word on them (indentation kept): at least half distinct, none twice in a row."""
    lines = [ln.rstrip() for ln in completion.split("\n") if re.search(r"\w", ln)]
    if not lines:
        return True
    if len(set(lines)) * 2 < len(lines):
        return False
    return all(a != b for a, b in zip(lines, lines[1:]))


# ---- the daemon ----

def start_latentd(latentd, model, extra):
    p = subprocess.Popen([latentd, "--listen", "127.0.0.1:0", "--model", model, "--log-level", "warn"] + extra,
                         stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline:
        line = p.stderr.readline()
        m = re.search(r"listening on [^:]+:(\d+)", line)
        if m:
            return p, int(m.group(1))
        if p.poll() is not None:
            break
    p.kill()
    raise SystemExit("latentd did not start (expected 'listening on HOST:PORT' on stderr)")


def post(port, path, body):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", json.dumps(body).encode(),
                                 {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=300) as r:
        return json.load(r)


class LspClient:
    """`latentd --stdio`: Content-Length framed JSON-RPC, one request at a time."""

    def __init__(self, latentd, model, extra, mode, log):
        self.p = subprocess.Popen([latentd, "--stdio", "--model", model, "--log-level", "warn"] + extra,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log)
        self.next_id = 0
        self.request("initialize", {"processId": os.getpid(), "rootUri": None, "capabilities": {},
                                    "initializationOptions": {"latent": {"syntaxCheck": mode}}})
        self.notify("initialized", {})

    def send(self, msg):
        body = json.dumps(msg).encode()
        self.p.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.p.stdin.flush()

    def read(self):
        length = None
        while True:
            line = self.p.stdout.readline()
            if not line:
                raise SystemExit("latentd --stdio closed its output (see its log)")
            line = line.strip()
            if not line:
                break
            k, _, v = line.partition(b":")
            if k.lower() == b"content-length":
                length = int(v)
        return json.loads(self.p.stdout.read(length))

    def notify(self, method, params):
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def request(self, method, params):
        self.next_id += 1
        rid = self.next_id
        self.send({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
        while True:
            m = self.read()
            if "method" in m and "id" in m:  # a request from the server: answer it
                self.send({"jsonrpc": "2.0", "id": m["id"], "result": None})
            elif m.get("id") == rid and "method" not in m:
                if "error" in m:
                    raise SystemExit(f"{method}: {m['error']}")
                return m["result"]

    def close(self):
        try:
            self.request("shutdown", None)
            self.notify("exit", None)
            self.p.stdin.close()
            self.p.wait(timeout=30)
        except Exception:
            self.p.kill()
            self.p.wait()


def utf16_len(s):
    return len(s.encode("utf-16-le")) // 2


def run_mode_lsp(args, cases, mode):
    """Inline completions over the LSP, as the VS Code extension asks for them (one document per case)."""
    import tempfile
    rows = []
    with tempfile.TemporaryFile() as log:
        client = LspClient(args.latentd, args.model, args.daemon_args.split(), mode, log)
        try:
            for i, c in enumerate([cases[0]] + cases):  # the first, again, warms the engine (not counted)
                prefix, suffix = (c["prefix"], c["suffix"]) if args.lsp_document == "file" else \
                    window(c, args.before, args.after)
                ext = "py" if c["lang"] == "python" else "js"
                uri = f"file:///latent-bench/case{i}.{ext}"
                client.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": c["lang"],
                                                                        "version": 1, "text": prefix + suffix}})
                at = {"line": prefix.count("\n"), "character": utf16_len(prefix.rsplit("\n", 1)[-1])}
                t0 = time.perf_counter()
                r = client.request("textDocument/inlineCompletion",
                                   {"textDocument": {"uri": uri}, "position": at, "context": {"triggerKind": 2},
                                    "latent": {"maxTokens": args.n_predict}})
                ms = (time.perf_counter() - t0) * 1000
                items = (r or {}).get("items", [])
                content = items[0]["insertText"] if items else ""
                syn = (client.request("latent/explainContext", {"textDocument": {"uri": uri}, "position": at})
                       .get("syntaxCheck", {}).get("last")) or {}
                client.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
                if i == 0:
                    continue
                rows.append({"content": content, "ms": ms, "check_ms": syn.get("milliseconds", 0.0),
                             "action": syn.get("action", "off"), "rules": syn.get("rules", []),
                             "candidates": syn.get("candidates", 1), "chosen": syn.get("chosen", 0)})
        finally:
            client.close()
    return rows


def window(case, before, after):
    pre = case["prefix"].splitlines(keepends=True)
    suf = case["suffix"].splitlines(keepends=True)
    return "".join(pre[-before:]), "".join(suf[:after])


def run_mode(port, cases, mode, n_predict, before, after, seed):
    rows = []
    for c in cases:
        prefix, suffix = window(c, before, after)
        body = {"input_prefix": prefix, "input_suffix": suffix, "prompt": "", "n_predict": n_predict,
                "temperature": 0, "top_k": 1, "stream": False, "language": c["lang"], "syntax_check": mode,
                "seed": seed}  # rank's samples: the same for every run
        r = post(port, "/infill", body)
        t = r.get("timings", {})
        syn = r.get("latent_syntax", {})
        rows.append({"content": r["content"], "ms": t.get("prompt_ms", 0) + t.get("predicted_ms", 0),
                     "check_ms": syn.get("check_ms", 0.0), "action": syn.get("action", "off"),
                     "rules": syn.get("rules", []), "tokens": r.get("tokens_predicted", 0)})
    return rows


def judge(cases, rows):
    py = [(i, c) for i, c in enumerate(cases) if c["lang"] == "python"]
    js = [(i, c) for i, c in enumerate(cases) if c["lang"] == "javascript"]
    verdicts = [None] * len(cases)
    for i, c in py:
        verdicts[i] = py_judge(c, rows[i]["content"])
    if js:
        for (i, _), v in zip(js, js_judge_all([c for _, c in js], [rows[i]["content"] for i, _ in js])):
            verdicts[i] = v
    for r, c, (parses, code, strict) in zip(rows, cases, verdicts):
        r["shown"] = bool(r["content"].strip())
        r["parses"] = parses
        r["code"] = code
        r["loop_free"] = loop_free(r["content"])
        r["good"] = r["shown"] and code and parses and r["loop_free"]
        r["good_strict"] = r["good"] and strict
        r["adds_error"] = r["shown"] and not parses
        if r["adds_error"] and c["lang"] == "python":  # what CPython says (finds rules tree-sitter lacks)
            r["judge_error"] = py_error(c["prefix"] + r["content"].rstrip() + "\n" + c["suffix"])


def summarize(lang, mode, rows):
    n = len(rows)
    shown = sum(r["shown"] for r in rows)
    ms = sum(r["ms"] for r in rows)
    check = sum(r["check_ms"] for r in rows)
    actions = {}
    rules = {}
    for r in rows:
        actions[r["action"]] = actions.get(r["action"], 0) + 1
        for k in r["rules"]:
            rules[k] = rules.get(k, 0) + 1
    return {"language": lang, "mode": mode, "cases": n, "good": round(sum(r["good"] for r in rows) / max(1, n), 4),
            "good_strict": round(sum(r["good_strict"] for r in rows) / max(1, n), 4),
            "shown": shown, "adds_error_of_shown": round(sum(r["adds_error"] for r in rows) / max(1, shown), 4),
            "code": round(sum(r["code"] for r in rows) / max(1, n), 4),
            "parses_of_shown": round(sum(r["parses"] and r["shown"] for r in rows) / max(1, shown), 4),
            "loop_free": round(sum(r["loop_free"] for r in rows) / max(1, n), 4),
            "completion_ms_total": round(ms, 1), "check_ms_total": round(check, 2),
            "check_share": round(check / ms, 4) if ms else 0, "actions": actions, "rules": rules,
            "judge_errors": sorted({r["judge_error"] for r in rows if r.get("judge_error")})}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--latentd", default="build/bin/latentd")
    ap.add_argument("--model", default="models/demo")
    ap.add_argument("--modes", default="off,trim,rank",
                    help="of off, trim, rank (/infill) and lsp-off, lsp-trim, lsp-rank (inline completions)")
    ap.add_argument("--python", type=int, default=60, help="Python cases")
    ap.add_argument("--javascript", type=int, default=40, help="JavaScript cases")
    ap.add_argument("--per-file", type=int, default=2)
    ap.add_argument("--n-predict", type=int, default=64)
    ap.add_argument("--before", type=int, default=10, help="lines before the cursor sent to the daemon")
    ap.add_argument("--after", type=int, default=4, help="lines after the cursor sent to the daemon")
    ap.add_argument("--lsp-document", choices=["file", "window"], default="file",
                    help="LSP modes: open the whole file (as an editor does; the daemon builds the context) or only "
                         "the --before/--after window that /infill gets")
    ap.add_argument("--daemon-args", default="", help="extra latentd arguments (e.g. --rank-candidates 8)")
    ap.add_argument("--seed", type=int, default=1, help="sampling seed of each request (rank's extra candidates)")
    ap.add_argument("--json", default=None, help="write every completion and verdict here")
    ap.add_argument("--self-check", action="store_true", help="judge the true bodies instead (no daemon)")
    ap.add_argument("--rejudge", default=None, help="judge the completions of an earlier --json file again (no daemon; "
                                                    "the same --python/--javascript counts)")
    args = ap.parse_args()
    cases = python_cases(args.python, args.per_file) + js_cases(args.javascript, args.per_file)
    if args.self_check:  # the judges on the code that was there: all should parse, most be good
        rows = [{"content": c["truth"], "ms": 0, "check_ms": 0, "action": "truth", "rules": []} for c in cases]
        judge(cases, rows)
        for lang in ("python", "javascript"):
            print(json.dumps(summarize(lang, "truth", [r for r, c in zip(rows, cases) if c["lang"] == lang])))
        return
    if args.rejudge:
        old = json.load(open(args.rejudge))
        assert [c["name"] for c in old["cases"]] == [c["name"] for c in cases], "expected the same cases"
        for mode, rows in old["results"].items():
            judge(cases, rows)
            for lang in ("python", "javascript"):
                idx = [i for i, c in enumerate(cases) if c["lang"] == lang]
                if idx:
                    print(json.dumps(summarize(lang, mode, [rows[i] for i in idx])))
        return
    modes = args.modes.split(",")
    http = [m for m in modes if not m.startswith("lsp-")]
    results = {}
    if http:
        proc, port = start_latentd(args.latentd, args.model, args.daemon_args.split())
        try:
            for mode in http:
                rows = run_mode(port, cases, mode, args.n_predict, args.before, args.after, args.seed)
                judge(cases, rows)
                results[mode] = rows
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    for mode in modes:
        if mode.startswith("lsp-"):
            rows = run_mode_lsp(args, cases, mode[len("lsp-"):])
            judge(cases, rows)
            results[mode] = rows
    summary = []
    for lang in ("python", "javascript"):
        idx = [i for i, c in enumerate(cases) if c["lang"] == lang]
        if not idx:
            continue
        for mode, rows in results.items():
            s = summarize(lang, mode, [rows[i] for i in idx])
            summary.append(s)
            print(json.dumps(s))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"summary": summary, "cases": [{k: c[k] for k in ("lang", "file", "line", "name")} for c in cases],
                       "results": results}, f, indent=1, ensure_ascii=False)


if __name__ == "__main__":
    main()
