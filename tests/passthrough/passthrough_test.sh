#!/usr/bin/env bash
# VFIO-PCI end to end, in one boot of the nested host (tests/nested) with an emulated IOMMU and QEMU's
# edu device (docs/specs/edu.rst): the outer QEMU gets -device intel-iommu,caching-mode=on (q35 needs
# the split irqchip for it) and -device edu, the nested kernel intel_iommu=on and the VFIO modules.
# Inside:
#   - `vmlaunch host devices` lists edu (1234:11e8) with its IOMMU group;
#   - `validate --host` before edu is bound to vfio-pci (golden: the bind commands, the missing
#     group node), as an unprivileged user after binding (golden: /dev/vfio/N permission,
#     RLIMIT_MEMLOCK), and as root after binding (exit 0);
#   - a machine started with `up -d` (guests/x86/edu.c, hold=1) holds edu: `up` and
#     `validate --host` of another machine with it are refused naming it (goldens); it is then
#     stopped by force (down --force);
#   - a vmlaunch pc guest (guests/x86/edu.c) with edu passed through, BAR0 trapped
#     (VMLAUNCH_VFIO_TRAP_BARS=1) in the first run and mmapped into a KVM memory slot in the last
#     (traced), times 2000 reads of the id register (printed, never asserted), reads the id register,
#     computes 10!, DMAs guest RAM -> edu -> guest RAM and takes the MSI (through KVM irqfd, seen in
#     the last run's trace); then one with MSI off takes edu's INTx twice (KVM irqfd with resample:
#     the second only arrives once the first's EOI re-armed the host INTx);
#   - the x86_64 Linux guest (guests/x86_64/build generic: Debian's kernel, plus vmlaunch_edu.ko,
#     guests/x86_64/edu, built against that kernel's Debian headers) on a pc machine with edu passed
#     through: Linux's PCI code enables it, the driver reads the id and liveness registers, computes
#     10! finished by edu's interrupt through MSI (pci_alloc_irq_vectors), and DMAs 2 KiB from
#     dma_alloc_coherent memory into edu and back, each DMA finished by its MSI; the driver is then
#     removed and loaded again (the device handed over inside the guest);
#     the same guest also gets the nested host's virtio-rng-pci (modern only: MSI-X) through
#     vfio-pci: its driver takes two MSI-X vectors (sysfs msi_irqs) and /dev/hwrng gives 64 bytes;
#   - after that guest stops, a last freestanding machine takes the MSI again (teardown after each
#     kind, Linux's included; a second Linux guest instead passed too but costs 33-47 s more);
#     `up` while another process holds the group fails saying so.
# Regenerate the goldens after an intended message change, then review the diff:
#   tools/dev-bazel test //tests/passthrough:passthrough_test \
#     --test_env=VMLAUNCH_UPDATE_GOLDEN=$PWD/tests/passthrough/golden
source tests/lib.sh
set -u
VMLAUNCH=$PWD/launcher/vmlaunch
WORK=${TEST_TMPDIR:-$(mktemp -d)}
export VML_GUESTS=$PWD/guests/x86
GOLDEN=$PWD/tests/passthrough/golden
# Bazel runs tests without HOME; the guest cache lives in the real home directory.
export HOME=${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}
if ! linux_paths=$(guests/x86_64/build generic 2>"$WORK/linux-build.log"); then
  tail -n 30 "$WORK/linux-build.log"
  check "the x86_64 guest with vmlaunch_edu.ko builds (guests/x86_64/build generic)" false
  finish
  exit
fi
# What the cache's links name now (another worktree's build may repoint them while this runs).
linux_kernel=$(readlink -f "$(sed -n 1p <<<"$linux_paths")")
linux_initrd=$(readlink -f "$(sed -n 2p <<<"$linux_paths")")

