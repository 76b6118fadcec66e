#!/usr/bin/env bash
# virtio-serial-pci in the riscv64 Linux guest through `vmlaunch up`: a virtconsole (port 0, on a
# file chardev) and a named virtserialport (on a unix socket chardev whose other end is
# serial_peer.py). The guest lists /sys/class/virtio-ports/*/name, finds the data port by its name,
# sends a line to the host and reads the host's answer; it also writes to the console port's hvc.
source tests/lib.sh
source tests/boot/console.sh

use_riscv64_guest tests/devices/serial_guest_test.sh
# The socket lives in a short directory of its own: Bazel's TEST_TMPDIR can be longer than the
# 107 bytes a unix socket path may have.
sockdir=$(mktemp -d /tmp/vml-serial.XXXXXX)
trap 'rm -rf "$sockdir"' EXIT

# hvc0 is the SBI console; the virtconsole is the next hvc (written to every candidate).
read -r -d '' guest <<'SH'
for p in /sys/class/virtio-ports/*; do echo "PORT ${p##*/} name=$(cat $p/name)"; done
for p in /sys/class/virtio-ports/*; do [ "$(cat $p/name)" = org.vmlaunch.data ] && dev=/dev/${p##*/}; done
exec 3<>$dev
echo guest-to-host-line >&3
read -r line <&3
echo "GOT=$line"
exec 3>&-
for h in /dev/hvc1 /dev/hvc2 /dev/hvc3; do echo console-port-text 2>/dev/null >$h; done
echo SERIAL-DONE
SH

{
  riscv64_guest_yaml serial 1 "console=ttyS0 quiet vml.cmd64=$(printf '%s' "$guest" | base64 -w0)"
  cat <<YAML
    vcon: {driver: file, path: $tmp/console-port.out}
    data: {driver: socket, path: $sockdir/port.sock, server: true, wait: true}
devices:
  - {driver: ns16550, id: serial0, chardev: con0}
  - {driver: virtio-serial-pci, id: vser}
  - {driver: virtconsole, id: vcon0, bus: vser.0, addr: 0, chardev: vcon, name: org.vmlaunch.console}
  - {driver: virtserialport, id: port1, bus: vser.0, chardev: data, name: org.vmlaunch.data}
YAML
} >"$tmp/serial.yaml"
cmdline_bytes=$(sed -n 's/^  cmdline: //p' "$tmp/serial.yaml" | wc -c)
check "the kernel command line fits riscv64's 1 KiB ($cmdline_bytes bytes)" test "$cmdline_bytes" -lt 1000

python3 tests/devices/serial_peer.py "$sockdir/port.sock" "$tmp/port.host" host-to-guest-line &
peer=$!
vm_start "$tmp/serial.yaml"
vm_finish 600
# A machine that never listened (or died) leaves the peer waiting for a connection: end it.
kill "$peer" 2>/dev/null
wait "$peer" 2>/dev/null
has() { grep -aq -- "$1" "$vm_out"; }
check "the guest ran its command and vmlaunch exited 0" test "$vm_status" -eq 0
check "the virtconsole's name is in sysfs (port 0)" has "PORT vport.p0 name=org.vmlaunch.console"
check "the virtserialport's name is in sysfs (port 1)" has "PORT vport.p1 name=org.vmlaunch.data"
check "the guest's line arrived at the host end of the port" grep -q guest-to-host-line "$tmp/port.host"
check "the host's answer arrived in the guest" has "GOT=host-to-guest-line"
check "text written to the console port's hvc arrived in its file chardev" grep -q console-port-text "$tmp/console-port.out"
[ "$vm_status" -eq 0 ] && has GOT=host || vm_dump
finish
