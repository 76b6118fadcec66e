#!/usr/bin/env bash
# The VMM confined end to end (issue 17, security/). Strict seccomp is the default, so every other
# guest test runs under it too; this one checks what only confinement shows:
#  - the riscv64 Linux guest with virtio-blk, virtio-rng, a writable 9p share, user networking (DHCP
#    and a fetch from a host web server) and console input runs to its marker under strict, while
#    every VMM thread has a role (its name) and is in seccomp filter mode; `inspect` prints the
#    allow-list size per role; pause and resume work confined; run as root with security.user, the
#    VMM runs as that user with no capabilities and no_new_privs;
#  - a forbidden call on a thread of each role kills the VMM with SIGSYS and a message naming the
#    call and the thread, also in events.log (VMLAUNCH_TEST_SECCOMP_VIOLATION, read only from the
#    host's environment, makes threads of one role call getppid once filtered);
#  - log mode lets that call through; the LLVM tier compiles under strict (its code pages W^X).
source tests/lib.sh
source tests/boot/console.sh
export VMLAUNCH_STATE_DIR=$tmp/state
mkdir -p "$VMLAUNCH_STATE_DIR"

htif() {  # htif NAME SECCOMP [ACCEL]: a bare-metal program that prints and powers off at once
  cat >"$tmp/$1.yaml" <<YAML
name: $1
machine: {arch: riscv64, type: virt, memory: 64MiB}
cpu: {model: rv64gc, count: 1}
accel: [${3:-jit}]
security: {seccomp: $2}
boot: {firmware: none, kernel: $PWD/tests/boot/htif_pass.elf}
backends:
  chardev:
    con0: {driver: stdio}
devices:
  - {driver: ns16550, id: serial0, chardev: con0}
YAML
}

# Forbidden calls, per role. Threads that run before the filters are armed (backends, servers,
# device threads of the first build) get theirs by signal; the main thread arms itself; the vCPU
# thread starts afterwards and installs its own.
htif kill strict
for role in main vcpu chardev control signals device-io; do
  rm -rf "$VMLAUNCH_STATE_DIR/kill"
  VMLAUNCH_TEST_SECCOMP_VIOLATION=$role timeout 60 "$vml" up "$tmp/kill.yaml" </dev/null \
    >"$tmp/kill-$role.out" 2>"$tmp/kill-$role.err"
  status=$?
  check "$role: a forbidden call kills the VMM with SIGSYS (status 128+31)" test "$status" -eq 159
  check "$role: the message names the call and the thread" \
    grep -qE "seccomp: thread (vml-[a-z-]+|vmlaunch) \(role $role, tid [0-9]+\) made the forbidden system call getppid \([0-9]+\)" "$tmp/kill-$role.err"
  check "$role: events.log has the violation" \
    grep -q "\"event\":\"SECCOMP_VIOLATION\",\"data\":{\"syscall\":\"getppid\",\"number\":[0-9]*,\"role\":\"$role\"" \
    "$VMLAUNCH_STATE_DIR/kill/events.log"
  [ "$status" -eq 159 ] || cat "$tmp/kill-$role.err"
done

htif logged log
VMLAUNCH_TEST_SECCOMP_VIOLATION=vcpu timeout 60 "$vml" up "$tmp/logged.yaml" </dev/null >"$tmp/logged.out" 2>"$tmp/logged.err"
check "log mode: the same forbidden call is let through, the program runs to its end (exit 0)" test $? -eq 0
check "log mode: the program's output arrives" grep -q "hello from htif" "$tmp/logged.out"

htif off off
VMLAUNCH_TEST_SECCOMP_VIOLATION=vcpu timeout 60 "$vml" up "$tmp/off.yaml" </dev/null >"$tmp/off.out" 2>"$tmp/off.err"
check "off: no filters, exit 0" test $? -eq 0

