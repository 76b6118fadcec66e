#!/usr/bin/env bash
# The x86_64 Linux guest from Debian packages (guests/x86_64/build): the initramfs has what init
# needs, and under vmlaunch on KVM (the host's, or the nested KVM host's) the real bzImage boots
# through init to poweroff: on microvm with 1 vCPU, on pc with 2 vCPUs and virtio-pci on MSI-X (both
# with virtio-net on user networking, DHCP and a fetch from a host web server, and virtio-console), and
# on microvm with 2 vCPUs and a virtio-blk-mmio disk through a reboot; examples/x86_64-microvm.yaml
# boots as shipped; and on pc with vmgenid (Debian's generic kernel), each of two restored copies of
# a snapshot reseeds its CRNG at once and reads a generation ID of its own.
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
    skip pc_two_cpus_virtio_msix "no guest kernel"
    skip microvm_virtio_net_and_console "no guest kernel"
    skip pc_virtio_net_and_console_msix "no guest kernel"
    skip microvm_two_cpus_reboot_keeps_disk "no guest kernel"
    skip example_microvm_boots "no guest kernel"
    skip pc_sigterm_powers_off_through_acpi_button "no guest kernel"
    skip microvm_down_powers_off_through_ctrl_alt_del "no guest kernel"
    skip microvm_pause_resume_then_pvpanic "no guest kernel"
    skip pc_vmgenid_new_id_and_reseed_per_restored_copy "no guest kernel"
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
    grep -q 'virtio_mmio.ko$' <<<"$list" && grep -q 'virtio_pci.ko$' <<<"$list" && grep -q 'virtio_blk.ko$' <<<"$list" &&
    grep -q 'virtio_net.ko$' <<<"$list" && grep -q 'virtio_console.ko$' <<<"$list" &&
    grep -q '/button.ko$' <<<"$list" && grep -q '/evdev.ko$' <<<"$list" && grep -q '/pvpanic-mmio.ko$' <<<"$list" || return 1
  # Load order: the virtio core before the transports and devices that need it.
  local order
  order=$(gzip -dc "$initrd" | cpio -i --to-stdout --quiet etc/vmlaunch/modules)
  echo "$order" | sed 's|.*/||; s/^/    /'
  [ "$(grep -n '/virtio_ring.ko$' <<<"$order" | cut -d: -f1)" -lt "$(grep -n '/virtio_mmio.ko$' <<<"$order" | cut -d: -f1)" ]
}

# The boots run on KVM: on this host's /dev/kvm where it is hardware KVM, else inside the nested KVM
# host (tests/nested), all in one nested boot (it costs ~60 s before the first guest starts).
# Each machine file $WORK/NAME.yaml leaves NAME.txt (its output, CR LF made LF) and NAME.rc.
cat >"$WORK/boots.sh" <<'SH'
#!/usr/bin/env bash
vmlaunch=$1 work=$2
shift 2
for name in "$@"; do
  peer=""
  if [ -f "$work/$name.peer" ]; then
    # The machine's host side (peer.py): a web server for its user network and the far end of its
    # virtio console's socket, both started here, where the machine runs (inside the nested host,
    # slirp's 10.0.2.2 is the nested host's loopback). Their port and path go into the machine file.
    sock=$(mktemp -d /tmp/vmlc.XXXXXX)/hvc.sock  # short: sun_path
    rm -f "$work/$name.port"
    python3 "$work/peer.py" "$work" "$name" "$sock" 2>"$work/$name.peer.log" &
    peer=$!
    for _ in $(seq 1 300); do [ -s "$work/$name.port" ] && break; sleep 0.1; done
    sed -i -e "s|@WEB_PORT@|$(cat "$work/$name.port")|g" -e "s|@HVC_SOCKET@|$sock|g" "$work/$name.yaml"
  fi
  if [ -f "$work/$name.drive" ]; then
    # The machine is steered from outside while it runs (signals, down, pause): its own script.
    bash "$work/$name.drive" "$vmlaunch" "$work" "$name"
  elif [ -f "$work/$name.keys" ]; then
    # Typed on the console every 5 s until the machine ends (the guest reads them once its shell
    # runs; the host's EOF never reaches a guest's serial port).
    (while sleep 5 && cat "$work/$name.keys"; do :; done) |
      timeout -k 5 300 "$vmlaunch" up "$work/$name.yaml" >"$work/$name.out" 2>&1
    echo "${PIPESTATUS[1]}" >"$work/$name.rc"
  else
    timeout -k 5 300 "$vmlaunch" up "$work/$name.yaml" </dev/null >"$work/$name.out" 2>&1
    echo $? >"$work/$name.rc"
  fi
  if [ -n "$peer" ]; then
    kill "$peer" 2>/dev/null
    wait "$peer" 2>/dev/null
  fi
