#!/usr/bin/env bash
# Stages the service binaries for the GPU machine, which has no Debian -dev packages and no network, so it cannot
# build gRPC, Protobuf or prometheus-cpp code itself: nibble-server, nibble-quantizer, nibble (the CLI) and nibble-load from a full
# build here (CUDA code for sm_90a among its targets), stripped, with the runtime closure of every shared library
# they load (glibc and its loader included, so they run whatever the GPU machine's own libc is), packed into
# .device-services/services.tar.xz (git-ignored). Name .device-services in the device call's carry list; on the GPU machine
# scripts/device/serve-bench.sh runs them through the carried loader, with the machine's own CUDA driver and
# cuBLAS found on its library path.
#
#   scripts/device/stage-services.sh [BUILD_DIR]      (default build/, built with `cmake --build`)
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
binaries=("$build/service/inference_server/nibble-server" "$build/service/quantizer_server/nibble-quantizer"
  "$build/service/cli/nibble" "$build/bench/nibble-load")
module="$build/engine/tokenizer/libnibble_sentencepiece.so"
for file in "${binaries[@]}" "$module"; do
  [[ -f "$file" ]] || { echo "stage-services: $file is missing: build $build first" >&2; exit 1; }
done
if ! grep -qE '^NIBBLE_CUDA_ARCHITECTURES:[A-Z]*=.*90a' "$build/CMakeCache.txt" ||
  ! grep -q 'NIBBLE_HAVE_CUDA' "$build/build.ninja"; then
  echo "stage-services: $build was not configured with CUDA for sm_90a (NIBBLE_CUDA_ARCHITECTURES)" >&2
  exit 1
fi

staging=$(mktemp -d)
trap 'rm -rf "$staging"' EXIT
mkdir -p "$staging/bin" "$staging/lib"
for file in "${binaries[@]}" "$module"; do
  strip -o "$staging/bin/$(basename "$file")" "$file"
done
mv "$staging/bin/libnibble_sentencepiece.so" "$staging/lib/"
# Every library the binaries and the module load, except the CUDA driver (the GPU machine's own must be used).
for file in "${binaries[@]}" "$module"; do
  ldd "$file" | awk '/=> \// { print $3 } $1 ~ /^\/.*ld-linux/ { print $1 }'
done | sort -u | grep -v -E 'libcuda\.so' | while read -r library; do
  strip -o "$staging/lib/$(basename "$library")" "$(readlink -f "$library")"
done
# About 64 MB unpacked, more than a device call carries with the tree: carried as one xz archive, which
# serve-bench.sh unpacks on the GPU machine.
rm -rf .device-services
mkdir -p .device-services
tar -C "$staging" -cJf .device-services/services.tar.xz bin lib
du -sh "$staging" .device-services
