#!/usr/bin/env bash
# On the GPU machine: the services as users run them, with the binaries staged by scripts/device/stage-services.sh
# (carry .device-services and .device-shared). Builds a store with two artifacts through the product's own
# commands (stories260K imported and AWQ-quantized on its dev text; a random-weight Llama-2-7B-shaped model,
# RTN w4 g128), starts nibble-server --backend cuda on it and measures it with nibble-load, leaving under $OUT
# serve-bench.log (every step's output), serve-bench.md (the table), serve-bench.jsonl (nibble-load's summaries)
# and server.log:
#   correct   stories260K's greedy stream from the server equals offline generation on the CUDA backend
#   serve     nibble-load at each concurrency of NIBBLE_SERVE_N (default 1 8 32 64 128): 512-token prompts,
#             128 output tokens, ignore_eos; GPU memory and KV usage read from /metrics while it runs
#   cancel    64 streams of which 32 hit a 1 s deadline: KV usage returns to 0
#   swap      a new version of the 7B model published (renamed into place) under 32 streams: none dropped
#   quantizer nibble-quantizer --backend cuda on the same store: an AWQ job of stories260K submitted with
#             `nibble quantize --server --watch` while 16 streams run on stories260k; the server swaps to the new
#             version with none dropped (its log in quantizer.log)
#   drain     SIGTERM under load: the server finishes its streams and exits 0
# decode_bench's figures at the same batch sizes come from scripts/device/build-test-bench.sh e2e, run in the
# same session.
#
#   scripts/device/serve-bench.sh [correct] [serve] [cancel] [swap] [quantizer] [drain]     (default: all)
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-/tmp/nibble-out}
mkdir -p "$out"
steps=${*:-correct serve cancel swap quantizer drain}
shared=${NIBBLE_SHARED:-$PWD/.device-shared}
work=${NIBBLE_WORK:-$PWD/.nibble-run/serve-bench}  # git-ignored: a warm machine keeps the store between calls
store=$work/store
services=$PWD/.nibble-run/services  # unpacked from the carried .device-services/services.tar.xz
if [[ ! -x $services/bin/nibble || .device-services/services.tar.xz -nt $services/bin/nibble ]]; then
  rm -rf "$services" && mkdir -p "$services" && tar -C "$services" -xJf .device-services/services.tar.xz || exit 1
fi
port=${NIBBLE_PORT:-8600}
server_address=127.0.0.1:$port
metrics_url=http://127.0.0.1:$((port + 1))/metrics

