#!/usr/bin/env bash
# Latent's CPU engine against ik_llama.cpp on the same BF16 weights, interleaved in one sitting.
#
#   bench/ik_compare.sh --ik-build DIR --gguf FILE --model DIR [options]
#
# Each round runs, one after the other, with the same thread count:
#   1. the read-bandwidth probe (engine_bench --probe-only: the probe engine_bench reports beside its decode)
#   2. ik_llama.cpp llama-bench, prefill:  -p PREFILL -n 0 -rtr 1 -mla 3 -fa 1 -fmoe 1   (its best prefill)
#   3. ik_llama.cpp llama-bench, decode:   -p 0 -n DECODE and -gp DEPTH,DECODE, -mla 3 -fa 1 -fmoe 1, no -rtr
#      (run-time repacking costs ik ~30% in decode, so each phase gets ik's best setting)
#   4. the probe again
#   5. Latent engine_bench --prefill PREFILL --decode DECODE --depths 0,DEPTH [--precision P]
# and prints each result as one JSON line ({"round":..,"what":..,...}), then one summary JSON line with, per
# metric, the median over rounds of Latent / ik (computed per round, so both sides of a ratio saw the same
# machine), and decode at depth 0 as a fraction of the probe for both (weight bytes per token from engine_bench,
# the same weights for both engines).
#
# Nothing is downloaded. Inputs:
#   --ik-build DIR   an ik_llama.cpp build directory holding bin/llama-bench (see bench/README.md: "ik_llama.cpp
#                    anchor" for the snapshot, the local two-line loader change and the build flags)
#   --gguf FILE      the checkpoint converted to GGUF BF16 by bench/ik_gguf.py
#   --model DIR      the same checkpoint as Latent reads it (config.json + model.safetensors)
# Options:
#   --latent-build DIR   Latent build directory (default: build), uses DIR/bin/engine_bench
#   --rounds N           rounds (default 3)
#   --threads N          threads for both engines (default 2)
#   --prefill N          prefill tokens (default 512)
#   --decode N           decoded tokens per measurement (default 16)
#   --depth N            the deep decode context (default 2048)
#   --precision P        Latent's --precision (default: engine_bench's default)
#   --out FILE           also append every JSON line to FILE
#   --ik-reps N          llama-bench repetitions per test (default 2); ik's figure is its best repetition: its
#                        first decode after the prefill run pays the page faults of mapping the GGUF again
#                        (20 vs 32-36 tok/s at depth 0 with -r 3), which engine_bench avoids by prefaulting
#   -h, --help           this text
set -euo pipefail
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }

root="$(cd "$(dirname "$0")/.." && pwd)"
ik_build="" gguf="" model="" latent_build="$root/build" rounds=3 threads=2 prefill=512 decode=16 depth=2048
precision="" out="" ik_reps=2
while [ $# -gt 0 ]; do
  case "$1" in
    --ik-build) ik_build="$2"; shift 2 ;;
    --gguf) gguf="$2"; shift 2 ;;
    --model) model="$2"; shift 2 ;;
    --latent-build) latent_build="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --prefill) prefill="$2"; shift 2 ;;
    --decode) decode="$2"; shift 2 ;;
    --depth) depth="$2"; shift 2 ;;
    --precision) precision="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --ik-reps) ik_reps="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "ik_compare.sh: unknown argument '$1' (expected --ik-build, --gguf, --model, ...; see --help)" >&2; exit 2 ;;
  esac
done
for n in rounds threads prefill decode depth ik_reps; do
  [[ "${!n}" =~ ^[1-9][0-9]*$ ]] || { echo "ik_compare.sh: --${n//_/-} expects a positive integer, found '${!n}'" >&2; exit 2; }
done
llama_bench="$ik_build/bin/llama-bench"
engine_bench="$latent_build/bin/engine_bench"
[ -n "$ik_build" ] && [ -x "$llama_bench" ] || { echo "ik_compare.sh: expected --ik-build DIR with bin/llama-bench, found '${ik_build:-<none>}'" >&2; exit 2; }
[ -n "$gguf" ] && [ -f "$gguf" ] || { echo "ik_compare.sh: expected --gguf FILE (bench/ik_gguf.py output), found '${gguf:-<none>}'" >&2; exit 2; }
[ -n "$model" ] && [ -f "$model/config.json" ] || { echo "ik_compare.sh: expected --model DIR with config.json, found '${model:-<none>}'" >&2; exit 2; }
[ -x "$engine_bench" ] || { echo "ik_compare.sh: expected $engine_bench (cmake --build build --target engine_bench)" >&2; exit 2; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
emit() {  # one JSON line to stdout (and --out)
  echo "$1"
  if [ -n "$out" ]; then echo "$1" >> "$out"; fi
  echo "$1" >> "$tmp/all.jsonl"
}
ik_flags=(-m "$gguf" -t "$threads" -mla 3 -fa 1 -fmoe 1 -r "$ik_reps" -o json)
prec_args=()
if [ -n "$precision" ]; then prec_args=(--precision "$precision"); fi
export LATENT_THREADS="$threads"

compact() { python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin), separators=(",", ":")))'; }
ik_line() {  # round what file: llama-bench's JSON array -> one line per test
  python3 - "$1" "$2" "$3" <<'EOF'
import json, sys
rnd, what, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
for t in json.load(open(path)):
    print(json.dumps({"round": rnd, "what": what, "engine": "ik_llama.cpp", "n_prompt": t["n_prompt"],
                      "n_gen": t["n_gen"], "tok_per_s": max(t.get("samples_ts") or [t["avg_ts"]]),
                      "samples_tok_per_s": t.get("samples_ts"), "threads": t.get("n_threads"),
                      "build_commit": t.get("build_commit")}, separators=(",", ":")))
EOF
}

