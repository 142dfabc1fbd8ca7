#!/usr/bin/env bash
# Stages the Debian packages the engine-only build needs into .device-deps/ (git-ignored), for the GPU
# machine, which has CUDA, CMake and ninja but no Debian -dev packages and no network. The files keep
# their /usr layout, so CMake finds them with -DCMAKE_PREFIX_PATH=$PWD/.device-deps/usr (see
# scripts/device/build-test-bench.sh). Run it here (after scripts/install-deps.sh), then name
# .device-deps in the device call's carry list.
set -euo pipefail
cd "$(dirname "$0")/../.."
packages=(libabsl-dev libabsl20220623 libsentencepiece-dev libsentencepiece0 nlohmann-json3-dev
          libgtest-dev libgmock-dev libbenchmark-dev libbenchmark1debian libssl-dev libssl3
          libpcre2-dev libpcre2-8-0 libutf8proc-dev libutf8proc2)
rm -rf .device-deps
mkdir -p .device-deps
for package in "${packages[@]}"; do
  dpkg -L "$package"
done | while read -r path; do
  if [[ -f "$path" || -L "$path" ]] && [[ "$path" != /usr/share/doc/* && "$path" != /usr/share/man/* ]]; then
    echo "${path#/}"
  fi
done | tar -C / -cf - -T - | tar -C .device-deps -xf -
du -sh .device-deps
