#!/usr/bin/env bash
# The gdb stub on x86_64/kvm (inside the nested KVM host where this host has no usable /dev/kvm;
# tests/nested) with gdb-multiarch on guests/x86/count64 (symbols kept, no debug info): held at
# reset, single steps into guest_main, registers read and written, memory and the guest's tick
# counter read by virtual address (through the page tables), detach; the guest then counts to its
# end and exits 0 (microvm, 1 vCPU). Then on pc with 2 vCPUs: threads, Ctrl-C and continue, a
# breakpoint refused in device memory, software (int3) and hardware (DR0) breakpoints whose stops
# are checked where they can fire (not in the nested host: see below), and kill.
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
set breakpoint always-inserted on
print/x *(unsigned char *)&isr_handler
break isr_handler
print/x *(unsigned char *)&isr_handler
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
byte_before=$(sed -n 's/^\$9 = //p' "$tmp/a.out") byte_planted=$(sed -n 's/^\$10 = //p' "$tmp/a.out")
check "with an int3 planted there, gdb still reads the original byte ($byte_before, $byte_planted)" \
  test -n "$byte_before" -a "$byte_before" = "$byte_planted" -a "$byte_planted" != 0xcc
check "after detach (the int3 removed) the guest counts to the end" grep -aq "count-done" "$tmp/vm.out"
check "and exits 0" test "$status" -eq 0
[ "$status" -eq 0 ] && [ "$gdb_status" -eq 0 ] || { cat "$tmp/vm.err"; tail -5 "$tmp/vm.out"; }

# 2. pc with 2 vCPUs (the second one waits for its SIPI): both vCPUs as threads; Ctrl-C while it
#    runs, continue again, Ctrl-C; `break` in the LAPIC (refused); `break isr_handler` (int3) given
#    two runs of a few seconds, then `hbreak` at the same handler; and kill (a forced stop, exit 12).
#    gdb reads its commands from a pipe, as in tests/debug/gdb_htif_test, so `continue &` and
#    `interrupt` work as on a terminal.
sed -e 's/type: microvm/type: pc/' -e 's/count: 1/count: 2/' -e 's/every=2 limit=3/every=1000 limit=1000/' \
  "$tmp/m.yaml" >"$tmp/pc.yaml"
"$vml" up "$tmp/pc.yaml" </dev/null >"$tmp/vm2.out" 2>"$tmp/vm2.err" &
vm_pid=$!
listening=false
for _ in $(seq 600); do
  grep -q "gdb stub listening" "$tmp/vm2.err" && { listening=true; break; }
  kill -0 "$vm_pid" 2>/dev/null || break
  sleep 0.1
done
check "pc, 2 vCPUs: the stub listens" $listening
# run SECONDS: continue in the background, Ctrl-C after a while (a no-op if a breakpoint stopped it
# first), and wait for gdb to report that stop before the next command (bounded: 60 s).
stops() { grep -Ec "received signal SIGINT|hit (Hardware assisted )?Breakpoint" "$tmp/b.out"; }
# With a second argument, the guest runs until its console says that too before the seconds start.
run() {
  local before
  before=$(stops)
  printf 'continue &\n'
  [ -n "${2:-}" ] && for _ in $(seq 1200); do grep -aq "$2" "$tmp/vm2.out" && break; sleep 0.1; done
  sleep "$1"
  printf 'interrupt\n'
  for _ in $(seq 600); do [ "$(stops)" -gt "$before" ] && break; sleep 0.1; done
}
{
  printf 'set pagination off\nset confirm off\ntarget remote %s\n' "$sock"
  printf 'info threads\n'
  printf 'thread 2\nprint/x $cs\nthread 1\n'
  run 3
  printf 'print $rip != (long)&_start\n'
  printf 'print $_thread\n'
  printf 'print *(unsigned int *)&ticks\n'
  run 2 "timer started"
  printf 'print *(unsigned int *)&ticks\n'
  printf 'break *0xfee00000\ncontinue\ndelete\n'
  printf 'break isr_handler\n'
  run 4
  printf 'print $rip == (long)&isr_handler\n'
  printf 'print *(unsigned int *)&ticks\n'
  printf 'print/x *(unsigned char *)&isr_handler\n'
  run 4
  printf 'print *(unsigned int *)&ticks\n'
  printf 'delete\n'
  printf 'hbreak isr_handler\n'
  run 4
  printf 'delete\nkill\n'
  sleep 2
} | timeout 300 "$gdb" -q -nx "$elf" >"$tmp/b.out" 2>&1
for _ in $(seq 600); do kill -0 "$vm_pid" 2>/dev/null || break; sleep 0.1; done
kill "$vm_pid" 2>/dev/null
wait "$vm_pid"
status=$?
cat "$tmp/b.out"
check "both vCPUs are threads" grep -Eq '^\* 1 +Thread 1 \(vCPU 0\)' "$tmp/b.out"
check "the second vCPU is thread 2" grep -Eq '^  2 +Thread 2 \(vCPU 1\)' "$tmp/b.out"

