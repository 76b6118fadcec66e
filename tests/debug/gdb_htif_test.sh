#!/usr/bin/env bash
# The gdb stub with gdb-multiarch on a bare-metal riscv64 program (tests/boot/htif_hello.s, symbols
# kept): held at reset, breakpoint, registers, memory, single step, a register write the program
# then acts on, Ctrl-C, kill, the stub on a TCP port from `up --gdb`, and a hostile client.
source tests/lib.sh
vml=launcher/vmlaunch
elf=$PWD/tests/boot/htif_pass.elf
tmp=${TEST_TMPDIR:-$(mktemp -d)}
gdb=$(command -v gdb-multiarch) || {
  check "gdb-multiarch is installed (tools/packages.txt)" false
  finish
  exit
}
# A unix socket path must fit 108 bytes: Bazel's TEST_TMPDIR under a long output base does not.
sockdir=$(mktemp -d /tmp/gdb-test.XXXXXX)
trap 'rm -rf "$sockdir"' EXIT
sock=$sockdir/gdb.sock

cat >"$tmp/m.yaml" <<YAML
machine: {arch: riscv64, type: virt, memory: 64MiB}
accel: [jit]
boot: {firmware: none, kernel: $elf}
backends: {chardev: {con0: {driver: stdio}}}
devices: [{driver: ns16550, id: serial0, chardev: con0}]
debug: {gdb: {path: $sock}, wait: true}
YAML

