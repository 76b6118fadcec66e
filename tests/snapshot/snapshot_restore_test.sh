#!/usr/bin/env bash
# Snapshots of the riscv64 Linux guest (2 harts, jit) through `vmlaunch snapshot` and
# `up --restore`: the guest counts on its console while it writes 2 MB to its virtio-blk disk; a
# snapshot with --stop ends the VMM mid-way; the restored machine (started --paused, then resumed)
# continues the count where it was (never from 0); a second snapshot of it without --stop lets it
# run on until its VMM is killed; restored again, it counts to the end and the disk holds the
# whole payload. Before
# that, damaged or mismatching copies of the snapshot are refused with exit 2 and a message naming
# the reason, and nothing of the guest runs: a flipped byte or another format version in the state
# file, a truncated or altered RAM file, another device set or CPU count in its config, a missing
# disk. After it, a disk changed since the snapshot is refused. One boot, two restores.
source tests/lib.sh
source tests/boot/console.sh

use_riscv64_guest tests/snapshot/snapshot_restore_test.sh

name=snap$$
snap=$tmp/snap
truncate -s 8M "$tmp/disk.raw"
seq 1 300000 >"$tmp/payload"
payload_bytes=$(wc -c <"$tmp/payload")

guest=$(cat <<'SH'
seq 1 300000 >/tmp/f
(dd if=/tmp/f of=/dev/vda bs=64k 2>/dev/null && sync && echo DISK-WRITTEN) &
i=0
while [ $i -lt 80 ]; do echo COUNT=$i; i=$((i+1)); sleep 0.25; done
wait
echo count-done
SH
)
riscv64_guest_yaml "$name" 2 "console=ttyS0 quiet vml.cmd64=$(printf '%s' "$guest" | base64 -w0)" >"$tmp/snap.yaml"
cat >>"$tmp/snap.yaml" <<YAML
  block:
    disk0: {driver: raw, file: $tmp/disk.raw}
devices:
  - {driver: ns16550, id: serial0, chardev: con0}
  - {driver: virtio-blk-mmio, id: vda, drive: disk0}
YAML

vm_start "$tmp/snap.yaml"
vm_wait "COUNT=4" 900
check "the guest boots and counts" test $? -eq 0
"$vml" snapshot "$name" "$snap" --stop --json >"$tmp/snapshot.json" 2>"$tmp/snapshot.err"
check "vmlaunch snapshot --stop succeeds" test $? -eq 0
vm_finish 120
check "the VMM stops after the snapshot with status 0" test "$vm_status" -eq 0
# Whole lines only: the snapshot may fall in the middle of one (the rest comes after the restore).
counts() { grep -aE '^COUNT=[0-9]+'$'\r''?$' "$1" | tr -d '\r' | cut -d= -f2; }
last_before=$(counts "$vm_out" | tail -n 1)
check "the snapshot directory has config, state and RAM" test -s "$snap/config.json" -a -s "$snap/state.vmls" -a -s "$snap/ram.zst"
check "snapshot --json reports 256 MiB of RAM and fewer bytes written" python3 -c "
import json, sys
r = json.load(open('$tmp/snapshot.json'))
sys.exit(0 if r['ram_bytes'] == 256 << 20 and 0 < r['ram_file_bytes'] < r['ram_bytes'] and r['stopped'] else 1)"
[ "$vm_status" -eq 0 ] || { vm_dump; cat "$tmp/snapshot.err"; }

# Refusals: each on a copy of the snapshot, each exit 2 with its reason, no guest output.
refused() { restore_refused "$snap" "$tmp" "$@"; }  # NAME PATTERN SETUP... (tests/lib.sh)
flip() {  # FILE OFFSET: inverts one byte
  python3 -c "
import sys
p, at = sys.argv[1], int(sys.argv[2])
b = bytearray(open(p, 'rb').read()); b[at if at >= 0 else len(b) + at] ^= 0xff; open(p, 'wb').write(b)" "$1" "$2"
}
refused "a flipped byte in the state file" "corrupted \(checksum mismatch\)" "flip state.vmls 300"
refused "another format version" "snapshot format version 255" "python3 -c \"
b = bytearray(open('state.vmls', 'rb').read()); b[8] = 255; open('state.vmls', 'wb').write(b)\""
refused "a truncated state file" "truncated" "truncate -s -100 state.vmls"
refused "a truncated RAM file" "ram.zst is [0-9]+ bytes, the snapshot wrote [0-9]+ \(truncated" "truncate -s -1 ram.zst"
refused "an altered RAM file" "ram.zst: chunk [0-9]+: corrupted \(checksum mismatch\)" "flip ram.zst 1000"
refused "another device set" "another set of devices \(\+rng0 \(virtio-rng-mmio " "python3 -c \"
import json; c = json.load(open('config.json'))
c['backends']['rng'] = {'r0': {'driver': 'random'}}
c['devices'].append({'driver': 'virtio-rng-mmio', 'id': 'rng0', 'rng': 'r0'})
json.dump(c, open('config.json', 'w'))\""
refused "another CPU count" "another CPU count \(snapshot: 2, this machine: 1\)" "python3 -c \"
import json; c = json.load(open('config.json')); c['cpu']['count'] = 1; json.dump(c, open('config.json', 'w'))\""
mv "$tmp/disk.raw" "$tmp/disk.moved"
refused "a missing disk" "disk disk0 \(.*disk.raw\) is missing" "true"
mv "$tmp/disk.moved" "$tmp/disk.raw"