for r in $(seq 1 "$rounds"); do
  emit "$("$engine_bench" --probe-only | python3 -c 'import json,sys; d=json.load(sys.stdin); d["round"]='"$r"'; d["what"]="probe"; print(json.dumps(d, separators=(",", ":")))')"
  "$llama_bench" "${ik_flags[@]}" -rtr 1 -p "$prefill" -n 0 > "$tmp/ik_pp.json" 2> "$tmp/ik_pp.err" ||
    { cat "$tmp/ik_pp.err" >&2; echo "ik_compare.sh: llama-bench (prefill) failed" >&2; exit 1; }
  while read -r l; do emit "$l"; done < <(ik_line "$r" ik_prefill "$tmp/ik_pp.json")
  "$llama_bench" "${ik_flags[@]}" -p 0 -n "$decode" -gp "$depth,$decode" > "$tmp/ik_tg.json" 2> "$tmp/ik_tg.err" ||
    { cat "$tmp/ik_tg.err" >&2; echo "ik_compare.sh: llama-bench (decode) failed" >&2; exit 1; }
  while read -r l; do emit "$l"; done < <(ik_line "$r" ik_decode "$tmp/ik_tg.json")
  emit "$("$engine_bench" --probe-only | python3 -c 'import json,sys; d=json.load(sys.stdin); d["round"]='"$r"'; d["what"]="probe"; print(json.dumps(d, separators=(",", ":")))')"
  "$engine_bench" --model "$model" --prefill "$prefill" --decode "$decode" --depths "0,$depth" "${prec_args[@]+"${prec_args[@]}"}" \
    > "$tmp/latent.json" 2> "$tmp/latent.err" || { cat "$tmp/latent.err" >&2; echo "ik_compare.sh: engine_bench failed" >&2; exit 1; }
  emit "$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d["round"]='"$r"'; d["what"]="latent"; print(json.dumps(d, separators=(",", ":")))' "$tmp/latent.json")"
done

python3 - "$tmp/all.jsonl" "$prefill" "$depth" <<'EOF' | while read -r l; do emit "$l"; done
import json, statistics, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
prefill, depth = int(sys.argv[2]), int(sys.argv[3])
rounds = sorted({l["round"] for l in lines})
ratios = {"prefill": [], "decode_0": [], f"decode_{depth}": []}
ik_abs = {k: [] for k in ratios}; lat_abs = {k: [] for k in ratios}
frac_ik, frac_lat, probes = [], [], []
precision = None
for r in rounds:
    L = [l for l in lines if l["round"] == r]
    lat = next(l for l in L if l["what"] == "latent")
    precision = lat.get("linear_precision")
    pr = [l["read_bandwidth_GBs"] for l in L if l["what"] == "probe"]
    probe = sum(pr) / len(pr)
    probes.append(probe)
    ik = {}
    for l in L:
        if l["what"] == "ik_prefill" and l["n_gen"] == 0: ik["prefill"] = l["tok_per_s"]
        if l["what"] == "ik_decode" and l["n_prompt"] == 0: ik["decode_0"] = l["tok_per_s"]
        if l["what"] == "ik_decode" and l["n_prompt"] == depth: ik[f"decode_{depth}"] = l["tok_per_s"]
    me = {"prefill": lat["prefill"]["tok_per_s"]}
    for d in lat["decode"]:
        me[f"decode_{d['context']}"] = d["tok_per_s"]
    for k in ratios:
        if k in ik and k in me:
            ratios[k].append(me[k] / ik[k]); ik_abs[k].append(ik[k]); lat_abs[k].append(me[k])
    bpt = lat["weight_bytes_per_decoded_token"]
    if "decode_0" in ik: frac_ik.append(bpt * ik["decode_0"] / 1e9 / probe)
    frac_lat.append(bpt * me["decode_0"] / 1e9 / probe)
med = lambda v: round(statistics.median(v), 3) if v else None
rng = lambda v: [round(min(v), 2), round(max(v), 2)] if v else None
print(json.dumps({"what": "summary", "rounds": len(rounds), "latent_precision": precision,
                  "latent_over_ik_median": {k: med(v) for k, v in ratios.items()},
                  "latent_over_ik_per_round": {k: [round(x, 3) for x in v] for k, v in ratios.items()},
                  "ik_tok_per_s_range": {k: rng(v) for k, v in ik_abs.items()},
                  "latent_tok_per_s_range": {k: rng(v) for k, v in lat_abs.items()},
                  "probe_GBs_range": rng(probes),
                  "decode_0_fraction_of_probe_median": {"ik_llama.cpp": med(frac_ik), "latent": med(frac_lat)}},
                 separators=(",", ":")))
EOF
