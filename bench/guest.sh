# Sourced by the bench scripts that boot the riscv64 Linux guest (guests/riscv64/build) on vmlaunch
# and on qemu-system-riscv64 side by side, with a command in the guest (vml.cmd64).
#   bench_guest VMLAUNCH   sets $here (the source tree), $vml (VMLAUNCH or bazel-bin's),
#                          $kernel, $initrd, $opensbi and $tmp (a directory removed on exit,
#                          together with the process in $daemon if one is set)
#   guest_append CMD       sets $append: the kernel command line that runs CMD in the guest
#   jit_accel TIER         prints the accel entry for a jit tier (TIER@N: with hot threshold N)
#   guest_yaml NAME HARTS ACCEL CMDLINE
#                          prints a vmlaunch config for the guest (256 MiB, OpenSBI, the console
#                          on stdio at an ns16550); more devices or mounts may follow it
#   dd_rate LABEL          reads a console log on stdin: the MB/s of busybox dd's summary line
#                          ("N bytes (X.YMB) copied, T seconds, R MB/s") the guest printed after
#                          LABEL, recomputed from bytes and seconds (busybox rounds its own)
#   bench_locate NAME [VMLAUNCH]
#                          for scripts run by `bazel run` or from the tree: sets $vml (VMLAUNCH, else
#                          the runfiles' or the tree's bazel-bin vmlaunch; fails naming NAME if none),
#                          $src (the source tree), $kernel and $initrd, and exports HOME
bench_locate() {
  local name=$1 candidate
  src=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
  vml=${2:-}
  if [ -z "$vml" ]; then
    # bazel-bin's layout (bazel-bin/bench/X/X), `bazel run`'s runfiles, then the tree's bazel-bin
    for candidate in "$(dirname "$0")/../../launcher/vmlaunch" \
      "${RUNFILES_DIR:-$0.runfiles}/vmlaunch/launcher/vmlaunch" "$src/bazel-bin/launcher/vmlaunch"; do
      [ -x "$candidate" ] && vml=$candidate && break
    done
  fi
  vml=$(readlink -f "$vml" || true)
  [ -n "$vml" ] && [ -x "$vml" ] || { echo "$name: vmlaunch binary not found (pass its path)" >&2; exit 1; }
  export HOME=${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}
  local guest
  mapfile -t guest < <("$src/guests/riscv64/build")
  kernel=${guest[0]} initrd=${guest[1]}
}

bench_guest() {
  here=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
  vml=${1:-$here/bazel-bin/launcher/vmlaunch}
  local paths
  paths=$("$here/guests/riscv64/build")
  kernel=$(printf '%s\n' "$paths" | sed -n 1p)
  initrd=$(printf '%s\n' "$paths" | sed -n 2p)
  opensbi=/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_jump.bin
  tmp=$(mktemp -d)
  daemon=
  trap '[ -n "$daemon" ] && kill "$daemon" 2>/dev/null; rm -rf "$tmp"' EXIT
}

guest_append() {
  append="console=ttyS0 quiet vml.cmd64=$(printf '%s' "$1" | base64 -w0)"
}

dd_rate() {
  grep -a "^$1 " | sed -E 's/.*\(([0-9.]+)MB\) copied, ([0-9.]+) seconds.*/\1 \2/' |
    awk '{ printf "%.1f", $1 / $2 }'
}

# Prints the accel entry for jit tier TIER, or TIER@N: that tier with hot threshold N.
jit_accel() {
  local tier=$1
  if [ "${tier#*@}" != "$tier" ]; then
    echo "{type: jit, tier: ${tier%@*}, hot-threshold: ${tier#*@}}"
  else
    echo "{type: jit, tier: $tier}"
  fi
}

guest_yaml() {
  cat <<YAML
name: $1
machine: {arch: riscv64, type: virt, memory: 256MiB}
cpu: {model: rv64gc, count: $2}
accel: [$3]
boot: {firmware: opensbi, kernel: $kernel, initrd: $initrd, cmdline: '$4'}
backends:
  chardev: {con0: {driver: stdio}}
devices:
  - {driver: ns16550, id: serial0, chardev: con0}
YAML
}
