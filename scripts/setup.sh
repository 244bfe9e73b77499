#!/usr/bin/env bash
# Installs the Debian 12 packages attnc needs to build and test, only those
# that are missing. As root it runs apt-get (non-interactive); otherwise it
# prints the exact command to run and exits 1.
#
# usage: scripts/setup.sh [--bench] [--fuzz]
#   --bench  also install python3-torch and python3-torchvision (the benchmarks' PyTorch peers)
#   --fuzz   also install clang and its libFuzzer runtime (scripts/fuzz.sh)
set -euo pipefail

pkgs=(
  build-essential       # gcc, make, libc headers
  cmake pkg-config      # build system
  llvm-14-dev           # LLVM C API: code generation and the JIT
  liblua5.4-dev         # Lua 5.4: model specs
  libcjson-dev          # JSON headers of safetensors files
  libcmocka-dev         # unit tests
  zlib1g-dev            # gzip'd IDX datasets
  libpng-dev            # PNG: gradcam pictures, image-folder data sets
  libjpeg-dev           # JPEG: image-folder data sets (ImageNet subsets)
  dataset-fashion-mnist # Fashion-MNIST in /usr/share/datasets
)

for arg in "$@"; do
  case "$arg" in
    --bench) pkgs+=(python3-torch python3-torchvision) ;;
    --fuzz) pkgs+=(clang libclang-rt-14-dev) ;;
    -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "setup.sh: unknown option '$arg' (see scripts/setup.sh --help)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup.sh: all ${#pkgs[@]} packages are installed"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "setup.sh: missing packages: ${missing[*]}" >&2
  echo "setup.sh: run as root, or:" >&2
  echo "sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 1
fi

echo "setup.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q </dev/null
apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
