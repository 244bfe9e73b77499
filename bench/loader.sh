#!/usr/bin/env bash
# bench/loader.sh — the image-folder data path, attnc against torchvision in
# the same run: one thread decoding JPEGs, RandomResizedCrop + flip (or the
# centre view) and normalizing, images per second (build/bench/loader and
# bench/torch_loader.py). Makes an ImageNet-like folder first if DIR has none.
#
# usage: bench/loader.sh [--dir DIR] [--size S] [--batches N] [--rounds R] [--center]
#   --dir      folder with train/<class>/*.JPEG (default /tmp/attnc-loader-bench,
#              made with 10 classes x 130 images of ImageNet's sizes, ~120 MB)
#   --size     output side (default 224)
#   --batches  timed batches of 128 per run (default 8)
#   --rounds   alternating runs of each side; the medians are compared (default 3)
# Only meaningful on an otherwise idle machine.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
dir=/tmp/attnc-loader-bench
size=224
batches=8
rounds=3
center=
die() { echo "loader.sh: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) dir=${2:?}; shift 2 ;;
    --size) size=${2:?}; shift 2 ;;
    --batches) batches=${2:?}; shift 2 ;;
    --rounds) rounds=${2:?}; shift 2 ;;
    --center) center=center; shift ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option '$1' (see bench/loader.sh --help)" ;;
  esac
done
for v in "$size" "$batches" "$rounds"; do [[ "$v" =~ ^[0-9]+$ ]] || die "'$v' is not a number"; done
bin=${ATTNC_BUILD:-$repo/build}/bench/loader
[ -x "$bin" ] || die "$bin not built (cmake --build build)"
if [ ! -d "$dir/train" ]; then
  echo "making $dir (10 classes x 130 JPEGs)..." >&2
  /usr/bin/python3 "$here/torch_loader.py" "$dir" --make --classes 10 --per-class 130 --val 10 || die "cannot make $dir"
fi
a=() t=()
for ((r = 0; r < rounds; r++)); do
  j=$("$bin" "$dir:$size" "$batches" 128 $center) || die "attnc side failed"
  echo "attnc: $j"
  a+=("$(sed 's/.*"loader_images_per_s": \([0-9.]*\).*/\1/' <<< "$j")")
  j=$(/usr/bin/python3 "$here/torch_loader.py" "$dir" "$size" --batches "$batches" ${center:+--center}) ||
    die "torchvision side failed"
  echo "torch: $j"
  t+=("$(sed 's/.*"loader_images_per_s": \([0-9.]*\).*/\1/' <<< "$j")")
done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
ma=$(median "${a[@]}") mt=$(median "${t[@]}")
awk -v a="$ma" -v t="$mt" -v s="$size" -v c="${center:-resized-crop+flip}" 'BEGIN {
  printf "one loader thread, %s to %d: attnc %.0f images/s, torchvision %.0f images/s: %.2fx\n", c, s, a, t, a / t }'
