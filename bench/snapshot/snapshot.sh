#!/usr/bin/env bash
# Snapshot benchmark (issue 15): the default riscv64 guest (guests/ Linux + busybox behind OpenSBI,
# 2 harts, jit, MEMORY default 256MiB) boots to a userspace marker and idles; `vmlaunch snapshot`
# saves it (size of DIR, RAM written, save time as the VMM measures it and as the client sees it);
# the VMM is killed; `up --restore DIR` runs again to the point where the guest prints its next
# line (restore-to-running). The peer is a cold boot of the same machine to the same marker, in the
# same run. RUNS (default 3) of each, medians.
#   BZ=name tools/dev-bazel run //bench/snapshot     (or: bench/snapshot/snapshot.sh VMLAUNCH)
set -euo pipefail
runs=${RUNS:-3}
# shellcheck source=bench/guest.sh
source "$(dirname "$(readlink -f "$0")")/../guest.sh"
bench_locate "snapshot bench" "${1:-}"
memory=${MEMORY:-256MiB}
name=snapbench$$

tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
# The guest prints READY once userspace runs, then a TICK line every 0.2 s of guest time.
cmd='echo READY; i=0; while :; do echo TICK=$i; i=$((i+1)); sleep 0.2; done'
cat >"$tmp/m.yaml" <<YAML
name: $name
machine: {arch: riscv64, type: virt, memory: $memory}
cpu: {model: rv64gc, count: 2}
accel: [jit]
boot: {firmware: opensbi, kernel: $kernel, initrd: $initrd, cmdline: 'console=ttyS0 quiet vml.cmd64=$(printf '%s' "$cmd" | base64 -w0)'}
backends:
  chardev:
    con0: {driver: stdio}
devices:
  - {driver: ns16550, id: serial0, chardev: con0}
YAML

# wait_for FILE PATTERN PID: until FILE matches (prints the time) or PID ends (fails).
wait_for() {
  while ! grep -aqs "$2" "$1"; do
    kill -0 "$3" 2>/dev/null || { echo "snapshot bench: vmlaunch ended early:" >&2; tail -n 20 "$1" >&2; exit 1; }
    sleep 0.01
  done
  echo "$EPOCHREALTIME"
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

for run in $(seq 1 "$runs"); do
  rm -rf "$tmp/snap"
  start=$EPOCHREALTIME
  "$vml" up "$tmp/m.yaml" </dev/null >"$tmp/cold.out" 2>&1 &
  pid=$!
  ready=$(wait_for "$tmp/cold.out" READY "$pid")
  wait_for "$tmp/cold.out" TICK=2 "$pid" >/dev/null
  echo "$ready - $start" | bc >>"$tmp/cold_s"
  s0=$EPOCHREALTIME
  "$vml" snapshot "$name" "$tmp/snap" --json >"$tmp/snap.json"
  s1=$EPOCHREALTIME
  echo "$s1 - $s0" | bc >>"$tmp/client_s"
  python3 -c "import json; r = json.load(open('$tmp/snap.json')); print(r['seconds'])" >>"$tmp/save_s"
  du -sb "$tmp/snap" | cut -f1 >>"$tmp/size"
  python3 -c "import json; r = json.load(open('$tmp/snap.json')); print(r['nonzero_pages'] * 4096)" >>"$tmp/nonzero"
  kill -9 "$pid"
  wait "$pid" 2>/dev/null || true
  # The killed VMM's state directory is stale; the restored machine takes the name over.
  start=$EPOCHREALTIME
  "$vml" up --restore "$tmp/snap" </dev/null >"$tmp/warm.out" 2>&1 &
  pid=$!
  running=$(wait_for "$tmp/warm.out" TICK= "$pid")
  echo "$running - $start" | bc >>"$tmp/restore_s"
  kill -9 "$pid"
  wait "$pid" 2>/dev/null || true
done

mib() { awk '{printf "%.1f", $1 / 1048576}'; }
cold=$(median <"$tmp/cold_s") restore=$(median <"$tmp/restore_s")
echo "snapshot bench: $memory, 2 harts, jit, $runs runs (medians)"
echo "  cold boot to READY:           ${cold} s"
echo "  restore to running (a TICK):  ${restore} s"
echo "  ratio restore / cold boot:    $(echo "scale=3; $restore / $cold" | bc)"
echo "  save (VMM, pause to synced):  $(median <"$tmp/save_s") s; as the client sees it: $(median <"$tmp/client_s") s"
echo "  snapshot size on disk:        $(median <"$tmp/size" | mib) MiB (guest RAM $memory; non-zero pages $(median <"$tmp/nonzero" | mib) MiB)"
