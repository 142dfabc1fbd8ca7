#!/bin/sh
# Adds NVIDIA's CUDA apt repository for Debian 12 (its signing key comes from the cuda-keyring package, which
# that repository serves) and refreshes the package lists. Used by docker/Dockerfile.server's stages.
set -eu
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends ca-certificates curl
curl -fsSL -o /tmp/cuda-keyring.deb \
  https://developer.download.nvidia.com/compute/cuda/repos/debian12/x86_64/cuda-keyring_1.1-1_all.deb
dpkg -i /tmp/cuda-keyring.deb
rm /tmp/cuda-keyring.deb
apt-get update -qq
