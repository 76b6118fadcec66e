#!/usr/bin/env bash
# End-to-end: the freestanding x86 guests (guests/x86) run through `vmlaunch up` on /dev/kvm, one
# behaviour per case. Skipped, saying why, where /dev/kvm is missing or unusable.
source tests/lib.sh
set -u

VMLAUNCH=$PWD/launcher/vmlaunch
export VML_GUESTS=$PWD/guests/x86
WORK=${TEST_TMPDIR:-$(mktemp -d)}
PYTHON=$(command -v python3 || echo /usr/bin/python3)

# name type cpu guest cmdline devices -> $WORK/name.yaml
machine() {
  local name=$1 type=$2 cpu=$3 guest=$4 cmdline=$5 devices=${6:-}
  sed -e "s|@NAME@|$name|; s|@TYPE@|$type|; s|@CPU@|$cpu|; s|@GUEST@|$guest|; s|@CMDLINE@|$cmdline|" \
    -e "s|@DEVICES@|$devices|" tests/kvm/guest.yaml.in >"$WORK/$name.yaml"
  printf '%s\n' "$WORK/$name.yaml"
}

# Runs a machine with stdin from $2 (default empty); output in $WORK/<name>.out, status in $RC.
up() {
  local file=$1 input=${2:-}
  local out=${file%.yaml}.out
  printf '%s' "$input" | timeout 60 "$VMLAUNCH" up "$file" >"$out" 2>&1
  RC=$?
  sed 's/^/    | /' "$out"
}

# Runs a guest with no input and checks its exit status and one line of its output:
#   guest_says name type cpu guest cmdline status pattern
guest_says() {
  local f
  f=$(machine "$1" "$2" "$3" "$4" "$5")
  up "$f"
  [ "$RC" -eq "$6" ] && grep -q "$7" "${f%.yaml}.out"
}

kvm_reason=$("$PYTHON" - <<'PY'
import os
try:
    fd = os.open("/dev/kvm", os.O_RDWR)
    os.close(fd)
except OSError as e:
    print("/dev/kvm: " + e.strerror)
PY
)
cases="serial_echo_and_exit_status serial_interrupt_through_ioapic level_interrupt_through_userspace_ioapic level_interrupt_through_kvm_ioapic irqchip_split_on_microvm_full_on_pc no_pit_or_pic_on_microvm pit_and_pic_on_microvm_with_machine_pit pit_and_pic_on_pc poweroff_status_zero linux_boot_protocol_64bit pvh_elf32_guest cpuid_feature_edits cpuid_topology smp_two_cpus smp_topology_four smp_topology_with_apic_id_gaps pci_enumeration_matches_plan pci_virtio_behind_bridge_matches_plan virtio_mmio_announced_once virtio_pci_intx_through_ioapic reset_reboots bad_cpu_feature_is_an_error seabios_boots_the_disk_bootindex_names"
if [ -z "$kvm_reason" ]; then
  # Opening is not enough (nested setups): a VM must be creatable too.
  preflight=$(machine preflight microvm "{model: host, count: 1}" hello "")
  printf 'x\n' | timeout 60 "$VMLAUNCH" up "$preflight" >"$WORK/preflight.out" 2>&1
  if grep -q "creating the VM" "$WORK/preflight.out"; then
    kvm_reason=$(grep -o "creating the VM.*" "$WORK/preflight.out" | head -n1)
  fi
fi
if [ -n "$kvm_reason" ]; then
  for c in $cases; do skip "$c" "kvm unusable here: $kvm_reason"; done
  finish
  exit $?
fi