start() {  # start ARGS...: vmlaunch up in the background; waits for the stub to listen
  "$vml" up "$@" </dev/null >"$tmp/vm.out" 2>"$tmp/vm.err" &
  vm_pid=$!
  for _ in $(seq 100); do
    grep -q "gdb stub listening" "$tmp/vm.err" && return 0
    kill -0 "$vm_pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
finish_vm() {  # waits (bounded) for vmlaunch to exit; sets status
  for _ in $(seq 300); do kill -0 "$vm_pid" 2>/dev/null || break; sleep 0.1; done
  kill "$vm_pid" 2>/dev/null
  wait "$vm_pid"
  status=$?
}

# 1. Held at reset; break at `done`, read registers and memory, step, and change t0 (the exit
#    status the program is about to write to tohost: (3 << 1) | 1) before continuing.
check "the stub listens on the configured unix socket" start "$tmp/m.yaml"
cat >"$tmp/a.gdb" <<GDB
set pagination off
set confirm off
target remote $sock
info registers pc
break done
continue
info registers pc
x/s &message
print/x \$a0
print *(char *)\$a0
print/x \$misa
print \$priv
stepi
print \$t0
set var \$t0 = 7
continue
GDB
timeout 60 "$gdb" -q -batch -nx -x "$tmp/a.gdb" "$elf" >"$tmp/a.out" 2>&1
finish_vm
check "held at reset: the first pc is the entry point" grep -q "^pc  *0x80000000" "$tmp/a.out"
check "the breakpoint at done is hit" grep -q "Breakpoint 1, 0x000000008000003c in done" "$tmp/a.out"
check "memory reads back the program's message" grep -q '"hello from htif\\n"' "$tmp/a.out"
check "a0 points at the message's terminating NUL" grep -q "^\$2 = 0 '\\\\000'" "$tmp/a.out"
check "misa says rv64 with I, M, A, F, D, C, S, U" grep -q "^\$3 = 0x800000000014112d" "$tmp/a.out"
check "priv is M (3)" grep -q "^\$4 = 3" "$tmp/a.out"
check "stepi ran exactly li t0, 1" grep -q "^\$5 = 1" "$tmp/a.out"
check "the console saw the program's output" grep -q "hello from htif" "$tmp/vm.out"
check "the register gdb wrote became the program's exit status (3)" test "$status" -eq 3
check "gdb was told the machine exited with that status" grep -q "exited with code 03" "$tmp/a.out"
[ "$status" -eq 3 ] || { cat "$tmp/a.out" "$tmp/vm.err"; }

# 1b. Watchpoints: a read watch on the message's first byte, an access watch on its fourth; each
#     stops right after the load that touched it (gdb then says which value it saw).
start "$tmp/m.yaml"
cat >"$tmp/w.gdb" <<GDB
set pagination off
set confirm off
target remote $sock
rwatch *(char *)&message
continue
print/x \$a1
delete
awatch *((char *)&message + 3)
continue
print/x \$a1
delete
continue
GDB
timeout 60 "$gdb" -q -batch -nx -x "$tmp/w.gdb" "$elf" >"$tmp/w.out" 2>&1
finish_vm
check "a read watchpoint stops at the load of 'h'" grep -q "^Value = 104 'h'" "$tmp/w.out"
check "the load's destination holds it" grep -q "^\$1 = 0x68" "$tmp/w.out"
check "an access watchpoint stops at the load of the fourth byte ('l')" grep -q "^Value = 108 'l'" "$tmp/w.out"
check "the hits are reported as watchpoints" test "$(grep -c "^Hardware.* watchpoint [12]: " "$tmp/w.out")" -ge 4
check "after the watches the program ends normally" test "$status" -eq 0

# 1c. hbreak (Z1) and watch (Z2) on a program with a debug trigger of its own (gdb_triggers.s):
#     gdb's are host-side and exact, the guest's trigger raises its breakpoint exception once and
#     the program sees it as on QEMU (exit 0), with gdb attached throughout.
trig_elf=$PWD/tests/debug/gdb_triggers.elf
sed "s|kernel: .*}|kernel: $trig_elf}|" "$tmp/m.yaml" >"$tmp/trig.yaml"
start "$tmp/trig.yaml"
cat >"$tmp/h.gdb" <<GDB
set pagination off
set confirm off
target remote $sock
watch *(long *)&counter
continue
print \$s1
print/d \$s0
print/x \$pc - (long)&guarded
continue
print \$s1
delete
hbreak done
continue
print \$s1
print/d \$s0
delete
continue
GDB
timeout 60 "$gdb" -q -batch -nx -x "$tmp/h.gdb" "$trig_elf" >"$tmp/h.out" 2>&1
finish_vm
first_watch() { grep -A3 "^Hardware watchpoint 1: \*(long \*)&counter" "$tmp/h.out" | grep -q "^New value = 1"; }
check "watch stops at the first store to counter (old value 0, new 1)" first_watch
check "the store was the first iteration's, before the guest's trigger fired" grep -q "^\$2 = 0" "$tmp/h.out"
check "gdb shows the stop right after the store (exactly at guarded)" grep -q "^\$3 = 0x0" "$tmp/h.out"
check "the second watch stop is the second iteration" grep -q "^New value = 2" "$tmp/h.out"
check "hbreak sets a hardware breakpoint" grep -q "^Hardware assisted breakpoint 2 at 0x8000" "$tmp/h.out"
check "it stops at done after three iterations" grep -q "^\$5 = 3" "$tmp/h.out"
check "by then the guest's own trigger fired exactly once" grep -q "^\$6 = 1" "$tmp/h.out"
check "the program saw mcause 3 and mepc/mtval at its trigger (exit 0)" test "$status" -eq 0
[ "$status" -eq 0 ] || cat "$tmp/h.out"

# 1d. A trigger gdb programs itself through the tdata registers (dmode = 1, action 1: enter debug
#     mode) belongs to the debugger: the hart stops for gdb before that instruction (SIGTRAP, no
#     breakpoint of gdb's), and the guest, whose own trigger is the other one, runs on unaffected.
start "$tmp/trig.yaml"
cat >"$tmp/t.gdb" <<GDB
set pagination off
set confirm off
target remote $sock
print/x \$tinfo
set var \$tselect = 1
set var \$tdata2 = (long)&done
set var \$tdata1 = 0x2800000000001044
print/x \$tdata1
continue
print/x \$pc - (long)&done
print \$s1
continue
GDB
timeout 60 "$gdb" -q -batch -nx -x "$tmp/t.gdb" "$trig_elf" >"$tmp/t.out" 2>&1
finish_vm
check "gdb sees tinfo (types 2 and 6)" grep -q "^\$1 = 0x44" "$tmp/t.out"
check "gdb's tdata1 write keeps dmode and action 1 (maskmax 63 added)" grep -q "^\$2 = 0x2fe0000000001044" "$tmp/t.out"
check "the debugger's trigger stops the hart for gdb" grep -q "SIGTRAP" "$tmp/t.out"
check "exactly at done, before it runs" grep -q "^\$3 = 0x0" "$tmp/t.out"
check "after the loop's three iterations" grep -q "^\$4 = 3" "$tmp/t.out"
check "continuing, the program ends normally (its own trigger fired once)" test "$status" -eq 0
[ "$status" -eq 0 ] || cat "$tmp/t.out"

# 2. Ctrl-C while it runs (gdb reading from a pipe handles the stop between commands), then kill:
#    the machine stops as a forced stop (exit 12).
start "$tmp/m.yaml"
{
  printf 'set pagination off\nset confirm off\ntarget remote %s\nset var $pc = hang\ncontinue &\n' "$sock"
  sleep 1
  printf 'interrupt\n'
  sleep 1
  printf 'info threads\nkill\n'
  sleep 1
} | timeout 60 "$gdb" -q -nx "$elf" >"$tmp/b.out" 2>&1
finish_vm
check "Ctrl-C stops the running program with SIGINT" grep -q "Program received signal SIGINT" "$tmp/b.out"
check "it stopped in the wfi loop" grep -q "Thread 1 (hart 0) 0x00000000800000[0-9a-f]* in hang" "$tmp/b.out"
check "kill stops the machine as a forced stop (exit 12)" test "$status" -eq 12
[ "$status" -eq 12 ] || cat "$tmp/b.out" "$tmp/vm.err"

# 3. A hostile client gets protocol errors and the stub keeps answering it; when it hangs up, that
#    is a detach: the program runs on to its end.
start "$tmp/m.yaml"
check "garbage, bad checksums and oversized packets are answered, not fatal" \
  timeout 60 python3 tests/debug/rsp_noise.py "$sock"
finish_vm
check "the VMM survived the noise, and a hang-up let the program finish (exit 0)" test "$status" -eq 0
check "the program's output is intact" grep -q "hello from htif" "$tmp/vm.out"

# 4. up --gdb tcp:HOST:0 overrides the file and says which port it took; --gdb-wait holds it.
sed '/^debug:/d' "$tmp/m.yaml" >"$tmp/plain.yaml"
check "up --gdb tcp:127.0.0.1:0 --gdb-wait listens on a free port" start "$tmp/plain.yaml" --gdb tcp:127.0.0.1:0 --gdb-wait
port=$(sed -n 's/.*gdb stub listening on tcp:127.0.0.1:\([0-9]*\).*/\1/p' "$tmp/vm.err")
printf 'target remote 127.0.0.1:%s\ninfo registers pc\ndetach\n' "$port" >"$tmp/d.gdb"
timeout 60 "$gdb" -q -batch -nx -x "$tmp/d.gdb" "$elf" >"$tmp/d.out" 2>&1
finish_vm
check "gdb over TCP finds the machine held at reset" grep -q "^pc  *0x80000000" "$tmp/d.out"
check "after detach the program runs to its end (exit 0)" test "$status" -eq 0

# 5. Bad addresses are bad input (exit 2), before anything runs.
"$vml" up "$tmp/plain.yaml" --gdb 1234 </dev/null >/dev/null 2>"$tmp/bad.err"
check "--gdb 1234 is refused with exit 2" test $? -eq 2
check "the error says what is expected" grep -q "expected tcp:HOST:PORT or unix:PATH" "$tmp/bad.err"
"$vml" up "$tmp/plain.yaml" --gdb-wait </dev/null >/dev/null 2>"$tmp/bad2.err"
check "--gdb-wait without an address is refused with exit 2" test $? -eq 2
finish
