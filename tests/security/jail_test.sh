#!/usr/bin/env bash
# The jail (issue 17, security/jail.h) end to end with the riscv64 Linux guest:
#  - foreground `up` of a file with security.jail: true: while the guest runs, the VMM is pid 1 of
#    its own pid namespace and in its own mount, ipc, uts and network namespaces (the machine has no
#    network backend); the files under its root (/proc/PID/root, /proc and /dev aside) are exactly the
#    machine's: firmware, kernel, initrd, the two disk images, the 9p share's files and its state
#    directory; the read-only image is mounted read-only; /dev holds null, zero, random, urandom
#    only. The guest writes its writable disk and reads the share; the read-only image is unchanged.
#    At the end the machine directory is gone and the exit status is the guest's (0);
#  - `up -d --jail`: ps shows the machine running under the host pid of the jailed VMM, `down` powers
#    it off gracefully and the directory goes away;
#  - what the host cannot give is said (this host: cgroup v1, so no cgroup limits).
# Without root the jail is refused with the reason, and that is all this test can check.
source tests/lib.sh
source tests/boot/console.sh
state=$(mktemp -d /tmp/vml-jail.XXXXXX)  # short: unix socket paths live here
export VMLAUNCH_STATE_DIR=$state

work=$(mktemp -d /tmp/vml-jail-work.XXXXXX)
trap '[ -n "${KEEP:-}" ] || rm -rf "$state" "$work"' EXIT
mkdir -p "$work/share"
echo "a file in the share" >"$work/share/hello.txt"
qemu-img create -q -f qcow2 "$work/rw.qcow2" 16M
python3 -c "open('$work/ro.raw', 'wb').write(b'read-only-image!' * 65536)"
ro_sum=$(sha256sum "$work/ro.raw" | cut -d' ' -f1)

# machine NAME CMD [noshare]: the guest with both disks and (unless noshare) the share, jailed.
machine() {
  {
    riscv64_guest_yaml "$1" 1 "console=ttyS0 quiet vml.cmd64=$(printf '%s' "$2" | base64 -w0)"
    cat <<YAML
  block:
    rw: {driver: qcow2, file: rw.qcow2}
    ro: {driver: raw, file: ro.raw, readonly: true}
security: {jail: true}
devices:
  - {driver: ns16550, id: serial0, chardev: con0}
  - {driver: virtio-blk-mmio, id: vda, drive: rw}
  - {driver: virtio-blk-mmio, id: vdb, drive: ro}
YAML
    [ "${3:-}" = noshare ] || printf 'mounts:\n  - {location: share, tag: share}\n'
  } >"$work/$1.yaml"
}

if [ "$(id -u)" -ne 0 ]; then
  machine jail-refused 'true'
  "$vml" up "$work/jail-refused.yaml" </dev/null >"$work/out" 2>"$work/err"
  check "without root the jail is refused (exit 1)" test $? -eq 1
  check "and the refusal says it needs root" grep -q "security.jail needs root" "$work/err"
  finish
  exit
fi
use_riscv64_guest tests/security/jail_test.sh

# 1. Foreground. The guest waits for "go" on the console, so the host looks while it runs.
machine jail-fg 'mkdir -p /mnt && mount -t 9p -o trans=virtio share /mnt && cat /mnt/hello.txt;
printf jailed-disk-write | dd of=/dev/vda bs=512 conv=sync,fsync 2>/dev/null && echo disk-written;
echo ready-for-host; read line; echo got-$line'
vm_start "$work/jail-fg.yaml"
vm_wait "ready-for-host" 300
pid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' "$state/jail-fg/machine.json")
check "machine.json names the jailed VMM by its host pid" test -d "/proc/$pid"
check "the VMM is pid 1 of its own pid namespace" sh -c "grep -q \"^NSpid:[[:space:]]*$pid[[:space:]]*1\$\" /proc/$pid/status"
for ns in mnt ipc uts net pid; do
  check "the VMM has its own $ns namespace" \
    test "$(readlink "/proc/$pid/ns/$ns")" != "$(readlink "/proc/self/ns/$ns")"
done
# Every file (not directory) under the jail's root, /proc aside, as the VMM sees its paths.
(cd "/proc/$pid/root" && find . -path ./proc -prune -o -type f -print -o -type c -print -o -type s -print) |
  sed 's|^\.||' | sort >"$work/visible"
{
  printf '%s\n' /dev/null /dev/random /dev/urandom /dev/zero "$kernel" "$initrd" \
    "$work/rw.qcow2" "$work/ro.raw" "$work/share/hello.txt" /usr/lib/riscv64-linux-gnu/opensbi/generic/fw_jump.bin
  (cd "$state/jail-fg" && find . -type f -o -type s) | sed "s|^\.|$state/jail-fg|"
} | sort -u >"$work/expected"
check "the jail shows exactly the machine's files (diff below if not)" diff "$work/expected" "$work/visible"
check "the read-only image is mounted read-only" \
  sh -c "grep \" $work/ro.raw \" /proc/$pid/mountinfo | grep -q ' ro,'"
check "the writable image is mounted read-write" \
  sh -c "grep \" $work/rw.qcow2 \" /proc/$pid/mountinfo | grep -q ' rw,'"