done
SH

# The host side of the machines with a network and a virtio console (NAME.peer): serves $work/www
# over HTTP on a free loopback port (written to NAME.port), and listens on the console's unix
# socket: everything the guest writes there goes to NAME.hvc; once the guest's greeting has come,
# one line goes back (the guest prints what it read on ttyS0).
mkdir -p "$WORK/www"
echo "page-from-the-host-$$" >"$WORK/www/index.txt"
cat >"$WORK/peer.py" <<'PY'
import functools, http.server, os, socket, sys, threading
work, name, path = sys.argv[1:4]
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=os.path.join(work, "www"))
web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
threading.Thread(target=web.serve_forever, daemon=True).start()
console = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
console.bind(path)
console.listen(1)
with open(os.path.join(work, name + ".port.tmp"), "w") as f:
    f.write(str(web.server_address[1]))
os.rename(os.path.join(work, name + ".port.tmp"), os.path.join(work, name + ".port"))
conn, _ = console.accept()
seen, answered = b"", False
with open(os.path.join(work, name + ".hvc"), "wb") as log:
    while True:
        data = conn.recv(4096)
        if not data:
            break
        log.write(data)
        log.flush()
        seen += data
        if not answered and b"GUEST-TO-HOST\n" in seen:
            conn.sendall(("HOST-TO-GUEST-" + name + "\n").encode())
            answered = True
PY

# What the guests with a network card and a virtio console run:
# DHCP from slirp (busybox udhcpc only reports the lease; the script applies it), a page fetched from
# the host's web server through the gateway, a greeting out through /dev/hvc0 and the host's answer
# read back from it (raw: no echo, no line editing).
net_and_console=$(cat <<'CMD'
printf '#!/bin/sh\ncase "$1" in bound|renew) ip addr add $ip/$mask dev $interface; ip route add default via $router;; esac\n' >/tmp/dhcp.sh
chmod +x /tmp/dhcp.sh
ip link set eth0 up
udhcpc -i eth0 -n -q -t 10 -s /tmp/dhcp.sh >/dev/null
echo "net: $(ip -4 addr show eth0 | grep -o 'inet [0-9./]*')"
port=$(sed -n 's/.*vml_web=\([0-9]*\).*/\1/p' /proc/cmdline)
echo "web: $(wget -q -O - "http://10.0.2.2:$port/index.txt")"
exec 3<>/dev/hvc0
stty -F /dev/hvc0 raw -echo
echo GUEST-TO-HOST >&3
read -t 60 line <&3
echo "hvc0: $line"
exec 3<&-
grep virtio /proc/interrupts | sed 's/^/after: /'
CMD
)
chmod +x "$WORK/boots.sh"

# Every kernel message is a run of port writes; quiet keeps the nested (TCG) run short. The ones
# checked below are printed at a level quiet keeps, or are not the kernel's.
cmdline='console=ttyS0 quiet reboot=t panic=-1'

# microvm, 1 vCPU: Linux must find KVM (the CPUID hypervisor bit and signature leaf), use kvm-clock,
# run init and the command with its output on ttyS0, and power off through the ACPI sleep registers:
# vmlaunch exits 0 (the guest's poweroff; the command's status is in the marker). Its virtio-net-mmio
# (user networking) and virtio-console-mmio (a unix socket to peer.py) are found through the DSDT.
inside="uname -m
$net_and_console
exit 3"
cat >"$WORK/microvm.yaml" <<YAML
name: debian-kernel
machine: {arch: x86_64, type: microvm, memory: 256MiB}
cpu: {model: host, count: 1}
accel: [kvm]
boot: {kernel: "$kernel", initrd: "$initrd", cmdline: "$cmdline vml_web=@WEB_PORT@ vml.cmd64=$(printf '%s' "$inside" | base64 -w0)"}
backends:
  chardev:
    con0: {driver: stdio}
    hvc: {driver: socket, path: "@HVC_SOCKET@"}
  net: {user0: {driver: user}}