# The staged binaries run through their own loader and libraries; the machine's CUDA driver and cuBLAS come after.
cuda_lib=$(dirname "$(readlink -f "$(command -v nvcc)")")/../lib64
driver_lib=$(dirname "$(ldconfig -p | awk '/libcuda\.so\.1 / { print $NF; exit }')")
library_path="$services/lib:$cuda_lib:$driver_lib"
export NIBBLE_SENTENCEPIECE_MODULE=$services/lib/libnibble_sentencepiece.so
loader=("$services/lib/ld-linux-x86-64.so.2" --library-path "$library_path")
staged() { "${loader[@]}" "$services/bin/$1" "${@:2}"; }
nibble() { staged nibble "$@"; }
log() { echo "[$(date +%T)] $*" | tee -a "$out/serve-bench.log"; }
timed() {  # timed NAME COMMAND...: runs it with its output appended to serve-bench.log, logs the seconds it took
  local name=$1 start=$SECONDS
  shift
  echo "--- $name: $*" >>"$out/serve-bench.log"
  "$@" >>"$out/serve-bench.log" 2>&1
  local status=$?
  log "$name: exit $status in $((SECONDS - start)) s"
  return $status
}
metric() {  # metric NAME: the largest value of that metric family on the server's /metrics
  python3 - "$metrics_url" "$1" <<'EOF'
import sys, urllib.request
values = [float(line.rsplit(" ", 1)[1]) for line in urllib.request.urlopen(sys.argv[1], timeout=5).read().decode().splitlines()
          if line.startswith(sys.argv[2]) and not line.startswith("#")]
print(max(values) if values else "nan")
EOF
}
watch_metrics() {  # samples GPU memory and KV usage every 0.2 s into $1 until killed
  while true; do echo "$(metric nibble_gpu_memory_used_bytes) $(metric nibble_kv_cache_usage_ratio)" >>"$1"; sleep 0.2; done
}
server_pid=
start_server() {
  # Started without the `staged` function (a subshell), so that $! is the server itself and SIGTERM reaches it.
  "${loader[@]}" "$services/bin/nibble-server" --store "$store" --backend cuda --listen "$server_address" --metrics-port $((port + 1)) \
    --max-seqs 128 --kv-blocks 5200 --poll-interval 1 --drain-timeout 60 >>"$out/server.log" 2>&1 &
  server_pid=$!
  local started=$SECONDS
  for _ in $(seq 300); do
    local models
    models=$(nibble models --server "$server_address" 2>/dev/null)
    if grep -qE '^llama2-7b +[0-9]+ +available' <<<"$models" && grep -qE '^stories260k +[0-9]+ +available' <<<"$models"; then
      log "server up (pid $server_pid) after $((SECONDS - started)) s: $(tr -s ' \n' ' ' <<<"$models")"
      return 0
    fi
    kill -0 $server_pid 2>/dev/null || { log "server exited: $(tail -5 "$out/server.log")"; return 1; }
    sleep 1
  done
  log "server did not come up in 300 s"
  return 1
}
load() {  # load NAME N REQUESTS [extra nibble-load flags]: one nibble-load run; its table goes into the log,
  # its summary into $work/NAME.json and serve-bench.jsonl
  local name=$1 concurrency=$2 requests=$3
  shift 3
  staged nibble-load --server "$server_address" --model llama2-7b --concurrency "$concurrency" \
    --requests "$requests" --prompt-tokens 512 --max-tokens 128 --ignore-eos --json "$work/$name.json" "$@" \
    >"$work/$name.md" 2>&1
  local status=$?
  { echo "--- load $name"; cat "$work/$name.md"; } >>"$out/serve-bench.log"
  [[ -f "$work/$name.json" ]] && { echo -n "{\"run\": \"$name\", \"summary\": "; tr -d '\n' <"$work/$name.json"; echo "}"; } >>"$out/serve-bench.jsonl"
  return $status
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/device.txt"
staged nibble --help >/dev/null 2>&1 || { log "staged binaries do not run: $(staged nibble --help 2>&1 | tail -3)"; exit 1; }
status=0
mkdir -p "$work"
if [[ ! -d "$store/llama2-7b" ]]; then
  timed import nibble import-llama2c "$shared/models/stories260K/stories260K.bin" "$shared/models/stories260K/tok512.model" \
    "$work/stories260k-hf" || exit 1
  timed quantize-stories nibble quantize --model "$work/stories260k-hf" --calib "$shared/data/tinystories-dev-50.txt" \
    --separator '<|endoftext|>' --n-samples 16 --group-size 32 --store "$store" --name stories260k || exit 1
  timed synth-7b nibble synth --preset llama2-7b "$work/llama2-7b-hf" || exit 1
  timed quantize-7b nibble quantize --model "$work/llama2-7b-hf" --method rtn --group-size 128 --store "$store" \
    --name llama2-7b || exit 1
  rm -rf "$work/llama2-7b-hf"
fi
start_server || exit 1

if [[ " $steps " == *" correct "* ]]; then
  nibble generate --server "$server_address" --model stories260k --prompt "Once upon a time" --max-tokens 96 \
    >"$work/stories-served.txt" 2>>"$out/serve-bench.log"
  nibble generate --model "$store/stories260k/1" --backend cuda --prompt "Once upon a time" --max-tokens 96 \
    >"$work/stories-offline.txt" 2>>"$out/serve-bench.log"
  { echo "--- served:"; cat "$work/stories-served.txt"; echo "--- offline:"; cat "$work/stories-offline.txt"; } >>"$out/serve-bench.log"
  if cmp -s "$work/stories-served.txt" "$work/stories-offline.txt" && [[ -s "$work/stories-served.txt" ]]; then
    log "correct: served greedy text equals offline CUDA generation ($(wc -c <"$work/stories-served.txt") bytes)"
  else
    log "correct: FAILED, served and offline text differ (both in serve-bench.log)"
    status=1
  fi
fi

if [[ " $steps " == *" serve "* ]]; then
  load warmup 8 16 || true
  for n in ${NIBBLE_SERVE_N:-1 8 32 64 128}; do
    watch_metrics "$work/metrics-n$n.txt" 2>/dev/null &
    watcher=$!
    load "serve-n$n" "$n" $((n < 8 ? 8 : 2 * n)) || status=1
    kill $watcher
    log "serve n=$n: $(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(f"{r["output_tokens_per_second"]:.0f} tok/s, ttft p50 {r["ttft_ms"]["p50"]:.1f} ms, itl p50 {r["inter_token_ms"]["p50"]:.2f} ms, errors {r["errors"]}")' "$work/serve-n$n.json")"
  done
  python3 - "$work" ${NIBBLE_SERVE_N:-1 8 32 64 128} <<'EOF' | tee "$out/serve-bench.md"
import json, sys
work, ns = sys.argv[1], sys.argv[2:]
print("| N | requests/s | output tok/s | TTFT p50 | TTFT p99 | ITL p50 | ITL p99 | e2e p50 | e2e p99 | errors | GPU mem max (GiB) | KV usage max |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for n in ns:
    r = json.load(open(f"{work}/serve-n{n}.json"))
    samples = [line.split() for line in open(f"{work}/metrics-n{n}.txt")]
    gpu = max((float(s[0]) for s in samples if s[0] != "nan"), default=float("nan")) / 2**30
    kv = max((float(s[1]) for s in samples if s[1] != "nan"), default=float("nan"))
    print(f"| {n} | {r['requests_per_second']:.2f} | {r['output_tokens_per_second']:.0f} | {r['ttft_ms']['p50']:.1f} | "
          f"{r['ttft_ms']['p99']:.1f} | {r['inter_token_ms']['p50']:.2f} | {r['inter_token_ms']['p99']:.2f} | "
          f"{r['e2e_ms']['p50']:.0f} | {r['e2e_ms']['p99']:.0f} | {r['errors'] or 'none'} | {gpu:.1f} | {kv:.3f} |")
EOF
fi

if [[ " $steps " == *" cancel "* ]]; then
  load cancel-kept 32 32 &
  kept=$!
  load cancel-cut 32 32 --timeout 1
  wait $kept || status=1
  sleep 1
  kv=$(metric nibble_kv_cache_usage_ratio)
  log "cancel: 32 kept + 32 cut at 1 s; KV usage afterwards $kv"
  [[ "$kv" == "0" || "$kv" == "0.0" ]] || status=1
fi

if [[ " $steps " == *" swap "* ]]; then
  load swap 32 96 &
  swap_load=$!
  sleep 3
  rm -rf "$store/.swap-copy" && cp -r "$store/llama2-7b/1" "$store/.swap-copy" && mv "$store/.swap-copy" "$store/llama2-7b/2"
  wait $swap_load || status=1
  log "swap: version 2 published under 32 streams; $(nibble models --server "$server_address" | tr '\n' ' ')"
  log "swap: $(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["completed"], "of", r["requests"], "completed, errors", r["errors"])' "$work/swap.json")"
fi

if [[ " $steps " == *" quantizer "* ]]; then
  quantizer_address=127.0.0.1:$((port + 10))
  "${loader[@]}" "$services/bin/nibble-quantizer" --store "$store" --state-dir "$work/quantizer-state" \
    --source-root "$work" --source-root "$shared/data" --backend cuda --listen "$quantizer_address" \
    --metrics-port $((port + 11)) >>"$out/quantizer.log" 2>&1 &
  quantizer_pid=$!
  for _ in $(seq 60); do nibble jobs list --server "$quantizer_address" >/dev/null 2>&1 && break; sleep 0.5; done
  before=$(ls "$store/stories260k" | grep -cE '^[0-9]+$')
  staged nibble-load --server "$server_address" --model stories260k --concurrency 16 --requests 400 \
    --prompt-tokens 64 --max-tokens 256 --ignore-eos --json "$work/quantizer-load.json" >"$work/quantizer-load.md" 2>&1 &
  quantizer_load=$!
  timed quantizer-job nibble quantize --server "$quantizer_address" --model "$work/stories260k-hf" \
    --calib "$shared/data/tinystories-dev-50.txt" --separator '<|endoftext|>' --n-samples 40 --group-size 32 \
    --eval-text "$shared/data/tinystories-dev-50.txt" --name stories260k --watch || status=1
  for _ in $(seq 60); do
    nibble models --server "$server_address" | grep -qE "^stories260k +$((before + 1)) +available" && break
    sleep 0.5
  done
  wait $quantizer_load || status=1
  { echo "--- load quantizer"; cat "$work/quantizer-load.md"; nibble models --server "$server_address"; } >>"$out/serve-bench.log"
  job=$(nibble jobs list --server "$quantizer_address" --limit 1 | awk 'NR == 2 { print $1 }')
  nibble jobs get "$job" --json --server "$quantizer_address" >"$work/quantizer-job.json"
  log "quantizer: $(python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(j["state"], "version", j.get("publishedVersion"), "s/block", round(j.get("secondsPerBlock", 0), 3), "peak GPU MiB", int(j.get("peakGpuMemoryBytes", 0)) >> 20, "ppl", j.get("perplexitySource"), "->", j.get("perplexityQuantized"))' "$work/quantizer-job.json")"
  log "quantizer: streams during the job and swap: $(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["completed"], "of", r["requests"], "completed, errors", r["errors"])' "$work/quantizer-load.json"); server: $(nibble models --server "$server_address" | grep stories260k | tr -s ' ' | tr '\n' ';')"
  kill -TERM $quantizer_pid && wait $quantizer_pid
  log "quantizer: exit $? after SIGTERM"
fi

if [[ " $steps " == *" drain "* ]]; then
  load drain 32 32 &
  drain_load=$!
  sleep 3
  kill -TERM $server_pid
  wait $server_pid
  server_status=$?
  wait $drain_load || status=1
  log "drain: nibble-server exit $server_status after SIGTERM; $(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["completed"], "of", r["requests"], "completed, errors", r["errors"])' "$work/drain.json")"
  [[ $server_status -eq 0 ]] || status=1
  server_pid=
fi

[[ -n "$server_pid" ]] && kill -TERM "$server_pid" && wait "$server_pid"
exit $status