htif llvm strict '{type: jit, tier: llvm}'
timeout 120 "$vml" up --stats "$tmp/llvm.yaml" </dev/null >"$tmp/llvm.out" 2>"$tmp/llvm.err"
check "tier: llvm under strict: compiled code runs (W^X code cache), exit 0" test $? -eq 0
check "tier: llvm under strict: regions were compiled and installed" grep -qE "[1-9][0-9]* installed" "$tmp/llvm.err"

# The Linux guest with real workloads under strict.
use_riscv64_guest tests/security/seccomp_guest_test.sh
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
web_port=$(free_port)
mkdir -p "$tmp/www" "$tmp/share"
echo "page-from-the-host-$$" >"$tmp/www/index.txt"
echo "file-in-the-share" >"$tmp/share/in.txt"
chmod 0777 "$tmp/share"
python3 -m http.server --bind 127.0.0.1 --directory "$tmp/www" "$web_port" >"$tmp/http.log" 2>&1 &
web_pid=$!
trap 'kill $web_pid 2>/dev/null' EXIT
truncate -s 16M "$tmp/disk.raw"
user_line=""
[ "$(id -u)" -eq 0 ] && user_line="user: nobody"
guest_cmd=$(cat <<GUEST
printf '#!/bin/sh\ncase "\$1" in bound|renew) ip addr add \$ip/\$mask dev \$interface; ip route add default via \$router;; esac\n' > /tmp/dhcp.sh
chmod +x /tmp/dhcp.sh
ip link set eth0 up
udhcpc -i eth0 -n -q -t 10 -s /tmp/dhcp.sh >/dev/null
echo "web=\$(wget -q -O - http://10.0.2.2:$web_port/index.txt)"
echo "disk=\$(cat /sys/block/vda/size) rng=\$(head -c 16 /dev/hwrng | wc -c)"
dd if=/dev/zero of=/dev/vda bs=4096 count=64 2>/dev/null && sync && echo disk-written
mkdir -p /mnt/share && mount -t 9p -o trans=virtio share /mnt/share
echo "share=\$(cat /mnt/share/in.txt)"
echo from-the-guest > /mnt/share/out.txt && echo share-written
echo all-workloads-done
read line
echo "console-input=\$line"
GUEST
)
cmd64=$(printf '%s' "$guest_cmd" | base64 -w0)
cat >"$tmp/linux.yaml" <<YAML
name: confined
machine: {arch: riscv64, type: virt, memory: 256MiB}
cpu: {model: rv64gc, count: 2}
accel: [jit]
security: {seccomp: strict, $user_line}
boot:
  firmware: opensbi
  kernel: $kernel
  initrd: $initrd
  cmdline: 'console=ttyS0 quiet vml.cmd64=$cmd64'
backends:
  chardev:
    con0: {driver: stdio}
  block: {disk0: {driver: raw, file: $tmp/disk.raw}}
  rng: {rng0: {driver: random}}
  net:
    user0: {driver: user}
devices:
  - {driver: ns16550, id: serial0, chardev: con0}
  - {driver: virtio-blk-mmio, id: vda, drive: disk0}
  - {driver: virtio-rng-pci, id: rng, rng: rng0}
  - {driver: virtio-net-mmio, id: net0, netdev: user0}
mounts:
  - {location: $tmp/share, tag: share, writable: true}
YAML
sed -i 's/security: {seccomp: strict, }/security: {seccomp: strict}/' "$tmp/linux.yaml"
vm_start "$tmp/linux.yaml"
vm_wait "all-workloads-done" 900
check "Linux runs every workload under strict seccomp" test $? -eq 0
check "user networking: the host's page reached the guest" grep -aq "web=page-from-the-host-$$" "$vm_out"
check "virtio-blk and virtio-rng" grep -aq "disk=32768 rng=16" "$vm_out"
check "virtio-blk writes" grep -aq "disk-written" "$vm_out"
check "9p: the guest reads the share" grep -aq "share=file-in-the-share" "$vm_out"
check "9p: the guest writes the share" grep -q "from-the-guest" "$tmp/share/out.txt"

