#!/usr/bin/env bash
# The README's main command: on a fresh Debian 12 machine, installs what nibble needs, builds it, and runs the
# whole product as its users run it: nibble-quantizer and nibble-server on one model store, an AWQ job submitted
# to the quantizer with `nibble quantize --server ... --watch` (progress per block, the published version),
# nibble-server picking the new version up from the store, a generation streamed from it over gRPC with
# `nibble generate --server`, and a few Prometheus metrics of both services. Both services stop when it ends.
#
# The model comes from NIBBLE_MODEL: a Hugging Face Llama-family directory, or a llama2.c checkpoint (.bin)
# with NIBBLE_TOKENIZER naming its SentencePiece model or llama2.c tokenizer.bin. Without it, the shared stories260K
# ($NIBBLE_SHARED/models/stories260K, NIBBLE_SHARED defaulting to ../shared) is imported with
# `nibble import-llama2c`; only where that is absent too is a small model with RANDOM weights synthesized
# (`nibble synth`): everything runs, but its text is noise.
# It is quantized with AWQ on NIBBLE_CALIB (a text file; documents split on NIBBLE_SEPARATOR), by default
# $NIBBLE_SHARED/data/tinystories-dev-50.txt when present, using NIBBLE_N_SAMPLES documents (default 16, to keep
# the demo short; AWQ's default is 128); with NIBBLE_CALIB set empty or no text found, with RTN.
# Other knobs: NIBBLE_PROMPT (default "Once upon a time"), NIBBLE_BACKEND (auto|cpu|cuda, for both services),
# NIBBLE_GROUP_SIZE (default 128, or 32 for models narrower than 128), NIBBLE_PORT (default 8600: nibble-server's
# gRPC; its metrics on +1, nibble-quantizer's gRPC on +10 and its metrics on +11), NIBBLE_WORK (working
# directory, default .nibble-run: the imported model, the store, the quantizer's state, the logs).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${NIBBLE_JOBS:-$(nproc)}
work=${NIBBLE_WORK:-.nibble-run}
shared=${NIBBLE_SHARED:-../shared}
prompt=${NIBBLE_PROMPT:-Once upon a time}
backend=${NIBBLE_BACKEND:-auto}
port=${NIBBLE_PORT:-8600}
server_address=127.0.0.1:$port
server_metrics_port=$((port + 1))
quantizer_address=127.0.0.1:$((port + 10))
quantizer_metrics_port=$((port + 11))
default_calib=$shared/data/tinystories-dev-50.txt
calib=${NIBBLE_CALIB-$([[ -f $default_calib ]] && echo "$default_calib" || true)}
n_samples=${NIBBLE_N_SAMPLES:-16}
separator=${NIBBLE_SEPARATOR:-<|endoftext|>}

step() { printf '\n==> %s\n' "$*"; }

step "installing dependencies (scripts/install-deps.sh)"
scripts/install-deps.sh
step "building (build/)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$jobs" --target nibble nibble-server nibble-quantizer
nibble=build/service/cli/nibble
server=build/service/inference_server/nibble-server
quantizer=build/service/quantizer_server/nibble-quantizer
mkdir -p "$work"
work=$(realpath "$work")  # the quantizer takes absolute paths under its source roots

step "preparing the model"
model="$work/model"
source_roots=("$work")
stories=$shared/models/stories260K
if [[ -n "${NIBBLE_MODEL:-}" && -d "$NIBBLE_MODEL" ]]; then
  model=$(realpath "$NIBBLE_MODEL")
  source_roots+=("$model")
  echo "using the Hugging Face directory $model"
elif [[ -n "${NIBBLE_MODEL:-}" ]]; then
  : "${NIBBLE_TOKENIZER:?NIBBLE_MODEL names a llama2.c checkpoint: set NIBBLE_TOKENIZER to its SentencePiece model or tokenizer.bin}"
  rm -rf "$model"
  "$nibble" import-llama2c "$NIBBLE_MODEL" "$NIBBLE_TOKENIZER" "$model"
elif [[ -f $stories/stories260K.bin && -f $stories/tok512.model ]]; then
  echo "importing the shared stories260K ($stories) into $model"
  rm -rf "$model"
  "$nibble" import-llama2c "$stories/stories260K.bin" "$stories/tok512.model" "$model"
else
  echo "neither NIBBLE_MODEL nor $stories is there: synthesizing a tiny model with RANDOM weights as the last"
  echo "resort (everything runs, but its text will be noise; set NIBBLE_SHARED or NIBBLE_MODEL for a real one)"
  rm -rf "$model"
  "$nibble" synth --preset tiny "$model"
fi
hidden=$(grep -o '"hidden_size": *[0-9]*' "$model/config.json" | grep -o '[0-9]*$')
group_size=${NIBBLE_GROUP_SIZE:-$([[ $hidden -lt 128 ]] && echo 32 || echo 128)}
if [[ -n "$calib" ]]; then
  calib=$(realpath "$calib")
  source_roots+=("$(dirname "$calib")")