devices:
  - {driver: ns16550, id: serial0, chardev: con0}
  - {driver: virtio-net-mmio, id: net0, netdev: user0}
  - {driver: virtio-console-mmio, id: hvc0, chardev: hvc}
YAML
touch "$WORK/microvm.peer"

# pc, 2 vCPUs, a virtio-blk on bus 0 and a virtio-rng behind a pci-bridge: the second CPU comes up
# (INIT/SIPI through the in-kernel LAPICs, the MADT's two entries), Linux finds the PCI functions
# where `plan` puts them (through the DSDT's PCI0), and its virtio-pci driver runs both devices on
# MSI-X (per-queue vectors in /proc/interrupts, msi_irqs in sysfs); the disk's first sector and 16
# bytes of the host's randomness come through them.
head -c 1048576 /dev/zero >"$WORK/disk.img"
printf 'VMLAUNCH-PC-DISK-MARK' | dd of="$WORK/disk.img" conv=notrunc status=none
inside=$(cat <<'CMD'
echo "nproc=$(nproc)"
for d in /sys/bus/pci/devices/*; do
  v=$(cat "$d/vendor") i=$(cat "$d/device")
  echo "pci ${d#/sys/bus/pci/devices/0000:} ${v#0x}:${i#0x}"
done
grep -E 'virtio|PCI-MSI' /proc/interrupts
for d in /sys/bus/pci/devices/*; do
  [ -d "$d/msi_irqs" ] && echo "msi_irqs ${d##*/} $(cat "$d/vendor"):$(cat "$d/device") $(ls "$d/msi_irqs" | wc -l)"
done
echo "disk: $(head -c 21 /dev/vda)"
echo "rng: $(cat /sys/class/misc/hw_random/rng_current) $(head -c 16 /dev/hwrng | wc -c) bytes"
CMD
)
inside="$inside
$net_and_console
exit 4"
cat >"$WORK/pc_smp.yaml" <<YAML
name: debian-kernel-pc
machine: {arch: x86_64, type: pc, memory: 256MiB}
cpu: {model: host, count: 2}
accel: [kvm]
boot: {kernel: "$kernel", initrd: "$initrd", cmdline: "$cmdline vml_web=@WEB_PORT@ vml.cmd64=$(printf '%s' "$inside" | base64 -w0)"}
backends:
  chardev:
    con0: {driver: stdio}
    hvc: {driver: socket, path: "@HVC_SOCKET@"}
  block: {d0: {driver: raw, file: "$WORK/disk.img"}}
  rng: {r0: {driver: random}}
  net: {user0: {driver: user}}
devices:
  - {driver: ns16550, id: serial0, chardev: con0}
  - {driver: virtio-blk-pci, id: vda, drive: d0, addr: 3}
  - {driver: pci-bridge, id: br1, addr: 5}
  - {driver: virtio-rng-pci, id: rng0, rng: r0, bus: br1, addr: 1}
  - {driver: virtio-net-pci, id: net0, netdev: user0, addr: 6}
  - {driver: virtio-console-pci, id: hvc0, chardev: hvc, addr: 7}
YAML
touch "$WORK/pc_smp.peer"
"$VMLAUNCH" plan --format json "$WORK/pc_smp.yaml" >"$WORK/pc_smp.json" &&
  python3 tests/kvm/pci_expect.py "$WORK/pc_smp.json" >"$WORK/pc_smp.expected"

# microvm, 2 vCPUs, a virtio-blk-mmio disk (found through the DSDT): the first boot reads "boot1"
# from the disk, writes "boot2" and reboots (reboot=t: a triple fault, KVM_EXIT_SHUTDOWN); vmlaunch
# builds the machine afresh and the second boot reads "boot2" and powers off. The reboot keeps the
# disk and nothing else.
printf 'boot1' >"$WORK/reboot.img"
truncate -s 1M "$WORK/reboot.img"
inside='m=$(head -c 5 /dev/vda); echo "disk says $m; nproc=$(nproc)"; if [ "$m" = boot1 ]; then printf boot2 >/dev/vda; sync; reboot -f; fi; exit 5'
cat >"$WORK/microvm_reboot.yaml" <<YAML
name: debian-kernel-reboot
machine: {arch: x86_64, type: microvm, memory: 256MiB}
cpu: {model: host, count: 2}
accel: [kvm]
boot: {kernel: "$kernel", initrd: "$initrd", cmdline: "$cmdline vml.cmd64=$(printf '%s' "$inside" | base64 -w0)"}
backends:
  chardev: {con0: {driver: stdio}}
  block: {d0: {driver: raw, file: "$WORK/reboot.img"}}
