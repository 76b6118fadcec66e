#!/usr/bin/env bash
# `vmlaunch up` end to end on the jit interpreter with bare-metal HTIF programs: console output
# reaches the serial backend and the program's status becomes vmlaunch's exit status.
source tests/lib.sh
vml=launcher/vmlaunch
tmp=${TEST_TMPDIR:-$(mktemp -d)}

machine() {  # machine NAME KERNEL
  cat >"$tmp/$1.yaml" <<YAML
name: $1
machine: {arch: riscv64, type: virt, memory: 64MiB}
cpu: {model: rv64gc, count: 1}
accel: [jit]
boot: {firmware: none, kernel: $2}
backends:
  chardev:
    con0: {driver: stdio}
devices:
  - {driver: ns16550, id: serial0, chardev: con0}
YAML
}

machine pass "$PWD/tests/boot/htif_pass.elf"
timeout 60 "$vml" up "$tmp/pass.yaml" </dev/null >"$tmp/pass.out" 2>"$tmp/pass.err"
status=$?
check "a passing HTIF program exits 0" test "$status" -eq 0
check "HTIF console output reaches the chardev" grep -q "hello from htif" "$tmp/pass.out"

# up --stats=json:FILE: the accelerator's counters as JSON (tier llvm: the program's code compiled).
sed 's/^accel: \[jit\]/accel: [{type: jit, tier: llvm}]/' "$tmp/pass.yaml" >"$tmp/pass-llvm.yaml"
timeout 60 "$vml" up --stats=json:"$tmp/stats.json" "$tmp/pass-llvm.yaml" </dev/null >/dev/null 2>"$tmp/stats.err"
status=$?
stats_ok() {
  python3 - "$tmp/stats.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
j = s["jit"]
assert s["accelerator"] == "jit", s
assert j["mode"] == "llvm", j
assert j["guest_instructions"] > 0 and j["regions_compiled"] > 0 and j["regions_installed"] > 0, j
assert 0 < j["compiled_instructions"] <= j["guest_instructions"], j
assert abs(j["compiled_share"] - j["compiled_instructions"] / j["guest_instructions"]) < 1e-5, j
assert j["code_cache_bytes"] > 0 and j["compile_s_total"] > 0 and j["compile_ms_p99"] >= j["compile_ms_p50"] > 0, j
assert sum(j["exits"].values()) > 0 and set(j["exits"]) == {"branch", "trap", "indirect", "budget", "code_store"}, j
PY
}
check "--stats=json:FILE runs the program (exit 0)" test "$status" -eq 0
check "--stats=json:FILE writes the tier's counters as JSON" stats_ok
timeout 60 "$vml" up --stats=yaml "$tmp/pass.yaml" </dev/null >/dev/null 2>"$tmp/stats-bad.err"
status=$?
check "--stats=<anything but json:FILE> is bad input (exit 2)" test "$status" -eq 2

machine fail3 "$PWD/tests/boot/htif_fail3.elf"
timeout 60 "$vml" up "$tmp/fail3.yaml" </dev/null >"$tmp/fail3.out" 2>"$tmp/fail3.err"
status=$?
check "a failing HTIF program's status (3) is vmlaunch's exit status" test "$status" -eq 3

machine missing "$tmp/does-not-exist.elf"
timeout 60 "$vml" up "$tmp/missing.yaml" </dev/null >/dev/null 2>"$tmp/missing.err"
status=$?
check "a missing kernel is a runtime failure (exit 1)" test "$status" -eq 1
check "the error names the missing file" grep -q "does-not-exist.elf" "$tmp/missing.err"

# A bare-metal test given as firmware (QEMU's -bios test.elf) gets HTIF as well as one given as kernel.
cat >"$tmp/as-firmware.yaml" <<YAML
machine: {arch: riscv64, type: virt, memory: 64MiB}
accel: [jit]
boot: {firmware: $PWD/tests/boot/htif_fail3.elf}
backends: {chardev: {con0: {driver: stdio}}}
devices: [{driver: ns16550, id: serial0, chardev: con0}]
YAML
timeout 60 "$vml" up "$tmp/as-firmware.yaml" </dev/null >"$tmp/as-firmware.out" 2>"$tmp/as-firmware.err"
status=$?
check "an HTIF program given as boot.firmware exits with its status (3)" test "$status" -eq 3
check "an HTIF program given as boot.firmware prints" grep -q "hello from htif" "$tmp/as-firmware.out"

