#!/usr/bin/env bash
# virtio-scsi-pci in the riscv64 Linux guest through `vmlaunch up`: a scsi-hd on a raw image
# (target 0), a scsi-hd on a qcow2 image (target 1), a second logical unit on target 1 (addr "1.3",
# a raw image; LUNs 1 and 2 absent) and a scsi-cd (target 2) on one SCSI bus. The guest finds
# /dev/sda, /dev/sdb, /dev/sdc (at H:C:T:L 0:0:1:3, with the host's bytes) and /dev/sr0, writes and reads raw blocks on the raw disk, makes an
# ext2 file system on the qcow2 disk, mounts it, writes a file, mounts it again and reads it back,
# and finds the CD read-only with the blocks the host wrote. Afterwards the host checks the raw
# image's bytes, `qemu-img check` on the qcow2 and the file's text inside it.
source tests/lib.sh
source tests/boot/console.sh

use_riscv64_guest tests/devices/scsi_guest_test.sh

truncate -s 16M "$tmp/hd.raw"
truncate -s 8M "$tmp/lun3.raw"
printf 'LUN3-MARKER' | dd of="$tmp/lun3.raw" conv=notrunc 2>/dev/null
qemu-img create -q -f qcow2 "$tmp/hd.qcow2" 32M
# The guest's part. Disks are told apart by size (16 MiB raw = 32768 sectors, 32 MiB qcow2). It is
# longer than riscv64's 1 KiB kernel command line, so it travels on the CD (blocks 32-63, padded
# with newlines) and vml.cmd pipes it from /dev/sr0 into sh.
read -r -d '' guest <<'SH'
for b in /sys/block/sd* /sys/block/sr*; do
  echo "DISK ${b##*/} size=$(cat $b/size) ro=$(cat $b/ro) model=$(cat $b/device/model) type=$(cat $b/device/type) hctl=$(basename $(readlink -f $b/device))"
done
for b in /sys/block/sd*; do
  [ "$(cat $b/size)" = 16384 ] && echo "LUN3=$(dd if=/dev/${b##*/} bs=512 count=1 2>/dev/null | head -c 11)"
