#!/usr/bin/env bash
# Guest sequential read MB/s from a shared folder, vmlaunch (jit interpreter, from `mounts:`) vs
# QEMU TCG (qemu-system-riscv64 -M virt) running the same kernel, initramfs, command and host file,
# one hart on both sides. TYPE picks the protocol:
#   9p:       vmlaunch's own 9P2000.L server behind virtio-9p-pci / QEMU's -fsdev local +
#             virtio-9p-pci; the guest mounts with cache=none (every read is a 9P request).
#   virtiofs: virtiofsd behind vhost-user-fs-pci on both sides (vmlaunch starts its own; for QEMU
#             it is started here, guest RAM in memory-backend-memfd), cache=auto on both. Needs root.
# The guest reads the file with busybox dd and prints its checksum, so a fast wrong answer shows.
# Each engine runs RUNS times (interleaved), every run is printed.
# Usage: bench/fs/share_seq.sh [VMLAUNCH] [SIZE_MB] [RUNS] [TYPE: 9p | virtiofs]
set -euo pipefail
source "$(dirname "$(readlink -f "$0")")/../guest.sh"
bench_guest "${1:-}"
size_mb=${2:-32}
runs=${3:-2}
type=${4:-9p}
case $type in
  9p) mount="mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 share /mnt/s" ;;
  virtiofs) mount="mount -t virtiofs share /mnt/s" ;;
  *) echo "share_seq: TYPE is 9p or virtiofs, not '$type'" >&2; exit 2 ;;
esac

mkdir "$tmp/share"
head -c $((size_mb * 1048576)) /dev/urandom >"$tmp/share/data.bin"
echo "host md5 $(md5sum <"$tmp/share/data.bin" | cut -d' ' -f1)"
guest_append "mkdir -p /mnt/s && $mount &&
dd if=/mnt/s/data.bin of=/dev/null bs=256k 2>&1 | tail -1 | sed 's/^/READ /';
echo MD5 \$(md5sum </mnt/s/data.bin)"
sum() { grep -a "^MD5 " | awk '{print $2}'; }

run_vmlaunch() {
  cat >"$tmp/vm.yaml" <<YAML
name: $type-bench
machine: {arch: riscv64, type: virt, memory: 256MiB}
cpu: {model: rv64gc, count: 1}
accel: [jit]
boot: {firmware: opensbi, kernel: $kernel, initrd: $initrd, cmdline: '$append'}
backends:
  chardev: {con0: {driver: stdio}}
devices:
  - {driver: ns16550, id: serial0, chardev: con0}
mounts:
  - {location: $tmp/share, tag: share, type: $type}
YAML
  "$vml" up "$tmp/vm.yaml" </dev/null >"$tmp/out" 2>&1 || true
  echo "vmlaunch $type read $(dd_rate READ <"$tmp/out") MB/s md5 $(sum <"$tmp/out")"
}

run_qemu() {
  local device
  if [ "$type" = 9p ]; then
    device=(-fsdev "local,id=fs0,path=$tmp/share,security_model=none,readonly=on"
      -device virtio-9p-pci,fsdev=fs0,mount_tag=share)
  else
    rm -f "$tmp/vfs.sock"
    /usr/lib/qemu/virtiofsd --socket-path="$tmp/vfs.sock" -o source="$tmp/share" -o cache=auto \
      -o log_level=err 2>"$tmp/vfs.log" &
    daemon=$!
    while [ ! -S "$tmp/vfs.sock" ]; do sleep 0.05; done
    device=(-machine memory-backend=mem -object memory-backend-memfd,id=mem,size=256M,share=on
      -chardev "socket,id=vfs,path=$tmp/vfs.sock" -device vhost-user-fs-pci,chardev=vfs,tag=share)
  fi
  timeout 1800 qemu-system-riscv64 -M virt -smp 1 -m 256M -nographic -bios "$opensbi" -kernel "$kernel" \
    -initrd "$initrd" -append "$append" "${device[@]}" -no-reboot </dev/null >"$tmp/qout" 2>&1 || true
  if [ -n "$daemon" ]; then
    wait "$daemon" 2>/dev/null || true
    daemon=
  fi
  echo "qemu-tcg $type read $(dd_rate READ <"$tmp/qout") MB/s md5 $(sum <"$tmp/qout")"
}

for i in $(seq 1 "$runs"); do
  run_vmlaunch
  run_qemu
done