devices:
  - {driver: ns16550, id: serial0, chardev: con0}
  - {driver: virtio-blk-mmio, id: vda, drive: d0}
YAML

# examples/x86_64-microvm.yaml as shipped (truthful config: every example boots), with ${HOME}
# written out (inside the nested host HOME may name another directory than the cache's) and quiet
# added to the kernel command line: every console byte is a port write, and under the nested host's
# TCG the full kernel log alone took over 5 minutes. The example starts a shell on the console;
# `exit` typed there makes init power off.
sed -e "s|\${HOME}|$HOME|g" -e 's|cmdline: "console=ttyS0 |cmdline: "console=ttyS0 quiet |' \
  examples/x86_64-microvm.yaml >"$WORK/example_microvm.yaml"
printf 'exit\n' >"$WORK/example_microvm.keys"

# Lifecycle from the host, on Linux's own drivers. Each .drive script runs inside the nested host:
# it starts `vmlaunch up` with its console on a FIFO, waits for markers in the output and steers the
# machine (signals, `down`, `pause`/`resume` through the state directory's control socket).
cat >"$WORK/lib.drive" <<'SH'
vmlaunch=$1 work=$2 name=$3
out=$work/$name.out
export VMLAUNCH_STATE_DIR
VMLAUNCH_STATE_DIR=$(mktemp -d /tmp/vmls.XXXXXX)  # short: the control socket's path must fit sun_path
# The console's input: a FIFO kept open while the machine runs (in /tmp: 9p makes no FIFOs).
mkfifo "$VMLAUNCH_STATE_DIR/console.in" || exit 1
# --stop-timeout: a graceful stop (SIGTERM) waits for the guest as long as `down --timeout 200` does;
# the default 30 s is too short for pc's ACPI button under nested TCG on a loaded machine (21 s idle).
# vmlaunch runs as this shell's own child, so the signals below reach it alone and once: coreutils
# `timeout` would relay a SIGTERM to its process group too and send SIGKILL 5 s after it (-k).
"$vmlaunch" up --stop-timeout 200 "$work/$name.yaml" <"$VMLAUNCH_STATE_DIR/console.in" >"$out" 2>&1 &
pid=$!
# The watchdog: a machine still running after 300 s is killed (the case then fails on its exit).
(
  trap 'kill "$nap" 2>/dev/null; exit 0' TERM
  sleep 300 &
  nap=$!
  wait "$nap" && kill -KILL "$pid" 2>/dev/null
) </dev/null >/dev/null 2>&1 &
watchdog=$!
exec 3>"$VMLAUNCH_STATE_DIR/console.in"
# Waits (at most 240 s) for a line matching $1 in the output.
wait_for() {
  local i
  for ((i = 0; i < 2400; i++)); do
    grep -q "$1" "$out" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  grep -q "$1" "$out" 2>/dev/null
}
finish_drive() {
  wait "$pid"
  echo $? >"$work/$name.rc"
  kill "$watchdog" 2>/dev/null
  wait "$watchdog" 2>/dev/null
  exec 3>&-
}
SH

# pc: SIGTERM to `up` presses the ACPI power button (the GED's IRQ 9 runs _EVT, which notifies
# PWRB): Linux's button driver reports KEY_POWER, init syncs and powers off: exit 0, the guest's own
# poweroff, not the forced stop (12).
cat >"$WORK/pc_powerdown.yaml" <<YAML
name: pc-powerdown
machine: {arch: x86_64, type: pc, memory: 256MiB}
cpu: {model: host, count: 1}
accel: [kvm]
boot: {kernel: "$kernel", initrd: "$initrd", cmdline: "$cmdline vml.cmd=\"echo VML-READY; sleep 600; exit 7\""}
backends: {chardev: {con0: {driver: stdio}}}
devices: [{driver: ns16550, id: serial0, chardev: con0}]
YAML
cat "$WORK/lib.drive" - >"$WORK/pc_powerdown.drive" <<'SH'
wait_for '^VML-READY' && kill -TERM "$pid"
finish_drive
SH

