#!/usr/bin/env bash
# usb-host end to end, in one boot of the nested host (tests/nested): the outer QEMU gets qemu-xhci
# and a usb-storage stick (serial VMLSTICK01), a raw image holding a known string at 4096 and, in
# its first partition (an MBR entry at 1 MiB), a FAT filesystem with KNOWN.TXT. Inside:
#   - `vmlaunch host devices` lists the stick (46f4:0001, its serial, its bus-port path);
#   - `validate --host` passes for an entry selecting it by vendor:product and serial, and fails for
#     one asking another serial (golden), and for it as a user without permission on its usbfs node;
#   - the riscv64 Linux guest on jit (cheap: no nested KVM needed; its kernel has no vfat, so raw
#     blocks) with qemu-xhci and usb-host for the stick enumerates it through our xHCI ("QEMU USB
#     HARDDRIVE" as /dev/sda), reads the known string, writes a block the test then finds in the
#     image from outside, and is then told (a line on its console) to wait for the disconnect: the
#     host side unplugs the stick from the outer QEMU (QMP device_del) and the guest sees its USB
#     device go away;
#   - the host side plugs the stick back in (QMP blockdev-add + device_add), and the x86_64 Linux
#     guest (Debian's generic kernel: the cloud kernel has no USB) on kvm, pc with qemu-xhci and
#     usb-host, mounts the stick's FAT partition, reads KNOWN.TXT, writes GUEST.TXT, unmounts (the
#     test reads GUEST.TXT from the image with mtools and fsck.vfat finds the filesystem clean),
#     and sees the second unplug as a disconnect (Linux's "USB disconnect" in dmesg).
# Under the default (strict) seccomp.
source tests/lib.sh
source tests/boot/console.sh
set -u
WORK=$tmp
NESTED=$PWD/tools/nested-host
VMLAUNCH=$PWD/launcher/vmlaunch
GOLDEN=$PWD/tests/passthrough/golden
SOCKDIR=$(mktemp -d /tmp/usb-test.XXXXXX)
trap 'rm -rf "$SOCKDIR"' EXIT

use_riscv64_guest tests/passthrough/usb_test.sh
if ! x86_paths=$(guests/x86_64/build generic 2>"$WORK/x86-build.log"); then
  tail -n 30 "$WORK/x86-build.log"
  check "the x86_64 guest with the generic kernel builds (guests/x86_64/build generic)" false
  finish
  exit
fi
# As use_riscv64_guest: what the cache's links name now (another worktree may repoint them).
x86_kernel=$(readlink -f "$(sed -n 1p <<<"$x86_paths")")
x86_initrd=$(readlink -f "$(sed -n 2p <<<"$x86_paths")")

# The stick: 4 MiB, the known string at 4096 and the riscv64 guest's block at 8192 (raw, before the
# partition), an MBR with one FAT12 partition (type 0x01) at 1 MiB (LBA 2048) for its 3 MiB rest.
truncate -s 4M "$WORK/stick.img"
printf 'VMLAUNCH-USB-KNOWN-CONTENT-4096' | dd of="$WORK/stick.img" bs=1 seek=4096 conv=notrunc status=none
python3 - "$WORK/stick.img" <<'PY'
import struct, sys
entry = struct.pack("<B3sB3sII", 0, b"\xfe\xff\xff", 0x01, b"\xfe\xff\xff", 2048, 6144)
with open(sys.argv[1], "r+b") as f:
    f.seek(0x1BE); f.write(entry); f.seek(0x1FE); f.write(b"\x55\xaa")
PY
echo "known file on the stick's FAT, $$" >"$WORK/KNOWN.TXT"
mkfs.vfat -C -n VMLSTICK "$WORK/fat.img" 3072 >/dev/null &&
  MTOOLS_SKIP_CHECK=1 mcopy -i "$WORK/fat.img" "$WORK/KNOWN.TXT" ::KNOWN.TXT &&
  dd if="$WORK/fat.img" of="$WORK/stick.img" bs=1M seek=1 conv=notrunc status=none ||
  { check "the stick's FAT filesystem is made (mkfs.vfat, mcopy: dosfstools, mtools)" false; finish; exit; }
rm -f "$WORK/fat.img"

