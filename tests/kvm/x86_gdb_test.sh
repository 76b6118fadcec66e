#!/usr/bin/env bash
# The gdb stub on x86_64/kvm (inside the nested KVM host where this host has no usable /dev/kvm;
# tests/nested) with gdb-multiarch on guests/x86/count64 (symbols kept, no debug info): held at
# reset, single steps into guest_main, registers read and written, memory and the guest's tick
# counter read by virtual address (through the page tables), detach; the guest then counts to its
# end and exits 0. microvm, 1 vCPU. Breakpoints (debug registers) are not checked here: under the
# nested host's TCG they never fire (see the README's gdb paragraph).
source tests/lib.sh
vml=$PWD/launcher/vmlaunch
elf=$PWD/guests/x86/count64.elf
gdb=$(command -v gdb-multiarch) || {
  check "gdb-multiarch is installed (tools/packages.txt)" false
  finish
  exit
}
tmp=$(mktemp -d /tmp/x86gdb.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
sock=$tmp/gdb.sock

cat >"$tmp/m.yaml" <<YAML
machine: {arch: x86_64, type: microvm, memory: 32MiB}
cpu: {model: host, count: 1}
accel: [kvm]
boot:
  kernel: $elf
  cmdline: "every=2 limit=3"
backends: {chardev: {con0: {driver: stdio}}}
devices: [{driver: ns16550, id: serial0, chardev: con0}]
debug: {gdb: {path: $sock}, wait: true}
YAML

"$vml" up "$tmp/m.yaml" </dev/null >"$tmp/vm.out" 2>"$tmp/vm.err" &
vm_pid=$!
listening=false
for _ in $(seq 600); do
  grep -q "gdb stub listening" "$tmp/vm.err" && { listening=true; break; }
  kill -0 "$vm_pid" 2>/dev/null || break
  sleep 0.1
done
check "the stub listens, the machine held at reset" $listening

cat >"$tmp/a.gdb" <<GDB
set pagination off
set confirm off
target remote $sock
print \$rip == (long)&_start
stepi
stepi
print/x \$rip - (long)&_start
x/2i \$rip
stepi
print \$rip == (long)&guest_main
print *(unsigned int *)&ticks
print/x \$cs
set var \$rax = 0x1234
print/x \$rax
print/x \$eflags
print *(unsigned char *)guest_main == *(unsigned char *)\$rip
detach
GDB
timeout 300 "$gdb" -q -batch -nx -x "$tmp/a.gdb" "$elf" >"$tmp/a.out" 2>&1
gdb_status=$?
for _ in $(seq 1200); do kill -0 "$vm_pid" 2>/dev/null || break; sleep 0.1; done
kill "$vm_pid" 2>/dev/null
wait "$vm_pid"
status=$?
cat "$tmp/a.out"
check "gdb ran its script to the end" test "$gdb_status" -eq 0
check "held at reset: the first instruction is the entry point" grep -q '^\$1 = 1' "$tmp/a.out"
check "two stepi run two instructions of _start" grep -q '^\$2 = 0xa$' "$tmp/a.out"
check "memory by virtual address: the next instruction disassembles as the call" \
  grep -q "=> 0x10000a <_start+10>:.*call.*<guest_main>" "$tmp/a.out"
check "a stepi over the call lands at guest_main" grep -q '^\$3 = 1' "$tmp/a.out"
check "the guest's tick counter (a symbol) reads 0 before the timer starts" grep -q '^\$4 = 0$' "$tmp/a.out"
check "cs is the 64-bit code selector of the boot GDT (0x10)" grep -q '^\$5 = 0x10$' "$tmp/a.out"
check "a register write reads back" grep -q '^\$6 = 0x1234$' "$tmp/a.out"
eflags=$(sed -n 's/^\$7 = \(0x[0-9a-f]*\)$/\1/p' "$tmp/a.out")
check "eflags reads back with interrupts still off (${eflags:-none})" test -n "$eflags" -a $((${eflags:-0x200} & 0x202)) -eq 2
check "memory at rip is guest_main's first byte" grep -q '^\$8 = 1' "$tmp/a.out"
check "after detach the guest counts to the end" grep -aq "count-done" "$tmp/vm.out"
check "and exits 0" test "$status" -eq 0
[ "$status" -eq 0 ] && [ "$gdb_status" -eq 0 ] || { cat "$tmp/vm.err"; tail -5 "$tmp/vm.out"; }
finish
