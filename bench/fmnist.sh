#!/usr/bin/env bash
# bench/fmnist.sh — issue 7's recipe side by side: ResNet-20 + HAM on
# Fashion-MNIST (1x28x28), SGD lr 0.1 momentum 0.9 wd 5e-4, batch 128, no
# augmentation, trained by attnc and by PyTorch (bench/torch_fmnist.py).
#
# usage: bench/fmnist.sh [--epochs E] [--threads T] [--seed S]
#                        [--max-batches B] [--max-test-batches B] [--keep DIR]
#   attnc side: $ATTNC_BIN (default build/attnc) `train models/resnet_cifar.lua
#               -D attention=ham -D in_channels=1 --data fashion-mnist
#               --epochs E --json` (+ --threads/--seed/--max-batches when its
#               --help lists them, + $ATTNC_TRAIN_ARGS); n/a when missing/failing.
#   --max-batches is for quick checks; if attnc train does not support it the
#   attnc run is skipped (a full epoch would not be comparable).
# Wall times are only meaningful on an otherwise idle machine.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
epochs=1
threads=$(nproc)
seed=0
max_batches=0
max_test=0
keep=

die() { echo "fmnist.sh: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --epochs) epochs=${2:?}; shift 2 ;;
    --threads) threads=${2:?}; shift 2 ;;
    --seed) seed=${2:?}; shift 2 ;;
    --max-batches) max_batches=${2:?}; shift 2 ;;
    --max-test-batches) max_test=${2:?}; shift 2 ;;
    --keep) keep=${2:?}; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option '$1' (see bench/fmnist.sh --help)" ;;
  esac
done
for v in "$epochs" "$threads" "$seed" "$max_batches" "$max_test"; do
  [[ "$v" =~ ^[0-9]+$ ]] || die "'$v' is not a number"
done

# a busy machine makes every number below meaningless: say so
read -r load1 _ </proc/loadavg 2>/dev/null || load1=0
if awk -v l="$load1" 'BEGIN { exit !(l > 0.5) }'; then
  echo "WARNING: load average $load1: the machine is not idle, timings are not meaningful" >&2
fi

ATTNC_BIN=${ATTNC_BIN:-$repo/build/attnc}
export ATTNC_REFERENCE=${ATTNC_REFERENCE:-$(cd "$repo/.." && pwd)/shared/reference}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

if [ -n "$keep" ]; then
  mkdir -p "$keep" || die "cannot create $keep"
  out=$keep
else
  out=$(mktemp -d /tmp/attnc-fmnist.XXXXXX)
  trap 'rm -rf "$out"' EXIT
fi
: >"$out/attnc.out"
: >"$out/torch.out"

# attnc side
if [ -x "$ATTNC_BIN" ] && "$ATTNC_BIN" train --help >"$out/attnc-help.txt" 2>&1; then
  args=(train models/resnet_cifar.lua -D attention=ham -D in_channels=1
        --data fashion-mnist --epochs "$epochs" --json)
  has() { grep -q -- "$1" "$out/attnc-help.txt"; }
  has '--threads' && args+=(--threads "$threads")
  has '--seed' && args+=(--seed "$seed")
  skip=0
  if [ "$max_batches" != 0 ]; then
    if has '--max-batches'; then args+=(--max-batches "$max_batches")
    else skip=1; echo "fmnist.sh: attnc train has no --max-batches; attnc run skipped" >&2; fi
  fi
  # shellcheck disable=SC2206
  [ -n "${ATTNC_TRAIN_ARGS:-}" ] && args+=($ATTNC_TRAIN_ARGS)
  if [ "$skip" = 0 ]; then
    echo "== attnc ${args[*]}"
    if ! (cd "$repo" && "$ATTNC_BIN" "${args[@]}") >"$out/attnc.out" 2>"$out/attnc.err" </dev/null; then
      echo "fmnist.sh: attnc train failed: $(tail -n 1 "$out/attnc.err")" >&2
    fi
    grep -v '^{' "$out/attnc.out" | tail -n 20
  fi
else
  echo "fmnist.sh: '$ATTNC_BIN train' not available; attnc column is n/a" >&2
fi

# torch side
echo "== torch_fmnist.py"
"$PY" "$here/torch_fmnist.py" --epochs "$epochs" --threads "$threads" --seed "$seed" \
  --max-batches "$max_batches" --max-test-batches "$max_test" | tee "$out/torch.out" \
  | grep -v '^{'
echo
"$PY" "$here/table.py" train "$out"
