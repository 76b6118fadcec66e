#!/usr/bin/env bash
# usb-host end to end, in one boot of the nested host (tests/nested): the outer QEMU gets qemu-xhci
# and a usb-storage stick (a raw image holding a known string at 4096, serial VMLSTICK01). Inside:
#   - `vmlaunch host devices` lists the stick (46f4:0001, its serial, its bus-port path);
#   - `validate --host` passes for an entry selecting it by vendor:product and serial, and fails for
#     one asking another serial (golden), and for it as a user without permission on its usbfs node;
#   - the riscv64 Linux guest on jit (cheap: no nested KVM needed) with qemu-xhci and usb-host for
#     the stick enumerates it through our xHCI ("QEMU USB HARDDRIVE" as /dev/sda), reads the known
#     string, writes a block the test then finds in the image from outside, and is then told
#     (a file the host side writes) to wait for the disconnect: the host side unplugs the stick from
#     the outer QEMU (QMP device_del) and the guest sees its USB device go away.
# Under the default (strict) seccomp. The x86_64 guest on kvm is not used here (see docs/passthrough.md).
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

truncate -s 4M "$WORK/stick.img"
printf 'VMLAUNCH-USB-KNOWN-CONTENT-4096' | dd of="$WORK/stick.img" bs=1 seek=4096 conv=notrunc status=none

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
SH

"$NESTED" --rw "$WORK" --qmp "$SOCKDIR/qmp" --device qemu-xhci \
  --qemu-arg -drive --qemu-arg "if=none,id=stick,format=raw,file=$WORK/stick.img" \
  --device usb-storage,drive=stick,serial=VMLSTICK01,id=stick0 --modprobe xhci_pci --timeout 1500 \
  -- bash "$WORK/inside.sh" "$VMLAUNCH" "$WORK" >"$WORK/nested.out" 2>&1 &
nested_pid=$!
# Host side: once the guest has written (READY-FOR-UNPLUG on its console), unplug the stick.
python3 - "$SOCKDIR/qmp" "$WORK/guest.out" <<'PY' >"$WORK/qmp.log" 2>&1
import json, os, socket, sys, time
path, console = sys.argv[1], sys.argv[2]
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
while time.time() < deadline:
    if os.path.exists(console) and b"READY-FOR-UNPLUG" in open(console, "rb").read():
        print("device_del:", call("device_del", id="stick0"))
        sys.exit(0)
    time.sleep(0.5)
print("the guest never got ready")
PY
wait "$nested_pid"
RC=$?
echo "nested host: exit $RC"
tail -n 5 "$WORK/nested.out" | sed 's/^/    | /'
sed 's/^/    qmp: /' "$WORK/qmp.log"
for f in validate other unprivileged guest; do
  echo "== $f (exit $(cat "$WORK/$f.rc" 2>/dev/null))"
  grep -av "^\s*$" "$WORK/$f.out" 2>/dev/null | tail -n 12 | sed 's/^/    | /'
done

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
finish
