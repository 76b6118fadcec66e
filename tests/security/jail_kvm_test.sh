#!/usr/bin/env bash
# The jail with the kvm accelerator and cgroup v2 limits (issue 17), on usable KVM: the host's, or
# the nested KVM host's (tests/nested: Debian's kernel, where this script mounts cgroup v2 itself).
# A freestanding x86 guest on microvm, jailed, waits for a console line; meanwhile the VMM is pid 1
# of its own pid namespace with /dev/kvm (and nothing else of the host's /dev but null, zero,
# random, urandom) and exactly the guest's file and its state directory visible, and sits in the
# cgroup vmlaunch/NAME with memory.max = RAM + 256 MiB and cpu.max = vCPUs + 1. Then the line
# goes in, the guest echoes it and ends with its own status (3), and the cgroup is removed.
source tests/lib.sh
set -u
VMLAUNCH=$PWD/launcher/vmlaunch
work=$(mktemp -d /tmp/vml-jail-kvm.XXXXXX)
trap 'rm -rf "$work"' EXIT
export VMLAUNCH_STATE_DIR=$work/state
mkdir -p "$VMLAUNCH_STATE_DIR"
guest=$(readlink -f guests/x86/hello.elf)

if [ "$(id -u)" -ne 0 ]; then
  skip "jailed kvm machine" "the jail needs root (the nested host runs tests as root)"
  finish
  exit
fi
# The nested host mounts no cgroup hierarchy: give it a v2 one, as a systemd host has.
if [ "$(stat -f -c %T /sys/fs/cgroup 2>/dev/null)" != cgroup2fs ] && [ -z "$(ls -A /sys/fs/cgroup 2>/dev/null)" ]; then
  mount -t cgroup2 none /sys/fs/cgroup 2>/dev/null || true
fi
cgroup2=false
[ "$(stat -f -c %T /sys/fs/cgroup 2>/dev/null)" = cgroup2fs ] && cgroup2=true

cat >"$work/jail-kvm.yaml" <<YAML
name: jail-kvm
machine: {arch: x86_64, type: microvm, memory: 32MiB}
cpu: {model: host, count: 1}
accel: [kvm]
security: {jail: true}
boot:
  kernel: $guest
  cmdline: "exit=3"
backends:
  chardev:
    con0: {driver: stdio}
devices:
  - {driver: ns16550, id: serial0, chardev: con0}
YAML
mkfifo "$work/in"
timeout 120 "$VMLAUNCH" up "$work/jail-kvm.yaml" <"$work/in" >"$work/out" 2>"$work/err" &
vm=$!
exec 7>"$work/in"
for _ in $(seq 1 300); do
  grep -q "hello from the x86 test guest" "$work/out" && break
  sleep 0.1
done
check "the jailed guest runs on kvm" grep -q "hello from the x86 test guest" "$work/out"
pid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' "$VMLAUNCH_STATE_DIR/jail-kvm/machine.json")
check "the VMM is pid 1 of its own pid namespace" sh -c "grep -q \"^NSpid:[[:space:]]*$pid[[:space:]]*1\$\" /proc/$pid/status"
check "/dev/kvm is in the jail" test -c "/proc/$pid/root/dev/kvm"
(cd "/proc/$pid/root" && find . -path ./proc -prune -o -type f -print -o -type c -print -o -type s -print) |
  sed 's|^\.||' | sort >"$work/visible"
{
  printf '%s\n' /dev/kvm /dev/null /dev/random /dev/urandom /dev/zero "$guest"
  (cd "$VMLAUNCH_STATE_DIR/jail-kvm" && find . -type f -o -type s) | sed "s|^\.|$VMLAUNCH_STATE_DIR/jail-kvm|"
} | sort -u >"$work/expected"
check "the jail shows exactly the machine's files (diff below if not)" diff "$work/expected" "$work/visible"
group=/sys/fs/cgroup/vmlaunch/jail-kvm
if $cgroup2; then
  check "the VMM is in its cgroup" grep -qx "$pid" "$group/cgroup.procs"
  check "memory.max is guest RAM + 256 MiB" test "$(cat "$group/memory.max")" = $(((32 + 256) << 20))
  check "cpu.max is vCPUs + 1" test "$(cat "$group/cpu.max")" = "200000 100000"
  check "nothing is reported as not applied" sh -c "! grep -q 'not applied' '$work/err'"
else
  check "missing cgroup v2 is reported" grep -q "jail: not applied: cgroup limits" "$work/err"
fi
printf 'ping\n' >&7
exec 7>&-
wait "$vm"
rc=$?
check "the guest echoes its input and ends with its own status (3; got $rc)" \
  sh -c "[ $rc -eq 3 ] && grep -q 'echo: ping' '$work/out'"
$cgroup2 && check "the cgroup is removed afterwards" test ! -e "$group"
check "the machine directory is removed afterwards" test ! -e "$VMLAUNCH_STATE_DIR/jail-kvm"
[ "$rc" -eq 3 ] || { cat "$work/out" "$work/err"; }
finish
