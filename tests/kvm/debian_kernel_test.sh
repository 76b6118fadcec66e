#!/usr/bin/env bash
# The x86_64 Linux guest from Debian packages (guests/x86_64/build): the initramfs has what init
# needs, and under vmlaunch on KVM (the host's, or the nested KVM host's) the real bzImage boots
# through init to poweroff.
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
    skip boots_to_poweroff_on_kvm "no guest kernel"
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

# The whole boot on KVM: on this host's /dev/kvm where it is hardware KVM, else inside the nested
# KVM host (tests/nested). Linux must find KVM (the CPUID hypervisor bit and signature leaf), use
# kvm-clock, run init and the command with its output on ttyS0, and power off through the ACPI sleep
# registers: vmlaunch exits 0 (the guest's poweroff; the command's status is in the marker).
boots_to_poweroff_on_kvm() {
  cat >"$WORK/linux.yaml" <<YAML
name: debian-kernel
machine: {arch: x86_64, type: microvm, memory: 256MiB}
cpu: {model: host, count: 1}
accel: [kvm]
boot: {kernel: "$kernel", initrd: "$initrd", cmdline: "console=ttyS0 quiet reboot=t panic=-1 vml.cmd=\"uname -m; exit 3\""}
backends: {chardev: {con0: {driver: stdio}}}
devices: [{driver: ns16550, id: serial0, chardev: con0}]
YAML
  # Every kernel message is a run of port writes; quiet keeps the nested (TCG) run short. The ones
  # checked below are printed at a level quiet keeps, or are not the kernel's.
  tests/nested/kvm_or_nested timeout -k 5 300 "$VMLAUNCH" up "$WORK/linux.yaml" </dev/null >"$WORK/linux.out" 2>&1
  local rc=$?
  tr -d '\r' <"$WORK/linux.out" >"$WORK/linux.txt"  # the guest's tty ends lines with CR LF
  sed 's/^/    | /' "$WORK/linux.txt"
  # Userspace output needs the COM port's IRQ (declared in the DSDT: microvm has no PIC).
  [ "$rc" -eq 0 ] && grep -qx "vmlaunch-guest: userspace up" "$WORK/linux.txt" && grep -qx "x86_64" "$WORK/linux.txt" &&
    grep -qx "VML-CMD-EXIT=3" "$WORK/linux.txt" && grep -q "reboot: Power down" "$WORK/linux.txt"
}

for c in initramfs_contents boots_to_poweroff_on_kvm; do
  echo "== $c"
  check "$c" "$c"
done
finish