check "the host's root directory is not reachable (no /etc, /home)" \
  sh -c "! test -e /proc/$pid/root/etc && ! test -e /proc/$pid/root/home"
vm_send 'go\n'
vm_finish 300
check "the jailed machine runs the guest to its end (exit 0)" test "$vm_status" -eq 0
check "the guest reads the share" grep -aq "a file in the share" "$vm_out"
check "the guest writes its disk" grep -aq "disk-written" "$vm_out"
check "console input reaches the jailed guest" grep -aq "got-go" "$vm_out"
qemu-io -r -f qcow2 -c "read -v 0 16" "$work/rw.qcow2" >"$work/read.txt" 2>&1
check "the write is in the image" grep -q "jailed.disk.writ" "$work/read.txt"  # qemu-io shows - as .
check "the read-only image is unchanged" test "$(sha256sum "$work/ro.raw" | cut -d' ' -f1)" = "$ro_sum"
if [ "$(stat -f -c %T /sys/fs/cgroup)" = cgroup2fs ]; then
  check "cgroup v2 limits are applied (nothing reported missing)" sh -c "! grep -q 'not applied: cgroup' '$vm_err'"
else
  check "cgroup limits this host cannot give are reported" grep -q "jail: not applied: cgroup limits" "$vm_err"
fi
check "the machine directory is gone afterwards" test ! -e "$state/jail-fg"
[ "$vm_status" -eq 0 ] || vm_dump

# 2. Detached, then down.
# (No 9p share: snapshots cannot save virtio-9p yet.)
machine jail-bg 'n=0; while true; do echo tick-$n; n=$((n+1)); sleep 1; done' noshare
"$vml" up -d --name jail-bg "$work/jail-bg.yaml" >"$work/up.out" 2>"$work/up.err"
check "up -d of a jailed machine exits 0" test $? -eq 0
"$vml" ps --json >"$work/ps.json"
bg_pid=$(python3 -c 'import json,sys; print([m["pid"] for m in json.load(open(sys.argv[1])) if m["name"] == "jail-bg"][0])' "$work/ps.json")
check "ps shows it running" sh -c "python3 -c 'import json,sys; sys.exit(0 if [m for m in json.load(open(sys.argv[1])) if m[\"name\"] == \"jail-bg\" and m[\"state\"] == \"running\"] else 1)' '$work/ps.json'"
check "under the jailed VMM's host pid (pid 1 inside)" \
  sh -c "grep -q \"^NSpid:[[:space:]]*$bg_pid[[:space:]]*1\$\" /proc/$bg_pid/status"
# A snapshot: the jailed VMM writes it in its machine directory, vmlaunch snapshot moves it to DIR.
# Taken once the guest counts (up -d returns when the machine runs, before Linux has booted), so the
# restored guest has a counter to continue.
ticks() { grep -ao 'tick-[0-9]*' "$state/jail-bg/console.log" 2>/dev/null; }
for _ in $(seq 1 1500); do [ "$(ticks | wc -l)" -ge 2 ] && break; sleep 0.2; done
check "the jailed guest counts before the snapshot" test "$(ticks | wc -l)" -ge 2
"$vml" snapshot jail-bg "$work/snap" >"$work/snap.out" 2>&1
check "a snapshot of the jailed machine is taken (exit 0)" test $? -eq 0
check "and lands in DIR, complete" sh -c "test -s '$work/snap/state.vmls' && test -s '$work/snap/ram.zst' && test -s '$work/snap/config.json'"
check "nothing is left in the machine directory" test ! -e "$state/jail-bg/snapshot.partial"
check "the machine runs on after it" sh -c "'$vml' ps --json | grep -q '\"state\": \"running\"'"
check "vmlaunch down stops it" "$vml" down --timeout 120 jail-bg
check "its VMM is gone" sh -c "! kill -0 $bg_pid 2>/dev/null"
check "and so is its directory" test ! -e "$state/jail-bg"

# 3. Restore that snapshot: its effective config says jail, so the restored VMM is jailed too and
#    reads the snapshot directory through a read-only bind.
"$vml" up -d --restore "$work/snap" >"$work/restore.out" 2>&1
check "up -d --restore of the jailed machine's snapshot exits 0" test $? -eq 0
re_pid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' "$state/jail-bg/machine.json" 2>/dev/null)
check "the restored VMM is jailed (pid 1 inside)" \
  sh -c "grep -q \"^NSpid:[[:space:]]*$re_pid[[:space:]]*1\$\" /proc/$re_pid/status"
check "the snapshot directory is bound read-only inside" \
  sh -c "grep \" $work/snap \" /proc/$re_pid/mountinfo | grep -q ' ro,'"
for _ in $(seq 1 100); do [ "$(ticks | wc -l)" -ge 2 ] && break; sleep 0.2; done
first=$(ticks | head -1)
check "the restored guest continues its counter where the snapshot was (first line: $first, not tick-0)" \
  sh -c "[ -n '$first' ] && [ '$first' != tick-0 ]"
check "and runs on (a second line)" test "$(ticks | wc -l)" -ge 2
check "vmlaunch down stops the restored machine" "$vml" down --timeout 120 jail-bg
finish
