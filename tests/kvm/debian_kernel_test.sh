#!/usr/bin/env bash
# The x86_64 Linux guest from Debian packages (guests/x86_64/build): the initramfs has what init
# needs, and under vmlaunch the real bzImage gets through our Linux boot protocol path far enough to
# program the early serial port (its compressed-kernel stub does that first, with earlyprintk). A full
# boot needs hardware virtualization; on PVM the kernel is too slow to get further (docs/x86.md).
source tests/lib.sh
set -u
VMLAUNCH=$PWD/launcher/vmlaunch
WORK=${TEST_TMPDIR:-$(mktemp -d)}

# Bazel runs tests without HOME; the guest cache lives in the real home directory.
export HOME=${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}
if ! paths=$(guests/x86_64/build 2>"$WORK/build.log"); then
  tail -n 5 "$WORK/build.log"
  if grep -q "apt-get download failed\|cannot resolve" "$WORK/build.log"; then
    skip initramfs_contents "no Debian mirror reachable to download the kernel (see log above)"
    skip bzimage_reaches_early_serial "no guest kernel"
    finish
    exit $?
  fi
  check guest_build false
  finish
  exit $?
fi
kernel=$(sed -n 1p <<<"$paths")
initrd=$(sed -n 2p <<<"$paths")
echo "kernel $kernel, initrd $initrd"

initramfs_contents() {
  local list
  list=$(gzip -dc "$initrd" | cpio -t --quiet 2>/dev/null) || return 1
  grep -qx init <<<"$list" && grep -qx bin/busybox <<<"$list" && grep -qx etc/vmlaunch/modules <<<"$list" &&
    grep -q 'virtio_mmio.ko$' <<<"$list" && grep -q 'virtio_pci.ko$' <<<"$list" && grep -q 'virtio_blk.ko$' <<<"$list" || return 1
  # Load order: the virtio core before the transports and devices that need it.
  local order
  order=$(gzip -dc "$initrd" | cpio -i --to-stdout --quiet etc/vmlaunch/modules)
  echo "$order" | sed 's|.*/||; s/^/    /'
  [ "$(grep -n '/virtio_ring.ko$' <<<"$order" | cut -d: -f1)" -lt "$(grep -n '/virtio_mmio.ko$' <<<"$order" | cut -d: -f1)" ]
}

bzimage_reaches_early_serial() {
  local kvm_reason
  kvm_reason=$(python3 -c 'import os
try: os.close(os.open("/dev/kvm", os.O_RDWR))
except OSError as e: print(e.strerror)' 2>/dev/null)
  if [ -n "$kvm_reason" ]; then
    echo "    (skipped: /dev/kvm: $kvm_reason)"
    return 0
  fi
  cat >"$WORK/linux.yaml" <<YAML
name: debian-kernel
machine: {arch: x86_64, type: microvm, memory: 256MiB}
cpu: {model: host, count: 1}
accel: [kvm]
boot: {kernel: "$kernel", initrd: "$initrd", cmdline: "console=ttyS0 earlyprintk=serial,ttyS0,115200"}
backends: {chardev: {con0: {driver: stdio}}}
devices: [{driver: ns16550, id: serial0, chardev: con0}]
YAML
  VMLAUNCH_KVM_TRACE=1 timeout -k 5 10 "$VMLAUNCH" up "$WORK/linux.yaml" </dev/null >"$WORK/linux.out" 2>&1
  head -n 12 "$WORK/linux.out" | sed 's/^/    | /'
  # The stub's early_serial_init: LCR with DLAB (0x3fb), the divisor (0x3f8/0x3f9), then LCR again.
  grep -q "io out port 0x3fb" "$WORK/linux.out" && grep -q "io out port 0x3f9" "$WORK/linux.out" &&
    ! grep -q "KVM internal error\|could not enter" "$WORK/linux.out"
}

for c in initramfs_contents bzimage_reaches_early_serial; do
  echo "== $c"
  check "$c" "$c"
done
finish
