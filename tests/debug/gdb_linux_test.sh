#!/usr/bin/env bash
# gdb-multiarch on the default riscv64 Linux guest (guests/riscv64/build; its vmlinux, with symbols,
# sits next to the Image in the guest cache): attach to the machine held at reset, break at
# start_kernel, read registers and kernel variables through the guest's page tables, step, detach,
# and the guest finishes booting and powers off by itself.
source tests/lib.sh
source tests/boot/console.sh

gdb=$(command -v gdb-multiarch) || {
  check "gdb-multiarch is installed (tools/packages.txt)" false
  finish
  exit
}
use_riscv64_guest tests/debug/gdb_linux_test.sh
vmlinux=$(dirname "$kernel")/vmlinux
check "the guest build keeps vmlinux with symbols" grep -q " T start_kernel$" "$(dirname "$kernel")/System.map"
# A unix socket path must fit 108 bytes: Bazel's TEST_TMPDIR under a long output base does not.
sockdir=$(mktemp -d /tmp/gdb-test.XXXXXX)
trap 'rm -rf "$sockdir"' EXIT
sock=$sockdir/gdb.sock

cat >"$tmp/linux.yaml" <<YAML
name: gdb-linux
machine: {arch: riscv64, type: virt, memory: 256MiB}
cpu: {model: rv64gc, count: 2}
accel: [jit]
boot:
  firmware: opensbi
  kernel: $kernel
  initrd: $initrd
  cmdline: 'console=ttyS0 vml.cmd="echo debugged-boot-done"'
backends:
  chardev:
    con0: {driver: stdio}
devices:
  - {driver: ns16550, id: serial0, chardev: con0}
debug:
  gdb: {path: $sock}
  wait: true
YAML

cat >"$tmp/linux.gdb" <<GDB
set pagination off
set confirm off
target remote $sock
info registers pc
break start_kernel
continue
info registers pc
print/x (unsigned long)\$satp >> 60
print \$priv
x/s &linux_banner
print *(unsigned long *)&jiffies
info threads
stepi
info registers pc
delete
detach
GDB

vm_start "$tmp/linux.yaml"
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
timeout 300 "$gdb" -q -batch -nx -x "$tmp/linux.gdb" "$vmlinux" >"$tmp/gdb.out" 2>&1
vm_finish 600
check "held at reset: OpenSBI's entry point" grep -q "^pc  *0x80000000" "$tmp/gdb.out"
check "the breakpoint at start_kernel is hit" grep -qE "hit Breakpoint 1, 0xffffffff[0-9a-f]+ in start_kernel" "$tmp/gdb.out"
check "pc is start_kernel" grep -qE "^pc .*<start_kernel>$" "$tmp/gdb.out"
check "paging is on (satp mode Sv39 or Sv48)" grep -qE "^\\\$1 = 0x(8|9)$" "$tmp/gdb.out"
check "the kernel runs in S-mode" grep -q "^\$2 = 1$" "$tmp/gdb.out"
check "linux_banner is read through the kernel's page tables" grep -q '<linux_banner>:.*"Linux version 6\.' "$tmp/gdb.out"
check "jiffies holds its initial value (INITIAL_JIFFIES, 32-bit wrap at HZ 250 or 100)" \
  grep -qE "^\\\$3 = 42949(37296|66296)$" "$tmp/gdb.out"
check "both harts are threads" grep -q "Thread 2 (hart 1)" "$tmp/gdb.out"
check "stepi moves one instruction into start_kernel" grep -qE "^pc .*<start_kernel\+[246]>$" "$tmp/gdb.out"
check "gdb detached" grep -q "Inferior 1 (Remote target) detached" "$tmp/gdb.out"
check "after detach the guest boots to the end and powers off (exit 0)" test "$vm_status" -eq 0
check "its userspace ran the command" grep -aq "debugged-boot-done" "$vm_out"
[ "$vm_status" -eq 0 ] && grep -q start_kernel "$tmp/gdb.out" || { cat "$tmp/gdb.out"; vm_dump; }
finish
