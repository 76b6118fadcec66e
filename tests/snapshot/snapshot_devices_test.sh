#!/usr/bin/env bash
# Snapshots of the riscv64 Linux guest (1 hart, jit) using the devices whose state a snapshot
# carries beyond the basic machine: virtio-console (unix socket chardev), virtio-net with user
# networking (libslirp state, a hostfwd rule), virtio-scsi-pci with a scsi-hd, virtio-9p-pci (a
# share that also brings the guest's script, and a file the guest holds open across the snapshot)
# and virtio-rng, over the virtio-pci transport, the SCSI controller behind a pci-bridge. The SCSI disk is a qcow2 overlay on a raw file. The guest sets everything up, reads the disk, holds
# the share's file open, says READY and blocks reading its virtio console; `snapshot --stop` ends
# the VMM there. Restored, the guest gets a line over the console socket and answers on it, reads
# on from the held file, reads a file the host made after the snapshot, reads a disk block it never
# read before, keeps its DHCP address, serves a page through hostfwd and reads /dev/hwrng. Restored
# a second time from the same snapshot, its /dev/hwrng bytes differ from the first copy's (entropy
# comes from the host on each request; none is replayed from the snapshot). Then the overlay
# rebased (its mtime put back) and its backing file written are each refused. One boot, two
# restores, two refusals.
source tests/lib.sh
source tests/boot/console.sh

use_riscv64_guest tests/snapshot/snapshot_devices_test.sh

name=snapdev$$
snap=$tmp/snap
sock_dir=$(mktemp -d /tmp/snapdev.XXXXXX)
trap 'rm -rf "$sock_dir"' EXIT
hvc_sock=$sock_dir/hvc
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
fwd_port=$(free_port)

# The SCSI disk: a marker at 0 and one at 4 MiB (beyond any readahead of the first read).
python3 - "$tmp/scsi.raw" <<'PY'
import sys
with open(sys.argv[1], "wb") as f:
    f.truncate(8 << 20)
    f.write(b"SCSI-BLOCK-AT-0\n")
    f.seek(4 << 20)
    f.write(b"SCSI-BLOCK-AT-4M\n")
PY
# Served as a qcow2 overlay on it: the snapshot records both files and the overlay's header.
qemu-img create -q -f qcow2 -b "$tmp/scsi.raw" -F raw "$tmp/scsi.qcow2"
mkdir -p "$tmp/shares/ctl"
printf 'held-line-1\nheld-line-2\n' >"$tmp/shares/ctl/held.txt"
cat >"$tmp/shares/ctl/test.sh" <<'SH'
printf '#!/bin/sh\ncase "$1" in bound|renew) ip addr add $ip/$mask dev $interface; ip route add default via $router;; esac\n' >/tmp/dhcp.sh
chmod +x /tmp/dhcp.sh
ip link set eth0 up
udhcpc -i eth0 -n -q -t 10 -s /tmp/dhcp.sh >/dev/null 2>&1
mkdir -p /www && echo guest-served-page >/www/index.html
httpd -p 8080 -h /www
echo "scsi-before=[$(dd if=/dev/sda bs=512 count=1 2>/dev/null | head -n 1)]"
exec 3</mnt/ctl/held.txt
read -r line <&3
echo "held-first=[$line]"
hvc=/dev/hvc1  # hvc0 is the SBI console (HVC_RISCV_SBI); virtio-console comes next
stty -F $hvc raw -echo 2>/dev/null
echo READY
read -r go <$hvc
echo "hvc-got=[$go]"
echo "reply-over-hvc" >$hvc
read -r line <&3
echo "held-second=[$line]"
echo "after-file=[$(cat /mnt/ctl/after.txt)]"
echo "scsi-after=[$(dd if=/dev/sda bs=512 skip=8192 count=1 2>/dev/null | head -n 1)]"
echo "ip=[$(ip -4 addr show eth0 | grep -o 'inet [0-9.]*')]"
echo "rng=[$(dd if=/dev/hwrng bs=256 count=1 2>/dev/null | md5sum | cut -c1-32)]"
echo DONE
sleep 600
SH
{
  riscv64_guest_yaml "$name" 1 'console=ttyS0 quiet vml.cmd="mkdir -p /mnt/ctl && mount -t 9p -o trans=virtio,version=9p2000.L ctl /mnt/ctl && sh /mnt/ctl/test.sh"'
  cat <<YAML
    hvc: {driver: socket, path: $hvc_sock, server: true}
  block:
    scsi0: {driver: qcow2, file: $tmp/scsi.qcow2, readonly: true}
  net:
    user0: {driver: user, hostfwd: ["tcp:127.0.0.1:$fwd_port-:8080"]}
devices:
  - {driver: ns16550, id: serial0, chardev: con0}
  - {driver: virtio-console-mmio, id: hvc0, chardev: hvc}
  - {driver: virtio-net-mmio, id: net0, netdev: user0}
  - {driver: virtio-rng-mmio, id: rng0}
  - {driver: pci-bridge, id: br1, bus: pcie.0, addr: 2, chassis: 1}
  - {driver: virtio-scsi-pci, id: scsi, bus: br1, addr: 3}
  - {driver: scsi-hd, id: sda, bus: scsi.0, addr: 0, drive: scsi0}
mounts:
  - {location: shares/ctl, tag: ctl}
YAML
} >"$tmp/dev.yaml"

