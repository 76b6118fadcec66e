#!/usr/bin/env bash
# Snapshots of x86_64 machines on kvm (inside the nested KVM host where this host has no usable
# /dev/kvm; tests/nested): guests/x86/count64 counts LAPIC timer ticks in 64-bit mode and prints
# COUNT=n, checking at every line that an SSE register, CR4 and two syscall MSRs kept their values.
# For microvm (split irqchip, vmlaunch's IOAPIC; 1 vCPU) and pc (KVM's full irqchip, the PCI host; 2 vCPUs,
# the second waiting for a SIPI):
# `vmlaunch snapshot --stop` mid-count, then `up --restore`: the count goes on from where it was
# (never from 1 again), the checked state is intact, the guest counts to the end and exits 0.
# Refused restores (exit 2, the reason named, nothing of the guest runs): a flipped byte in the state
# file, another machine type, another CPU feature set, a TSC rate this host cannot give (a rate
# slightly off, or one KVM scales to, restores and runs). microvm also takes a snapshot of the running
# restored machine, which runs on, is killed, and is restored from that second snapshot. One nested
# boot for all of it. pc with vmgenid (guests/x86/genid64): the ID through the DSDT, two restored
# copies each notified once, with IDs of their own.
source tests/lib.sh
vml=$PWD/launcher/vmlaunch
source tests/boot/console.sh
# The consoles' FIFOs in a local /tmp: the nested host's view of TEST_TMPDIR (9p) has no FIFOs.
tmp=$(mktemp -d /tmp/x86snap.XXXXXX)
export VML_GUESTS=$PWD/guests/x86

# Whole lines only: the snapshot may fall in the middle of one.
counts() { grep -aE '^COUNT=[0-9]+'$'\r''?$' "$1" | tr -d '\r' | cut -d= -f2; }

snapshot_case() {  # TYPE CPUS
  local type=$1 cpus=$2 name=snap-$1-$$ snap=$tmp/snap-$1
  cat >"$tmp/$type.yaml" <<YAML
name: $name
machine: {arch: x86_64, type: $type, memory: 32MiB}
cpu: {model: host, count: $cpus}
accel: [kvm]
boot:
  kernel: $VML_GUESTS/count64.elf
  cmdline: "every=20 limit=40"
backends:
  chardev:
    con0: {driver: stdio}
devices:
  - {driver: ns16550, id: serial0, chardev: con0}
YAML
  vm_start_with "$tmp/$type.yaml" --name "$name"
  vm_wait "COUNT=4" 300
  check "$type: the guest counts" test $? -eq 0
  "$vml" snapshot "$name" "$snap" --stop --json >"$tmp/$type.snapshot.json" 2>"$tmp/$type.snapshot.err"
  local saved=$?
  check "$type: vmlaunch snapshot --stop succeeds" test "$saved" -eq 0
  vm_finish 120
  check "$type: the VMM stops after the snapshot with status 0" test "$vm_status" -eq 0
  [ "$saved" -eq 0 ] && [ "$vm_status" -eq 0 ] || { vm_dump; cat "$tmp/$type.snapshot.err"; }
  local before first
  before=$(counts "$vm_out" | tail -n 1)
  check "$type: the snapshot holds config, state and RAM" test -s "$snap/config.json" -a -s "$snap/state.vmls" -a -s "$snap/ram.zst"

  vm_start_with --restore "$snap" --name "$name"
  if [ "$type" = microvm ]; then
    # A snapshot of the running restored machine (no --stop): it runs on; its VMM is then killed and
    # this second snapshot restored, which counts on from it to the end.
    local lo hi after
    vm_wait "COUNT=$((${before:-0} + 3))" 120
    lo=$(counts "$vm_out" | tail -n 1)  # printed before the snapshot began
    "$vml" snapshot "$name" "$tmp/snap2" >/dev/null 2>"$tmp/$type.snapshot2.err"
    local saved2=$?
    check "$type: a snapshot of the running machine succeeds" test "$saved2" -eq 0
    [ "$saved2" -eq 0 ] || { vm_dump; cat "$tmp/$type.snapshot2.err"; }
    hi=$(counts "$vm_out" | tail -n 1)  # printed by the time it ended
    vm_wait "COUNT=$((${hi:-0} + 2))" 120
    check "$type: and the machine runs on after it" test $? -eq 0
    first=$(counts "$vm_out" | head -n 1)
    kill -9 "$vm_pid"
    wait "$vm_pid" 2>/dev/null
    exec 7>&- 2>/dev/null
    vm_start_with --restore "$tmp/snap2" --name "$name"
    vm_finish 300
    after=$(counts "$vm_out" | head -n 1)
    echo "$type: second snapshot (running) between COUNT=${lo:-?} and COUNT=${hi:-?}, restored from COUNT=${after:-?}"
    # The next whole line after what the snapshot saw: above lo, at most hi + 2 (hi + 1 may have been
    # half printed when the vCPU was paused).
    check "$type: the second restore continues from the running snapshot (${lo:-?}..${hi:-?} -> ${after:-?})" \
      test -n "$after" -a -n "$lo" -a -n "$hi" -a "${after:-0}" -gt "${lo:-99}" -a "${after:-0}" -le $((${hi:-0} + 2))
  else
    vm_finish 300
    first=$(counts "$vm_out" | head -n 1)
  fi
  check "$type: the restored guest counts to the end and exits 0" test "$vm_status" -eq 0
  echo "$type: snapshot after COUNT=${before:-?}, restored from COUNT=${first:-?}"
  # The next line, or the one after it when the snapshot fell inside the next line.
  check "$type: the count continues where the snapshot left it (${before:-?} -> ${first:-?})" \
    test -n "$first" -a -n "$before" -a "${first:-0}" -gt "${before:-99}" -a "${first:-0}" -le $((${before:-0} + 2))
  check "$type: the SSE register, CR4 and MSRs survived" bash -c "! grep -aq STATE-LOST '$vm_out'"
  check "$type: it counts to the end" grep -aq "count-done" "$vm_out"
  [ "$vm_status" -eq 0 ] || vm_dump
}