serial_echo_and_exit_status() {
  local f
  f=$(machine hello microvm "{model: host, count: 1}" hello "exit=3")
  up "$f" $'ping\n'
  [ "$RC" -eq 3 ] && grep -q "hello from the x86 test guest" "${f%.yaml}.out" && grep -q "echo: ping" "${f%.yaml}.out"
}
serial_interrupt_through_ioapic() {
  local f
  f=$(machine irq microvm "{model: host, count: 1}" irq "")
  up "$f" $'interrupts work\n'
  [ "$RC" -eq 0 ] && grep -q "irq echo: interrupts work" "${f%.yaml}.out" && grep -q "1 interrupt(s)" "${f%.yaml}.out"
}
# Level triggered, masked first, remote IRR, re-sent at the EOI while asserted (guests/x86/irq.c).
# microvm: vmlaunch's IOAPIC (hw/x86/ioapic) with KVM's split irqchip; pc: KVM's in-kernel IOAPIC.
level_interrupt() {
  local f
  f=$(machine "level_$1" "$1" "{model: host, count: 1}" irq "level=1")
  up "$f" $'level works\n'
  [ "$RC" -eq 0 ] && grep -q "irq echo: level works" "${f%.yaml}.out" && grep -q "2 interrupt(s)" "${f%.yaml}.out" &&
    grep -q "the masked pin held it back" "${f%.yaml}.out" && grep -q "re-sent at the EOI while asserted" "${f%.yaml}.out"
}
level_interrupt_through_userspace_ioapic() { level_interrupt microvm; }
level_interrupt_through_kvm_ioapic() { level_interrupt pc; }
# microvm asks KVM for the split irqchip and creates no in-kernel PIC/IOAPIC/PIT; pc creates them.
irqchip_split_on_microvm_full_on_pc() {
  local f g
  f=$(machine chip_microvm microvm "{model: host, count: 1}" hello "exit=0")
  g=$(machine chip_pc pc "{model: host, count: 1}" hello "exit=0")
  printf 'x\n' | VMLAUNCH_KVM_TRACE=1 timeout 60 "$VMLAUNCH" up "$f" >"$WORK/chip_microvm.out" 2>&1 || return 1
  printf 'x\n' | VMLAUNCH_KVM_TRACE=1 timeout 60 "$VMLAUNCH" up "$g" >"$WORK/chip_pc.out" 2>&1 || return 1
  grep -h "^kvm: .*irqchip" "$WORK/chip_microvm.out" "$WORK/chip_pc.out" | sed 's/^/    | /'
  grep -q "^kvm: split irqchip" "$WORK/chip_microvm.out" && ! grep -q "^kvm: in-kernel irqchip" "$WORK/chip_microvm.out" &&
    grep -q "^kvm: in-kernel irqchip" "$WORK/chip_pc.out" && ! grep -q "^kvm: split irqchip" "$WORK/chip_pc.out"
}
# The legacy timer and PICs, probed by the guest the way Linux probes them (guests/x86/pit.c).
no_pit_or_pic_on_microvm() {
  guest_says nopit microvm "{model: host, count: 1}" pit "want_pit=0" 0 "pit: absent.*pic: absent"
}
pit_and_pic_on_microvm_with_machine_pit() {
  local f
  f=$(machine pit microvm "{model: host, count: 1}" pit "want_pit=1")
  sed -i 's|memory: 32MiB}|memory: 32MiB, pit: true}|' "$f"
  up "$f"
  [ "$RC" -eq 0 ] && grep -q "pit: present.*pic: present" "${f%.yaml}.out"
}
pit_and_pic_on_pc() {
  guest_says pcpit pc "{model: host, count: 1}" pit "want_pit=1" 0 "pit: present.*pic: present"
}
poweroff_status_zero() {
  local f
  f=$(machine off pc "{model: host, count: 1}" hello "exit=0")
  up "$f" $'x\n'
  [ "$RC" -eq 0 ] && grep -q "echo: x" "${f%.yaml}.out"
}
linux_boot_protocol_64bit() {
  local f
  f=$(machine linux64 pc "{model: host, count: 1}" linux64 "exit=5")
  { printf 'INITRD!!'; head -c 4088 /dev/zero; } >"$WORK/initrd.bin"
  sed -i "s|^  cmdline:|  initrd: $WORK/initrd.bin\n  cmdline:|" "$f"
  up "$f"
  local out=${f%.yaml}.out
  [ "$RC" -eq 5 ] && grep -q 'linux64: 64-bit entry, cmdline "exit=5"' "$out" &&
    grep -q "linux64: e820 00100000 size 01f00000 ram" "$out" && grep -q "32383 KiB of RAM" "$out" &&
    grep -q 'linux64: initrd 4096 bytes, starts with "INITRD!!"' "$out" &&
    grep -q "self-IPI handled 1 time(s), back from IRETQ" "$out"
}
# An i386 ELF32 with the Xen PVH note (guests/x86/pvh32.c, not converted to ELF64), as QEMU's
# microvm boots it: entered in 32-bit protected mode on both machines.
pvh_elf32_guest() {
  head -c 5 "$VML_GUESTS/pvh32.elf" | od -An -tx1 | grep -q "7f 45 4c 46 01" || { echo "    pvh32.elf is not ELF32"; return 1; }
  local type
  for type in microvm pc; do
    guest_says "pvh32_$type" "$type" "{model: host, count: 1}" pvh32 "exit=4 marker=$type" 4 \
      "pvh32: i386 ELF entered in 32-bit protected mode, start info v1, 32383 KiB of RAM, cmdline \"exit=4 marker=$type\"" ||
      return 1
  done
}
cpuid_feature_edits() {
  guest_says cpuid microvm "{model: host, count: 1, features: [-cx16, +x2apic]}" cpuid \
    "want_cx16=0 want_x2apic=1" 0 "cpuid: cx16=0 x2apic=1"
}
cpuid_topology() {
  guest_says topo microvm "{model: host, count: 4, topology: {sockets: 1, cores: 2, threads: 2}}" cpuid \
    "want_smt=2 want_package=4" 0 "logical=4 smt=2 package=4"
}
smp_two_cpus() {
  guest_says smp microvm "{model: host, count: 2}" smp "" 0 "smp: 2 cpus running, APIC ids: 0 1"
}
smp_topology_four() {
  local f
  f=$(machine smp4 pc "{model: host, count: 4, topology: {sockets: 2, cores: 1, threads: 2}}" smp "")
  up "$f"
  [ "$RC" -eq 0 ] && grep -q "smp: MP table lists 4 cpus" "${f%.yaml}.out" && grep -q "smp: ok" "${f%.yaml}.out" &&
    grep -q "smp: ACPI MADT lists 4 cpus, the same APIC ids" "${f%.yaml}.out"
}
# Compares the guest's CF8/CFC scan of machine file $1 with the functions `plan` puts there.
pci_matches_plan() {
  local f=$1 name
  name=$(basename "${f%.yaml}")
  "$VMLAUNCH" plan --format json "$f" >"$WORK/$name.json" || return 1
  "$PYTHON" tests/kvm/pci_expect.py "$WORK/$name.json" >"$WORK/$name.expected" || return 1
  up "$f"
  sed -n 's/^pci \([0-9a-f][0-9a-f]:\)/\1/p' "${f%.yaml}.out" | tr -d '\r' >"$WORK/$name.seen"
  echo "    expected (from plan):"
  sed 's/^/      /' "$WORK/$name.expected"
  [ "$RC" -eq 0 ] && [ -s "$WORK/$name.seen" ] && diff "$WORK/$name.expected" "$WORK/$name.seen"
}
# SeaBIOS (Debian's) on pc: two virtio-blk disks whose boot sectors (guests/x86/bootsector.S) say
# which one ran and exit with 0x21 (disk A) or 0x22 (disk B). The disk with the lower bootindex must
# boot whichever slot it is in: both orders are tried.
seabios_boots_the_disk_bootindex_names() {
  local d first
  for d in a b; do
    cp "$VML_GUESTS/bootsector_$d.img" "$WORK/disk_$d.img" && chmod u+w "$WORK/disk_$d.img" &&
      truncate -s 1M "$WORK/disk_$d.img" || return 1
  done
  for first in a b; do
    local index_a=2 index_b=1 status=34 marker="disk B" f=$WORK/seabios_$first.yaml
    if [ "$first" = a ]; then index_a=1 index_b=2 status=33 marker="disk A"; fi
    cat >"$f" <<YAML
name: x86-seabios-$first
machine: {arch: x86_64, type: pc, memory: 32MiB}
cpu: {model: host, count: 1}
accel: [kvm]
boot: {firmware: seabios}
backends:
  chardev: {con0: {driver: stdio}}
  block: {a: {driver: raw, file: "$WORK/disk_a.img"}, b: {driver: raw, file: "$WORK/disk_b.img"}}
devices:
  - {driver: ns16550, id: serial0, chardev: con0}
  - {driver: virtio-blk-pci, id: da, drive: a, addr: 3, bootindex: $index_a}
  - {driver: virtio-blk-pci, id: db, drive: b, addr: 4, bootindex: $index_b}
YAML
    up "$f"
    [ "$RC" -eq "$status" ] && grep -q "boot sector: $marker" "${f%.yaml}.out" || return 1
  done
}
pci_virtio_behind_bridge_matches_plan() {
  local f=$WORK/pci_virtio.yaml
  cat >"$f" <<YAML
name: x86-pci-virtio
machine: {arch: x86_64, type: pc, memory: 32MiB}
cpu: {model: host, count: 1}
accel: [kvm]
boot: {kernel: "\${VML_GUESTS}/pci.elf"}
backends:
  chardev: {con0: {driver: stdio}}
  rng: {r0: {driver: random}, r1: {driver: random}, r2: {driver: random}}
devices:
  - {driver: ns16550, id: serial0, chardev: con0}
  - {driver: pci-bridge, id: br1, addr: 5}
  - {driver: virtio-rng-pci, id: rng0, rng: r0}
  - {driver: virtio-rng-pci, id: rng1, rng: r1, bus: br1, addr: 3}
  - {driver: virtio-rng-pci, id: rng2, rng: r2, addr: 6}
YAML
  pci_matches_plan "$f"
}
smp_topology_with_apic_id_gaps() {
  # 3 cores need 2 bits: socket 1's APIC ids start at 4 (0 1 2, 4 5 6), as CPUID leaf 0xB says.
  local f
  f=$(machine smp6 microvm "{model: host, count: 6, topology: {sockets: 2, cores: 3, threads: 1}}" smp "")
  up "$f"
  [ "$RC" -eq 0 ] && grep -q "smp: MP table lists 6 cpus" "${f%.yaml}.out" && grep -q "smp: ok" "${f%.yaml}.out" &&
    grep -q "smp: ACPI MADT lists 6 cpus, the same APIC ids" "${f%.yaml}.out" &&
    grep "cpus running, APIC ids" "${f%.yaml}.out" | grep -q " 6" && ! grep "cpus running" "${f%.yaml}.out" | grep -q " 3"
}
pci_enumeration_matches_plan() {
  local f devices
  devices='  - {driver: pci-bridge, id: br1, addr: 5}\n  - {driver: pci-bridge, id: br2, bus: br1, addr: 2}\n  - {driver: pci-bridge, id: br3, bus: br1, addr: "1f.0"}\n  - {driver: pci-bridge, id: br4}'
  f=$(machine pci pc "{model: host, count: 1}" pci "" "$devices")
  sed -i 's/\\n/\n/g' "$f"
  pci_matches_plan "$f"
}
# Each transport is announced once, as Linux would see it (guests/x86/virtio.c reads both places):
# in the DSDT (LNRO0005), and on the command line only where the guest is told to read no ACPI.
virtio_mmio_announced_once() {
  local f=$WORK/virtio_mmio.yaml out
  cat >"$f" <<YAML
name: x86-virtio-mmio
machine: {arch: x86_64, type: microvm, memory: 32MiB}
cpu: {model: host, count: 1}
accel: [kvm]
boot: {kernel: "\${VML_GUESTS}/virtio.elf", cmdline: "console=ttyS0"}
backends:
  chardev: {con0: {driver: stdio}}
  rng: {r0: {driver: random}, r1: {driver: random}}
devices:
  - {driver: ns16550, id: serial0, chardev: con0}
  - {driver: virtio-rng-mmio, id: rng0, rng: r0}
  - {driver: virtio-rng-mmio, id: rng1, rng: r1}
YAML
  "$VMLAUNCH" plan "$f" | grep "virtio-rng-mmio" | sed 's/^/    plan: /'
  up "$f"
  out=${f%.yaml}.out
  [ "$RC" -eq 0 ] && grep -q "virtio-mmio 0xfeb00000 size 512 irq 5: magic ok version 2 device 4 (DSDT)" "$out" &&
    grep -q "virtio-mmio 0xfeb00200 size 512 irq 6: magic ok version 2 device 4 (DSDT)" "$out" &&
    ! grep -q "command line" "$out" && grep -q "virtio: 2 of 2 transports answer, each announced once" "$out" || return 1
  sed -i 's|cmdline: "console=ttyS0"|cmdline: "console=ttyS0 acpi=off"|' "$f"
  up "$f"
  [ "$RC" -eq 0 ] && grep -q "virtio-mmio 0xfeb00000 size 512 irq 5: magic ok version 2 device 4 (command line)" "$out" &&
    grep -q "virtio-mmio 0xfeb00200 size 512 irq 6: magic ok version 2 device 4 (command line)" "$out" &&
    grep -q "virtio: 2 of 2 transports answer, each announced once" "$out"
}
virtio_pci_intx_through_ioapic() {
  local f=$WORK/virtio_pci.yaml out
  cat >"$f" <<YAML
name: x86-virtio-pci
machine: {arch: x86_64, type: pc, memory: 32MiB}
cpu: {model: host, count: 1}
accel: [kvm]
boot: {kernel: "\${VML_GUESTS}/virtio_pci.elf"}
backends:
  chardev: {con0: {driver: stdio}}
  rng: {r0: {driver: random}}
devices:
  - {driver: ns16550, id: serial0, chardev: con0}
  - {driver: virtio-rng-pci, id: rng0, rng: r0, addr: 3}
YAML
  "$VMLAUNCH" plan "$f" | grep "dev rng0" | sed 's/^/    plan: /'
  up "$f"
  out=${f%.yaml}.out
  [ "$RC" -eq 0 ] && grep -q "virtio-pci: 00:03.0 BAR4 at 0xc0000000, INTA# line 11" "$out" &&
    grep -q "MP table routes it to that pin" "$out" &&
    grep -q "interrupt on vector 0x30 from pin 11, isr 1, used idx 1, 16 random bytes" "$out"
}
reset_reboots() {
  local f out
  f=$(machine reset microvm "{model: host, count: 1}" reset "")
  out=${f%.yaml}.out
  # SIGINT after 5 s must stop the rebooting machine at once (SIGKILL 5 s later would mean it hung).
  # Not SIGTERM: that presses Ctrl-Alt-Del, which this guest ignores, and waits --stop-timeout.
  timeout -s INT -k 5 5 "$VMLAUNCH" up "$f" </dev/null >"$out" 2>&1
  local rc=$? boots
  boots=$(grep -c "reset guest: booted" "$out")
  echo "    booted $boots times in 5 s; exit $rc; $(grep -o 'stopped by signal.*' "$out")"
  grep -v "reset guest: booted" "$out" | tail -n 5 | sed 's/^/    | /'
  [ "$boots" -ge 2 ] && ! grep -q "still running" "$out" && [ "$rc" -eq 124 ] && grep -q "stopped by signal Interrupt" "$out"
}
bad_cpu_feature_is_an_error() {
  local f
  f=$(machine bad microvm "{model: host, count: 1, features: [+frobnicate]}" hello "")
  up "$f"
  [ "$RC" -ne 0 ] && grep -q 'cpu feature "frobnicate"' "${f%.yaml}.out"
}

for c in $cases; do
  echo "== $c"
  check "$c" "$c"
done
finish