# value N: what gdb printed as $N (after any "(gdb) " prompts: it reads a pipe, not a terminal).
value() { sed -n "s/^\((gdb) \)*\\\$$1 = //p" "$tmp/b.out" | head -1; }
ticks1=$(value 4) ticks2=$(value 5)
check "thread 2 has its own registers (waiting for its SIPI: real-mode cs 0xf000)" test "$(value 1)" = 0xf000
check "Ctrl-C stops the running machine (SIGINT)" grep -Eq "^Thread 1( \(vCPU 0\))? received signal SIGINT" "$tmp/b.out"
check "it ran until then (rip is past the entry point)" test "$(value 2)" = 1
check "the stop names the vCPU that was current (thread 1)" test "$(value 3)" = 1
check "continue after Ctrl-C runs it again (${ticks2:-none} ticks at the second Ctrl-C)" \
  test "${ticks2:-0}" -gt "${ticks1:-0}"
check "a breakpoint in device memory (the LAPIC) is refused, not planted" \
  grep -q "Cannot insert breakpoint 1.*\|Cannot access memory at address 0xfee00000" "$tmp/b.out"
# Software breakpoints (int3 planted by the stub). Under the nested host they cannot fire: QEMU's
# TCG (7.2; target/i386/tcg/translate.c and excp_helper.c) raises INT3 as a software interrupt
# (raise_interrupt with is_int=1), which consults only the INTn intercept (SVM_EXIT_SWINT), never
# the #BP exception intercept that KVM sets for KVM_GUESTDBG_USE_SW_BP: the int3 goes to the
# guest's own IDT. count64 has no #BP handler, so there it triple-faults and resets; that reset is
# what shows the int3 was planted at isr_handler.
if grep -Eq "^Thread 1( \(vCPU 0\))? hit Breakpoint 2, 0x[0-9a-f]+ in isr_handler" "$tmp/b.out"; then
  check "rip is at the breakpoint (not after the int3)" test "$(value 6)" = 1
  check "memory reads show the original byte there, not the int3 ($(value 8))" \
    test -n "$(value 8)" -a "$(value 8)" != 0xcc
  check "continue reaches the second hit, one tick later" test "$(value 9)" = "$(($(value 7) + 1))"
elif [ -n "${VMLAUNCH_IN_NESTED_HOST:-}" ]; then
  echo "break: the int3 did not stop the machine (expected in the nested host: QEMU TCG passes INT3 to the guest)"
  check "the planted int3 reached the guest (no #BP handler: it reset and started again)" \
    test "$(grep -ac "count64: timer started" "$tmp/vm2.out")" -ge 2
else
  check "break (int3) stops the first vCPU in the timer's handler on hardware KVM" false
fi
# Hardware breakpoints: DR0..DR3 through KVM_GUESTDBG_USE_HW_BP. Under the nested host they never
# fire either: QEMU's VMRUN (target/i386/tcg/sysemu/svm_helper.c, helper_vmrun) copies the VMCB's
# DR7 into env->dr[7] without cpu_x86_update_dr7(), so TCG never arms the breakpoints the guest's
# DR7 enables. So they are checked only on hardware KVM.
if grep -q "hit Hardware assisted breakpoint 3, 0x[0-9a-f]* in isr_handler" "$tmp/b.out"; then
  echo "hbreak: fired"
elif [ -n "${VMLAUNCH_IN_NESTED_HOST:-}" ]; then
  echo "hbreak: did not fire (expected in the nested host: QEMU TCG ignores DR7 loaded by VMRUN)"
else
  check "hbreak (DR0) stops in the timer's handler on hardware KVM" false
fi
check "kill stops the machine as a forced stop (exit 12)" test "$status" -eq 12
check "the guest never finished (no count-done)" test "$(grep -ac count-done "$tmp/vm2.out")" -eq 0
[ "$status" -eq 12 ] || { cat "$tmp/vm2.err"; tail -5 "$tmp/vm2.out"; }
finish
