#!/usr/bin/env bash
# Crash consistency of the qcow2 backend under a real guest (after QEMU's iotests): the riscv64
# Linux guest writes and flushes numbered 64 KiB records to a qcow2 disk without pause, and the VMM
# is killed with SIGKILL at a random moment, ROUNDS times (default 50) on the same image. After
# every kill:
#   - `qemu-img check` must report no corruption (exit 0, or 3 = leaked clusters only);
#   - every record the guest saw flushed (it prints "flushed-N" only after dd's conv=fsync, i.e.
#     after virtio-blk FLUSH returned) is there, byte for byte, unless a later record replaced it.
# Record N goes to slot N % 512 of a 64 MiB image (32 MiB of slots: the first rounds allocate
# clusters, later ones overwrite them); each round continues the numbering where the last ack was.
#   BZ=you tools/dev-bazel build //launcher:vmlaunch && bench/blk/crash_kill.sh /tmp/bz-you/bin/launcher/vmlaunch
# Environment: ROUNDS (50), MAX_DELAY_MS (3000, the longest wait after the round's first ack).
# Prints one line per round and ends with "N rounds, N failed"; exits 1 if any round failed.
set -uo pipefail
source "$(dirname "$(readlink -f "$0")")/../guest.sh"
bench_guest "${1:-}"
rounds=${ROUNDS:-50}
# Killed VMMs leave stale machine directories: keep them out of the user's.
export VMLAUNCH_STATE_DIR=$tmp/state
mkdir -p "$VMLAUNCH_STATE_DIR"
max_delay_ms=${MAX_DELAY_MS:-3000}
command -v qemu-img >/dev/null || { echo "qemu-img not installed (apt-get install qemu-utils)" >&2; exit 1; }

qemu-img create -q -f qcow2 "$tmp/disk.qcow2" 64M
state=$tmp/state.json
echo '{"slots": {}, "torn": []}' >"$state"

# verify.py STATE IMAGE_RAW LOG: folds this round's acks (LOG) into STATE, then checks each slot.
cat >"$tmp/verify.py" <<'PY'
import json, re, sys
state_path, raw_path, log_path = sys.argv[1:4]
state = json.load(open(state_path))
slots = {int(k): v for k, v in state["slots"].items()}
torn = set(state["torn"])
acked = [int(m) for m in re.findall(rb"flushed-(\d+)", open(log_path, "rb").read())]
start = int(state.get("next", 0))
for n in acked:
    slots[n % 512] = n
    torn.discard(n % 512)
last = acked[-1] if acked else start - 1
# The write after the last ack may have been under way when the VMM died: that slot may be torn.
torn.add((last + 1) % 512)
bad = []
with open(raw_path, "rb") as f:
    for slot, n in sorted(slots.items()):
        if slot in torn:
            continue
        f.seek(slot * 65536)
        if f.read(65536) != (b"n=%013d\n" % n) * 4096:
            bad.append("slot %d: record %d missing or damaged" % (slot, n))
state = {"slots": {str(k): v for k, v in slots.items()}, "torn": sorted(torn), "next": last + 1}
json.dump(state, open(state_path, "w"))
print("acked %d (records %d..%d), %d slots checked%s" % (
    len(acked), start, last, len(slots) - len(torn & set(slots)),
    "; " + "; ".join(bad[:5]) if bad else ""))
sys.exit(1 if bad else 0)
PY

failed=0 leaks=0
for round in $(seq 1 "$rounds"); do
  next=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("next", 0))' "$state")
  guest_append "n=$next; while true; do yes \$(printf n=%013d \$n) | head -c 65536 |
dd of=/dev/vda bs=65536 seek=\$((n % 512)) conv=fsync 2>/dev/null || break; echo flushed-\$n; n=\$((n+1)); done"
  # guest_yaml's backends hold only the console: the disk goes beside it.
  {
    guest_yaml "crash-kill" 1 jit "$append" |
      sed "s|^  chardev: {con0: {driver: stdio}}|&\n  block: {disk0: {driver: qcow2, file: $tmp/disk.qcow2}}|"
    echo "  - {driver: virtio-blk-mmio, id: vda, drive: disk0}"
  } >"$tmp/vm.yaml"
  log=$tmp/round$round.log
  "$vml" up "$tmp/vm.yaml" </dev/null >"$log" 2>"$tmp/round$round.err" &
  pid=$!
  waited=0
  until grep -aq "flushed-" "$log" || ! kill -0 "$pid" 2>/dev/null || [ "$waited" -ge 3000 ]; do
    sleep 0.1
    waited=$((waited + 1))
  done
  if ! grep -aq "flushed-" "$log"; then
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    echo "round $round: the guest never acked a write; stderr:" && tail -5 "$tmp/round$round.err"
    failed=$((failed + 1))
    continue
  fi
  delay_ms=$((RANDOM % max_delay_ms))
  sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
  kill -9 "$pid"
  wait "$pid" 2>/dev/null
  qemu-img check -q "$tmp/disk.qcow2" >"$tmp/check.log" 2>&1
  check_rc=$?
  [ "$check_rc" -eq 3 ] && leaks=$((leaks + 1))
  qemu-img convert -f qcow2 -O raw "$tmp/disk.qcow2" "$tmp/disk.raw"
  result=$(python3 "$tmp/verify.py" "$state" "$tmp/disk.raw" "$log")
  verify_rc=$?
  if [ "$check_rc" -ne 0 ] && [ "$check_rc" -ne 3 ]; then
    echo "round $round: killed after ${delay_ms} ms; qemu-img check exit $check_rc (corruption):"
    cat "$tmp/check.log"
    cp "$tmp/disk.qcow2" "/tmp/crash_kill_corrupt_round$round.qcow2"
    failed=$((failed + 1))
  elif [ "$verify_rc" -ne 0 ]; then
    echo "round $round: killed after ${delay_ms} ms; $result"
    failed=$((failed + 1))
  else
    echo "round $round: killed after ${delay_ms} ms; check exit $check_rc; $result"
  fi
done
echo "$rounds rounds, $failed failed ($leaks rounds left leaked clusters, which qemu-img check -r leaks repairs)"
[ "$failed" -eq 0 ]
