#!/usr/bin/env bash
# Installs every Debian 12 package nibble needs to build, test and run. Idempotent: when everything is
# present it prints nothing and exits 0. Used by the README's two commands, .ci/run (through the README's
# test command) and the Dockerfiles.
#
#   scripts/install-deps.sh            build + test + runtime packages
#   scripts/install-deps.sh --runtime  only what the service binaries need at run time (Docker images)
set -euo pipefail

build_packages=(
  build-essential cmake ninja-build pkg-config git ca-certificates curl
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libspdlog-dev libfmt-dev prometheus-cpp-dev nlohmann-json3-dev
  libsentencepiece-dev libcli11-dev libsqlite3-dev libssl-dev libpcre2-dev libutf8proc-dev
  libgtest-dev libgmock-dev googletest libbenchmark-dev
  prometheus openssl python3 clang-format nodejs clang libclang-rt-14-dev
)
runtime_packages=(
  libgrpc++1.51 libprotobuf32 libsentencepiece0 libspdlog1.10 libprometheus-cpp-core1.0
  libprometheus-cpp-pull1.0 libsqlite3-0 libssl3 libpcre2-8-0 libutf8proc2 ca-certificates
)

packages=("${build_packages[@]}")
if [[ "${1:-}" == "--runtime" ]]; then
  packages=("${runtime_packages[@]}")
fi

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo_cmd=(sudo)
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
