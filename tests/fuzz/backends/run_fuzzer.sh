#!/usr/bin/env bash
# Builds one libFuzzer target with clang++-14 (Bazel's toolchain is gcc, which has no libFuzzer)
# and runs it for a bounded number of inputs over a copy of its kept corpus.
# Usage: run_fuzzer.sh NAME RUNS CORPUS_DIR SOURCE... [-- LINKFLAGS...]
source tests/lib.sh
target=$1 runs=$2 corpus=$3; shift 3
sources=() libs=()
while [ $# -gt 0 ]; do
  if [ "$1" = "--" ]; then shift; libs=("$@"); break; fi
  sources+=("$1"); shift
done
out=${TEST_TMPDIR:-/tmp}/fuzz-$target
mkdir -p "$out/corpus"
if ! command -v clang++-14 >/dev/null; then
  skip "$target" "clang++-14 not installed (apt-get install clang-14 libclang-rt-14-dev)"
  finish; exit
fi
build() {
  clang++-14 -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I. \
    "${sources[@]}" "${libs[@]}" -o "$out/$target" 2>"$out/build.log" || { cat "$out/build.log"; return 1; }
}
check "$target builds with libFuzzer and ASan/UBSan" build
cp "$corpus"/* "$out/corpus/" 2>/dev/null
fuzz() {
  "$out/$target" -runs="$runs" -max_len=262144 -timeout=20 -rss_limit_mb=4096 -seed=1 "$out/corpus" \
    >"$out/run.log" 2>&1 || { tail -50 "$out/run.log"; return 1; }
  grep -E "^#[0-9]+ +DONE" "$out/run.log" | tail -1
}
check "$target survives $runs inputs from its corpus" fuzz
finish