# microvm: `vmlaunch down NAME` sends Ctrl-Alt-Del through the i8042 keyboard (as Firecracker):
# Linux's atkbd and keyboard handler turn it into ctrl_alt_del(), init (ctrl-alt-del = 0) sees the
# keys on evdev and powers off: exit 0.
cat >"$WORK/microvm_powerdown.yaml" <<YAML
name: microvm-powerdown
machine: {arch: x86_64, type: microvm, memory: 256MiB}
cpu: {model: host, count: 1}
accel: [kvm]
boot: {kernel: "$kernel", initrd: "$initrd", cmdline: "$cmdline vml.cmd=\"echo VML-READY; sleep 600; exit 7\""}
backends: {chardev: {con0: {driver: stdio}}}
devices: [{driver: ns16550, id: serial0, chardev: con0}]
YAML
cat "$WORK/lib.drive" - >"$WORK/microvm_powerdown.drive" <<'SH'
wait_for '^VML-READY' && "$vmlaunch" down --timeout 200 microvm-powerdown >"$work/$name.down" 2>&1
echo "down: $?" >>"$work/$name.down"
finish_drive
SH

# microvm, 2 vCPUs: pause parks the vCPUs (the guest's ticker stops printing), resume continues it;
# after its 12th tick the guest panics (sysrq c) and Linux's pvpanic driver (QEMU0001 at port 0x505)
# reports it: exit 11, the panic status (lifecycle.on-panic: poweroff, the default).
inside='i=0; while [ $i -lt 12 ]; do echo "tick $i"; i=$((i+1)); sleep 1; done; echo VML-PANIC; sleep 1; echo c >/proc/sysrq-trigger'
cat >"$WORK/microvm_pause_panic.yaml" <<YAML
name: microvm-pause
machine: {arch: x86_64, type: microvm, memory: 256MiB}
cpu: {model: host, count: 2}
accel: [kvm]
boot: {kernel: "$kernel", initrd: "$initrd", cmdline: "$cmdline vml.cmd64=$(printf '%s' "$inside" | base64 -w0)"}
backends: {chardev: {con0: {driver: stdio}}}
devices: [{driver: ns16550, id: serial0, chardev: con0}]
YAML
cat "$WORK/lib.drive" - >"$WORK/microvm_pause_panic.drive" <<'SH'
# The machine's last state change, from its event log (`ps` shows a paused machine as running).
status() { tr -d ' ' <"$VMLAUNCH_STATE_DIR/microvm-pause/events.log" | grep -o '"to":"[a-z]*"' | tail -n1; }
if wait_for '^tick 2'; then
  "$vmlaunch" pause microvm-pause >"$work/$name.pause" 2>&1
  echo "pause: $? $(status)" >>"$work/$name.pause"
  sleep 1  # a tick already on its way out of the UART may still land
  before=$(grep -c '^tick' "$out")
  sleep 5
  after=$(grep -c '^tick' "$out")
  echo "ticks while paused: $before -> $after" >>"$work/$name.pause"
  "$vmlaunch" resume microvm-pause >>"$work/$name.pause" 2>&1
  echo "resume: $? $(status)" >>"$work/$name.pause"
  wait_for "^tick $after[^0-9]" && echo "ticking again" >>"$work/$name.pause"
fi
finish_drive
SH

