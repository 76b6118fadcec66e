#!/usr/bin/env bash
# The default riscv64 Linux guest (OpenSBI, Linux 6.1, busybox) as a detached machine: up -d returns
# at once, the boot reaches userspace in the console log, a guest command's output comes back through
# logs, and down stops it (at once: no guest power button yet). A guest that powers itself off ends
# stopped with status 0.
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
check "down stops the booted guest" bash -c '"$0" down shell >/dev/null 2>&1' "$vml"
check "and its VMM is gone" gone "$pid"

linux cmd 'console=ttyS0 vml.cmd="echo answer=$((6*7))"'
check "up -d of a guest that runs one command" test "$("$vml" up -d "$tmp/cmd.yaml")" = cmd
check "the guest powers itself off: stopped, status 0" wait_for 300 bash -c \
  '"$0" ps --all --json | grep -q "\"reason\": \"poweroff\""' "$vml"
check "its output stays readable through logs" bash -c '"$0" logs cmd | grep -aq "answer=42"' "$vml"
"$vml" down --all >/dev/null 2>&1
finish
