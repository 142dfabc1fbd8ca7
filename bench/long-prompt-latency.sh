#!/usr/bin/env bash
# How long a short request takes while two ~3.9 MB text prompts are tokenized and refused (issue 13 item 1), on
# the CPU backend, for three nibble-server settings: every prompt tokenized on gRPC's own threads (the old
# behaviour: --inline-prompt-bytes past any prompt), the default 2 prompt threads, and 1.
# The model: a random qwen2-0.5b (context 32768) with the real Qwen3 tokenizer.json from .test-data
# (scripts/fetch-test-data.sh), published with `nibble publish`; such a prompt fits the byte bound (32768 tokens
# x the longest piece) and tokenizes to about 815,000 tokens, so it is refused only after tokenizing.
#   bench/long-prompt-latency.sh [BUILD_DIR] [WORK_DIR]        (defaults: build, /tmp/nibble-long-prompt)
# Prints one line per request: setting, what it was (alone, during, long1, long2) and its seconds, as the
# client saw them (a fresh `nibble generate` process each, --max-tokens 1).
set -euo pipefail
cd "$(dirname "$0")/.."
build=$(realpath "${1:-build}")
work=${2:-/tmp/nibble-long-prompt}
nibble=$build/service/cli/nibble
server=$build/service/inference_server/nibble-server
tokenizer=.test-data/tokenizers/qwen3
[[ -f $tokenizer/tokenizer.json ]] || { echo "no $tokenizer/tokenizer.json: run scripts/fetch-test-data.sh" >&2; exit 1; }
mkdir -p "$work"
if [[ ! -d $work/store/qwen ]]; then
  rm -rf "$work/model" && "$nibble" synth --preset qwen2-0.5b "$work/model" >/dev/null
  rm "$work/model/tokenizer.model" && cp "$tokenizer/tokenizer.json" "$tokenizer/tokenizer_config.json" "$work/model/"
  "$nibble" publish "$work/model" --store "$work/store" --name qwen >/dev/null
fi
python3 - "$work/long.txt" <<'PY'
import random, sys
random.seed(1)
words = "the quick brown fox jumps over a lazy dog while seven happy children sing loudly near an old river".split()
text, size = [], 0
while size < 3_900_000:
    word = random.choice(words) + (" " if random.random() < 0.9 else ".\n")
    text.append(word)
    size += len(word)
open(sys.argv[1], "w").write("".join(text)[:3_900_000])
PY
seconds_since() { echo "$(date +%s.%N) - $1" | bc; }
generate() { "$nibble" generate --server 127.0.0.1:18700 --model qwen --max-tokens 1 "$@" >/dev/null 2>&1 || true; }
run_setting() {
  local label=$1
  shift
  "$server" --store "$work/store" --listen 127.0.0.1:18700 --metrics-port 18701 --backend cpu --max-seqs 1 "$@" \
    >"$work/server-$label.log" 2>&1 &
  local pid=$!
  until grep -q "serving" "$work/server-$label.log"; do sleep 0.5; done
  for _ in 1 2 3; do
    local start=$(date +%s.%N)
    generate --prompt Hello
    echo "$label alone $(seconds_since "$start")"
  done
  for _ in 1 2 3; do
    local begin=$(date +%s.%N)
    (generate --prompt-file "$work/long.txt"; echo "$label long1 $(seconds_since "$begin")") &
    local long1=$!
    (generate --prompt-file "$work/long.txt"; echo "$label long2 $(seconds_since "$begin")") &
    local long2=$!
    sleep 0.3
    local start=$(date +%s.%N)
    generate --prompt Hello
    echo "$label during $(seconds_since "$start")"
    wait $long1 $long2
  done
  kill $pid && wait $pid 2>/dev/null || true
}
run_setting on-grpc-threads --inline-prompt-bytes 100000000
run_setting prompt-threads-2
run_setting prompt-threads-1 --prompt-threads 1