# pc with a VM generation ID, on the guest built from Debian's generic kernel (the cloud kernel has no
# CONFIG_VMGENID; `guests/x86_64/build generic`, shared with the passthrough tests): the vmgenid
# driver binds VMGENCTR:00;
# `snapshot --stop` once the guest waits, then two restores of that snapshot, each of which must
# reseed the guest's CRNG at once ("crng reseeded due to virtual machine fork", add_vmfork_randomness)
# and read (through /dev/mem, allowed below 1 MiB) an ID unlike the original's and the other copy's.
generic_paths=$(guests/x86_64/build generic 2>"$WORK/generic.log") || tail -n 5 "$WORK/generic.log"
generic_kernel=$(readlink -f "$(sed -n 1p <<<"$generic_paths")")
generic_initrd=$(readlink -f "$(sed -n 2p <<<"$generic_paths")")
genid_cmd='ls /sys/bus/acpi/drivers/vmgenid | grep VMGENCTR | sed "s/^/bound: /"
genid() { echo "$1 $(dd if=/dev/mem bs=16 count=1 skip=65280 2>/dev/null | od -An -tx1 | tr -d " \n")"; }
genid GENID-BEFORE; echo VML-READY
until dmesg | grep -q "virtual machine fork"; do sleep 1; done
dmesg | grep -o "crng reseeded due to virtual machine fork"; genid GENID-AFTER'
cat >"$WORK/pc_vmgenid.yaml" <<YAML
name: pc-vmgenid
machine: {arch: x86_64, type: pc, memory: 256MiB}
cpu: {model: host, count: 1}
accel: [kvm]
boot: {kernel: "$generic_kernel", initrd: "$generic_initrd", cmdline: "$cmdline vml.cmd64=$(printf '%s' "$genid_cmd" | base64 -w0)"}
backends: {chardev: {con0: {driver: stdio}}}
devices: [{driver: ns16550, id: serial0, chardev: con0}, {driver: vmgenid, id: genid0}]
YAML
cat "$WORK/lib.drive" - >"$WORK/pc_vmgenid.drive" <<'SH'
wait_for '^VML-READY' && "$vmlaunch" snapshot pc-vmgenid "$VMLAUNCH_STATE_DIR/snap" --stop >"$work/$name.snap" 2>&1
finish_drive
for copy in 1 2; do
  timeout -k 5 300 "$vmlaunch" up --restore "$VMLAUNCH_STATE_DIR/snap" </dev/null >"$work/$name.copy$copy.out" 2>&1
  echo "rc: $?" >>"$work/$name.copy$copy.out"
done
SH

tests/nested/kvm_or_nested "$WORK/boots.sh" "$VMLAUNCH" "$WORK" microvm pc_smp microvm_reboot example_microvm pc_powerdown microvm_powerdown microvm_pause_panic pc_vmgenid
for name in microvm pc_smp microvm_reboot example_microvm pc_powerdown microvm_powerdown microvm_pause_panic \
  pc_vmgenid pc_vmgenid.copy1 pc_vmgenid.copy2; do
  tr -d '\r' <"$WORK/$name.out" >"$WORK/$name.txt" 2>/dev/null  # the guest's tty ends lines with CR LF
done

boots_to_poweroff_on_kvm() {
  local out=$WORK/microvm.txt
  sed 's/^/    | /' "$out"
  # Userspace output needs the COM port's IRQ (declared in the DSDT: microvm has no PIC).
  [ "$(cat "$WORK/microvm.rc")" = 0 ] && grep -qx "vmlaunch-guest: userspace up" "$out" && grep -qx "x86_64" "$out" &&
    grep -qx "VML-CMD-EXIT=3" "$out" && grep -q "reboot: Power down" "$out"
}
pc_two_cpus_virtio_msix() {
  local out=$WORK/pc_smp.txt
  sed 's/^/    | /' "$out"
  [ "$(cat "$WORK/pc_smp.rc")" = 0 ] && grep -qx "VML-CMD-EXIT=4" "$out" && grep -q "reboot: Power down" "$out" &&
    grep -qx "nproc=2" "$out" || return 1
  sed -n 's/^pci //p' "$out" >"$WORK/pc_smp.seen"
  echo "    expected (from plan):"
  sed 's/^/      /' "$WORK/pc_smp.expected"
  # sysfs lists bus 0 then bus 1 by address; plan by bus, then in the file's order.
  [ -s "$WORK/pc_smp.expected" ] && diff <(sort "$WORK/pc_smp.expected") <(sort "$WORK/pc_smp.seen") || return 1
  # virtio-pci devices are 1af4:1042 (block) and 1af4:1044 (entropy), with config + one queue vector;
  # Linux numbers them in PCI order: virtio0 00:03.0, (net 00:06.0, console 00:07.0), virtio3 01:01.0.
  grep -q "^msi_irqs 0000:00:03.0 0x1af4:0x1042 2$" "$out" && grep -q "^msi_irqs 0000:01:01.0 0x1af4:0x1044 2$" "$out" &&
    grep -q "PCI-MSI.*virtio0-config" "$out" && grep -q "PCI-MSI.*virtio0-req.0" "$out" &&
    grep -q "PCI-MSI.*virtio3-config" "$out" && grep -q "PCI-MSI.*virtio3-input" "$out" || return 1
  # The queues' interrupts fired (the counts of both CPUs' columns are not all zero).
  # (The listing printed before the network traffic, not the "after:" one.)
  awk '/^ *[0-9]+:.*(virtio0-req.0|virtio3-input)$/ { if ($2 + $3 == 0) bad = 1; n++ } END { exit (n == 2 && !bad) ? 0 : 1 }' "$out" &&
    grep -qx "disk: VMLAUNCH-PC-DISK-MARK" "$out" && grep -qx "rng: virtio_rng.0 16 bytes" "$out"
}

