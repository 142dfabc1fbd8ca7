#!/usr/bin/env bash
# Builds everything and runs every test: the README's test command, and all that .ci/run does.
#   1. installs the Debian packages (scripts/install-deps.sh)
#   2. configures and builds the full tree (CUDA code too when nvcc is present) in build/
#   3. runs every test through ctest (GPU tests skip with a message where no GPU is visible)
#   4. builds the engine and quantizer tests again with AddressSanitizer + UBSan in build-asan/ and runs them
#   5. builds the libFuzzer targets of tests/fuzz/ with clang in build-fuzz/ and runs each for
#      NIBBLE_FUZZ_SECONDS (default 20) from its generated seeds: any crash fails (tests/fuzz/README.md)
# Shared material (models, data) is read from NIBBLE_SHARED, default ../shared beside the checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${NIBBLE_JOBS:-$(nproc)}

scripts/install-deps.sh
export NIBBLE_SHARED=${NIBBLE_SHARED:-$(cd .. && pwd)/shared}

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$jobs"
ctest --test-dir build --output-on-failure -j "$jobs" --timeout 1200

cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNIBBLE_ENGINE_ONLY=ON -DNIBBLE_CUDA=OFF \
  -DNIBBLE_SANITIZE=ON -DNIBBLE_BENCH=OFF >/dev/null
cmake --build build-asan -j "$jobs"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-asan --output-on-failure -j "$jobs" --timeout 1800 --label-exclude slow
cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang \
  -DCMAKE_CXX_COMPILER=clang++ -DNIBBLE_FUZZ=ON -DNIBBLE_ENGINE_ONLY=ON -DNIBBLE_CUDA=OFF -DNIBBLE_TESTS=OFF \
  -DNIBBLE_BENCH=OFF -DNIBBLE_FUZZ_SECONDS="${NIBBLE_FUZZ_SECONDS:-20}" >/dev/null
cmake --build build-fuzz -j "$jobs" --target nibble_fuzz_targets
ctest --test-dir build-fuzz --output-on-failure -L fuzz -j 2
echo "test.sh: all tests passed"
