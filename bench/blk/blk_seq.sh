#!/usr/bin/env bash
# Guest sequential read/write MB/s on virtio-blk (virtio-mmio), vmlaunch (jit interpreter) vs QEMU
# TCG (qemu-system-riscv64 -M virt) running the same kernel, initramfs, command and disk images.
# One hart on both sides: a single guest CPU makes the comparison per CPU.
# The guest runs busybox dd with O_DIRECT-free page-cache I/O bounded by fsync / drop_caches so the
# disk path is exercised; each engine runs RUNS times (interleaved), every run is printed.
# Usage: bench/blk/blk_seq.sh [VMLAUNCH] [SIZE_MB] [RUNS]
set -euo pipefail
source "$(dirname "$(readlink -f "$0")")/../guest.sh"
bench_guest "${1:-}"
size_mb=${2:-64}
runs=${3:-2}

guest_append "dd if=/dev/zero of=/dev/vda bs=1M count=$size_mb conv=fsync 2>&1 | tail -1 | sed 's/^/WRITE /';
echo 3 > /proc/sys/vm/drop_caches;
dd if=/dev/vda of=/dev/null bs=1M count=$size_mb 2>&1 | tail -1 | sed 's/^/READ /'"

run_vmlaunch() {
  for fmt in raw qcow2; do
    rm -f "$tmp/disk.$fmt"
    if [ $fmt = raw ]; then truncate -s $((size_mb + 16))M "$tmp/disk.raw"; else qemu-img create -q -f qcow2 "$tmp/disk.qcow2" $((size_mb + 16))M; fi
    cat >"$tmp/vm.yaml" <<YAML
name: blk-bench
machine: {arch: riscv64, type: virt, memory: 256MiB}
cpu: {model: rv64gc, count: 1}
accel: [jit]
boot: {firmware: opensbi, kernel: $kernel, initrd: $initrd, cmdline: '$append'}
backends:
  chardev: {con0: {driver: stdio}}
  block: {disk0: {driver: $fmt, file: $tmp/disk.$fmt}}
devices:
  - {driver: ns16550, id: serial0, chardev: con0}
  - {driver: virtio-blk-mmio, id: vda, drive: disk0}
YAML
    "$vml" up "$tmp/vm.yaml" </dev/null >"$tmp/out.$fmt" 2>&1
    echo "vmlaunch $fmt write $(dd_rate WRITE <"$tmp/out.$fmt") read $(dd_rate READ <"$tmp/out.$fmt")"
  done
}

run_qemu() {
  for fmt in raw qcow2; do
    rm -f "$tmp/disk.$fmt"
    if [ $fmt = raw ]; then truncate -s $((size_mb + 16))M "$tmp/disk.raw"; else qemu-img create -q -f qcow2 "$tmp/disk.qcow2" $((size_mb + 16))M; fi
    timeout 1800 qemu-system-riscv64 -M virt -smp 1 -m 256M -nographic -bios "$opensbi" -kernel "$kernel" \
      -initrd "$initrd" -append "$append" -drive "file=$tmp/disk.$fmt,if=none,format=$fmt,id=d0,cache=writeback" \
      -device virtio-blk-device,drive=d0 -no-reboot </dev/null >"$tmp/qout.$fmt" 2>&1 || true
    echo "qemu-tcg $fmt write $(dd_rate WRITE <"$tmp/qout.$fmt") read $(dd_rate READ <"$tmp/qout.$fmt")"
  done
}

for i in $(seq 1 "$runs"); do
  run_vmlaunch
  run_qemu
done