# virtio-net with user networking and virtio-console under Linux's drivers ($1: the boot, $2 its
# status): a DHCP lease from slirp, the host's page fetched through 10.0.2.2, the guest's greeting out
# through /dev/hvc0 and the host's answer back in.
net_and_console_work() {
  local name=$1 out=$WORK/$1.txt
  sed 's/^/    peer: /' "$WORK/$name.peer.log" 2>/dev/null
  echo "    hvc0 (host side): $(tr -d '\r' <"$WORK/$name.hvc" 2>/dev/null | tr '\n' '|')"
  grep -qx "net: inet 10.0.2.15/24" "$out" && grep -qx "web: page-from-the-host-$$" "$out" &&
    grep -q '"GET /index.txt HTTP/1.1" 200' "$WORK/$name.peer.log" &&
    grep -q "^GUEST-TO-HOST" "$WORK/$name.hvc" && grep -qx "hvc0: HOST-TO-GUEST-$name" "$out"
}
microvm_virtio_net_and_console() {
  local out=$WORK/microvm.txt
  grep "^after: " "$out" | sed 's/^/    | /'
  [ "$(cat "$WORK/microvm.rc")" = 0 ] && grep -qx "VML-CMD-EXIT=3" "$out" && net_and_console_work microvm || return 1
  # Both transports' interrupts (IOAPIC pins, one per virtio-mmio device) fired.
  [ "$(awk '/^after: .*virtio[0-9]$/ && $3 > 0' "$out" | wc -l)" = 2 ]
}
pc_virtio_net_and_console_msix() {
  local out=$WORK/pc_smp.txt
  [ "$(cat "$WORK/pc_smp.rc")" = 0 ] && grep -qx "VML-CMD-EXIT=4" "$out" && net_and_console_work pc_smp || return 1
  # On MSI-X too: the network card (1af4:1041: config, input.0, output.0) and the console (1af4:1043:
  # config, input, output), and their receive queues' vectors fired (counted after the traffic).
  grep -q "^msi_irqs 0000:00:06.0 0x1af4:0x1041 3$" "$out" && grep -q "^msi_irqs 0000:00:07.0 0x1af4:0x1043 3$" "$out" &&
    grep -q "^after: .*PCI-MSI.*virtio1-output.0$" "$out" &&
    awk '/^after: .*PCI-MSI.*(virtio1-input.0|virtio2-input)$/ { if ($3 + $4 == 0) bad = 1; n++ }
      END { exit (n == 2 && !bad) ? 0 : 1 }' "$out"
}

microvm_two_cpus_reboot_keeps_disk() {
  local out=$WORK/microvm_reboot.txt
  sed 's/^/    | /' "$out"
  [ "$(cat "$WORK/microvm_reboot.rc")" = 0 ] && [ "$(grep -c "^vmlaunch-guest: userspace up" "$out")" = 2 ] &&
    grep -qx "disk says boot1; nproc=2" "$out" && grep -q "reboot: Restarting system" "$out" &&
    grep -qx "disk says boot2; nproc=2" "$out" && grep -qx "VML-CMD-EXIT=5" "$out" &&
    grep -q "reboot: Power down" "$out" && [ "$(head -c 5 "$WORK/reboot.img")" = boot2 ]
}

example_microvm_boots() {
  local out=$WORK/example_microvm.txt
  sed 's/^/    | /' "$out" | tail -n 25
  grep -q 'cmdline: "console=ttyS0 quiet ' "$WORK/example_microvm.yaml" &&  # the edit above took
    [ "$(cat "$WORK/example_microvm.rc")" = 0 ] && grep -qx "vmlaunch-guest: userspace up" "$out" &&
    grep -q "reboot: Power down" "$out"
}

pc_sigterm_powers_off_through_acpi_button() {
  local out=$WORK/pc_powerdown.txt
  sed 's/^/    | /' "$out" | tail -n 12
  [ "$(cat "$WORK/pc_powerdown.rc")" = 0 ] && grep -qx "VML-READY" "$out" &&
    grep -qx "vmlaunch-guest: power button pressed; powering off" "$out" && grep -q "reboot: Power down" "$out" &&
    ! grep -q "VML-CMD-EXIT" "$out"
}

