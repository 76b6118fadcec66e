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

machine fail3 "$PWD/tests/boot/htif_fail3.elf"
timeout 60 "$vml" up "$tmp/fail3.yaml" </dev/null >"$tmp/fail3.out" 2>"$tmp/fail3.err"
status=$?
check "a failing HTIF program's status (3) is vmlaunch's exit status" test "$status" -eq 3

machine missing "$tmp/does-not-exist.elf"
timeout 60 "$vml" up "$tmp/missing.yaml" </dev/null >/dev/null 2>"$tmp/missing.err"
status=$?
check "a missing kernel is a runtime failure (exit 1)" test "$status" -eq 1
check "the error names the missing file" grep -q "does-not-exist.elf" "$tmp/missing.err"

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
