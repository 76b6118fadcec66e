#!/usr/bin/env bash
# Detached machines (issue 12), side by side with QEMU: the default riscv64 guest (OpenSBI, Linux
# 6.1, busybox; 2 harts, 256 MiB) started in the background, left idle at its shell, and stopped.
#   vmlaunch: `up -d` / graceful `down` (power button; the guest's init powers off) / `down --force`
#   QEMU:     `qemu-system-riscv64 -M virt -daemonize` / QMP `system_powerdown` / QMP `quit`
# Per run and side: time until the start command returns (the machine built and running), time
# from start to the guest's userspace marker in its console log, the VMM's CPU use (% of one core)
# over IDLE seconds (default 10) while the guest idles at its prompt, its resident memory (VmRSS)
# then, time of a graceful stop until the VMM process is gone (one that does not end within 30 s
# is reported as "none" and then stopped hard), and time of a forced stop until gone. RUNS runs
# (default 3), the two sides alternating; prints medians and the ratios vmlaunch / QEMU.
#   BZ=name tools/dev-bazel run -c opt //bench/lifecycle:detached   (or: detached.sh VMLAUNCH)
set -euo pipefail
runs=${RUNS:-3}
idle=${IDLE:-10}
source "$(dirname "$(readlink -f "$0")")/../guest.sh"
bench_guest "${1:-}"
vml=$(readlink -f "$vml")
[ -x "$vml" ] || { echo "detached: vmlaunch binary not found (pass its path)" >&2; exit 1; }
command -v qemu-system-riscv64 >/dev/null || { echo "detached: install qemu-system-misc" >&2; exit 1; }
fw=$opensbi
cmdline='console=ttyS0 quiet'
marker='vmlaunch-guest: userspace up'
hz=$(getconf CLK_TCK)

