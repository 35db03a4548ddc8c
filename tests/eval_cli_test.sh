#!/usr/bin/env bash
# latent eval, end to end with the embedded demo model, as docs/evaluation.md runs it: replay over a tiny git
# repository made here, HumanEval infilling over the 5-problem fixture (tests/data/eval), and bad input.
# Usage: eval_cli_test.sh SOURCE_DIR BIN_DIR
set -euo pipefail
src="$1" bin="$2"
latent="$bin/latent"
fail() { echo "FAIL: $*" >&2; exit 1; }
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
json() { /usr/bin/python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }

# A tiny repository: two commits of Python.
repo="$tmp/repo"; mkdir -p "$repo"
g() { git -C "$repo" -c user.name=Test -c user.email=test@example.com -c commit.gpgsign=false "$@"; }
g init -q -b main
printf 'def scale(values, factor):\n    return [v * factor for v in values]\n' >"$repo/mathutil.py"
printf 'import mathutil\n\n\ndef run():\n    pass\n' >"$repo/app.py"
g add -A; g commit -q -m first
printf 'import mathutil\n\n\ndef run(values):\n    doubled = mathutil.scale(values, 2)\n    return sum(doubled)\n' >"$repo/app.py"
printf '\x00\x01binary' >"$repo/blob.bin"
g add -A; g commit -q -m second

# Replay: 3 points x 3 context settings, JSON and a self-contained HTML report.
"$latent" eval replay --repo "$repo" --limit 3 --out "$tmp/replay" --max-tokens 24 >"$tmp/out" 2>"$tmp/err" ||
  fail "replay failed: $(cat "$tmp/err")"
for m in none file cross; do
  [ "$(json "$tmp/replay/replay.json" "d['modes']['$m']['samples']")" = 3 ] || fail "mode $m: expected 3 samples"
  [ "$(json "$tmp/replay/replay.json" "d['modes']['$m']['errors']")" = 0 ] || fail "mode $m: errors: $(cat "$tmp/replay/replay.json")"
done
[ "$(json "$tmp/replay/replay.json" "d['counts']['skipped_binary']")" -ge 1 ] || fail "the binary file was not counted"
grep -q 'new Chart(' "$tmp/replay/report.html" || fail "report.html has no chart code"
grep -q 'Chart.js (MIT licence' "$tmp/replay/report.html" || fail "Chart.js was not inlined"
if grep -Eq '<script[^>]* src=|<link[^>]* href=' "$tmp/replay/report.html"; then fail "report.html loads something"; fi
grep -q '^cross ' "$tmp/out" || fail "no summary table: $(cat "$tmp/out")"

# --server: the same replay against a running latentd (its completions can differ from a local run's in a near
# tie: the engine's numerics depend on what its prefix cache holds).
"$bin/latentd" --listen 127.0.0.1:0 --ui off 2>"$tmp/latentd.log" &
latentd_pid=$!
trap 'kill $latentd_pid 2>/dev/null || true; rm -rf "$tmp"' EXIT
for _ in $(seq 1500); do grep -q 'listening on' "$tmp/latentd.log" && break; kill -0 $latentd_pid || break; sleep 0.2; done
port="$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$tmp/latentd.log")"
[ -n "$port" ] || fail "latentd did not start: $(cat "$tmp/latentd.log")"
"$latent" eval replay --repo "$repo" --limit 2 --modes file,cross --max-tokens 24 --server "http://127.0.0.1:$port" \
  --out "$tmp/remote" >/dev/null 2>"$tmp/err" || fail "--server replay: $(cat "$tmp/err")"
kill $latentd_pid; wait $latentd_pid 2>/dev/null || true
[ "$(json "$tmp/remote/replay.json" "d['modes']['cross']['samples'] - d['modes']['cross']['errors']")" = 2 ] ||
  fail "--server: expected 2 completed samples: $(cat "$tmp/remote/replay.json")"
json "$tmp/remote/replay.json" "d['model']" | grep -q "via latentd at http://127.0.0.1:$port" || fail "--server: wrong model"

# Bad input: clear messages, no hang.
expect_error() {  # expect_error 'message' args...
  local want="$1"; shift
  set +e; "$latent" eval "$@" >"$tmp/out" 2>"$tmp/err"; local rc=$?; set -e
  [ "$rc" -ne 0 ] || fail "latent eval $*: expected a failure, got exit 0"
  grep -qF -- "$want" "$tmp/err" || fail "latent eval $*: expected '$want', found: $(cat "$tmp/err")"
}
expect_error "no such directory" replay --repo "$tmp/missing" --out "$tmp/o"
mkdir -p "$tmp/plain" "$tmp/fresh"; git -C "$tmp/fresh" init -q
expect_error "expected a git repository" replay --repo "$tmp/plain" --out "$tmp/o"
expect_error "found no commits" replay --repo "$tmp/fresh" --out "$tmp/o"
expect_error "found 'v9.9'" replay --repo "$repo" --rev v9.9 --out "$tmp/o"
expect_error "expected --repo PATH and --out DIR" replay --repo "$repo"
expect_error "expected humaneval-single-line or humaneval-multi-line" infill --suite humaneval-random
expect_error "expected a subcommand" bogus
expect_error "expected http://HOST:PORT" replay --repo "$repo" --server localhost:1 --out "$tmp/o"
expect_error "cannot connect" replay --repo "$repo" --server "http://127.0.0.1:$port" --out "$tmp/o"

# Infill: the fixture's canonical solutions all pass in the sandbox; the model's are checked and counted.
"$latent" eval infill --data "$src/tests/data/eval/humaneval-5.jsonl" --canonical --out "$tmp/canon" >"$tmp/out" 2>"$tmp/err" ||
  fail "canonical infill failed: $(cat "$tmp/err")"
grep -q 'pass@1 1.0000 (5 of 5 passed' "$tmp/out" || fail "canonical solutions: $(cat "$tmp/out")"
"$latent" eval infill --data "$src/tests/data/eval/humaneval-5.jsonl" --limit 5 --out "$tmp/infill" --max-tokens 32 \
  >"$tmp/out" 2>"$tmp/err" || fail "infill failed: $(cat "$tmp/err")"
[ "$(json "$tmp/infill/infill.json" "d['problems']")" = 5 ] || fail "expected 5 problems: $(cat "$tmp/out")"
[ "$(json "$tmp/infill/infill.json" "d['errors']")" = 0 ] || fail "errors: $(cat "$tmp/infill/infill.json")"
[ "$(json "$tmp/infill/infill.json" "d['passed'] + d['failed'] + d['timeout']")" = 5 ] || fail "outcomes do not add up"
grep -q 'pass@1 ' "$tmp/out" || fail "no pass@1 line: $(cat "$tmp/out")"
echo "eval cli: ok"
