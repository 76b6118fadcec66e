#!/usr/bin/env bash
# Shared folders (`mounts:`, virtio-9p) in the riscv64 Linux guest through `vmlaunch up`: the guest
# mounts a writable and a read-only share by tag, reads a host file (and a 1 MiB one, compared by
# checksum), writes files and a directory the host then reads, is refused on the read-only share,
# and follows the share's symlinks only inside its own namespace (links pointing out of the share
# lead nowhere on the host). One boot; the checks run on both sides afterwards.
source tests/lib.sh
source tests/boot/console.sh

use_riscv64_guest tests/boot/up_9p_test.sh

mkdir -p "$tmp/shares/rw" "$tmp/shares/ro"
echo "host secret" >"$tmp/shares/outside.txt"
echo "hello from the host" >"$tmp/shares/rw/from-host.txt"
echo "read-only content" >"$tmp/shares/ro/ro.txt"
head -c 1048576 /dev/urandom >"$tmp/shares/rw/big.bin"
ln -s ../outside.txt "$tmp/shares/rw/up-link"
ln -s "$tmp/shares/outside.txt" "$tmp/shares/rw/abs-link"
big_sum=$(md5sum <"$tmp/shares/rw/big.bin" | cut -d' ' -f1)

# The guest's script comes over a third (read-only) share: the kernel command line is too short.
mkdir -p "$tmp/shares/ctl"
cat >"$tmp/shares/ctl/test.sh" <<'SH'
o=trans=virtio,version=9p2000.L
mkdir -p /mnt/rw /mnt/ro
mount -t 9p -o $o rw /mnt/rw && echo mounted-rw
mount -t 9p -o $o ro /mnt/ro && echo mounted-ro
echo "host-file=[$(cat /mnt/rw/from-host.txt)]"
echo "big-sum=$(md5sum </mnt/rw/big.bin | cut -d' ' -f1)"
echo "written by the guest" >/mnt/rw/from-guest.txt
ln /mnt/rw/from-guest.txt /mnt/rw/hard.txt && echo hard-link-made
mkdir /mnt/rw/newdir && echo nested >/mnt/rw/newdir/n.txt && mv /mnt/rw/newdir/n.txt /mnt/rw/newdir/moved.txt
echo "listing=$(ls /mnt/rw | tr '\n' ' ')"
echo "ro-read=[$(cat /mnt/ro/ro.txt)]"
{ echo x >/mnt/ro/new.txt; } 2>/tmp/e1; echo "ro-create=$? $(cat /tmp/e1)"
{ echo x >>/mnt/ro/ro.txt; } 2>/tmp/e2; echo "ro-append=$? $(cat /tmp/e2)"
rm /mnt/ro/ro.txt 2>/tmp/e3; echo "ro-rm=$? $(cat /tmp/e3)"
echo "up-link=[$(cat /mnt/rw/up-link 2>&1)]"
echo "abs-link=[$(cat /mnt/rw/abs-link 2>&1)]"
echo "dotdot=[$(ls /mnt/rw/.. | tr '\n' ' ')]"
ln -s /etc/passwd /mnt/rw/guest-link && echo guest-link-made
sync
umount /mnt/rw && umount /mnt/ro && echo unmounted
SH
shares_guest_yaml share 9p >"$tmp/share.yaml"

# The plan shows the generated devices and backends (paths resolved against the file's directory).
"$vml" plan "$tmp/share.yaml" >"$tmp/plan.txt" 2>&1
check "plan shows a virtio-9p-pci device per mount" bash -c "grep -q 'mount-rw.*virtio-9p-pci' '$tmp/plan.txt' && grep -q 'mount-ro.*virtio-9p-pci' '$tmp/plan.txt'"

vm_start "$tmp/share.yaml"
vm_finish 900
check "the guest ran the command and vmlaunch exited 0" test "$vm_status" -eq 0
check "both shares mount by tag" bash -c "grep -aq mounted-rw '$vm_out' && grep -aq mounted-ro '$vm_out'"
check "the guest reads a host file" grep -aq "host-file=\[hello from the host\]" "$vm_out"
check "the guest reads 1 MiB intact (same checksum as the host's)" grep -aq "big-sum=$big_sum" "$vm_out"
check "the host reads the file the guest wrote" test "$(cat "$tmp/shares/rw/from-guest.txt" 2>/dev/null)" = "written by the guest"
check "a hard link the guest makes is one inode on the host" test "$(stat -c %h "$tmp/shares/rw/hard.txt" 2>/dev/null)" = 2
check "the guest made a directory and renamed a file in it" test "$(cat "$tmp/shares/rw/newdir/moved.txt" 2>/dev/null)" = "nested"
check "the read-only share is readable" grep -aq "ro-read=\[read-only content\]" "$vm_out"
check "creating on the read-only share fails with EROFS" grep -aqE "ro-create=[1-9].*Read-only file system" "$vm_out"
check "appending on the read-only share fails with EROFS" grep -aqE "ro-append=[1-9].*Read-only file system" "$vm_out"
check "removing on the read-only share fails" grep -aqE "ro-rm=[1-9]" "$vm_out"
check "the read-only share is unchanged on the host" bash -c "[ \"\$(ls '$tmp/shares/ro')\" = ro.txt ] && [ \"\$(cat '$tmp/shares/ro/ro.txt')\" = 'read-only content' ]"
check "a relative link out of the share does not reach the host file" bash -c "grep -aq 'up-link=\[' '$vm_out' && ! grep -aq 'host secret' '$vm_out'"
check "the guest's .. above the mount is its own /mnt" grep -aq "dotdot=\[ctl ro rw \]" "$vm_out"
check "a link the guest makes is stored as a link, never followed by the host side" test "$(readlink "$tmp/shares/rw/guest-link")" = /etc/passwd
check "the shares unmount cleanly" grep -aq unmounted "$vm_out"
check "the host file outside the shares is untouched" test "$(cat "$tmp/shares/outside.txt")" = "host secret"
grep -aq unmounted "$vm_out" || vm_dump

finish