fi
[[ -d $shared/data ]] && source_roots+=("$(realpath "$shared/data")")

store="$work/store"
mkdir -p "$store" "$work/quantizer-state"
pids=()
stop_services() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop_services EXIT

# Waits until `$nibble $*` succeeds (the service answers), or fails showing the log of the service with pid $1.
wait_for() {
  local pid=$1 log=$2
  shift 2
  for _ in $(seq 1 120); do
    if "$nibble" "$@" >/dev/null 2>&1; then return 0; fi
    kill -0 "$pid" 2>/dev/null || { echo "it exited:"; cat "$log"; exit 1; }
    sleep 0.5
  done
  echo "no answer after 60 s:"
  cat "$log"
  exit 1
}

step "starting nibble-quantizer on $quantizer_address ($backend backend, metrics on :$quantizer_metrics_port)"
mapfile -t source_roots < <(printf '%s\n' "${source_roots[@]}" | sort -u)
root_flags=()
for root in "${source_roots[@]}"; do root_flags+=(--source-root "$root"); done
echo "source roots: ${source_roots[*]}"
"$quantizer" --store "$store" --state-dir "$work/quantizer-state" "${root_flags[@]}" --listen "$quantizer_address" \
  --metrics-port "$quantizer_metrics_port" --backend "$backend" >"$work/quantizer.log" 2>&1 &
quantizer_pid=$!
pids+=("$quantizer_pid")
wait_for "$quantizer_pid" "$work/quantizer.log" jobs list --server "$quantizer_address"

step "starting nibble-server on $server_address ($backend backend, metrics on :$server_metrics_port), on the same store"
"$server" --store "$store" --listen "$server_address" --metrics-port "$server_metrics_port" --backend "$backend" \
  --poll-interval 1 >"$work/server.log" 2>&1 &
server_pid=$!
pids+=("$server_pid")
wait_for "$server_pid" "$work/server.log" models --server "$server_address"

if [[ -n "$calib" ]]; then
  step "quantizing with AWQ on nibble-quantizer (w4 g$group_size, $n_samples documents of $calib)"
  method_flags=(--calib "$calib" --separator "$separator" --n-samples "$n_samples" --eval-text "$calib")
else
  step "quantizing with RTN on nibble-quantizer (w4 g$group_size; set NIBBLE_CALIB for AWQ)"
  method_flags=(--method rtn)
fi
"$nibble" quantize --server "$quantizer_address" --model "$model" "${method_flags[@]}" --group-size "$group_size" \
  --name demo --request-id "demo-$(date +%s)-$$" --watch ||
  { echo "the job did not succeed; the end of nibble-quantizer's log:"; tail -n 40 "$work/quantizer.log"; exit 1; }
# The job published the store's newest version of demo (the store is this demo's own).
version=$(find "$store/demo" -mindepth 1 -maxdepth 1 -type d -regex '.*/[0-9]+' -printf '%f\n' | sort -n | tail -1)

step "waiting for nibble-server to serve demo:$version"
serving() {
  "$nibble" models --server "$server_address" 2>/dev/null |
    awk -v version="$version" '$1 == "demo" && $2 == version && $4 == "yes" { found = 1 } END { exit !found }'
}
for _ in $(seq 1 120); do
  serving && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log"; exit 1; }
  sleep 0.5
done
"$nibble" models --server "$server_address"
serving || { echo "nibble-server does not serve demo:$version after 60 s:"; tail -n 40 "$work/server.log"; exit 1; }

step "streaming a generation over gRPC from \"$prompt\""
"$nibble" generate --server "$server_address" --model "demo:$version" --prompt "$prompt" --max-tokens 120

# A few lines of a service's /metrics: scrape_metrics PORT REGEX.
scrape_metrics() {
  exec 3<>"/dev/tcp/127.0.0.1/$1"
  printf 'GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
  grep -E "$2" <&3 || true
  exec 3>&-
}
step "metrics"
echo "Prometheus metrics were served at http://127.0.0.1:$server_metrics_port/metrics (nibble-server) and"
echo "http://127.0.0.1:$quantizer_metrics_port/metrics (nibble-quantizer); both stop with this script. A few now:"
scrape_metrics "$quantizer_metrics_port" \
  '^nibble_quant_(jobs|job_duration_seconds_(sum|count)|block_seconds_(sum|count)|peak_gpu_memory_bytes)'
scrape_metrics "$server_metrics_port" \
  '^nibble_(generation_tokens_total|requests_total|time_to_first_token_seconds_count|model_weight_bytes)'
echo "The job stays on record in $work/quantizer-state: start the quantizer on it again and"
echo "\`$nibble jobs list --server $quantizer_address\` lists it."
