#!/usr/bin/env bash
# bench/overhead.sh — the attention overhead (step time with a module / step
# time of the plain network) of attnc and PyTorch, measured by paired steps:
# each side compiles or builds both networks in one process and runs them
# alternately, step by step (A B, B A, ...), so a slow spell of a shared
# machine slows both members of a pair (see bench/README.md).
#
# usage: bench/overhead.sh [--threads T] [--batch N] [--models eca,cbam,ham]
#                          [--steps K] [--warmup W] [--rounds R] [--keep DIR]
#   attnc side: $ATTNC_BIN (default build/attnc) `bench models/resnet_cifar.lua
#               -D attention=X --baseline attention=none --train --json`
#   torch side: bench/torch_step.py --models X --baseline none --modes train
#   --rounds R  repeat everything R times (attnc's modules, then torch's, then
#               again); the table shows the median over rounds
#   --keep DIR  keep the raw JSON lines and attnc's stderr in DIR
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
threads=$(nproc)
batch=128
models=eca,cbam,ham
steps=20
warmup=3
rounds=1
keep=

die() { echo "overhead.sh: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) threads=${2:?}; shift 2 ;;
    --batch) batch=${2:?}; shift 2 ;;
    --models) models=${2:?}; shift 2 ;;
    --steps) steps=${2:?}; shift 2 ;;
    --warmup) warmup=${2:?}; shift 2 ;;
    --rounds) rounds=${2:?}; shift 2 ;;
    --keep) keep=${2:?}; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option '$1' (see bench/overhead.sh --help)" ;;
  esac
done
for v in "$threads" "$batch" "$steps" "$warmup" "$rounds"; do
  [[ "$v" =~ ^[0-9]+$ ]] && [ "$v" -gt 0 ] || die "'$v' is not a positive number"
done
models=$(echo "$models" | tr ',' '\n' | grep -vx none | paste -sd, -)
[ -n "$models" ] || die "no module to compare with the plain network"
IFS=, read -r -a model_list <<<"$models"

ATTNC_BIN=${ATTNC_BIN:-$repo/build/attnc}
export ATTNC_REFERENCE=${ATTNC_REFERENCE:-$(cd "$repo/.." && pwd)/shared/reference}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
[ -x "$ATTNC_BIN" ] || die "no attnc binary at $ATTNC_BIN (build first, or set ATTNC_BIN)"

if [ -n "$keep" ]; then
  mkdir -p "$keep" || die "cannot create $keep"
  out=$keep
else
  out=$(mktemp -d /tmp/attnc-overhead.XXXXXX)
  trap 'rm -rf "$out"' EXIT
fi
rm -f "$out"/attnc-*.paired "$out"/torch.paired.jsonl

for ((r = 1; r <= rounds; r++)); do
  [ "$rounds" = 1 ] || echo "overhead.sh: round $r of $rounds" >&2
  for m in "${model_list[@]}"; do
    if ! (cd "$repo" && "$ATTNC_BIN" bench models/resnet_cifar.lua -D "attention=$m" \
            --baseline attention=none --train --batch "$batch" --threads "$threads" \
            --steps "$steps" --warmup "$warmup" --json) >>"$out/attnc-$m.paired" 2>"$out/attnc-$m.err"; then
      echo "overhead.sh: attnc bench $m failed: $(tail -n 1 "$out/attnc-$m.err")" >&2
      echo '{"failed": true}' >>"$out/attnc-$m.paired" # keeps the rounds aligned
    fi
  done
  "$PY" "$here/torch_step.py" --models "$models" --baseline none --modes train --batch "$batch" \
    --threads "$threads" --steps "$steps" --warmup "$warmup" --no-profile >>"$out/torch.paired.jsonl" \
    || echo "overhead.sh: torch_step.py reported a failure (see above)" >&2
done

BENCH_ORDER=$models "$PY" "$here/table.py" paired "$out"
