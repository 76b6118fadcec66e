# Helpers for lifecycle tests (sourced after tests/lib.sh). Every test gets its own state root.
#   machine FILE NAME KERNEL [YAML]  writes a one-vCPU riscv64 virt machine file with a stdio console
#                                    (YAML: extra top-level lines, e.g. a lifecycle: section)
#   watch_events SOCKET OUT    prints everything the control socket sends into OUT until it closes
#                              (background it; the greeting arrives first)
#   json EXPR                  evaluates a Python expression over the JSON on stdin (bound to `d`)
#   wait_for SECS CMD...       retries CMD every 20 ms until it succeeds (fails on timeout)
#   gone PID                   the process has exited (a zombie its new parent has not reaped yet counts)
vml=$PWD/launcher/vmlaunch
tmp=${TEST_TMPDIR:-$(mktemp -d)}
export VMLAUNCH_STATE_DIR=$tmp/state
tick=$PWD/tests/lifecycle/tick.elf

machine() {
  cat >"$1" <<YAML
name: $2
machine: {arch: riscv64, type: virt, memory: 64MiB}
cpu: {model: rv64gc, count: 1}
accel: [jit]
boot: {firmware: none, kernel: $3}
backends:
  chardev:
    con0: {driver: stdio}
devices:
  - {driver: ns16550, id: serial0, chardev: con0}
${4:-}
YAML
}

watch_events() {
  /usr/bin/python3 - "$1" >"$2" 2>&1 <<'PY'
import os, socket, sys
fd = os.open(os.path.dirname(sys.argv[1]), os.O_RDONLY)
s = socket.socket(socket.AF_UNIX)
s.settimeout(600)
s.connect("/proc/self/fd/%d/%s" % (fd, os.path.basename(sys.argv[1])))
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    print(chunk.decode(), end="", flush=True)
PY
}

# A boolean result is the exit status (true: 0); anything else is printed.
json() {
  /usr/bin/python3 -c "import json,sys
d = json.load(sys.stdin)
r = ($1)
if isinstance(r, bool): sys.exit(0 if r else 1)
print(r)"
}

wait_for() {
  local secs=$1 i=0
  shift
  while ! "$@" 2>/dev/null; do
    i=$((i + 1))
    [ "$i" -ge $((secs * 50)) ] && return 1
    sleep 0.02
  done
}

gone() { ! kill -0 "$1" 2>/dev/null || grep -q ') Z ' "/proc/$1/stat" 2>/dev/null; }
export -f gone

# Cleanup for any machine a failed case left running: the test's VMMs must not outlive it.
trap '"$vml" down --all --force >/dev/null 2>&1' EXIT
