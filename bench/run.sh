#!/usr/bin/env bash
# bench/run.sh — attnc vs PyTorch, one training step / one inference forward of
# ResNet-20 with each attention module, printed side by side (see bench/README.md).
#
# usage: bench/run.sh [--threads T] [--batch N] [--models none,se,eca,cbam,ham]
#                     [--modes train,infer] [--steps K] [--warmup W]
#                     [--no-peak] [--fused-only] [--rounds R] [--keep DIR]
#   attnc side: $ATTNC_BIN (default build/attnc) `bench models/resnet_cifar.lua
#               -D attention=X --batch N --train|--infer --threads T --json`;
#               n/a in the table when that command is missing or fails.
#   torch side: bench/torch_step.py with the same models, batch, threads, steps.
#   'none' is always run too (the attention overhead is relative to it).
#   attnc also runs each case with --baseline-no-fuse (the model and its
#   --no-fuse program, one kernel per node, timed in alternation), for the
#   fused-vs-unfused columns (fuse gain: the paired ratio); --fused-only
#   skips that.
#   --rounds R  measure everything R times, the rounds interleaved (attnc's
#               models, then torch's, then again), and report per model the
#               median over rounds; ratios are the median of each round's
#               own ratio, so a slow spell of the machine cancels out.
#   --keep DIR  keep the raw outputs (JSON lines, attnc stderr) in DIR.
# Numbers are only meaningful on an otherwise idle machine.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
threads=$(nproc)
batch=128
models=none,se,eca,cbam,ham
modes=train,infer
steps=20
warmup=3
peak=1
nofuse=1
rounds=1
keep=

die() { echo "run.sh: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) threads=${2:?}; shift 2 ;;
    --batch) batch=${2:?}; shift 2 ;;
    --models) models=${2:?}; shift 2 ;;
    --modes) modes=${2:?}; shift 2 ;;
    --steps) steps=${2:?}; shift 2 ;;
    --warmup) warmup=${2:?}; shift 2 ;;
    --no-peak) peak=0; shift ;;
    --keep) keep=${2:?}; shift 2 ;;
    --fused-only) nofuse=0; shift ;;
    --rounds) rounds=${2:?}; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option '$1' (see bench/run.sh --help)" ;;
  esac
done
for v in "$threads" "$batch" "$steps" "$warmup" "$rounds"; do
  [[ "$v" =~ ^[0-9]+$ ]] || die "'$v' is not a number"
done
case ",$models," in *,none,*) ;; *) models="none,$models" ;; esac

IFS=, read -r -a model_list <<<"$models"
IFS=, read -r -a mode_list <<<"$modes"
for mode in "${mode_list[@]}"; do
  case "$mode" in train|infer) ;; *) die "mode must be train or infer, not '$mode'" ;; esac
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
  out=$(mktemp -d /tmp/attnc-bench.XXXXXX)
  trap 'rm -rf "$out"' EXIT
fi
rm -f "$out"/attnc-*.out "$out"/attnc-*.nofuse "$out"/torch.jsonl "$out"/peak.json

# machine FP32 peak, for context
if [ "$peak" = 1 ]; then
  if cc -O2 -march=native -fopenmp "$here/peak_fma.c" -o "$out/peak_fma" 2>"$out/peak.err"; then
    OMP_NUM_THREADS=$threads "$out/peak_fma" 0.5 | tail -n 1 >"$out/peak.json"
  else
    echo "run.sh: peak_fma did not build (see $out/peak.err); no peak line" >&2
  fi
fi

# attnc side
have_attnc=0
if [ -x "$ATTNC_BIN" ] && "$ATTNC_BIN" bench --help >/dev/null 2>&1; then
  have_attnc=1
  steps_opt=()
  if "$ATTNC_BIN" bench --help 2>&1 | grep -q -- '--steps'; then
    steps_opt=(--steps "$steps")
  fi
else
  echo "run.sh: '$ATTNC_BIN bench' not available; attnc column is n/a" >&2
fi
# one round: every attnc case (appending one JSON line per case), then torch
attnc_round() {
  for m in "${model_list[@]}"; do
    for mode in "${mode_list[@]}"; do
      f="$out/attnc-$m-$mode.out"
      if ! (cd "$repo" && "$ATTNC_BIN" bench models/resnet_cifar.lua -D "attention=$m" \
              --batch "$batch" "--$mode" --threads "$threads" --json "${steps_opt[@]}") \
              >>"$f" 2>"$out/attnc-$m-$mode.err"; then
        echo "run.sh: attnc bench $m --$mode failed: $(tail -n 1 "$out/attnc-$m-$mode.err")" >&2
        echo '{"failed": true}' >>"$f" # keeps the rounds aligned; n/a in the table
      fi
      [ "$nofuse" = 1 ] || continue
      f="$out/attnc-$m-$mode.nofuse"
      if ! (cd "$repo" && "$ATTNC_BIN" bench models/resnet_cifar.lua -D "attention=$m" \
              --batch "$batch" "--$mode" --threads "$threads" --json --baseline-no-fuse "${steps_opt[@]}") \
              >>"$f" 2>"$out/attnc-$m-$mode-nofuse.err"; then
        echo "run.sh: attnc bench $m --$mode --baseline-no-fuse failed: $(tail -n 1 "$out/attnc-$m-$mode-nofuse.err")" >&2
        echo '{"failed": true}' >>"$f"
      fi
    done
  done
}

for ((r = 1; r <= rounds; r++)); do
  [ "$rounds" = 1 ] || echo "run.sh: round $r of $rounds" >&2
  [ "$have_attnc" = 1 ] && attnc_round
  "$PY" "$here/torch_step.py" --models "$models" --modes "$modes" --batch "$batch" \
    --threads "$threads" --steps "$steps" --warmup "$warmup" >>"$out/torch.jsonl" \
    || echo "run.sh: torch_step.py reported a failure (see above)" >&2
done

BENCH_ORDER=$models "$PY" "$here/table.py" step "$out"