# The real restore: paused first (nothing runs), then resumed.
vm_start_with --restore "$snap" --name "$name" --paused
live_state() {
  "$vml" inspect "$name" --json 2>/dev/null | python3 -c "import json, sys; print(json.load(sys.stdin)['stats']['state'])" 2>/dev/null
}
# Until the restore is done and the machine settled (created -> running -> paused, in a moment).
for _ in $(seq 1 600); do
  state=$(live_state)
  [ "$state" = paused ] && break
  kill -0 "$vm_pid" 2>/dev/null || break
  sleep 0.1
done
check "up --restore --paused starts the machine paused (state: ${state:-none})" test "$state" = paused
check "nothing ran while paused" bash -c "! grep -aq COUNT '$vm_out'"
"$vml" resume "$name" >/dev/null 2>&1
check "vmlaunch resume continues it" test $? -eq 0
first_out=$vm_out

# A second snapshot of the restored machine, without --stop: it runs on; then its VMM is killed
# (SIGKILL) and the second snapshot restored. Taken once the guest's disk write is synced, so the
# disk stays as that snapshot knew it.
grep -aq DISK-WRITTEN "$tmp/vm1.out" || vm_wait "DISK-WRITTEN" 600
check "the disk write completes (before or after the first snapshot)" test $? -eq 0
# After it has counted on a little; paused first, so the count at the snapshot is known exactly
# (nothing prints while paused).
vm_wait "COUNT=$((${last_before:-0} + 3))" 120
"$vml" pause "$name" >/dev/null
at_second=$(counts "$vm_out" | tail -n 1)
"$vml" snapshot "$name" "$tmp/snap2" >/dev/null 2>"$tmp/snapshot2.err"
check "a snapshot without --stop of a paused machine succeeds" test $? -eq 0
check "and leaves it paused (state: $(live_state))" test "$(live_state)" = paused
"$vml" resume "$name" >/dev/null
vm_wait "COUNT=$((at_second + 2))" 120
check "the machine runs on after the snapshot (COUNT=$at_second and on)" test $? -eq 0
kill -9 "$vm_pid"
wait "$vm_pid" 2>/dev/null
exec 7>&- 2>/dev/null
first_restored=$(counts "$first_out" | head -n 1)
# The next line, or the one after it when the snapshot fell inside the next line.
check "the restored machine counted from where the first snapshot left it (${last_before:-?} -> ${first_restored:-?})" \
  test -n "$first_restored" -a -n "$last_before" -a "${first_restored:-0}" -gt "${last_before:-99}" -a "${first_restored:-0}" -le $((${last_before:-0} + 2))
check "and never started over" bash -c "! grep -aq 'COUNT=0\b' '$first_out'"

vm_start_with --restore "$tmp/snap2" --name "$name"
vm_wait "count-done" 600
vm_finish 120
check "the machine restored after the kill runs to the end and powers off (status 0)" test "$vm_status" -eq 0
first_after=$(counts "$vm_out" | head -n 1)
echo "counter: first snapshot after COUNT=$last_before -> restored from COUNT=$first_restored; second snapshot after COUNT=$at_second -> restored from COUNT=$first_after"
# The next line, or the one after it when the snapshot fell inside the next line.
check "the counter continues where the second snapshot left it (${at_second:-?} -> ${first_after:-?})" \
  test -n "$first_after" -a -n "$at_second" -a "${first_after:-0}" -gt "${at_second:-99}" -a "${first_after:-0}" -le $((${at_second:-0} + 2))
check "it counts to the end" grep -aq "COUNT=79" "$vm_out"
check "the disk holds the whole payload" cmp -s <(head -c "$payload_bytes" "$tmp/disk.raw") "$tmp/payload"
[ "$vm_status" -eq 0 ] || vm_dump

# The disk is not the one the snapshot knew any more.
touch -d '2001-01-01' "$tmp/disk.raw"
refused "a disk changed since the snapshot" "disk disk0 \(.*\) changed since the snapshot" "true"
finish
