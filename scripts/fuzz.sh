#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang (ASan + UBSan, in
# build-fuzz/) and runs each for SECONDS (default 60), starting from its
# saved inputs (tests/fuzz/inputs/<target>) and the test data of its format.
# A crash, leak, sanitizer report or broken invariant stops that target and
# leaves the input in build-fuzz/crashes/; the corpora grow in
# build-fuzz/corpus/ from run to run. Exit status 1 if any target failed.
# Needs clang (scripts/setup.sh --fuzz).
#
# usage: scripts/fuzz.sh [SECONDS] [TARGET...]   (targets: ir_text passes
#        jit lua safetensors ckpt data; default all)
# reproduce a failure: build-fuzz/tests/fuzz_TARGET build-fuzz/crashes/TARGET-crash-...
# keep it as a regression input: copy it to tests/fuzz/inputs/TARGET/ (ctest
# replays that folder through the gcc build of the target)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${ATTNC_FUZZ_BUILD:-$root/build-fuzz}
secs=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(ir_text passes jit lua safetensors ckpt data)


CC=clang cmake -S "$root" -B "$build" -DATTNC_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" --target $(printf 'fuzz_%s ' "${targets[@]}") >/dev/null
mkdir -p "$build/crashes" "$build/dict"

# Dictionaries: the words of each language, so mutations splice in whole
# op names, attributes, keywords and the nn library's names.
{ grep -oE '^IR_OP\([a-z0-9_]+' "$root/ir/ops.def" | sed 's/IR_OP(//'
  grep -oE '"[a-z_:=0-9;.-]*"\)$' "$root/ir/ops.def" | tr -d '")' | tr ';' '\n' | sed 's/[:=].*//'
  printf '%s\n' graph input param buffer const output f32 f64 i64 '%0' '# >>>'
} | sort -u | awk 'NF { gsub(/"/, "\\\""); printf "\"%s\"\n", $0 }' > "$build/dict/ir.dict"
grep -ohE '[A-Za-z_][A-Za-z0-9_]*' "$root/models/nn.lua" "$root/models/attention.lua" "$root/models/resnet_cifar.lua" |
  sort -u | awk 'length($0) >= 2 { printf "\"%s\"\n", $0 }' > "$build/dict/lua.dict"
declare -A dict=([ir_text]=ir [passes]=ir [jit]=ir [lua]=lua)

# The front end's limits, low: a runaway spec stops in milliseconds.
export ATTNC_LUA_BUDGET=2000000 ATTNC_LUA_MEM_MB=64
failed=0
for t in "${targets[@]}"; do
  seeds=()
  [ -d "$root/tests/fuzz/inputs/$t" ] && seeds+=("$root/tests/fuzz/inputs/$t")
  # seeds beyond tests/fuzz/inputs/<target>: tests/fuzz/more_inputs.txt
  for m in $(awk -v t="$t" '$1 == t { $1 = ""; print }' "$root/tests/fuzz/more_inputs.txt"); do
    seeds+=("$root/$m")
  done
  mkdir -p "$build/corpus/$t"
  echo "== fuzz_$t for ${secs}s"
  opts=()
  [ -n "${dict[$t]:-}" ] && opts+=(-dict="$build/dict/${dict[$t]}.dict")
  if ! (cd "$build" && "$build/tests/fuzz_$t" "${opts[@]}" -max_total_time="$secs" -timeout=20 -rss_limit_mb=4096 \
      -print_final_stats=1 -artifact_prefix="$build/crashes/$t-" "$build/corpus/$t" "${seeds[@]}" \
      > "$build/fuzz_$t.log" 2>&1); then
    failed=1
    echo "fuzz_$t FAILED (log: $build/fuzz_$t.log):"
    grep -a -E "ERROR|SUMMARY|abort|failed|Test unit written" "$build/fuzz_$t.log" | head -20
  fi
  grep -a -E "^stat::number_of_executed_units|^stat::peak_rss_mb" "$build/fuzz_$t.log" | tr '\n' ' '
  echo "corpus $(ls "$build/corpus/$t" | wc -l) files"
done
exit $failed
