#!/usr/bin/env bash
# The current main job of attnc, the last step of the README's quick start
# (later work changes this script, not the README). Until training lands:
# the default model, CIFAR ResNet-20 with HAM attention at Fashion-MNIST's
# 1x28x28, is summarized, lowered to its whole training step (forward, loss,
# backward, SGD) and run forward on a batch with seeded random weights.
#
# usage: scripts/main-job.sh   (uses $ATTNC_BIN, default build/attnc)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin=${ATTNC_BIN:-$root/build/attnc}
model=(models/resnet_cifar.lua -D attention=ham -D in_channels=1 --shape 1x28x28)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cd "$root"

echo "== attnc summary ${model[*]}"
"$bin" summary "${model[@]}"
echo
echo "== attnc dump ${model[*]} --batch 128 --stage grad   (the training step as one IR function)"
"$bin" dump "${model[@]}" --batch 128 --stage grad >"$out/step.ir"
echo "$(grep -c '^  %' "$out/step.ir") ops in the training step; first lines:"
head -n 4 "$out/step.ir"
echo
echo "== attnc run ${model[*]} --batch 8 --init 1   (forward pass, seeded random weights and input)"
"$bin" run "${model[@]}" --batch 8 --init 1 --out "$out/logits.safetensors"
"$bin" show "$out/logits.safetensors" --values 10