# Sends a line over the virtio console's socket and prints what comes back within a while.
hvc_talk() {
  python3 - "$hvc_sock" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
for _ in range(100):
    try:
        s.connect(sys.argv[1]); break
    except OSError:
        time.sleep(0.1)
s.sendall(b"go-from-host\n")
s.settimeout(60)
got = b""
try:
    while b"reply-over-hvc" not in got:
        chunk = s.recv(4096)
        if not chunk: break
        got += chunk
except OSError:
    pass
print(got.decode(errors="replace"))
PY
}
field() { grep -aoE "^$1=\[[^]]*\]" "$2" | head -n 1 | sed -E "s/^$1=\[(.*)\]$/\1/"; }

vm_start "$tmp/dev.yaml"
vm_wait "READY" 900
check "the guest boots with the devices and says READY" test $? -eq 0
check "it read the SCSI disk before the snapshot" test "$(field scsi-before "$vm_out")" = "SCSI-BLOCK-AT-0"
check "it read the held 9p file's first line" test "$(field held-first "$vm_out")" = "held-line-1"
"$vml" snapshot "$name" "$snap" --stop >/dev/null 2>"$tmp/snapshot.err"
status=$?
check "vmlaunch snapshot --stop of the machine with these devices succeeds" test "$status" -eq 0
[ "$status" -eq 0 ] || { cat "$tmp/snapshot.err"; vm_dump; }
vm_finish 120
echo "made after the snapshot" >"$tmp/shares/ctl/after.txt"

restore_and_check() {  # NTH
  vm_start_with --restore "$snap" --name "$name"
  local reply
  reply=$(hvc_talk)
  vm_wait "DONE" 300
  check "restore $1: the guest runs on to DONE" test $? -eq 0
  check "restore $1: virtio-console carries a line in (hvc-got=[go-from-host])" test "$(field hvc-got "$vm_out")" = "go-from-host"
  check "restore $1: and the guest's answer out over the socket" grep -q "reply-over-hvc" <<<"$reply"
  check "restore $1: the 9p file held open across the snapshot reads on" test "$(field held-second "$vm_out")" = "held-line-2"
  check "restore $1: a share file made after the snapshot is read" test "$(field after-file "$vm_out")" = "made after the snapshot"
  check "restore $1: virtio-scsi reads a block it never read before" test "$(field scsi-after "$vm_out")" = "SCSI-BLOCK-AT-4M"
  check "restore $1: the guest keeps its DHCP address" test "$(field ip "$vm_out")" = "inet 10.0.2.15"
  local fetched=""
  grep -aq DONE "$vm_out" && for _ in $(seq 1 30); do
    fetched=$(python3 -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:$fwd_port/', timeout=10).read().decode())" 2>/dev/null) && break
    sleep 1
  done
  check "restore $1: hostfwd reaches the guest's web server through virtio-net" test "$fetched" = "guest-served-page"
  rng[$1]=$(field rng "$vm_out")
  check "restore $1: the guest reads /dev/hwrng" test -n "${rng[$1]}"
  check "restore $1: nothing of the guest started over" bash -c "! grep -aq READY '$vm_out'"
  vm_stop
  [ -n "$fetched" ] && grep -aq DONE "$vm_out" || { vm_dump; cat "$vm_err"; }
}
declare -a rng
restore_and_check 1
restore_and_check 2
echo "hwrng after restore: copy 1 ${rng[1]}, copy 2 ${rng[2]}"
check "two restored copies read different bytes from /dev/hwrng" test -n "${rng[1]}" -a "${rng[1]}" != "${rng[2]}"

# Disks changed since the snapshot, each refused before anything runs (exit 2, the reason named):
refused() {  # WHAT PATTERN
  "$vml" up --restore "$snap" --name "bad$$" >"$tmp/bad.out" 2>"$tmp/bad.err" </dev/null
  local status=$?
  check "$1: exit 2" test "$status" -eq 2
  check "$1: says why" grep -qE "$2" "$tmp/bad.err"
  [ "$status" -eq 2 ] && grep -qE "$2" "$tmp/bad.err" || cat "$tmp/bad.err"
}
# the overlay rebased onto an identical copy of its backing file, its mtime put back (size same);
cp -p "$tmp/scsi.raw" "$tmp/scsi-copy.raw"
touch -r "$tmp/scsi.qcow2" "$tmp/mtime.ref"
qemu-img rebase -q -u -f qcow2 -b "$tmp/scsi-copy.raw" -F raw "$tmp/scsi.qcow2"
touch -r "$tmp/mtime.ref" "$tmp/scsi.qcow2"
refused "a qcow2 overlay rebased since the snapshot (mtime kept)" \
  "disk scsi0 \(.*scsi.qcow2\) changed since the snapshot \(qcow2 header: backing_file \".*scsi.raw\" -> \".*scsi-copy.raw\"\)"
qemu-img rebase -q -u -f qcow2 -b "$tmp/scsi.raw" -F raw "$tmp/scsi.qcow2"
touch -r "$tmp/mtime.ref" "$tmp/scsi.qcow2"
# and its backing file written to.
printf 'X' | dd of="$tmp/scsi.raw" bs=1 seek=100 conv=notrunc 2>/dev/null
refused "a qcow2 backing file written since the snapshot" \
  "disk scsi0 backing file 1 \(.*scsi.raw\) changed since the snapshot \(modification time\)"
finish
