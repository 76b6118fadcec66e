#!/usr/bin/env bash
# Every riscv64 file in examples/ boots under `vmlaunch up` (issue 10: "every file in examples/
# boots, or says in its header comment why not"). Each example is copied as it is, with what its
# header asks for put beside it (the guest under guests/riscv64/, empty qcow2 disks), and started
# through a two-line file that extends it and only replaces the kernel command line with one that
# runs a check in the guest and powers off. x86_64 examples need KVM (the nested host's issue); an
# example whose header says it does not boot is skipped with that reason.
source tests/lib.sh
source tests/boot/console.sh

use_riscv64_guest tests/boot/examples_boot_test.sh
vml=$PWD/launcher/vmlaunch
ex=$tmp/examples
mkdir -p "$ex/guests/riscv64" "$ex/disks"
cp examples/*.yaml examples/*.toml "$ex/"
ln -s "$kernel" "$ex/guests/riscv64/Image"
ln -s "$initrd" "$ex/guests/riscv64/initramfs.cpio.gz"
qemu-img create -q -f qcow2 "$ex/disk.qcow2" 64M
qemu-img create -q -f qcow2 "$ex/disks/riscv64.qcow2" 64M

# What each example must show in the guest besides a clean power-off (grep -E on the console).
declare -A expect=(
  [riscv64-linux.yaml]='^cpus=2 '
  [riscv64-linux-disk.yaml]='^cpus=2 .*blk=.*vda'
  [riscv64-linux-share.yaml]='^cpus=2 .*share=.*riscv64-linux-share.yaml'
  [hello-riscv.yaml]='^cpus=2 .*blk=.*vda.*net=.*eth0.*rng=virtio_rng'
  [hello-riscv.toml]='^cpus=2 .*blk=.*vda.*net=.*eth0.*rng=virtio_rng'
)
# One command for all: what the checks above read. No double quotes (the kernel's parser).
probe='mkdir -p /mnt/e; mount -t 9p -o trans=virtio examples /mnt/e 2>/dev/null; echo cpus=$(grep -c ^processor /proc/cpuinfo) blk=$(ls /sys/class/block | tr -s [:space:] ,) net=$(ls /sys/class/net | tr -s [:space:] ,) rng=$(cat /sys/class/misc/hw_random/rng_current 2>/dev/null) share=$(ls /mnt/e 2>/dev/null | tr -s [:space:] ,)'

for file in "$ex"/*.yaml "$ex"/*.toml; do
  name=$(basename "$file")
  grep -qE 'arch(: |" *= *"|: *")riscv64|arch = "riscv64"' "$file" || grep -q 'riscv64-linux.yaml' "$file" || continue
  if grep -q '^# Does not boot' "$file"; then
    skip "$name boots" "$(grep -m1 '^# Does not boot' "$file" | sed 's/^# //')"
    continue
  fi
  wrapper=$ex/run-${name%.*}-${name##*.}.yaml
  printf 'extends: [%s]\nboot: {cmdline: '\''console=ttyS0 quiet vml.cmd="%s"'\''}\n' "$name" "$probe" >"$wrapper"
  vm_start "$wrapper"
  booted() {
    vm_finish 600
    if [ "$vm_status" != 0 ] || ! grep -aq 'VML-CMD-EXIT=0' "$vm_out" || ! grep -aqE "${expect[$name]:-^cpus=}" "$vm_out"; then
      echo "    exit $vm_status; want VML-CMD-EXIT=0 and /${expect[$name]:-^cpus=}/"
      grep -a '^cpus=' "$vm_out" | sed 's/^/    /'
      vm_dump
      return 1
    fi
  }
  check "$name boots and shows its devices" booted
done

finish
