#!/usr/bin/env bash
# Builds tests/fuzz/config_fuzz.cpp with clang++-14 -fsanitize=fuzzer,address (Bazel's toolchain is
# gcc, which has no libFuzzer) and runs it for a bounded number of executions over the checked-in
# corpus. Inputs that crash are written to $TEST_UNDECLARED_OUTPUTS_DIR; add them to
# tests/fuzz/corpus/config/ once fixed so they stay fixed.
#   Longer local run: tests/fuzz/config_fuzz_test.sh --runs=2000000
set -uo pipefail
source tests/lib.sh
runs=20000
case "${1:-}" in --runs=*) runs=${1#--runs=} ;; esac

work=${TEST_TMPDIR:-$(mktemp -d)}/config-fuzz
out=${TEST_UNDECLARED_OUTPUTS_DIR:-$work/out}
mkdir -p "$work/obj" "$work/new-corpus" "$out"

if ! command -v clang++-14 >/dev/null; then
  skip "config fuzzer" "clang++-14 not installed (tools/packages.txt: clang-14, libclang-rt-14-dev)"
  finish
  exit
fi

# The generated schema text lives in bazel-bin; in runfiles it sits beside the sources.
sources=(config/*.cpp graph/*.cpp hw/catalogue/*.cpp accel/catalogue.cpp base/fd_io.cpp base/field_use.cpp tests/fuzz/config_fuzz.cpp)
filtered=()
for src in "${sources[@]}"; do
  case "$src" in *_test.cpp) continue ;; esac
  filtered+=("$src")
done

build() {
  # The project's C++20 (config/node.h defines its vector-touching members below Node::Entry so
  # clang-14 with libstdc++ 12 accepts it).
  local flags=(-std=c++20 -O1 -g -fsanitize=fuzzer,address -fno-omit-frame-pointer -I. -DTOML_EXCEPTIONS=1 -w)
  local objs=() src obj
  for src in "${filtered[@]}"; do
    obj="$work/obj/$(echo "$src" | tr / _).o"
    objs+=("$obj")
    echo "clang++-14 -c $src"
    # Two at a time: the machine is shared; the slow ones are the valijson and toml++ files.
    clang++-14 "${flags[@]}" -c "$src" -o "$obj" &
    while [ "$(jobs -rp | wc -l)" -ge 2 ]; do wait -n; done
  done
  wait
  clang++-14 "${flags[@]}" "${objs[@]}" -lyaml-cpp -o "$work/config_fuzz"
}
check "config fuzzer builds with clang-14" build

fuzz() {
  local log="$work/fuzz.log"
  # -rss_limit_mb keeps an input that balloons memory from taking the machine down; -timeout turns a
  # hang into a failure with the input saved. Leak checking is off: LeakSanitizer's stop-the-world
  # scan of a large fuzzing process took minutes on this shared machine, and the contract under test
  # is "no crash, no hang" (memory per input is bounded by the loader's node limit).
  "$work/config_fuzz" -runs="$runs" -max_len=4096 -timeout=20 -rss_limit_mb=2048 -detect_leaks=0 -seed=1 \
    -artifact_prefix="$out/" -print_final_stats=1 "$work/new-corpus" tests/fuzz/corpus/config >"$log" 2>&1
  local status=$?
  grep -E '^(stat::number_of_executed_units|stat::average_exec_per_sec|#[0-9]+ *DONE)' "$log"
  if [ $status -ne 0 ]; then
    tail -n 60 "$log"
    ls "$out"
  fi
  return $status
}
[ -x "$work/config_fuzz" ] && check "config fuzzer: $runs runs over YAML and TOML, no crash" fuzz

replay() {
  # Every corpus file once more, as a plain regression run (also covers crashers added later).
  "$work/config_fuzz" -runs=0 tests/fuzz/corpus/config >"$work/replay.log" 2>&1 || { tail -n 40 "$work/replay.log"; return 1; }
}
[ -x "$work/config_fuzz" ] && check "config fuzz corpus replays cleanly" replay

finish
