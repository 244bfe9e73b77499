#!/usr/bin/env bash
# The current main job of attnc, the last step of the README's quick start
# (later work changes this script, not the README): the default model, CIFAR
# ResNet-20 with HAM attention, is summarized at Fashion-MNIST's 1x28x28 and
# then trained for one epoch on Fashion-MNIST (Debian's dataset-fashion-mnist
# package) with the PyTorch recipe of issue 7: SGD lr 0.1, momentum 0.9,
# weight decay 5e-4, batch 128, no augmentation, inputs normalized with mean
# 0.2860 / std 0.3530. It prints progress on stderr and the test accuracy,
# saves the weights (build/main-job.safetensors, or the job's own --save) and
# draws the Grad-CAM of the first 8 test images (build/main-job-gradcam.png).
#
# usage: scripts/main-job.sh [extra attnc train options, e.g. --epochs 10 --log fmnist.csv]
#        (uses $ATTNC_BIN, default build/attnc)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin=${ATTNC_BIN:-$root/build/attnc}
cd "$root"

echo "== attnc summary models/resnet_cifar.lua -D attention=ham -D in_channels=1 --shape 1x28x28"
"$bin" summary models/resnet_cifar.lua -D attention=ham -D in_channels=1 --shape 1x28x28
echo
echo "== attnc train models/resnet_cifar.lua -D attention=ham --data fashion-mnist --epochs 1 $*"
echo "   (in_channels=1 and the 1x28x28 input come from the data set)"
ckpt=build/main-job.safetensors
args=("$@")
for ((i = 0; i + 1 < ${#args[@]}; i++)); do
  if [[ ${args[i]} == --save ]]; then ckpt=${args[i + 1]}; fi
done
"$bin" train models/resnet_cifar.lua -D attention=ham --data fashion-mnist --epochs 1 --save "$ckpt" "$@"
echo
echo "== attnc gradcam models/resnet_cifar.lua --weights $ckpt --data fashion-mnist --index 0-7 --out build/main-job-gradcam.png"
"$bin" gradcam models/resnet_cifar.lua --weights "$ckpt" --data fashion-mnist --index 0-7 \
  --out build/main-job-gradcam.png
