#!/usr/bin/env bash
# The current main job of attnc, the last step of the README's quick start
# (later work changes this script, not the README): the default model, CIFAR
# ResNet-20 with HAM attention, is summarized at Fashion-MNIST's 1x28x28 and
# then trained for one epoch on Fashion-MNIST (Debian's dataset-fashion-mnist
# package) with the PyTorch recipe of issue 7: SGD lr 0.1, momentum 0.9,
# weight decay 5e-4, batch 128, no augmentation, inputs normalized with mean
# 0.2860 / std 0.3530. It prints progress on stderr and the test accuracy.
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
"$bin" train models/resnet_cifar.lua -D attention=ham --data fashion-mnist --epochs 1 "$@"