# Every thread: a role (its name), filter mode. io_uring's kernel workers (iou-*) run no user code.
threads=$tmp/threads.txt
: >"$threads"
for task in /proc/$vm_pid/task/*; do
  echo "$(cat "$task/comm") $(awk '/^Seccomp:/ {print $2}' "$task/status")" >>"$threads"
done
cat "$threads"
check "several threads run (vCPUs, backends, servers)" test "$(wc -l <"$threads")" -ge 6
check "every thread has a role" test -z "$(grep -vE '^(vmlaunch|vml-[a-z-]+|iou-[a-z]+-[0-9]+) ' "$threads")"
check "every VMM thread is in seccomp filter mode" test -z "$(grep -v '^iou-' "$threads" | grep -v ' 2$')"
check "both vCPUs run as vml-vcpu" test "$(grep -c '^vml-vcpu ' "$threads")" -eq 2
check "the net backend thread has its role" grep -q '^vml-net ' "$threads"

"$vml" inspect confined >"$tmp/inspect.txt"
check "inspect prints the seccomp mode" grep -q "^seccomp: *strict" "$tmp/inspect.txt"
[ "$(id -u)" -eq 0 ] && check "inspect says the VMM runs as nobody" grep -q "^runs as: *uid 65534 gid 65534" "$tmp/inspect.txt"
check "inspect prints the allow-list size per role" grep -qE "^  vcpu +[0-9]+" "$tmp/inspect.txt"
"$vml" inspect --json confined >"$tmp/inspect.json"
check "inspect --json has a size for every role" python3 -c "
import json, sys
sizes = json.load(open('$tmp/inspect.json'))['security']['allow_list_sizes']
roles = {'main', 'vcpu', 'device-io', 'block-io', 'net', 'chardev', 'control', 'translator', 'lifecycle', 'signals', 'gdb-stub', 'snapshot'}
sys.exit(0 if set(sizes) == roles and all(10 < n < 150 for n in sizes.values()) else 1)"
"$vml" pause confined >/dev/null && "$vml" resume confined >/dev/null
check "pause and resume work confined" test $? -eq 0

if [ "$(id -u)" -eq 0 ]; then
  status_file=/proc/$vm_pid/status
  check "security.user: the VMM runs as nobody (real, effective, saved uid)" \
    grep -qE "^Uid:\s+65534\s+65534\s+65534\s+65534" "$status_file"
  check "security.user: and its group" grep -qE "^Gid:\s+65534\s+65534\s+65534\s+65534" "$status_file"
  check "security.user: no supplementary groups" grep -qE "^Groups:\s*$" "$status_file"
  check "security.user: no capabilities effective" grep -qE "^CapEff:\s+0+$" "$status_file"
  check "security.user: no capabilities permitted" grep -qE "^CapPrm:\s+0+$" "$status_file"
  check "security.user: an empty bounding set" grep -qE "^CapBnd:\s+0+$" "$status_file"
  check "security.user: no_new_privs" grep -qE "^NoNewPrivs:\s+1" "$status_file"
  check "limits: core dumps off (guest memory never reaches the disk)" \
    grep -qE "^Max core file size +0 +0" "/proc/$vm_pid/limits"
  check "limits: open files capped" grep -qE "^Max open files +8192 +8192" "/proc/$vm_pid/limits"
else
  skip "security.user" "needs root (running as uid $(id -u))"
fi

vm_send 'typed-at-the-console\n'
vm_wait "console-input=typed-at-the-console" 120
check "console input reaches the guest under strict" test $? -eq 0
vm_finish 120
check "the guest powers off: exit 0" test "$vm_status" -eq 0
[ "$vm_status" -eq 0 ] || vm_dump
finish
