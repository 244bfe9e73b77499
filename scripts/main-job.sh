#!/usr/bin/env bash
# The current main job of attnc, the last step of the README's quick start
# (later work changes this script, not the README). Today: print the example
# graph (a conv + ECA-attention classifier), run it on its input and weights,
# and show the logits next to the ones computed independently in Python.
#
# usage: scripts/main-job.sh   (uses $ATTNC_BIN, default build/attnc)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin=${ATTNC_BIN:-$root/build/attnc}
ex=$root/docs/examples
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

echo "== attnc dump docs/examples/eca_tiny.ir"
"$bin" dump "$ex/eca_tiny.ir"
echo "== attnc run docs/examples/eca_tiny.ir"
"$bin" run "$ex/eca_tiny.ir" --input "$ex/eca_tiny.input.safetensors" \
  --weights "$ex/eca_tiny.weights.safetensors" --out "$out/logits.safetensors"
echo "== logits computed by attnc"
"$bin" show "$out/logits.safetensors" --values 6
echo "== logits expected (docs/examples/make_eca_tiny.py, float64 in Python)"
"$bin" show "$ex/eca_tiny.expected.safetensors" --values 6
