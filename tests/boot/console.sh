# Helpers for boot tests that talk to a guest's serial console (sourced after tests/lib.sh).
#   vm_start CONFIG         runs `vmlaunch up CONFIG` in the background; console output -> $vm_out
#   vm_start_with ARGS...   the same with any `up` arguments (--restore DIR --name N, ...)
#   vm_wait PATTERN SECS    waits until the output matches the grep -E pattern (fails on timeout or exit)
#   vm_send TEXT            types TEXT (printf format) on the console
#   vm_finish SECS          waits for vmlaunch to exit by itself; sets vm_status (124 on timeout)
#   vm_stop                 kills vmlaunch if it still runs
vml=${vml:-launcher/vmlaunch}
tmp=${TEST_TMPDIR:-$(mktemp -d)}
vm_n=0

vm_start() {
  vm_start_with "$1"
}

vm_start_with() {
  vm_n=$((vm_n + 1))
  vm_out=$tmp/vm$vm_n.out
  vm_err=$tmp/vm$vm_n.err
  local fifo=$tmp/vm$vm_n.in
  rm -f "$fifo"
  mkfifo "$fifo"
  "$vml" up "$@" <"$fifo" >"$vm_out" 2>"$vm_err" &
  vm_pid=$!
  exec 7>"$fifo"  # held open so the guest's input never sees EOF
}

vm_wait() {
  local pattern=$1 secs=$2 waited=0
  while [ "$waited" -lt $((secs * 10)) ]; do
    grep -aqE "$pattern" "$vm_out" 2>/dev/null && return 0
    kill -0 "$vm_pid" 2>/dev/null || { grep -aqE "$pattern" "$vm_out"; return; }
    sleep 0.1
    waited=$((waited + 1))
  done
  echo "timed out after ${secs}s waiting for: $pattern" >&2
  return 1
}

vm_send() { printf "$@" >&7; }

vm_finish() {
  local secs=$1 waited=0
  while kill -0 "$vm_pid" 2>/dev/null && [ "$waited" -lt $((secs * 10)) ]; do
    sleep 0.1
    waited=$((waited + 1))
  done
  if kill -0 "$vm_pid" 2>/dev/null; then
    vm_stop
    vm_status=124
  else
    wait "$vm_pid"
    vm_status=$?
  fi
  exec 7>&-
}

vm_stop() {
  kill "$vm_pid" 2>/dev/null && wait "$vm_pid" 2>/dev/null
  exec 7>&- 2>/dev/null
  return 0
}

vm_dump() {
  echo "--- console ($vm_out), last 40 lines"
  tail -n 40 "$vm_out"
  echo "--- vmlaunch stderr"
  cat "$vm_err"
}

# riscv64_guest_yaml NAME HARTS CMDLINE: the head every test of the riscv64 Linux guest shares (after
# use_riscv64_guest): a 256 MiB virt machine on jit (or the accel entry VML_GUEST_ACCEL names, e.g.
# "{type: jit, tier: auto}" for a test's tier-auto variant) booting $kernel/$initrd behind OpenSBI with
# CMDLINE, and the chardev con0 on stdio. The caller's text follows it: more backend kinds (indented
# two spaces, under `backends:`), then `devices:` and the rest.
riscv64_guest_yaml() {
  cat <<YAML
name: $1
machine: {arch: riscv64, type: virt, memory: 256MiB}
cpu: {model: rv64gc, count: $2}
accel: [${VML_GUEST_ACCEL:-jit}]
boot:
  firmware: opensbi
  kernel: $kernel
  initrd: $initrd
  cmdline: '$3'
backends:
  chardev:
    con0: {driver: stdio}
YAML
}

# shares_guest_yaml NAME TYPE: the machine of the shared-folder tests (after use_riscv64_guest): the
# guest mounts the 9p share "ctl" ($tmp/shares/ctl) and runs its test.sh; the shares "rw" (writable)
# and "ro" ($tmp/shares/rw and ro) are of TYPE (9p or virtiofs). Paths resolve against the file's
# directory, so the file goes in $tmp.
shares_guest_yaml() {
  riscv64_guest_yaml "$1" 1 'console=ttyS0 quiet vml.cmd="mkdir -p /mnt/ctl && mount -t 9p -o trans=virtio ctl /mnt/ctl && sh /mnt/ctl/test.sh"'
  cat <<YAML
devices:
  - {driver: ns16550, id: serial0, chardev: con0}
mounts:
  - {location: shares/rw, tag: rw, type: $2, writable: true}
  - {location: shares/ro, tag: ro, type: $2}
  - {location: shares/ctl, tag: ctl}
YAML
}

# use_riscv64_guest TEST_SCRIPT: builds (or finds cached) the riscv64 Linux guest and sets $kernel
# and $initrd. The guest is the project's own asset and CI must be able to build it, so a failing
# guest build is a failed case (with the build log's tail), never a skip; the test then ends.
use_riscv64_guest() {
  local src build paths
  src=$(cd "$(dirname "$(readlink -f "$1")")/../.." && pwd)
  build=$src/guests/riscv64/build
  # Bazel runs tests without HOME; the guest cache belongs to the invoking user's home.
  export HOME=${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}
  if [ ! -x "$build" ] || ! paths=$("$build" 2>"$tmp/guest-build.log"); then
    tail -n 30 "$tmp/guest-build.log" 2>/dev/null
    check "the riscv64 guest builds (guests/riscv64/build)" false
    finish
    exit
  fi
  # The printed paths are symlinks into the cache's store that another worktree's build (other
  # guests/init, other kernel config) may repoint at any time: hold on to what they name now.
  kernel=$(readlink -f "$(printf '%s\n' "$paths" | sed -n 1p)")
  initrd=$(readlink -f "$(printf '%s\n' "$paths" | sed -n 2p)")
}