# Relative paths in a file resolve once, against that file's directory, however the file is named
# on the command line and wherever vmlaunch runs.
mkdir -p "$tmp/D/sub" "$tmp/elsewhere"
cp tests/boot/htif_pass.elf "$tmp/D/sub/prog.elf"
cat >"$tmp/D/sub/a.yaml" <<'YAML'
machine: {arch: riscv64, type: virt, memory: 64MiB}
accel: [jit]
boot: {firmware: none, kernel: prog.elf}
backends: {chardev: {con0: {driver: file, path: console.log}}}
devices: [{driver: ns16550, id: serial0, chardev: con0}]
YAML
runs_from() {  # runs_from DIR CONFIG-AS-GIVEN
  rm -f "$tmp/D/sub/console.log"
  (cd "$1" && timeout 60 "$OLDPWD/$vml" up "$2" </dev/null >/dev/null 2>"$tmp/paths.err") &&
    grep -q "hello from htif" "$tmp/D/sub/console.log"
}
check "paths: config given as sub/a.yaml from its parent" runs_from "$tmp/D" sub/a.yaml
check "paths: config given as a.yaml from its own directory" runs_from "$tmp/D/sub" a.yaml
check "paths: config given as ../D/sub/a.yaml from a sibling" runs_from "$tmp/elsewhere" ../D/sub/a.yaml
check "paths: config given by its absolute path from /" runs_from / "$tmp/D/sub/a.yaml"
sed -i 's/prog.elf/missing.elf/' "$tmp/D/sub/a.yaml"
(cd "$tmp/D" && timeout 60 "$OLDPWD/$vml" up sub/a.yaml </dev/null >/dev/null 2>"$tmp/paths.err")
check "paths: a missing file is named once, by its absolute path" grep -q "$tmp/D/sub/missing.elf" "$tmp/paths.err"
check "paths: the directory is never joined twice" bash -c "! grep -q 'sub/sub' '$tmp/paths.err'"

# More RAM than the host can back is refused before anything starts (exit 1, with the numbers).
sed 's/memory: 64MiB/memory: 64T/' "$tmp/pass.yaml" >"$tmp/huge.yaml"
timeout 60 "$vml" up "$tmp/huge.yaml" </dev/null >/dev/null 2>"$tmp/huge.err"
status=$?
check "memory above what the host can back exits 1" test "$status" -eq 1
check "and says how much the host has and how to override" grep -q "more than this host can back.*--overcommit" "$tmp/huge.err"

# An empty kernel file is explained, not run into silence.
: >"$tmp/empty.elf"
machine empty "$tmp/empty.elf"
timeout 60 "$vml" up "$tmp/empty.yaml" </dev/null >/dev/null 2>"$tmp/empty.err"
status=$?
check "an empty kernel file exits 1" test "$status" -eq 1
check "and the error names it" grep -q "empty.elf" "$tmp/empty.err"

printf 'machine: {arch: riscv64, type: virt}\n' >"$tmp/bad.yaml"
timeout 60 "$vml" up "$tmp/bad.yaml" </dev/null >/dev/null 2>"$tmp/bad.err"
status=$?
check "an invalid machine file exits 2" test "$status" -eq 2
check "with file:line:col diagnostics" grep -q "bad.yaml:1:" "$tmp/bad.err"

"$vml" up --help >"$tmp/help.out" 2>&1
check "up --help describes the command" grep -q "foreground" "$tmp/help.out"

for f in pass fail3 missing bad; do
  [ -s "$tmp/$f.err" ] && { echo "--- $f stderr"; cat "$tmp/$f.err"; }
done
finish
