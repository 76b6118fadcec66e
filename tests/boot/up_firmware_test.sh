#!/usr/bin/env bash
# Debian's firmware on the riscv64 virt machine through `vmlaunch up`, on the jit interpreter:
# OpenSBI (fw_jump) prints its banner on the UART; U-Boot (S-mode, as OpenSBI's payload) reaches
# its prompt, runs a command and powers the machine off through SBI -> sifive_test.
source tests/lib.sh
source tests/boot/console.sh

machine() {  # machine NAME FIRMWARE
  cat >"$tmp/$1.yaml" <<YAML
name: $1
machine: {arch: riscv64, type: virt, memory: 256MiB}
cpu: {model: rv64gc, count: 1}
accel: [jit]
boot: {firmware: $2}
backends:
  chardev:
    con0: {driver: stdio}
devices:
  - {driver: ns16550, id: serial0, chardev: con0}
YAML
}

if [ ! -r /usr/lib/riscv64-linux-gnu/opensbi/generic/fw_jump.bin ]; then
  skip "OpenSBI banner" "Debian's opensbi package is not installed"
else
  machine opensbi opensbi
  vm_start "$tmp/opensbi.yaml"
  vm_wait "Boot HART ISA Extensions" 120
  check "OpenSBI prints its banner and platform on the UART" test $? -eq 0
  check "OpenSBI found the device tree's platform devices" grep -aq "Platform Shutdown Device  : sifive_test" "$vm_out"
  vm_send '\001x'  # Ctrl-a x, as in QEMU
  vm_finish 30
  check "Ctrl-a x on the console quits vmlaunch with status 0" test "$vm_status" -eq 0
  grep -aq "Boot HART" "$vm_out" || vm_dump
fi

if [ ! -r /usr/lib/u-boot/qemu-riscv64_smode/u-boot.bin ]; then
  skip "U-Boot prompt" "Debian's u-boot-qemu package is not installed"
else
  machine uboot u-boot
  vm_start "$tmp/uboot.yaml"
  vm_wait "Hit any key to stop autoboot" 180 && vm_send '\n'
  vm_wait "=> $" 120
  check "U-Boot reaches its prompt" test $? -eq 0
  vm_send 'setenv x 42; echo val=${x}\n'
  vm_wait "^val=42" 60
  check "U-Boot runs a command typed on the console" test $? -eq 0
  # A guest reset rebuilds the machine: U-Boot starts over and can power off afterwards.
  vm_send 'reset\n'
  waited=0
  while [ "$(grep -ac "Hit any key to stop autoboot" "$vm_out")" -lt 2 ] && [ $waited -lt 1800 ]; do
    sleep 0.1
    waited=$((waited + 1))
  done
  vm_send '\n'
  vm_wait "=> $" 120
  check "U-Boot's reset reboots the machine into U-Boot again" test "$(grep -ac "^U-Boot 20" "$vm_out")" -eq 2
  vm_send 'poweroff\n'
  vm_finish 60
  check "U-Boot's poweroff ends vmlaunch with status 0" test "$vm_status" -eq 0
  [ "$vm_status" -eq 0 ] || vm_dump
fi
finish
