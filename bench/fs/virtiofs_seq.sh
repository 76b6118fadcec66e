#!/usr/bin/env bash
# Guest sequential read MB/s from a virtio-fs shared folder: vmlaunch (jit interpreter,
# `mounts: type: virtiofs`, virtiofsd started by vmlaunch) vs QEMU TCG (qemu-system-riscv64 -M virt
# with vhost-user-fs-pci, guest RAM in memory-backend-memfd, the same virtiofsd started here), same
# kernel, initramfs, command and host file, one hart on both sides. virtiofsd runs with cache=auto
# on both; the guest reads with busybox dd and prints the checksum so a fast wrong answer shows.
# Each engine runs RUNS times (interleaved), every run is printed. Needs root (virtiofsd).
# Usage: bench/fs/virtiofs_seq.sh [VMLAUNCH] [SIZE_MB] [RUNS]
set -euo pipefail
here=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
vml=${1:-$here/bazel-bin/launcher/vmlaunch}
size_mb=${2:-32}
runs=${3:-2}
paths=$("$here/guests/riscv64/build")
kernel=$(printf '%s\n' "$paths" | sed -n 1p)
initrd=$(printf '%s\n' "$paths" | sed -n 2p)
tmp=$(mktemp -d)
daemon=
trap '[ -n "$daemon" ] && kill "$daemon" 2>/dev/null; rm -rf "$tmp"' EXIT
opensbi=/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_jump.bin

mkdir "$tmp/share"
head -c $((size_mb * 1048576)) /dev/urandom >"$tmp/share/data.bin"
echo "host md5 $(md5sum <"$tmp/share/data.bin" | cut -d' ' -f1)"

cmd="mkdir -p /mnt/s && mount -t virtiofs share /mnt/s &&
dd if=/mnt/s/data.bin of=/dev/null bs=256k 2>&1 | tail -1 | sed 's/^/READ /';
echo MD5 \$(md5sum </mnt/s/data.bin)"
cmd64=$(printf '%s' "$cmd" | base64 -w0)
append="console=ttyS0 quiet vml.cmd64=$cmd64"

# busybox dd: "N bytes (X.YMB) copied, T seconds, R MB/s"; MB/s recomputed from bytes and seconds.
rate() { grep -a "^READ " | sed -E 's/.*\(([0-9.]+)MB\) copied, ([0-9.]+) seconds.*/\1 \2/' | awk '{ printf "%.1f", $1 / $2 }'; }
sum() { grep -a "^MD5 " | awk '{print $2}'; }

run_vmlaunch() {
  cat >"$tmp/vm.yaml" <<YAML
name: virtiofs-bench
machine: {arch: riscv64, type: virt, memory: 256MiB}
cpu: {model: rv64gc, count: 1}
accel: [jit]
boot: {firmware: opensbi, kernel: $kernel, initrd: $initrd, cmdline: '$append'}
backends:
  chardev: {con0: {driver: stdio}}
devices:
  - {driver: ns16550, id: serial0, chardev: con0}
mounts:
  - {location: $tmp/share, tag: share, type: virtiofs}
YAML
  "$vml" up "$tmp/vm.yaml" </dev/null >"$tmp/out" 2>&1 || true
  echo "vmlaunch virtiofs read $(rate <"$tmp/out") MB/s md5 $(sum <"$tmp/out")"
}

run_qemu() {
  rm -f "$tmp/vfs.sock"
  /usr/lib/qemu/virtiofsd --socket-path="$tmp/vfs.sock" -o source="$tmp/share" -o cache=auto \
    -o log_level=err 2>"$tmp/vfs.log" &
  daemon=$!
  while [ ! -S "$tmp/vfs.sock" ]; do sleep 0.05; done
  timeout 1800 qemu-system-riscv64 -M virt,memory-backend=mem -smp 1 -m 256M -nographic -bios "$opensbi" \
    -kernel "$kernel" -initrd "$initrd" -append "$append" \
    -object memory-backend-memfd,id=mem,size=256M,share=on \
    -chardev "socket,id=vfs,path=$tmp/vfs.sock" -device vhost-user-fs-pci,chardev=vfs,tag=share \
    -no-reboot </dev/null >"$tmp/qout" 2>&1 || true
  wait "$daemon" 2>/dev/null || true
  daemon=
  echo "qemu-tcg virtiofs read $(rate <"$tmp/qout") MB/s md5 $(sum <"$tmp/qout")"
}

for i in $(seq 1 "$runs"); do
  run_vmlaunch
  run_qemu
done