export VMLAUNCH_STATE_DIR=$tmp/state  # bench_guest's $tmp is under /tmp: short socket paths
cleanup() {
  "$vml" down --force bench >/dev/null 2>&1 || true
  [ -s "$tmp/q.pid" ] && kill -9 "$(cat "$tmp/q.pid")" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
guest_yaml bench 2 jit "$cmdline" >"$tmp/bench.yaml"

now() { echo "$EPOCHREALTIME"; }
ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", (b - a) * 1000 }'; }
until_gone() {  # until_gone PID SECS: 0 once the process has exited, 1 if it still runs after SECS
  # A daemon's parent is init, which may reap it late: an exited process (zombie, state Z) is gone.
  local end=$((SECONDS + $2)) state
  while state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) && [ -n "$state" ] && [ "$state" != Z ]; do
    [ $SECONDS -ge $end ] && return 1
    sleep 0.005
  done
}
until_marker() {  # until_marker LOG: waits (at most 600 s) for the userspace marker
  local end=$((SECONDS + 600))
  until grep -aqs "$marker" "$1"; do
    [ $SECONDS -ge $end ] && { echo "detached: no userspace marker in $1" >&2; tail -n 20 "$1" >&2; exit 1; }
    sleep 0.01
  done
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
idle_stats() {  # idle_stats PID -> "cpu_percent rss_kib" after the guest settled
  sleep 3
  local t0 t1
  t0=$(cpu_ticks "$1")
  sleep "$idle"
  t1=$(cpu_ticks "$1")
  echo "$(awk -v d=$((t1 - t0)) -v hz="$hz" -v s="$idle" 'BEGIN { printf "%.1f", d * 100 / hz / s }')" \
    "$(awk '/^VmRSS:/ { print $2 }' "/proc/$1/status")"
}
# qmp_ready COMMAND: a QMP client connected to QEMU's monitor, past the capabilities handshake,
# that sends COMMAND when a line arrives on fd 8 (qmp_go): a management tool is connected already,
# so neither side's stop time includes starting an interpreter. vmlaunch's side is its CLI (`down`).
qmp_ready() {
  rm -f "$tmp/qmp.go"
  mkfifo "$tmp/qmp.go"
  python3 - "$tmp/q.qmp" "$1" "$tmp/qmp.go" "$tmp/qmp.ready" <<'PY' &
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
f = s.makefile("rw")
f.readline()  # greeting
def execute(cmd):
    f.write(json.dumps({"execute": cmd}) + "\n")
    f.flush()
    while True:
        line = f.readline()
        if not line or "return" in json.loads(line) or "error" in json.loads(line):
            return
execute("qmp_capabilities")
open(sys.argv[4], "w").close()
with open(sys.argv[3]) as go:
    go.readline()
execute(sys.argv[2])
PY
  qmp_client=$!
  exec 8<>"$tmp/qmp.go"
  until [ -e "$tmp/qmp.ready" ]; do sleep 0.01; done
  rm -f "$tmp/qmp.ready"
}
qmp_go() {
  echo go >&8
  wait "$qmp_client" 2>/dev/null || true
  exec 8>&-
}

# One side's run: "start_ms marker_ms cpu_percent rss_kib graceful_ms forced_ms" appended to FILE.
vml_run() {
  local log=$VMLAUNCH_STATE_DIR/bench/console.log t0 t1 t2 pid stats g f
  rm -rf "$VMLAUNCH_STATE_DIR"
  t0=$(now)
  "$vml" up -d "$tmp/bench.yaml" >/dev/null
  t1=$(now)
  pid=$(python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["pid"])' < <("$vml" ps --json))
  until_marker "$log"
  t2=$(now)
  stats=$(idle_stats "$pid")
  sleep 1  # init starts its power-key watcher around the marker
  local g0
  g0=$(now)
  "$vml" down --timeout 30 bench >/dev/null 2>&1 || true
  if until_gone "$pid" 30; then g=$(ms "$g0" "$(now)"); else g=none; fi
  "$vml" down --force bench >/dev/null 2>&1 || true
  rm -rf "$VMLAUNCH_STATE_DIR"
  "$vml" up -d "$tmp/bench.yaml" >/dev/null
  pid=$(python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["pid"])' < <("$vml" ps --json))
  until_marker "$log"
  local f0
  f0=$(now)
  "$vml" down --force bench >/dev/null 2>&1
  until_gone "$pid" 30
  f=$(ms "$f0" "$(now)")
  echo "$(ms "$t0" "$t1") $(ms "$t0" "$t2") $stats $g $f" >>"$tmp/vmlaunch.times"
}
qemu_start() {
  rm -f "$tmp/q.log" "$tmp/q.pid" "$tmp/q.qmp"
  qemu-system-riscv64 -M virt -smp 2 -m 256 -bios "$fw" -kernel "$kernel" -initrd "$initrd" \
    -append "$cmdline" -display none -nodefaults -serial "file:$tmp/q.log" \
    -qmp "unix:$tmp/q.qmp,server=on,wait=off" -daemonize -pidfile "$tmp/q.pid"
}
qemu_run() {
  local t0 t1 t2 pid stats g f
  t0=$(now)
  qemu_start
  t1=$(now)
  pid=$(cat "$tmp/q.pid")
  until_marker "$tmp/q.log"
  t2=$(now)
  stats=$(idle_stats "$pid")
  sleep 1
  local g0
  qmp_ready system_powerdown
  g0=$(now)
  qmp_go
  if until_gone "$pid" 30; then g=$(ms "$g0" "$(now)"); else g=none; fi
  kill -9 "$pid" 2>/dev/null || true
  until_gone "$pid" 10 || true
  qemu_start
  pid=$(cat "$tmp/q.pid")
  until_marker "$tmp/q.log"
  local f0
  qmp_ready quit
  f0=$(now)
  qmp_go
  until_gone "$pid" 30
  f=$(ms "$f0" "$(now)")
  echo "$(ms "$t0" "$t1") $(ms "$t0" "$t2") $stats $g $f" >>"$tmp/qemu.times"
}

for i in $(seq "$runs"); do
  echo "run $i/$runs: vmlaunch" >&2
  vml_run
  echo "run $i/$runs: QEMU" >&2
  qemu_run
done

median() {  # median FILE COLUMN ("none" when no run had a value)
  awk -v c="$2" '$c != "none" { print $c }' "$1" | sort -n |
    awk '{ v[NR] = $1 } END { if (NR == 0) print "none"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "none" || b == "none" || b == 0) print "-"; else printf "%.2f", a / b }'; }
echo
echo "medians of $runs runs (riscv64 guest, 2 harts, 256 MiB; vmlaunch jit interp vs QEMU TCG)"
printf '%-44s %12s %12s %10s\n' "what" vmlaunch QEMU ratio
n=1
for what in "start command returns (ms)" "start to userspace marker (ms)" "idle VMM CPU (% of a core)" \
  "idle VMM resident memory (KiB)" "graceful stop until gone (ms)" "forced stop until gone (ms)"; do
  a=$(median "$tmp/vmlaunch.times" $n) b=$(median "$tmp/qemu.times" $n)
  printf '%-44s %12s %12s %10s\n' "$what" "$a" "$b" "$(ratio "$a" "$b")"
  n=$((n + 1))
done
