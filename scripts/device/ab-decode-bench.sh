#!/usr/bin/env bash
# On the GPU machine: decode_bench of an earlier commit against this tree's, built alike and run alternately in
# one session, so that a kernel change is judged on one machine at one time (clocks and cards vary between
# sessions). The earlier source travels as a tarball (carry .device-before with .device-deps):
#   git archive --format=tar COMMIT | xz > .device-before/src.tar.xz      (here, before the call)
#   scripts/device/ab-decode-bench.sh [ROUNDS]                              (there; default 2 rounds)
# Leaves under $OUT ab-decode-bench.md: each round's decode_bench table, before then after.
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-/tmp/nibble-out}
mkdir -p "$out"
rounds=${1:-2}
before=$PWD/.nibble-run/before
rm -rf "$before" && mkdir -p "$before" && tar -C "$before" -xJf .device-before/src.tar.xz || exit 1
export LD_LIBRARY_PATH="$PWD/.device-deps/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
build() {  # build SOURCE_DIR BUILD_DIR: decode_bench only, as build-test-bench.sh configures it
  cmake -S "$1" -B "$2" -G Ninja -DCMAKE_BUILD_TYPE=Release -DNIBBLE_ENGINE_ONLY=ON -DNIBBLE_CUDA=ON \
    -DNIBBLE_CUDA_ARCHITECTURES=90a -DCMAKE_PREFIX_PATH="$PWD/.device-deps/usr" >"$out/configure-$(basename "$2").log" 2>&1 \
    && cmake --build "$2" -j "$(nproc)" --target decode_bench >"$out/build-$(basename "$2").log" 2>&1 \
    || { grep -E "error|FAILED" "$out/build-$(basename "$2").log" | head -20; return 1; }
}
build "$before" "$before/build-device" || exit 1
build . build-device || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/device.txt"
for round in $(seq "$rounds"); do
  for side in before after; do
    dir=$([[ $side == before ]] && echo "$before/build-device" || echo build-device)
    echo "## round $round, $side" | tee -a "$out/ab-decode-bench.md"
    "$dir/bench/decode_bench" --preset llama2-7b --group 128 --prompt 512 --decode 128 \
      --batches "${NIBBLE_DECODE_BATCHES:-1,8,32}" | tee -a "$out/ab-decode-bench.md"
  done
done
