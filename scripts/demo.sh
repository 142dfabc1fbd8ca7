#!/usr/bin/env bash
# The README's main command: on a fresh Debian 12 machine, installs what nibble needs, builds it, and runs the
# whole product once: quantize a model, publish it into a model store, serve it with nibble-server, stream a
# generation from it over gRPC with the `nibble` client, and show where the Prometheus metrics are.
#
# The model comes from NIBBLE_MODEL: a Hugging Face Llama-family directory, or a llama2.c checkpoint (.bin)
# with NIBBLE_TOKENIZER naming its SentencePiece model. Without it, a small model with RANDOM weights is
# synthesized (`nibble synth`): everything runs, but its text is noise.
# It is quantized with AWQ on NIBBLE_CALIB (a text file; documents split on NIBBLE_SEPARATOR), by default
# ../shared/data/tinystories-dev-50.txt when present, using NIBBLE_N_SAMPLES documents (default 16, to keep the
# demo short; AWQ's default is 128); with NIBBLE_CALIB set empty or no text found, with RTN.
# Other knobs: NIBBLE_PROMPT (default "Once upon a time"), NIBBLE_BACKEND (auto|cpu|cuda, for the server),
# NIBBLE_GROUP_SIZE (default 128, or 32 for models narrower than 128), NIBBLE_PORT (gRPC, default 8600; metrics
# on the next port), NIBBLE_WORK (working directory, default .nibble-run).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${NIBBLE_JOBS:-$(nproc)}
work=${NIBBLE_WORK:-.nibble-run}
prompt=${NIBBLE_PROMPT:-Once upon a time}
backend=${NIBBLE_BACKEND:-auto}
port=${NIBBLE_PORT:-8600}
metrics_port=$((port + 1))
default_calib=../shared/data/tinystories-dev-50.txt
calib=${NIBBLE_CALIB-$([[ -f $default_calib ]] && echo "$default_calib" || true)}
n_samples=${NIBBLE_N_SAMPLES:-16}
separator=${NIBBLE_SEPARATOR:-<|endoftext|>}

step() { printf '\n==> %s\n' "$*"; }

step "installing dependencies (scripts/install-deps.sh)"
scripts/install-deps.sh
step "building (build/)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$jobs" --target nibble nibble-server
nibble=build/service/cli/nibble
server=build/service/inference_server/nibble-server
mkdir -p "$work"

step "preparing the model"
model="$work/model"
if [[ -n "${NIBBLE_MODEL:-}" && -d "$NIBBLE_MODEL" ]]; then
  model=$NIBBLE_MODEL
  echo "using the Hugging Face directory $model"
elif [[ -n "${NIBBLE_MODEL:-}" ]]; then
  : "${NIBBLE_TOKENIZER:?NIBBLE_MODEL names a llama2.c checkpoint: set NIBBLE_TOKENIZER to its SentencePiece model}"
  rm -rf "$model"
  "$nibble" import-llama2c "$NIBBLE_MODEL" "$NIBBLE_TOKENIZER" "$model"
else
  echo "NIBBLE_MODEL is not set: synthesizing a tiny model with RANDOM weights (its text will be noise)"
  rm -rf "$model"
  "$nibble" synth --preset tiny "$model"
fi
hidden=$(grep -o '"hidden_size": *[0-9]*' "$model/config.json" | grep -o '[0-9]*$')
group_size=${NIBBLE_GROUP_SIZE:-$([[ $hidden -lt 128 ]] && echo 32 || echo 128)}

store="$work/store"
if [[ -n "$calib" ]]; then
  step "quantizing with AWQ (w4 g$group_size, $n_samples documents of $calib) and publishing into $store"
  "$nibble" quantize --model "$model" --calib "$calib" --separator "$separator" --n-samples "$n_samples" \
    --group-size "$group_size" --eval-text "$calib" --store "$store" --name demo
else
  step "quantizing with RTN (w4 g$group_size; set NIBBLE_CALIB for AWQ) and publishing into $store"
  "$nibble" quantize --model "$model" --method rtn --group-size "$group_size" --store "$store" --name demo
fi

step "starting nibble-server on 127.0.0.1:$port ($backend backend, metrics on :$metrics_port)"
"$server" --store "$store" --listen "127.0.0.1:$port" --metrics-port "$metrics_port" --backend "$backend" \
  >"$work/server.log" 2>&1 &
server_pid=$!
trap 'kill -TERM $server_pid 2>/dev/null; wait $server_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do
  if "$nibble" models --server "127.0.0.1:$port" 2>/dev/null | grep -q demo; then break; fi
  kill -0 $server_pid 2>/dev/null || { cat "$work/server.log"; exit 1; }
  sleep 0.5
done
"$nibble" models --server "127.0.0.1:$port"

step "streaming a generation over gRPC from \"$prompt\""
"$nibble" generate --server "127.0.0.1:$port" --model demo --prompt "$prompt" --max-tokens 120

step "metrics"
echo "Prometheus metrics were served at http://127.0.0.1:$metrics_port/metrics (the server stops with this script;"
echo "run it again with: $server --store $store). A few of them now:"
exec 3<>"/dev/tcp/127.0.0.1/$metrics_port"
printf 'GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
grep -E '^nibble_(generation_tokens_total|requests_total|time_to_first_token_seconds_count|model_weight_bytes)' <&3 || true
exec 3>&-