done
for b in /sys/block/sd*; do
  case $(cat $b/size) in 32768) raw=/dev/${b##*/} ;; 65536) q=/dev/${b##*/} ;; esac
done
dd if=/dev/urandom of=/tmp/pattern bs=1024 count=64 2>/dev/null
dd if=/tmp/pattern of=$raw bs=1024 seek=100 conv=fsync 2>/dev/null && echo RAW-WRITTEN
echo 3 > /proc/sys/vm/drop_caches
dd if=$raw of=/tmp/back bs=1024 skip=100 count=64 2>/dev/null
cmp /tmp/pattern /tmp/back && echo RAW-READBACK-OK
echo "RAWSUM=$(md5sum < /tmp/pattern | cut -d' ' -f1)"
mkfs.ext2 $q >/dev/null 2>&1 && echo MKFS-OK
mkdir -p /mnt/q
mount -t ext2 $q /mnt/q && echo hello-from-the-qcow2-disk > /mnt/q/greeting && sync && umount /mnt/q && echo MOUNT-1-OK
echo 3 > /proc/sys/vm/drop_caches
mount -t ext2 $q /mnt/q && echo "READ=$(cat /mnt/q/greeting)" && umount /mnt/q
echo "CD ro=$(cat /sys/block/sr0/ro) block3=$(dd if=/dev/sr0 bs=2048 skip=3 count=1 2>/dev/null | head -c 12)"
mkdir -p /mnt/cd
mount -t iso9660 -o ro /dev/sr0 /mnt/cd && echo "ISO=$(cat /mnt/cd/hello.txt)" && umount /mnt/cd
if dd if=/dev/zero of=/dev/sr0 bs=2048 count=1 conv=fsync 2>/dev/null; then echo CD-WRITE-ACCEPTED; else echo CD-WRITE-REFUSED; fi
sync
SH

# The CD: 64 blocks of 2048 bytes. An ISO 9660 file system with one file (HELLO.TXT) in blocks
# 16-21 (volume descriptors, path tables, root directory, the file); blocks 0-15 and 22-31 each
# start with their number; blocks 32-63 hold the script.
printf '%s\nexit 0\n' "$guest" >"$tmp/guest.sh"
python3 - "$tmp/cd.img" "$tmp/guest.sh" <<'PY'
import struct, sys
script = open(sys.argv[2], "rb").read()
assert len(script) <= 32 * 2048
both16 = lambda v: struct.pack("<H", v) + struct.pack(">H", v)
both32 = lambda v: struct.pack("<I", v) + struct.pack(">I", v)
def record(extent, size, flags, name):
    body = bytes([0]) + both32(extent) + both32(size) + bytes(7) + bytes([flags, 0, 0]) + both16(1)
    body += bytes([len(name)]) + name
    body = bytes([len(body) + 1]) + body
    return body + bytes(len(body) % 2)
text = b"hello from an iso9660 cd\n"
blocks = [("CDBLOCK-%04d" % n).encode().ljust(2048, b".") for n in range(32)]
pvd = bytes([1]) + b"CD001" + bytes([1, 0]) + b" " * 32 + b"VMLAUNCH_TEST".ljust(32) + bytes(8)
pvd += both32(64) + bytes(32) + both16(1) + both16(1) + both16(2048) + both32(10)
pvd += struct.pack("<I", 18) + bytes(4) + struct.pack(">I", 19) + bytes(4)
pvd += record(20, 2048, 2, b"\0") + b" " * (128 * 4 + 37 * 3)
pvd += (b"0" * 16 + b"\0") * 4 + bytes([1])
blocks[16] = pvd.ljust(2048, b"\0")
blocks[17] = (bytes([255]) + b"CD001" + bytes([1])).ljust(2048, b"\0")
blocks[18] = (bytes([1, 0]) + struct.pack("<I", 20) + struct.pack("<H", 1) + bytes(2)).ljust(2048, b"\0")
blocks[19] = (bytes([1, 0]) + struct.pack(">I", 20) + struct.pack(">H", 1) + bytes(2)).ljust(2048, b"\0")
blocks[20] = (record(20, 2048, 2, b"\0") + record(20, 2048, 2, b"\1") +
              record(21, len(text), 0, b"HELLO.TXT;1")).ljust(2048, b"\0")
blocks[21] = text.ljust(2048, b"\0")
with open(sys.argv[1], "wb") as f:
    f.write(b"".join(blocks))
    f.write(script.ljust(32 * 2048, b"\n"))
PY

cp "$tmp/cd.img" "$tmp/cd.before"

{
  riscv64_guest_yaml scsi 1 'console=ttyS0 quiet vml.cmd="dd if=/dev/sr0 bs=2048 skip=32 2>/dev/null | sh"'
  cat <<YAML
  block:
    raw0: {driver: raw, file: $tmp/hd.raw}
    qcow0: {driver: qcow2, file: $tmp/hd.qcow2}
    cd0: {driver: raw, file: $tmp/cd.img, readonly: true}
    lun3: {driver: raw, file: $tmp/lun3.raw}
devices:
  - {driver: ns16550, id: serial0, chardev: con0}
  - {driver: virtio-scsi-pci, id: scsi0}
  - {driver: scsi-hd, id: hd0, bus: scsi0.0, addr: 0, drive: raw0, serial: RAW0}
  - {driver: scsi-hd, id: hd1, bus: scsi0.0, addr: 1, drive: qcow0}
  - {driver: scsi-hd, id: hd1lun3, bus: scsi0.0, addr: "1.3", drive: lun3}
  - {driver: scsi-cd, id: cd0, bus: scsi0.0, addr: 2, drive: cd0}
YAML
} >"$tmp/scsi.yaml"

vm_start "$tmp/scsi.yaml"
vm_finish 600
has() { grep -aq -- "$1" "$vm_out"; }
check "the guest ran its command and vmlaunch exited 0" test "$vm_status" -eq 0
check "the raw scsi-hd is a 16 MiB disk" bash -c "grep -aqE 'DISK sd. size=32768 ro=0 model=VMLAUNCH DISK *type=0' '$vm_out'"
check "the qcow2 scsi-hd is a 32 MiB disk" bash -c "grep -aqE 'DISK sd. size=65536 ro=0 model=VMLAUNCH DISK *type=0' '$vm_out'"
check "the second logical unit of target 1 is an 8 MiB disk at 0:0:1:3" \
  bash -c "grep -aqE 'DISK sd. size=16384 ro=0 model=VMLAUNCH DISK *type=0 hctl=0:0:1:3' '$vm_out'"
check "its blocks are the host's (not LUN 0's)" has "LUN3=LUN3-MARKER"
check "the guest sees exactly three disks and the CD (no phantom LUNs 1 and 2)" \
  test "$(grep -ac '^DISK ' "$vm_out")" -eq 4
check "the scsi-cd is sr0, read-only, type 5 (64 blocks of 2 KiB = 256 sectors)" \
  bash -c "grep -aqE 'DISK sr0 size=256 ro=1 model=VMLAUNCH CD-ROM *type=5' '$vm_out'"
check "the guest wrote raw blocks with fsync (SYNCHRONIZE CACHE)" has RAW-WRITTEN
check "raw blocks written by the guest read back equal" has RAW-READBACK-OK
sum=$(grep -a '^RAWSUM=' "$vm_out" | head -n1 | cut -d= -f2 | tr -d '\r')
host_sum=$(dd if="$tmp/hd.raw" bs=1024 skip=100 count=64 2>/dev/null | md5sum | cut -d' ' -f1)
check "the raw image holds the guest's bytes at the offset it wrote" test -n "$sum" -a "$sum" = "$host_sum"
check "mkfs.ext2 on the qcow2 disk" has MKFS-OK
check "the file system mounts, takes a file and unmounts" has MOUNT-1-OK
check "mounted again, the file reads back" has "READ=hello-from-the-qcow2-disk"
check "the CD's block 3 is the host's block 3" has "block3=CDBLOCK-0003"
check "the CD's ISO 9660 file system mounts and its file reads" has "ISO=hello from an iso9660 cd"
check "a write to the CD is refused" has CD-WRITE-REFUSED
check "qemu-img check finds the qcow2 image clean" qemu-img check -q "$tmp/hd.qcow2"
qemu-img convert -O raw "$tmp/hd.qcow2" "$tmp/qcow.raw"
check "the qcow2 image holds the guest's file" grep -aq hello-from-the-qcow2-disk "$tmp/qcow.raw"
check "the CD image is unchanged" cmp -s "$tmp/cd.img" "$tmp/cd.before"
[ "$vm_status" -eq 0 ] && has READ=hello || vm_dump
finish
