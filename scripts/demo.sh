#!/usr/bin/env bash
# The README's main command: on a fresh Debian 12 machine, installs what nibble needs, builds it, and runs a
# model end to end.
#
# The model comes from NIBBLE_MODEL: a Hugging Face Llama-family directory, or a llama2.c checkpoint (.bin)
# with NIBBLE_TOKENIZER naming its SentencePiece model. Without it, a small model with RANDOM weights is
# synthesized (`nibble synth`): everything runs, but its text is noise.
# Other knobs: NIBBLE_PROMPT (default "Once upon a time"), NIBBLE_BACKEND (auto|cpu|cuda), NIBBLE_WORK
# (working directory, default .nibble-run).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${NIBBLE_JOBS:-$(nproc)}
work=${NIBBLE_WORK:-.nibble-run}
prompt=${NIBBLE_PROMPT:-Once upon a time}
backend=${NIBBLE_BACKEND:-auto}

step() { printf '\n==> %s\n' "$*"; }

step "installing dependencies (scripts/install-deps.sh)"
scripts/install-deps.sh
step "building (build/)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$jobs" --target nibble
nibble=build/service/cli/nibble
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

step "generating from \"$prompt\" ($backend backend)"
"$nibble" generate --model "$model" --prompt "$prompt" --max-tokens 120 --backend "$backend"