# The guest: wait for the disk, read, write, then (once the host side says so) wait for the
# unplug. Base64 on the command line: the script has quotes.
guest_cmd='for i in $(seq 120); do [ -b /dev/sda ] && break; sleep 1; done
cat /sys/bus/usb/devices/*/product
echo "known=[$(dd if=/dev/sda bs=4096 skip=1 count=1 2>/dev/null | head -c 31)]"
printf GUEST-WROTE-THIS-BLOCK | dd of=/dev/sda bs=4096 seek=2 conv=sync,fsync 2>/dev/null && echo wrote-ok
echo READY-FOR-UNPLUG
for i in $(seq 300); do [ -e /sys/bus/usb/devices/2-1 ] || [ -e /sys/bus/usb/devices/1-1 ] || break; sleep 1; done
[ -e /sys/bus/usb/devices/2-1 ] || [ -e /sys/bus/usb/devices/1-1 ] || echo "guest: usb device gone"
[ -b /dev/sda ] || echo "guest: /dev/sda gone"'
machine() {  # machine NAME SERIAL
  cat <<YAML
name: $1
machine: {arch: riscv64, type: virt, memory: 256MiB}
accel: [jit]
boot:
  firmware: opensbi
  kernel: $kernel
  initrd: $initrd
  cmdline: 'console=ttyS0 quiet vml.cmd64=$(printf '%s' "$guest_cmd" | base64 -w0)'
backends:
  chardev:
    con0: {driver: stdio}
passthrough:
  stick: {driver: usb-host, host: "46f4:0001", serial: "$2"}
devices:
  - {driver: ns16550, id: serial0, chardev: con0}
  - {driver: qemu-xhci, id: usb0}
  - {driver: usb-host, id: stick0, passthrough: stick}
YAML
}
machine usb-stick VMLSTICK01 >"$WORK/stick.yaml"
machine usb-other NOSUCHSERIAL >"$WORK/other.yaml"

# The x86_64 guest: wait for the partition, mount it (vfat), read the known file, write one,
# unmount; once the host side has seen READY-FOR-UNPLUG-X86, wait for the disconnect.
x86_cmd='for i in $(seq 120); do [ -b /dev/sda1 ] && break; sleep 1; done
cat /sys/bus/usb/devices/*/product
mkdir -p /mnt/stick
if mount -t vfat /dev/sda1 /mnt/stick; then
  echo mounted
  echo "known=[$(cat /mnt/stick/KNOWN.TXT)]"
  echo "written by the x86_64 guest through usb-host" >/mnt/stick/GUEST.TXT && sync && echo wrote-ok
  umount /mnt/stick && echo unmounted
fi
echo READY-FOR-UNPLUG-X86
for i in $(seq 300); do [ -e /sys/bus/usb/devices/1-1 ] || [ -e /sys/bus/usb/devices/2-1 ] || break; sleep 1; done
dmesg | grep "USB disconnect" | sed "s/^/dmesg: /"
[ -b /dev/sda ] || echo "guest: /dev/sda gone"'
cat >"$WORK/x86.yaml" <<YAML
name: usb-stick-x86
machine: {arch: x86_64, type: pc, memory: 256MiB}
cpu: {model: host, count: 1}
accel: [kvm]
boot: {kernel: "$x86_kernel", initrd: "$x86_initrd", cmdline: "console=ttyS0 quiet panic=-1 vml.cmd64=$(printf '%s' "$x86_cmd" | base64 -w0)"}
backends:
  chardev:
    con0: {driver: stdio}
passthrough:
  stick: {driver: usb-host, host: "46f4:0001", serial: VMLSTICK01}
devices:
  - {driver: ns16550, id: serial0, chardev: con0}
  - {driver: qemu-xhci, id: usb0}
  - {driver: usb-host, id: stick0, passthrough: stick}
YAML

cat >"$WORK/inside.sh" <<'SH'
vmlaunch=$1 work=$2
cd "$work" || exit 1
"$vmlaunch" host devices --json >devices.json 2>&1
"$vmlaunch" validate --host stick.yaml >validate.out 2>&1; echo $? >validate.rc
"$vmlaunch" validate --host other.yaml >other.out 2>&1; echo $? >other.rc
cp "$vmlaunch" /tmp/vmlaunch && cp stick.yaml /tmp/stick.yaml && chmod a+rx /tmp/vmlaunch && chmod a+r /tmp/stick.yaml
(cd /tmp && setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all ./vmlaunch validate --host stick.yaml) \
  >unprivileged.out 2>&1; echo $? >unprivileged.rc
