#!/usr/bin/env bash
# virtio-fs shared folders (`mounts:` with type: virtiofs) in the riscv64 Linux guest through
# `vmlaunch up`: vmlaunch starts Debian's virtiofsd for each share, the guest mounts a writable and
# a read-only share by tag (mount -t virtiofs), reads a host file (and 1 MiB by checksum), writes
# files the host then reads, is refused on the read-only share, and virtiofsd ends with the machine.
# A missing virtiofsd is exit 1 naming the package. One boot; the checks run on both sides after.
source tests/lib.sh
source tests/boot/console.sh

virtiofsd=/usr/lib/qemu/virtiofsd
if [ ! -x "$virtiofsd" ]; then
  # The package is in tools/packages.txt; a machine without it cannot run this test's guest half.
  check "virtiofsd is installed ($virtiofsd, package qemu-system-common)" false
  finish
  exit
fi

use_riscv64_guest tests/boot/up_virtiofs_test.sh

mkdir -p "$tmp/shares/rw" "$tmp/shares/ro" "$tmp/shares/ctl"
echo "hello over virtio-fs" >"$tmp/shares/rw/from-host.txt"
echo "read-only content" >"$tmp/shares/ro/ro.txt"
head -c 1048576 /dev/urandom >"$tmp/shares/rw/big.bin"
big_sum=$(md5sum <"$tmp/shares/rw/big.bin" | cut -d' ' -f1)

# The guest's script comes over a 9p share (vmlaunch's own server): the command line is too short.
cat >"$tmp/shares/ctl/test.sh" <<'SH'
mkdir -p /mnt/rw /mnt/ro
mount -t virtiofs rw /mnt/rw && echo mounted-rw
mount -t virtiofs ro /mnt/ro && echo mounted-ro
echo "fstype=$(grep ' /mnt/rw ' /proc/mounts | cut -d' ' -f3)"
echo "host-file=[$(cat /mnt/rw/from-host.txt)]"
echo "big-sum=$(md5sum </mnt/rw/big.bin | cut -d' ' -f1)"
echo "written by the guest" >/mnt/rw/from-guest.txt
mkdir /mnt/rw/newdir && echo nested >/mnt/rw/newdir/n.txt && mv /mnt/rw/newdir/n.txt /mnt/rw/newdir/moved.txt
echo "ro-read=[$(cat /mnt/ro/ro.txt)]"
{ echo x >/mnt/ro/new.txt; } 2>/tmp/e1; echo "ro-create=$? $(cat /tmp/e1)"
{ echo x >>/mnt/ro/ro.txt; } 2>/tmp/e2; echo "ro-append=$? $(cat /tmp/e2)"
rm /mnt/ro/ro.txt 2>/tmp/e3; echo "ro-rm=$? $(cat /tmp/e3)"
sync
umount /mnt/rw && umount /mnt/ro && echo unmounted
SH
shares_guest_yaml vfs virtiofs >"$tmp/share.yaml"

"$vml" validate "$tmp/share.yaml" >"$tmp/validate.out" 2>&1
check "type: virtiofs validates" test $? -eq 0
"$vml" plan "$tmp/share.yaml" >"$tmp/plan.txt" 2>&1
check "plan shows a vhost-user-fs-pci device per virtiofs mount" bash -c "grep -q 'mount-rw.*vhost-user-fs-pci' '$tmp/plan.txt' && grep -q 'mount-ro.*vhost-user-fs-pci' '$tmp/plan.txt'"

sockets_before=$(ls -d /tmp/vmlaunch-virtiofsd.* 2>/dev/null)
vm_start "$tmp/share.yaml"
vm_finish 900
check "the guest ran the command and vmlaunch exited 0" test "$vm_status" -eq 0
check "both virtiofs shares mount by tag" bash -c "grep -aq mounted-rw '$vm_out' && grep -aq mounted-ro '$vm_out'"
check "the guest sees a virtiofs file system" grep -aq "fstype=virtiofs" "$vm_out"
check "the guest reads a host file" grep -aq "host-file=\[hello over virtio-fs\]" "$vm_out"
check "the guest reads 1 MiB intact (same checksum as the host's)" grep -aq "big-sum=$big_sum" "$vm_out"
check "the host reads the file the guest wrote" test "$(cat "$tmp/shares/rw/from-guest.txt" 2>/dev/null)" = "written by the guest"
check "the guest made a directory and renamed a file in it" test "$(cat "$tmp/shares/rw/newdir/moved.txt" 2>/dev/null)" = "nested"
check "the read-only share is readable" grep -aq "ro-read=\[read-only content\]" "$vm_out"
check "creating on the read-only share fails with EROFS" grep -aqE "ro-create=[1-9].*Read-only file system" "$vm_out"
check "appending on the read-only share fails with EROFS" grep -aqE "ro-append=[1-9].*Read-only file system" "$vm_out"
check "removing on the read-only share fails" grep -aqE "ro-rm=[1-9]" "$vm_out"
check "the read-only share is unchanged on the host" bash -c "[ \"\$(ls '$tmp/shares/ro')\" = ro.txt ] && [ \"\$(cat '$tmp/shares/ro/ro.txt')\" = 'read-only content' ]"
check "the shares unmount cleanly" grep -aq unmounted "$vm_out"
check "vmlaunch reported no device or daemon trouble (stderr empty)" test ! -s "$vm_err"
# ([s] keeps pgrep from matching the bash -c that runs it.)
check "no virtiofsd serving this test's shares outlives vmlaunch" bash -c "! pgrep -f '[s]ource=$tmp/shares/' >/dev/null"
check "virtiofsd's private socket directories are removed" test "$(ls -d /tmp/vmlaunch-virtiofsd.* 2>/dev/null)" = "$sockets_before"
grep -aq unmounted "$vm_out" || vm_dump

# Without virtiofsd, up fails at start (exit 1) and says what to install; plan is unaffected.
VMLAUNCH_VIRTIOFSD=$tmp/no-such-virtiofsd "$vml" up "$tmp/share.yaml" </dev/null >"$tmp/missing.out" 2>&1
check "a missing virtiofsd is exit 1 at up" test $? -eq 1
check "the message names the package to install" grep -q "qemu-system-common" "$tmp/missing.out"
finish
