#!/usr/bin/env bash
# The documented settings work through scripts/run: $LATENT_MODEL picks the model and $LATENT_LOG the log
# level; a flag still wins over the variable; a bad value is an error that names the variable.
# Usage: settings_test.sh SOURCE_DIR BIN_DIR
set -euo pipefail
src="$1" bin="$2"
run() { LATENT_RUN_NO_BUILD=1 LATENT_RUN_BIN="$bin" "$src/scripts/run" "$@"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT

# LATENT_MODEL: a missing directory named by the variable is the error (scripts/run used to force models/demo).
set +e
LATENT_MODEL="$tmp/no-such-model" run --stdio </dev/null >"$tmp/out" 2>"$tmp/err"; rc=$?
set -e
[ "$rc" -ne 0 ] || fail "LATENT_MODEL=$tmp/no-such-model: expected a failure, got exit 0"
grep -q "$tmp/no-such-model" "$tmp/err" || fail "LATENT_MODEL ignored; stderr: $(cat "$tmp/err")"
# --model still wins over the variable.
set +e
LATENT_MODEL="$tmp/no-such-model" run --stdio --model "$tmp/flag-model" </dev/null >"$tmp/out" 2>"$tmp/err"; rc=$?
set -e
grep -q "$tmp/flag-model" "$tmp/err" || fail "--model did not win over LATENT_MODEL; stderr: $(cat "$tmp/err")"

# LATENT_LOG=debug: debug lines appear (scripts/run's --log-level info used to hide them). The input is one
# notification before initialize, which latentd drops with a debug line.
msg='{"jsonrpc":"2.0","method":"x/early","params":{}}'
printf 'Content-Length: %d\r\n\r\n%s' "${#msg}" "$msg" >"$tmp/in"
LATENT_LOG=debug run --stdio --no-model <"$tmp/in" >"$tmp/out" 2>"$tmp/err" || true
grep -q '^D ' "$tmp/err" || fail "LATENT_LOG=debug gave no debug line; stderr: $(cat "$tmp/err")"
grep -q 'dropped x/early before initialize' "$tmp/err" || fail "expected the debug line; stderr: $(cat "$tmp/err")"
LATENT_LOG=debug run --stdio --no-model --log-level error <"$tmp/in" >"$tmp/out" 2>"$tmp/err" || true
! grep -q '^[DI] ' "$tmp/err" || fail "--log-level error did not win over LATENT_LOG=debug; stderr: $(cat "$tmp/err")"
set +e
LATENT_LOG=loud run --stdio --no-model </dev/null >"$tmp/out" 2>"$tmp/err"; rc=$?
set -e
[ "$rc" -eq 2 ] || fail "LATENT_LOG=loud: expected exit 2, got $rc"
grep -q "LATENT_LOG: expected error|warn|info|debug|trace, found 'loud'" "$tmp/err" || fail "stderr: $(cat "$tmp/err")"
echo "settings: ok"
