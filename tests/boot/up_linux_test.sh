#!/usr/bin/env bash
# Linux on the riscv64 virt machine through `vmlaunch up` on the jit interpreter: OpenSBI (fw_jump)
# -> the guests' kernel + busybox initramfs. The initramfs runs the command from the kernel command
# line (vml.cmd, see guests/init) and powers off through syscon; the test checks the command's
# output and vmlaunch's exit status. A second boot checks the interactive shell.
# Builds the guest with guests/riscv64/build (cached under ~/.cache/vmlaunch; the first build
# takes minutes).
source tests/lib.sh
source tests/boot/console.sh

use_riscv64_guest tests/boot/up_linux_test.sh

machine() {  # machine NAME CMDLINE [CPU]
  cat >"$tmp/$1.yaml" <<YAML
name: $1
machine: {arch: riscv64, type: virt, memory: 256MiB}
cpu: ${3:-{model: rv64gc, count: 2\}}
accel: [jit]
boot:
  firmware: opensbi
  kernel: $kernel
  initrd: $initrd
  cmdline: '$2'
backends:
  chardev:
    con0: {driver: stdio}
devices:
  - {driver: ns16550, id: serial0, chardev: con0}
YAML
}

# Two harts as two sockets of one core (cpu.topology, count derived): the guest sees two packages.
machine linux-cmd 'console=ttyS0 vml.cmd="echo answer=$((6*7)) arch=$(uname -m) harts=$(grep -c ^processor /proc/cpuinfo) packages=$(cat /sys/devices/system/cpu/cpu[01]/topology/physical_package_id)"' \
  '{model: rv64gc, topology: {sockets: 2, cores: 1}}'
vm_start "$tmp/linux-cmd.yaml"
vm_finish 600
check "Linux runs the command and powers off: vmlaunch exits 0" test "$vm_status" -eq 0
check "the guest computed the answer on riscv64 with 2 harts" grep -aq "answer=42 arch=riscv64 harts=2" "$vm_out"
check "the kernel found the 8250 UART of the device tree" grep -aqE "10000000.serial: ttyS0 at MMIO 0x10000000 .* is a 16550A" "$vm_out"
check "the command's exit status was reported" grep -aq "VML-CMD-EXIT=0" "$vm_out"
# OpenSBI's boot hart is whichever wins its lottery, so Linux's cpu0 may be hart 1: either order.
check "cpu.topology reaches the guest: its two CPUs in packages 0 and 1" grep -aqE "harts=2 packages=(0 1|1 0)" "$vm_out"
[ "$vm_status" -eq 0 ] && grep -aq "answer=42" "$vm_out" || vm_dump

# virtio devices on both transports: a block device on virtio-mmio, an entropy source on PCIe
# (ECAM host, INTx through the device tree's interrupt-map).
truncate -s 16M "$tmp/disk.raw"
machine linux-virtio 'console=ttyS0 vml.cmd="echo vda-sectors=$(cat /sys/block/vda/size) rng-bytes=$(head -c 16 /dev/hwrng | wc -c)"'
cat >>"$tmp/linux-virtio.yaml" <<YAML
  - {driver: virtio-blk-mmio, id: vda, drive: disk0}
  - {driver: virtio-rng-pci, id: rng, rng: rng0}
YAML
sed -i "s|^backends:|backends:\n  block: {disk0: {driver: raw, file: $tmp/disk.raw}}\n  rng: {rng0: {driver: random}}|" "$tmp/linux-virtio.yaml"
vm_start "$tmp/linux-virtio.yaml"
vm_finish 600
check "virtio-blk-mmio disk and virtio-rng-pci work in the guest" grep -aq "vda-sectors=32768 rng-bytes=16" "$vm_out"
grep -aq "vda-sectors=32768 rng-bytes=16" "$vm_out" || vm_dump

machine linux-shell 'console=ttyS0 quiet'
vm_start "$tmp/linux-shell.yaml"
vm_wait "userspace up" 600
vm_send 'echo shell-says-$((5+5))\n'
vm_wait "shell-says-10" 120
check "the interactive busybox shell answers on the console" test $? -eq 0
vm_send 'poweroff -f\n'
vm_finish 120
check "poweroff from the shell ends vmlaunch with status 0" test "$vm_status" -eq 0
[ "$vm_status" -eq 0 ] || vm_dump
finish
