#!/usr/bin/env bash
# End-to-end virtio-blk on the riscv64 Linux guest through `vmlaunch up` (jit interpreter):
#  1. a qcow2 overlay made by `qemu-img create -f qcow2 -b base.raw -F raw` is written by the guest
#     (a byte pattern with dd, then an ext2 filesystem with a file); after poweroff `qemu-img check`
#     finds no errors, `qemu-img compare` agrees with the expected bytes, the base is unchanged;
#  2. the same disk read-only: the guest sees a read-only device and writes fail;
#  3. kill -9 of vmlaunch while the guest writes: `qemu-img check` reports at most leaks.
source tests/lib.sh
source tests/boot/console.sh

if ! command -v qemu-img >/dev/null; then
  skip "virtio-blk guest tests" "qemu-img not installed (apt-get install qemu-utils)"
  finish
  exit
fi
use_riscv64_guest tests/virtio/guest_blk_test.sh

# machine NAME CMD [readonly]: a virt machine with the console on stdio and disk0 on virtio-blk-mmio.
machine() {
  local cmd64
  cmd64=$(printf '%s' "$2" | base64 -w0)
  {
    riscv64_guest_yaml "$1" 2 "console=ttyS0 quiet vml.cmd64=$cmd64"
    cat <<YAML
  block:
    disk0: {driver: qcow2, file: $tmp/disk.qcow2, readonly: ${3:-false}}
devices:
  - {driver: ns16550, id: serial0, chardev: con0}
  - {driver: virtio-blk-mmio, id: vda, drive: disk0, serial: VMLDISK0001}
YAML
  } >"$tmp/$1.yaml"
}

# The base: 32 MiB of a recognisable pattern; the guest's writes must never reach it.
python3 - "$tmp/base.raw" <<'PY'
import sys
with open(sys.argv[1], "wb") as f:
    for i in range(32 * 256):
        f.write((b"base-%06d-" % i) * 8 + b"\n" * (128 - 96) + bytes(3968 - 128) + b"B" * 128)
PY
sha_before=$(sha256sum "$tmp/base.raw" | cut -d' ' -f1)
(cd "$tmp" && qemu-img create -q -f qcow2 -b base.raw -F raw disk.qcow2)

# 1a. A raw pattern at a known place: 3 MiB of 'x' from sector 2048 (1 MiB), written through the
#     page cache and flushed with sync; then read back in the guest.
machine blk-pattern 'echo "serial=$(cat /sys/block/vda/serial)"; echo "sectors=$(cat /sys/block/vda/size)";
dd if=/dev/zero bs=65536 count=48 2>/dev/null | tr "\0" x | dd of=/dev/vda bs=65536 seek=16 2>/dev/null; sync;
echo 3 > /proc/sys/vm/drop_caches; echo "nonx=$(dd if=/dev/vda bs=65536 skip=16 count=48 2>/dev/null | tr -d x | wc -c)"'
vm_start "$tmp/blk-pattern.yaml"
vm_finish 900
check "pattern run: vmlaunch exits 0 after the guest powers off" test "$vm_status" -eq 0
check "the guest sees the serial id" grep -aq "serial=VMLDISK0001" "$vm_out"
check "the guest sees 32 MiB (65536 sectors)" grep -aq "sectors=65536" "$vm_out"
check "the pattern reads back in the guest (0 non-x bytes)" grep -aq "nonx=0" "$vm_out"
[ "$vm_status" -eq 0 ] || vm_dump
check "qemu-img check: no errors after the pattern run" qemu-img check -q "$tmp/disk.qcow2"
python3 - "$tmp/base.raw" "$tmp/expected.raw" <<'PY'
import sys
data = bytearray(open(sys.argv[1], "rb").read())
data[1 << 20:(1 << 20) + 3 * (1 << 20)] = b"x" * (3 << 20)
open(sys.argv[2], "wb").write(data)
PY
check "qemu-img compare: the overlay holds base + the guest's pattern" \
  qemu-img compare -q -f qcow2 -F raw "$tmp/disk.qcow2" "$tmp/expected.raw"
check "the base image is unchanged" test "$(sha256sum "$tmp/base.raw" | cut -d' ' -f1)" = "$sha_before"