# The VM generation ID (device vmgenid, pc): guests/x86/genid64 finds it through the DSDT's VGEN
# ADDR, prints it and waits for the GED's GSI 16. `snapshot --stop` while it waits, then two restores
# of that one snapshot: each copy is notified once before anything else wakes it and reads an ID
# of its own, unlike the original's and the other copy's.
genid_ids() { grep -aE "$1" "$2" | tr -d '\r' | sed 's/.*GENID=//'; }
genid_case() {
  local name=genid-$$ snap=$tmp/snap-genid original copy id ids=""
  cat >"$tmp/genid.yaml" <<YAML
name: $name
machine: {arch: x86_64, type: pc, memory: 32MiB}
cpu: {model: host, count: 1}
accel: [kvm]
boot:
  kernel: $VML_GUESTS/genid64.elf
  cmdline: "notifications=1"
backends:
  chardev:
    con0: {driver: stdio}
devices:
  - {driver: ns16550, id: serial0, chardev: con0}
  - {driver: vmgenid, id: genid0}
YAML
  vm_start_with "$tmp/genid.yaml" --name "$name"
  vm_wait "genid64: waiting" 300
  check "vmgenid: the guest finds VGEN's ADDR and waits" test $? -eq 0
  original=$(genid_ids '^GENID=' "$vm_out")
  check "vmgenid: the guest reads the ID at ADDR (0xff000)" grep -aq "ADDR=0x000ff000" "$vm_out"
  "$vml" snapshot "$name" "$snap" --stop >/dev/null 2>"$tmp/genid.snapshot.err"
  check "vmgenid: vmlaunch snapshot --stop succeeds" test $? -eq 0
  vm_finish 120
  check "vmgenid: nothing notified the original" bash -c "! grep -aq NOTIFIED '$vm_out'"
  [ "$vm_status" -eq 0 ] || { vm_dump; cat "$tmp/genid.snapshot.err"; }
  for copy in 1 2; do
    vm_start_with --restore "$snap" --name "$name"
    vm_finish 120
    check "vmgenid: copy $copy is notified once and exits 0" test "$vm_status" -eq 0
    [ "$vm_status" -eq 0 ] || vm_dump
    id=$(genid_ids '^NOTIFIED=1 GENID=' "$vm_out")
    echo "vmgenid: original ${original:-?}, copy $copy ${id:-?}"
    check "vmgenid: copy $copy reads a 16-byte ID" bash -c "[[ '$id' =~ ^[0-9a-f]{32}$ ]]"
    check "vmgenid: copy $copy's ID differs from the original's" test -n "$id" -a "$id" != "$original"
    ids="$ids $id"
  done
  # shellcheck disable=SC2086
  check "vmgenid: the two copies' IDs differ" test "$(printf '%s\n' $ids | sort -u | wc -l)" -eq 2
}

