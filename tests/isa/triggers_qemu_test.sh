#!/usr/bin/env bash
# tests/isa/triggers.S (assembled with QEMU=1) on qemu-system-riscv64 7.2's spike machine: the debug
# trigger behaviour isa_test checks on the jit holds on the reference too (the parts QEMU 7.2 has;
# the rest is .ifndef QEMU). HTIF exit status: 0 = pass, N = test N failed.
source tests/lib.sh
qemu=$(command -v qemu-system-riscv64) || {
  check "qemu-system-riscv64 is installed (tools/packages.txt: qemu-system-misc)" false
  finish
  exit
}
timeout 60 "$qemu" -M spike -bios none -kernel tests/isa/triggers_qemu.elf -nographic -display none \
  -monitor none -serial null
status=$?
[ "$status" -eq 0 ] || echo "qemu-system-riscv64 exit status $status (the failed test's number)"
check "triggers.S passes on qemu-system-riscv64 -M spike" test "$status" -eq 0
finish
