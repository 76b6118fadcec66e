#!/usr/bin/env bash
# The default riscv64 Linux guest (OpenSBI, Linux 6.1, busybox) as a detached machine: up -d returns
# at once, the boot reaches userspace in the console log, `console` types into its shell, and down
# presses its power button (gpio-keys on the SiFive GPIO): the guest's init powers off by itself. A
# guest that powers itself off ends stopped with status 0; a guest kernel panic is seen through
# pvpanic and ends `up` with status 11.
source tests/lib.sh
source tests/boot/console.sh  # use_riscv64_guest
source tests/lifecycle/machine.sh

use_riscv64_guest tests/lifecycle/linux_detached_test.sh

linux() {  # linux NAME CMDLINE
  cat >"$tmp/$1.yaml" <<YAML
name: $1
machine: {arch: riscv64, type: virt, memory: 256MiB}
cpu: {model: rv64gc, count: 2}
accel: [jit]
boot: {firmware: opensbi, kernel: $kernel, initrd: $initrd, cmdline: '$2'}
backends:
  chardev:
    con0: {driver: stdio}
devices:
  - {driver: ns16550, id: serial0, chardev: con0}
YAML
}

linux shell 'console=ttyS0'
check "up -d of the Linux guest prints its name" test "$("$vml" up -d "$tmp/shell.yaml")" = shell
log=$VMLAUNCH_STATE_DIR/shell/console.log
check "the boot reaches userspace in the console log" wait_for 300 grep -aq "vmlaunch-guest: userspace up" "$log"
check "logs shows OpenSBI and the kernel" bash -c '"$0" logs shell | grep -aq "Linux version 6.1"' "$vml"
check "ps: running, 2 vCPUs, 256 MiB" \
  json "d[0]['state'] == 'running' and d[0]['vcpus'] == 2 and d[0]['memory'] == 256 << 20" < <("$vml" ps --json)
pid=$(json "d[0]['pid']" < <("$vml" ps --json))

# console: type a command into the guest's shell through a pipe, read its output, detach.
mkfifo "$tmp/con.in"
exec 7<>"$tmp/con.in"
"$vml" console shell <"$tmp/con.in" >"$tmp/con.out" 2>/dev/null &
con=$!
sleep 1
printf 'echo typed-$((6*7))\n' >&7
check "console: a command typed through console runs in the guest" wait_for 120 grep -aq "typed-42" "$tmp/con.out"
printf '\035' >&7
wait "$con"
check "console: Ctrl-] detaches (exit 0)" test $? -eq 0
exec 7>&-

# Graceful down: the power button; the guest's own poweroff ends it (STOPPED: poweroff, status 0).
watch_events "$VMLAUNCH_STATE_DIR/shell/control.sock" "$tmp/shell.events" &
watcher=$!
wait_for 20 grep -q '"protocol"' "$tmp/shell.events"
"$vml" down --timeout 240 shell >/dev/null 2>"$tmp/down.err"
check "down of the booted guest exits 0" test $? -eq 0
wait "$watcher"
check "the guest powered itself off (STOPPED: poweroff, status 0), not a forced stop" \
  grep -q '"reason":"poweroff","status":0},"event":"STOPPED"' "$tmp/shell.events"
check "down did not have to force it" bash -c '! grep -q "did not power off" "$0"' "$tmp/down.err"
check "and its VMM is gone" gone "$pid"

# The same in the foreground, where the console shows the guest's own shutdown.
linux button 'console=ttyS0'
"$vml" up "$tmp/button.yaml" </dev/null >"$tmp/button.out" 2>"$tmp/button.err" &
fg=$!
check "foreground: the boot reaches userspace" wait_for 300 grep -aq "vmlaunch-guest: userspace up" "$tmp/button.out"
sleep 2  # init starts the power-key watcher right before that line
kill -TERM "$fg"
wait "$fg"
check "foreground: SIGTERM powers the guest off cleanly (exit 0)" test $? -eq 0
check "foreground: init saw the power button" grep -aq "vmlaunch-guest: power button pressed; powering off" "$tmp/button.out"
check "foreground: and the kernel powered down" grep -aq "reboot: Power down" "$tmp/button.out"

# A guest kernel panic (init cannot run) reaches the host through pvpanic: up ends with 11.
linux panic 'console=ttyS0 rdinit=/nonexistent init=/nonexistent'
"$vml" up "$tmp/panic.yaml" </dev/null >"$tmp/panic.out" 2>"$tmp/panic.err"
check "a guest kernel panic ends up with exit 11 (on-panic: poweroff)" test $? -eq 11
check "the console shows the panic" grep -aq "Kernel panic" "$tmp/panic.out"

linux cmd 'console=ttyS0 vml.cmd="echo answer=$((6*7))"'
check "up -d of a guest that runs one command" test "$("$vml" up -d "$tmp/cmd.yaml")" = cmd
check "the guest powers itself off: stopped, status 0" wait_for 300 bash -c \
  '"$0" ps --all --json | grep -q "\"reason\": \"poweroff\""' "$vml"
check "its output stays readable through logs" bash -c '"$0" logs cmd | grep -aq "answer=42"' "$vml"
"$vml" down --all >/dev/null 2>&1
finish