microvm_down_powers_off_through_ctrl_alt_del() {
  local out=$WORK/microvm_powerdown.txt
  sed 's/^/    | /' "$out" | tail -n 12
  sed 's/^/    down: /' "$WORK/microvm_powerdown.down"
  [ "$(cat "$WORK/microvm_powerdown.rc")" = 0 ] && grep -qx "down: 0" "$WORK/microvm_powerdown.down" &&
    grep -qx "vmlaunch-guest: Ctrl-Alt-Del pressed; powering off" "$out" && grep -q "reboot: Power down" "$out" &&
    ! grep -q "VML-CMD-EXIT" "$out"
}

microvm_pause_resume_then_pvpanic() {
  local out=$WORK/microvm_pause_panic.txt
  sed 's/^/    | /' "$out" | tail -n 15
  sed 's/^/    drive: /' "$WORK/microvm_pause_panic.pause"
  local ticks
  ticks=$(sed -n 's/^ticks while paused: \([0-9]*\) -> \([0-9]*\)$/\1 \2/p' "$WORK/microvm_pause_panic.pause")
  grep -qx 'pause: 0 "to":"paused"' "$WORK/microvm_pause_panic.pause" && [ -n "$ticks" ] &&
    [ "${ticks% *}" = "${ticks#* }" ] && grep -qx 'resume: 0 "to":"running"' "$WORK/microvm_pause_panic.pause" &&
    grep -qx "ticking again" "$WORK/microvm_pause_panic.pause" || return 1
  # The panic: Linux's message, then vmlaunch's panic status.
  # (The sleep before the crash lets the tty drain "VML-PANIC" first: sysrq's own messages are written
  # to the console directly and could otherwise land inside that line.)
  grep -n "VML-PANIC\|Kernel panic\|sysrq" "$out" | sed 's/^/    seen: /'
  echo "    status: $(cat "$WORK/microvm_pause_panic.rc")"
  grep -qx "VML-PANIC" "$out" && grep -q "Kernel panic" "$out" && [ "$(cat "$WORK/microvm_pause_panic.rc")" = 11 ]
}

pc_vmgenid_new_id_and_reseed_per_restored_copy() {
  local out=$WORK/pc_vmgenid.txt before copy after ids=""
  sed 's/^/    | /' "$out" | tail -n 6
  sed 's/^/    snapshot: /' "$WORK/pc_vmgenid.snap"
  before=$(sed -n 's/^GENID-BEFORE \([0-9a-f]\{32\}\)$/\1/p' "$out")
  [ "$(cat "$WORK/pc_vmgenid.rc")" = 0 ] && grep -qx "bound: VMGENCTR:00" "$out" && [ -n "$before" ] || return 1
  for copy in 1 2; do
    sed 's/^/    copy '$copy': /' "$WORK/pc_vmgenid.copy$copy.txt" | tail -n 5
    after=$(sed -n 's/^GENID-AFTER \([0-9a-f]\{32\}\)$/\1/p' "$WORK/pc_vmgenid.copy$copy.txt")
    grep -qx "rc: 0" "$WORK/pc_vmgenid.copy$copy.txt" && grep -qx "VML-CMD-EXIT=0" "$WORK/pc_vmgenid.copy$copy.txt" &&
      grep -qx "crng reseeded due to virtual machine fork" "$WORK/pc_vmgenid.copy$copy.txt" &&
      [ -n "$after" ] && [ "$after" != "$before" ] || return 1
    ids="$ids $after"
  done
  # shellcheck disable=SC2086
  [ "$(printf '%s\n' $ids | sort -u | wc -l)" = 2 ]
}

for c in initramfs_contents boots_to_poweroff_on_kvm microvm_virtio_net_and_console pc_two_cpus_virtio_msix \
  pc_virtio_net_and_console_msix microvm_two_cpus_reboot_keeps_disk \
  example_microvm_boots pc_sigterm_powers_off_through_acpi_button microvm_down_powers_off_through_ctrl_alt_del \
  microvm_pause_resume_then_pvpanic pc_vmgenid_new_id_and_reseed_per_restored_copy; do
  echo "== $c"
  check "$c" "$c"
done
finish