timeout 900 "$vmlaunch" up stick.yaml >guest.out 2>&1; echo $? >guest.rc
# The host side plugs the stick back in when asked; the x86_64 guest once it is here again.
touch replug.request
for _ in $(seq 300); do grep -qs VMLSTICK01 /sys/bus/usb/devices/*/serial && break; sleep 1; done
timeout 900 "$vmlaunch" up x86.yaml >x86.out 2>&1; echo $? >x86.rc
SH

"$NESTED" --rw "$WORK" --qmp "$SOCKDIR/qmp" --device qemu-xhci \
  --qemu-arg -drive --qemu-arg "if=none,id=stick,format=raw,file=$WORK/stick.img" \
  --device usb-storage,drive=stick,serial=VMLSTICK01,id=stick0 --modprobe xhci_pci --timeout 1500 \
  -- bash "$WORK/inside.sh" "$VMLAUNCH" "$WORK" >"$WORK/nested.out" 2>&1 &
nested_pid=$!
# Host side: once the riscv64 guest has written (READY-FOR-UNPLUG on its console), unplug the stick;
# once inside.sh asks (replug.request), plug it back in; once the x86_64 guest is done with it
# (READY-FOR-UNPLUG-X86), unplug it again.
python3 - "$SOCKDIR/qmp" "$WORK" "$WORK/stick.img" <<'PY' >"$WORK/qmp.log" 2>&1
import json, os, socket, sys, time
path, work, image = sys.argv[1], sys.argv[2], sys.argv[3]
deadline = time.time() + 1400
while not os.path.exists(path):
    if time.time() > deadline: sys.exit("no QMP socket")
    time.sleep(0.2)
s = socket.socket(socket.AF_UNIX); s.connect(path); f = s.makefile("rw")
def call(cmd, **args):
    f.write(json.dumps({"execute": cmd, "arguments": args}) + "\n"); f.flush()
    while True:
        msg = json.loads(f.readline())
        if "return" in msg or "error" in msg: return msg
f.readline()
call("qmp_capabilities")
def wait_for(test, what):
    while time.time() < deadline:
        if test(): return True
        time.sleep(0.5)
    print("never:", what)
    sys.exit(0)
def console_says(name, marker):
    p = os.path.join(work, name)
    return lambda: os.path.exists(p) and marker in open(p, "rb").read()
wait_for(console_says("guest.out", b"READY-FOR-UNPLUG"), "the riscv64 guest got ready")
print("device_del:", call("device_del", id="stick0"))
wait_for(lambda: os.path.exists(os.path.join(work, "replug.request")), "inside.sh asked for the stick again")
# The first drive went with its device (a -drive's auto-delete): a new node on the same image.
print("blockdev-add:", call("blockdev-add", driver="raw", **{"node-name": "stick2"},
                           file={"driver": "file", "filename": image, "locking": "off"}))
print("device_add:", call("device_add", driver="usb-storage", drive="stick2", serial="VMLSTICK01", id="stick1"))
wait_for(console_says("x86.out", b"READY-FOR-UNPLUG-X86"), "the x86_64 guest got ready")
print("device_del:", call("device_del", id="stick1"))
PY
wait "$nested_pid"
RC=$?
echo "nested host: exit $RC"
tail -n 5 "$WORK/nested.out" | sed 's/^/    | /'
sed 's/^/    qmp: /' "$WORK/qmp.log"
for f in validate other unprivileged guest x86; do
  echo "== $f (exit $(cat "$WORK/$f.rc" 2>/dev/null))"
  grep -av "^\s*$" "$WORK/$f.out" 2>/dev/null | tail -n 14 | sed 's/^/    | /'
done
tr -d '\r' <"$WORK/x86.out" >"$WORK/x86.txt" 2>/dev/null  # the guest's tty ends lines with CR LF

lists_the_stick() {
  python3 - "$WORK/devices.json" <<'PY'
import json, sys
usb = json.load(open(sys.argv[1]))["usb"]
stick = [d for d in usb if d.get("vendor") == "46f4" and d.get("product") == "0001"]
assert len(stick) == 1 and stick[0].get("serial") == "VMLSTICK01", usb
print("    the stick is at", stick[0].get("path"))
PY
}
golden_file() {  # golden_file NAME FILE: the file with the work directory as @WORK@
  local actual
  actual=$({ cat "$WORK/$2.out"; echo "[exit $(cat "$WORK/$2.rc")]"; } | sed "s|$WORK|@WORK@|g; s|/tmp/stick.yaml|@WORK@/stick.yaml|")
  if [ -n "${VMLAUNCH_UPDATE_GOLDEN:-}" ]; then
    printf '%s\n' "$actual" >"$VMLAUNCH_UPDATE_GOLDEN/$1.expected"
    return 0
  fi
  [ "$actual" = "$(cat "$GOLDEN/$1.expected")" ] || { diff -u "$GOLDEN/$1.expected" <(echo "$actual") | sed 's/^/    /'; return 1; }
}
check "host devices lists the stick with its serial" lists_the_stick
check "validate --host passes for the stick by vendor:product and serial" test "$(cat "$WORK/validate.rc")" = 0
check "validate --host names the serials there for a missing one (golden)" golden_file usb_nested_other_serial other
check "validate --host as nobody: no permission on the usbfs node (golden)" golden_file usb_nested_unprivileged unprivileged
check "the guest enumerates the stick through qemu-xhci + usb-host" grep -aq "QEMU USB HARDDRIVE" "$WORK/guest.out"
check "the guest reads the known string" grep -aq "known=\[VMLAUNCH-USB-KNOWN-CONTENT-4096\]" "$WORK/guest.out"
check "the block the guest wrote is in the image" test "$(dd if="$WORK/stick.img" bs=4096 skip=2 count=1 status=none | head -c 22)" = GUEST-WROTE-THIS-BLOCK
check "the unplug in the outer QEMU is a disconnect in the guest" grep -aq "guest: usb device gone" "$WORK/guest.out"
check "vmlaunch says so and the guest ends normally" bash -c "grep -aq 'unplugged on the host' '$WORK/guest.out' && grep -aq 'VML-CMD-EXIT=0' '$WORK/guest.out' && [ \"\$(cat '$WORK/guest.rc')\" = 0 ]"
# The x86_64 guest's file, read from the image's FAT partition from outside (mtools), and the
# filesystem clean after the guest's unmount (fsck.vfat -n: check only).
x86_file_is_on_the_stick() {
  local got
  got=$(MTOOLS_SKIP_CHECK=1 mtype -i "$WORK/stick.img@@1M" ::GUEST.TXT) || return 1
  echo "    GUEST.TXT: $got"
  [ "$got" = "written by the x86_64 guest through usb-host" ] || return 1
  dd if="$WORK/stick.img" of="$WORK/fat.check" bs=1M skip=1 status=none && fsck.vfat -n "$WORK/fat.check" | sed 's/^/    fsck: /'
  [ "${PIPESTATUS[0]}" = 0 ]
}
check "x86_64 on kvm: the guest enumerates the stick through qemu-xhci + usb-host" grep -aq "QEMU USB HARDDRIVE" "$WORK/x86.txt"
check "x86_64 on kvm: the guest mounts the stick's FAT partition" grep -aqx "mounted" "$WORK/x86.txt"
check "x86_64 on kvm: the guest reads the known file" grep -aqx "known=\[known file on the stick's FAT, $$\]" "$WORK/x86.txt"
check "x86_64 on kvm: the guest writes a file and unmounts" bash -c "grep -aqx wrote-ok '$WORK/x86.txt' && grep -aqx unmounted '$WORK/x86.txt'"
check "x86_64 on kvm: the file the guest wrote is on the stick's FAT, which is clean" x86_file_is_on_the_stick
check "x86_64 on kvm: the second unplug is a USB disconnect in the guest" grep -aq "^dmesg: .*usb [0-9]-1: USB disconnect" "$WORK/x86.txt"
check "x86_64 on kvm: the guest ends normally" bash -c "grep -aqx 'VML-CMD-EXIT=0' '$WORK/x86.txt' && [ \"\$(cat '$WORK/x86.rc')\" = 0 ]"
finish