# 1b. A filesystem: format, write a file, read it after remount.
machine blk-fs 'mke2fs -q -F /dev/vda >/dev/null && mkdir -p /mnt && mount -t ext2 /dev/vda /mnt &&
echo "vmlaunch virtio-blk works" > /mnt/hello.txt && dd if=/dev/urandom of=/mnt/blob bs=4096 count=256 2>/dev/null &&
md5sum /mnt/blob > /mnt/blob.md5 && umount /mnt && mount -t ext2 /dev/vda /mnt && cat /mnt/hello.txt &&
md5sum -c /mnt/blob.md5 && umount /mnt && sync'
vm_start "$tmp/blk-fs.yaml"
vm_finish 900
check "filesystem run: vmlaunch exits 0" test "$vm_status" -eq 0
check "the guest formats, writes and reads back a file" grep -aq "vmlaunch virtio-blk works" "$vm_out"
check "the guest's 1 MiB random file survives remount (md5sum -c)" grep -aq "/mnt/blob: OK" "$vm_out"
check "the guest command succeeded" grep -aq "VML-CMD-EXIT=0" "$vm_out"
[ "$vm_status" -eq 0 ] && grep -aq "VML-CMD-EXIT=0" "$vm_out" || vm_dump
check "qemu-img check: no errors after the filesystem run" qemu-img check -q "$tmp/disk.qcow2"
if command -v debugfs >/dev/null; then
  qemu-img convert -f qcow2 -O raw "$tmp/disk.qcow2" "$tmp/disk.raw"
  check "the host reads the guest's file from the image (debugfs)" \
    sh -c "debugfs -R 'cat /hello.txt' '$tmp/disk.raw' 2>/dev/null | grep -q 'vmlaunch virtio-blk works'"
fi
check "the base image is still unchanged" test "$(sha256sum "$tmp/base.raw" | cut -d' ' -f1)" = "$sha_before"

# 2. Read-only.
machine blk-ro 'echo "ro=$(cat /sys/block/vda/ro)"; dd if=/dev/zero of=/dev/vda bs=512 count=1 conv=fsync 2>&1 | tail -1; echo ro-done' true
sum_before=$(sha256sum "$tmp/disk.qcow2" | cut -d' ' -f1)
vm_start "$tmp/blk-ro.yaml"
vm_finish 900
check "read-only run: vmlaunch exits 0" test "$vm_status" -eq 0
check "the guest sees a read-only disk" grep -aq "ro=1" "$vm_out"
check "the read-only image file is unchanged" test "$(sha256sum "$tmp/disk.qcow2" | cut -d' ' -f1)" = "$sum_before"
[ "$vm_status" -eq 0 ] || vm_dump

# 3. kill -9 while the guest writes (and flushes) continuously.
(cd "$tmp" && rm -f disk.qcow2 && qemu-img create -q -f qcow2 -b base.raw -F raw disk.qcow2)
# Chunk n (256 KiB of the letter n % 26) goes to offset (n % 100) * 256 KiB; "flushed-n" is printed
# only after conv=fsync returned, i.e. after virtio-blk FLUSH reached the host (fdatasync).
machine blk-kill 'n=0; while true; do c=$(printf "\\$(printf %03o $((97 + n % 26)))");
dd if=/dev/zero bs=65536 count=4 2>/dev/null | tr "\0" "$c" | dd of=/dev/vda bs=65536 seek=$(((n % 100) * 4)) conv=fsync 2>/dev/null;
echo flushed-$n; n=$((n+1)); done'
vm_start "$tmp/blk-kill.yaml"
vm_wait "flushed-12" 900
sleep 0.$((RANDOM % 10))
kill -9 "$vm_pid"
wait "$vm_pid" 2>/dev/null
exec 7>&-
qemu-img check -q "$tmp/disk.qcow2" >"$tmp/check.log" 2>&1
rc=$?
check "after kill -9: qemu-img check finds no corruption (0, or 3 = leaked clusters only; got $rc)" \
  test "$rc" -eq 0 -o "$rc" -eq 3
last=$(grep -ao "flushed-[0-9]*" "$vm_out" | tail -1 | cut -d- -f2)
letter=$(printf '0x%x' $((97 + last % 26)))
readback=$(qemu-io -r -f qcow2 -c "read -P $letter $(((last % 100) * 262144)) 262144" "$tmp/disk.qcow2" 2>&1)
check "after kill -9: the last flushed chunk ($last) reads back intact" \
  sh -c "printf '%s' \"\$1\" | grep -q 'read 262144/262144' && ! printf '%s' \"\$1\" | grep -qi 'verification failed'" _ "$readback"
check "after kill -9: the base image is unchanged" test "$(sha256sum "$tmp/base.raw" | cut -d' ' -f1)" = "$sha_before"
finish