cat >"$WORK/inside.sh" <<'SH'
#!/usr/bin/env bash
# Runs inside the nested host as root. Each step leaves NAME.out (stdout+stderr) and NAME.rc.
vmlaunch=$1 work=$2
cd "$work" || exit 1
step() {
  local name=$1 start=$(date +%s%N)
  shift
  "$@" >"$name.out" 2>&1
  echo $? >"$name.rc"
  echo $((($(date +%s%N) - start) / 1000000)) >"$name.ms"  # for the log, never asserted
}
unprivileged() { (ulimit -l 1024 && setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all "$@"); }
step devices_json "$vmlaunch" host devices --json
step devices_text "$vmlaunch" host devices
bdf=$(for d in /sys/bus/pci/devices/*; do
  [ "$(cat "$d/vendor"):$(cat "$d/device")" = 0x1234:0x11e8 ] && basename "$d"
done)
group=$(basename "$(readlink "/sys/bus/pci/devices/$bdf/iommu_group")")
echo "$bdf $group" >edu.id
sed "s|@BDF@|$bdf|" machine.yaml.in >edu.yaml
step before_bind "$vmlaunch" validate --host edu.yaml
echo vfio-pci >"/sys/bus/pci/devices/$bdf/driver_override"
echo "$bdf" >/sys/bus/pci/drivers_probe
# nobody cannot reach the build tree (under root's home): a copy of the binary and the file in /tmp.
cp "$vmlaunch" /tmp/vmlaunch && cp edu.yaml /tmp/edu.yaml && chmod a+rx /tmp/vmlaunch && chmod a+r /tmp/edu.yaml
step unprivileged unprivileged /tmp/vmlaunch validate --host /tmp/edu.yaml
step bound "$vmlaunch" validate --host edu.yaml
# A running machine holds edu: another one with it is refused before it starts, naming the holder.
sed 's|^\(  kernel: .*\)$|\1\n  cmdline: "hold=1"|' edu.yaml >edu-hold.yaml
sed 's|^\(  kernel: .*\)$|\1\n  cmdline: "intx=1"|' edu.yaml >edu-intx.yaml
sed 's|^\(  kernel: .*\)$|\1\n  cmdline: "reads=2000 rom=1"|' edu.yaml >edu-reads.yaml
step holder timeout -k 5 120 "$vmlaunch" up -d --name holder edu-hold.yaml </dev/null
# Until its guest has run edu's checks and says it holds it (bounded: a failed guest ends the wait).
for _ in $(seq 240); do
  "$vmlaunch" logs holder 2>/dev/null | grep -q "edu: holding the device" && break
  "$vmlaunch" ps --json 2>/dev/null | grep -q '"state": "running"' || break
  sleep 0.5
done
"$vmlaunch" ps --json >holder.ps 2>&1
step held_up timeout -k 5 60 "$vmlaunch" up edu.yaml </dev/null
step held_validate "$vmlaunch" validate --host edu.yaml
"$vmlaunch" logs holder >holder.console 2>&1
step holder_down timeout -k 5 60 "$vmlaunch" down --force holder
# BAR0 trapped (each register access an exit and a VFIO pread), timing 2000 id register reads.
step guest1 env VMLAUNCH_VFIO_TRAP_BARS=1 timeout -k 5 120 "$vmlaunch" up edu-reads.yaml </dev/null
# INTx (MSI left off), traced: KVM irqfd with resample on the pin's GSI.
step guest_intx env VMLAUNCH_KVM_TRACE=1 bash -c 'exec timeout -k 5 120 "$0" up edu-intx.yaml </dev/null 2>guest_intx.trace' "$vmlaunch"
# Traced (on stderr, apart from the guest's output): BAR0 mmapped into a KVM memory slot, and the MSI
# through KVM irqfd ("kvm: irqfd"), not the VMM's forwarding thread; the same 2000 reads timed.
step guest2 env VMLAUNCH_KVM_TRACE=1 bash -c 'exec timeout -k 5 120 "$0" up edu-reads.yaml </dev/null 2>guest2.trace' "$vmlaunch"
# virtio-rng (modern only, MSI-X) for the Linux guest too: off the nested host's driver, onto vfio-pci.
rng=$(for d in /sys/bus/pci/devices/*; do
  [ "$(cat "$d/vendor"):$(cat "$d/device")" = 0x1af4:0x1044 ] && basename "$d"
done)
echo "$rng" >rng.id
echo vfio-pci >"/sys/bus/pci/devices/$rng/driver_override"
[ -e "/sys/bus/pci/devices/$rng/driver" ] && echo "$rng" >"/sys/bus/pci/devices/$rng/driver/unbind"
echo "$rng" >/sys/bus/pci/drivers_probe
# x86_64 Linux with vmlaunch_edu.ko, and virtio-rng.
sed "s|@BDF@|$bdf|; s|@RNG@|$rng|" linux.yaml.in >linux.yaml
step linux timeout -k 5 400 "$vmlaunch" up linux.yaml </dev/null
# And the freestanding guest once more after Linux (its MSI set up afresh).
step guest3 timeout -k 5 120 "$vmlaunch" up edu.yaml </dev/null
# Another process holds the group: the machine cannot start, and says why.
(exec 3<>"/dev/vfio/$group" && sleep 60) &
holder=$!
sleep 1
step busy timeout -k 5 60 "$vmlaunch" up edu.yaml </dev/null
kill "$holder"
wait "$holder" 2>/dev/null
readlink "/sys/bus/pci/devices/$bdf/driver" >driver_after 2>&1
exit 0
SH
chmod +x "$WORK/inside.sh"

# The Linux guest: load the driver (its probe runs the checks), unload it, load it again; the
# kernel's lines about edu on the console (quiet keeps them off it as they happen).
linux_cmd='insmod /lib/modules/extra/vmlaunch_edu.ko && echo "loaded 1"
echo "driver 1: $(basename "$(readlink /sys/bus/pci/drivers/vmlaunch_edu/0000:*/driver)")"
rmmod vmlaunch_edu && echo "removed"
insmod /lib/modules/extra/vmlaunch_edu.ko && echo "loaded 2"
dmesg | grep -E "vmlaunch_edu|edu:" | sed "s/^\[[ 0-9.]*\] /dmesg: /"
echo "hwrng: $(cat /sys/class/misc/hw_random/rng_current), $(head -c 64 /dev/hwrng | wc -c) bytes read"
grep -i virtio /proc/interrupts | sed "s/^/interrupts: /"
for d in /sys/bus/pci/devices/*; do for f in "$d"/msi_irqs/*; do
  [ -e "$f" ] && echo "msi_irqs: $(cat "$d/vendor"):$(cat "$d/device") irq $(basename "$f") $(cat "$f")"
done; done'
cat >"$WORK/linux.yaml.in" <<YAML
name: edu-linux
machine: {arch: x86_64, type: pc, memory: 256MiB}
cpu: {model: host, count: 1}
accel: [kvm]
boot: {kernel: "$linux_kernel", initrd: "$linux_initrd", cmdline: "console=ttyS0 quiet panic=-1 no_timer_check vml.cmd64=$(printf '%s' "$linux_cmd" | base64 -w0)"}
backends:
  chardev:
    con0: {driver: stdio}
passthrough:
  edu: {driver: vfio-pci, host: "@BDF@"}
  rng: {driver: vfio-pci, host: "@RNG@"}
devices:
  - {driver: ns16550, id: serial0, chardev: con0}
  - {driver: vfio-pci, id: edu0, passthrough: edu}
  - {driver: vfio-pci, id: rng0, passthrough: rng}
YAML
sed -e "s|\${VML_GUESTS}|$VML_GUESTS|" tests/passthrough/edu.yaml | sed 's|host: "0000:00:04.0"|host: "@BDF@"|' >"$WORK/machine.yaml.in"

# no_timer_check: with interrupt remapping Linux panics when its early check of the timer interrupt
# through the IOAPIC times out ("timer doesn't work through Interrupt-remapped IO-APIC"), which a
# TCG machine on a loaded host does now and then (seen once at load 14).
# edu's expansion ROM: one 2 KiB image (55 aa, a PCI data structure for 1234:11e8 marked EFI so the
# outer firmware does not run it, last image) with a text at 0x40 the guest prints.
python3 - "$WORK/edu.rom" <<'PY'
import struct, sys
rom = bytearray(2048)
rom[0:3] = b"\x55\xaa\x04"
struct.pack_into("<H", rom, 0x18, 0x1c)
rom[0x1c:0x20] = b"PCIR"
struct.pack_into("<HHHHB3sHHBB", rom, 0x20, 0x1234, 0x11e8, 0, 0x18, 0, b"\xff\x00\x00", 4, 0, 3, 0x80)
rom[0x40:0x50] = b"vmlaunch edu rom"
open(sys.argv[1], "wb").write(rom)
PY

# virtio-rng-pci, modern only (MSI-X, no MSI), its DMA through the IOMMU (iommu_platform) as a
# passed-through device's must be.
tools/nested-host --device intel-iommu,caching-mode=on --device "edu,romfile=$WORK/edu.rom" \
  --device virtio-rng-pci,disable-legacy=on,iommu_platform=on \
  --qemu-arg -machine --qemu-arg kernel-irqchip=split --kernel-arg intel_iommu=on --kernel-arg no_timer_check \
  --modprobe vfio_pci --modprobe vfio_iommu_type1 --timeout 1500 -- "$WORK/inside.sh" "$VMLAUNCH" "$WORK"
echo "    nested host: exit $?"
read -r bdf group <"$WORK/edu.id" 2>/dev/null || { bdf=missing group=missing; }
echo "    edu at $bdf, IOMMU group $group"
for step in guest1 guest2; do
  echo "    $step: $(grep -o 'edu: 2000 reads .*' "$WORK/$step.out" 2>/dev/null) (BAR0 $([ $step = guest1 ] && echo trapped || echo mmapped))"
done
for step in holder guest1 guest_intx guest2 linux guest3 busy; do echo "    vmlaunch up ($step), inside the nested host: $(cat "$WORK/$step.ms" 2>/dev/null) ms"; done

# Each step's output with the file name, the address and the group as placeholders, then its status.
normalised() {
  { sed -e "s|$WORK/||g; s|$bdf|@BDF@|g; s|(pid [0-9]*)|(pid @PID@)|g; s|/dev/vfio/$group\\b|/dev/vfio/@GROUP@|g; s|group $group of|group @GROUP@ of|g" \
      "$WORK/$1.out"
    echo "[exit $(cat "$WORK/$1.rc")]"; } 2>/dev/null
}
golden() {
  local actual
  actual=$(normalised "$1")
  if [ -n "${VMLAUNCH_UPDATE_GOLDEN:-}" ]; then
    printf '%s\n' "$actual" >"$VMLAUNCH_UPDATE_GOLDEN/nested_$1.expected"
    return 0
  fi
  if [ "$actual" != "$(cat "$GOLDEN/nested_$1.expected")" ]; then
    diff -u "$GOLDEN/nested_$1.expected" <(echo "$actual") | sed 's/^/    /'
    return 1
  fi
}

host_devices_lists_edu() {
  sed 's/^/    | /' "$WORK/devices_text.out"
  grep -q "^  $bdf  1234:11e8  Unclassified device .* $group (alone)$" "$WORK/devices_text.out" &&
    python3 - "$WORK/devices_json.out" "$bdf" "$group" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
edu = [d for d in j["pci"] if d["bdf"] == sys.argv[2]]
assert j["iommu"] is True, j["iommu"]
assert len(edu) == 1 and edu[0]["vendor"] == "1234" and edu[0]["device"] == "11e8", edu
assert edu[0]["iommu_group"] == int(sys.argv[3]) and edu[0]["driver"] is None, edu
PY
}
guest_runs_edu() {
  local out=$WORK/$1.out
  sed 's/^/    | /' "$out"
  [ "$(cat "$WORK/$1.rc")" = 0 ] && grep -q "edu: 00:.* BAR0 at 0x.*, id 0x010000ed" "$out" &&
    grep -q "edu: 10! = 3628800" "$out" && grep -q "edu: DMA into the device done" "$out" &&
    grep -q "edu: MSI on vector 0x41, interrupt status 0x00000100, DMA copy matches" "$out"
}
guest_takes_intx() {
  local out=$WORK/guest_intx.out
  sed 's/^/    | /' "$out"
  [ "$(cat "$WORK/guest_intx.rc")" = 0 ] && grep -q "edu: 10! = 3628800" "$out" &&
    grep -q "edu: INTx pin 1, GSI [0-9]*" "$out" &&
    grep -q "edu: INTx on vector 0x41, interrupt status 0x00000100, DMA copy matches" "$out" &&
    grep -q "edu: INTx again after the EOI, interrupt status 0x00000001, then no more: 2 interrupts" "$out"
}
# The holder ran edu's checks (MSI), then held it: ps lists it running.
holder_holds_edu() {
  sed 's/^/    | /' "$WORK/holder.out" "$WORK/holder.console"
  [ "$(cat "$WORK/holder.rc")" = 0 ] && grep -q "edu: MSI on vector 0x41, .*, DMA copy matches" "$WORK/holder.console" &&
    grep -q "edu: holding the device" "$WORK/holder.console" && grep -q '"state": "running"' "$WORK/holder.ps"
}
# The Linux guest ($1): the driver's checks passed twice (loaded, removed, loaded again), each with
# the id, 10! through the factorial-done MSI, and the DMA copy through edu and back with its MSIs.
linux_drives_edu() {
  local out=$WORK/$1.out
  tr -d '\r' <"$out" | sed 's/^/    | /'
  [ "$(cat "$WORK/$1.rc")" = 0 ] && tr -d '\r' <"$out" >"$WORK/$1.txt" || return 1
  local txt=$WORK/$1.txt
  grep -qx "VML-CMD-EXIT=0" "$txt" && grep -qx "loaded 1" "$txt" && grep -qx "driver 1: vmlaunch_edu" "$txt" &&
    grep -qx "removed" "$txt" && grep -qx "loaded 2" "$txt" || return 1
  [ "$(grep -c "^dmesg: vmlaunch_edu 0000:00:[0-9a-f.]*: edu: id 0x010000ed$" "$txt")" = 2 ] &&
    [ "$(grep -c "^dmesg: vmlaunch_edu .*: edu: liveness 0x12345678 -> 0xedcba987$" "$txt")" = 2 ] &&
    [ "$(grep -c "^dmesg: vmlaunch_edu .*: edu: MSI enabled (1), irq [0-9]*$" "$txt")" = 2 ] &&
    [ "$(grep -c "^dmesg: vmlaunch_edu .*: edu: 10! = 3628800, factorial-done interrupt status 0x00000001, computing 0$" "$txt")" = 2 ] &&
    [ "$(grep -c "^dmesg: vmlaunch_edu .*: edu: DMA RAM 0x[0-9a-f]* -> edu done, interrupt status 0x00000100$" "$txt")" = 2 ] &&
    [ "$(grep -c "^dmesg: vmlaunch_edu .*: edu: DMA edu -> RAM 0x[0-9a-f]* done, interrupt status 0x00000100$" "$txt")" = 2 ] &&
    [ "$(grep -c "^dmesg: vmlaunch_edu .*: edu: DMA copy of 2048 bytes matches; 3 interrupts$" "$txt")" = 2 ] &&
    [ "$(grep -c "^dmesg: vmlaunch_edu .*: edu: checks passed (0)$" "$txt")" = 2 ]
}
# virtio-rng passed through to the same Linux guest: its driver takes MSI-X vectors (the table and
# PBA ours, each vector an eventfd bound by KVM irqfd) and a read of /dev/hwrng completes, which
# needs the device's used-buffer interrupt.
linux_uses_rng_with_msix() {
  local txt=$WORK/$1.txt
  # Linux 6.1 names MSI and MSI-X alike in /proc/interrupts ("PCI-MSI"); msi_irqs says which.
  local input
  input=$(sed -n 's/^interrupts: *\([0-9]*\): *\([0-9]*\) .*PCI-MSI.* virtio[0-9]-input$/\1 \2/p' "$txt")
  grep -qx "hwrng: virtio_rng.0, 64 bytes read" "$txt" && [ -n "$input" ] && [ "${input#* }" -gt 0 ] &&
    grep -qx "msi_irqs: 0x1af4:0x1044 irq ${input% *} msix" "$txt" &&
    [ "$(grep -c "^msi_irqs: 0x1af4:0x1044 irq [0-9]* msix$" "$txt")" = 2 ]
}
busy_group_is_an_error() {
  sed 's/^/    | /' "$WORK/busy.out"
  [ "$(cat "$WORK/busy.rc")" = 1 ] && grep -q "passthrough.edu.host: opening /dev/vfio/$group: busy" "$WORK/busy.out"
}

check host_devices_lists_edu host_devices_lists_edu
check preflight_before_binding golden before_bind
check preflight_unprivileged golden unprivileged
check preflight_bound_is_clean golden bound
check holder_holds_edu holder_holds_edu
check preflight_held_by_machine_up golden held_up
check preflight_held_by_machine_validate golden held_validate
check holder_stops golden holder_down
check first_guest_drives_edu guest_runs_edu guest1
check intx_with_resample guest_takes_intx
check intx_through_kvm_resample_irqfd grep -q "^kvm: irqfd [0-9]* -> gsi [0-9]*, level, resample [0-9]*$" "$WORK/guest_intx.trace"
check second_guest_after_teardown guest_runs_edu guest2
check linux_guest_drives_edu_with_its_driver linux_drives_edu linux
check linux_guest_uses_virtio_rng_through_msix linux_uses_rng_with_msix linux
check freestanding_guest_after_linux guest_runs_edu guest3
check rom_trapped grep -q "edu: ROM of 2048 bytes, signature 55aa, says: vmlaunch edu rom" "$WORK/guest1.out"
check rom_with_bar0_mapped grep -q "edu: ROM of 2048 bytes, signature 55aa, says: vmlaunch edu rom" "$WORK/guest2.out"
check timed_reads_trapped grep -q "edu: 2000 reads of the id register, [0-9]* TSC cycles each" "$WORK/guest1.out"
check timed_reads_mmapped grep -q "edu: 2000 reads of the id register, [0-9]* TSC cycles each" "$WORK/guest2.out"
check bar0_in_a_kvm_memory_slot grep -q "^kvm: slot [0-9]*: device memory at 0x[0-9a-f]*, 0x100000 bytes$" "$WORK/guest2.trace"
check msi_through_kvm_irqfd grep -q "^kvm: irqfd [0-9]* -> gsi 24 -> MSI address 0xfee00000 data 0x41$" "$WORK/guest2.trace"
check busy_group_is_an_error busy_group_is_an_error
check device_still_on_vfio_pci grep -q "vfio-pci$" "$WORK/driver_after"
finish