refused() { restore_refused "$tmp/snap-microvm" "$tmp" "$@"; }  # NAME PATTERN SETUP... (tests/lib.sh)

# tsc_edit EXPR: in the state.vmls of the current directory, every vCPU's saved TSC rate (kHz, the
# last u32 of its state) becomes EXPR of the saved one (x), and the CRC-32C is written again.
tsc_edit() {
  python3 - "$1" <<'PY'
import json, struct, sys
b = bytearray(open('state.vmls', 'rb').read())
hlen = struct.unpack_from('<Q', b, 12)[0]
h = json.loads(bytes(b[20:20 + hlen]))
blob = 20 + hlen + 8
for v in h['vcpus']:
    at = blob + v['offset'] + v['length'] - 4
    x = struct.unpack_from('<I', b, at)[0]
    struct.pack_into('<I', b, at, int(eval(sys.argv[1])))
table = []
for i in range(256):
    c = i
    for _ in range(8):
        c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
    table.append(c)
crc = 0xffffffff
for byte in b[:-4]:
    crc = table[(crc ^ byte) & 0xff] ^ (crc >> 8)
struct.pack_into('<I', b, len(b) - 4, crc ^ 0xffffffff)
open('state.vmls', 'wb').write(b)
PY
}
# tsc_restore NAME EXPR: a copy of the microvm snapshot with its TSC rate edited restores; prints
# what became of it: "runs" (the guest counts on with its state intact) or the refusal.
tsc_restore() {
  rm -rf "$tmp/tsc"
  cp -a "$tmp/snap-microvm" "$tmp/tsc"
  (cd "$tmp/tsc" && tsc_edit "$2")
  vm_start_with --restore "$tmp/tsc" --name "tsc$$"
  vm_wait "COUNT=" 60
  local counted=$?
  if [ "$counted" -eq 0 ] && ! grep -aq STATE-LOST "$vm_out"; then
    tsc_outcome=runs
  else
    tsc_outcome=$(grep -ao "TSC runs at.*" "$vm_err" | head -n 1)
    [ -n "$tsc_outcome" ] || { tsc_outcome=failed; vm_dump; }
  fi
  vm_stop
  echo "TSC rate $2 of the saved one: $tsc_outcome"
}

snapshot_case microvm 1
# Two vCPUs: the second waits for an INIT/SIPI that never comes, a run state that is restored too.
snapshot_case pc 2
genid_case

refused "a flipped byte in the state file" "corrupted \(checksum mismatch\)" "python3 -c \"
b = bytearray(open('state.vmls', 'rb').read()); b[300] ^= 0xff; open('state.vmls', 'wb').write(b)\""
refused "another machine type" "another machine type \(snapshot: microvm, this machine: pc\)" "python3 -c \"
import json; c = json.load(open('config.json')); c['machine']['type'] = 'pc'; json.dump(c, open('config.json', 'w'))\""
refused "another CPU feature set" "another CPU feature set" "python3 -c \"
import json; c = json.load(open('config.json')); c['cpu']['features'] = ['-x2apic']; json.dump(c, open('config.json', 'w'))\""
# The guest's TSC rate (saved per vCPU): one no KVM can give (2^31-1 kHz) is refused, naming both
# rates and the fix. 100 ppm off (within KVM's tolerance, two calibrations of one CPU) restores and
# runs. 10% off runs where KVM scales the TSC (KVM_CAP_TSC_CONTROL), else is refused for the lack of
# it: never anything else.
refused "a TSC rate this host cannot give" \
  "guest TSC runs at 2147483647 kHz, this host's at [0-9]+ kHz \(.*\); restore it on a host with the same TSC rate" \
  "tsc_edit 2147483647"
tsc_restore "100 ppm" "x + x // 10000"
check "a TSC rate 100 ppm off restores and the guest runs" test "$tsc_outcome" = runs
tsc_restore "10%" "x * 9 // 10"
case $tsc_outcome in runs | *"no KVM_CAP_TSC_CONTROL"*) tsc_ok=0 ;; *) tsc_ok=1 ;; esac
check "a TSC rate 10% off runs (TSC scaling) or is refused for the lack of KVM_CAP_TSC_CONTROL" \
  test "$tsc_ok" -eq 0
finish
