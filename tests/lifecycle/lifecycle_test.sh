#!/usr/bin/env bash
# up -d, ps, inspect, logs, down on bare-metal guests: tick.elf prints "tick N" forever, htif_pass.elf
# prints a line and powers off by itself.
source tests/lib.sh
source tests/lifecycle/machine.sh

machine "$tmp/ticker.yaml" ticker "$tick"
machine "$tmp/pass.yaml" passer "$PWD/tests/boot/htif_pass.elf"

out=$("$vml" up -d "$tmp/ticker.yaml" 2>"$tmp/up.err")
status=$?
check "up -d exits 0 once the machine runs" test "$status" -eq 0
check "up -d prints the machine's name (the file's name:)" test "$out" = ticker
check "the state root is private (0700)" test "$(stat -c %a "$VMLAUNCH_STATE_DIR")" = 700
check "the machine's directory is private (0700)" test "$(stat -c %a "$VMLAUNCH_STATE_DIR/ticker")" = 700
check "the control socket is 0600" test "$(stat -c %a "$VMLAUNCH_STATE_DIR/ticker/control.sock")" = 600

"$vml" ps --json >"$tmp/ps.json"
check "ps --json lists it running" json "d[0]['name'] == 'ticker' and d[0]['state'] == 'running'" <"$tmp/ps.json"
check "ps --json gives accelerator, vCPUs, memory, config" \
  json "d[0]['accelerator'] == 'jit' and d[0]['vcpus'] == 1 and d[0]['memory'] == 64 << 20 and d[0]['config'] == '$tmp/ticker.yaml'" <"$tmp/ps.json"
pid=$(json "d[0]['pid']" <"$tmp/ps.json")
check "ps --json's pid is a live process" kill -0 "$pid"
"$vml" ps >"$tmp/ps.txt"
check "ps prints a table with the machine" grep -qE '^ticker +running +jit +1 +64 MiB' "$tmp/ps.txt"

check "events.log has the start as a JSON line" grep -q '"to":"running"},"event":"STATE"' "$VMLAUNCH_STATE_DIR/ticker/events.log"
check "the console output reaches the log" wait_for 20 grep -q "tick 3" "$VMLAUNCH_STATE_DIR/ticker/console.log"
"$vml" logs ticker >"$tmp/logs.out"
check "logs prints the console output" grep -q "^tick 1$" "$tmp/logs.out"
check "logs --tail 2 prints two lines" test "$("$vml" logs ticker --tail 2 | wc -l)" -eq 2
timeout 2 "$vml" logs -f --tail 0 ticker >"$tmp/follow.out"
check "logs -f follows new output while the machine runs" grep -q "^tick" "$tmp/follow.out"
check "logs of an unknown machine exits 1" bash -c '"$0" logs nosuch; test $? -eq 1' "$vml"

"$vml" inspect ticker --json >"$tmp/inspect.json"
check "inspect --json has the resolved graph with the serial port" \
  json "any(x.get('id') == 'serial0' for x in d['graph']['devices'])" <"$tmp/inspect.json"
check "inspect --json has the effective config and live counters" \
  json "d['effective_config']['name'] == 'ticker' and d['stats']['console']['bytes_logged'] > 0" <"$tmp/inspect.json"
check "inspect prints state and the device graph" bash -c '"$0" inspect ticker | grep -q "state: *running"' "$vml"

"$vml" up -d "$tmp/ticker.yaml" >/dev/null 2>"$tmp/again.err"
status=$?
check "a second up -d of a running name is refused (exit 1)" test "$status" -eq 1
check "and says it is already running" grep -q "already running" "$tmp/again.err"

check "--name overrides the file's name" test "$("$vml" up -d --name other "$tmp/ticker.yaml")" = other
long=$(printf 'x%.0s' $(seq 49))
"$vml" up -d --name "$long" "$tmp/ticker.yaml" >/dev/null 2>"$tmp/long.err"
check "a name over 48 characters is bad input (exit 2)" test $? -eq 2
"$vml" up -d --name ../escape "$tmp/ticker.yaml" >/dev/null 2>&1
check "a name with a slash is bad input (exit 2)" test $? -eq 2
printf 'machine: {arch: riscv64, type: virt}\n' >"$tmp/bad.yaml"
"$vml" up -d "$tmp/bad.yaml" >/dev/null 2>&1
check "an invalid machine file is bad input (exit 2)" test $? -eq 2
machine "$tmp/missing.yaml" missing "$tmp/no-such-kernel.elf"
"$vml" up -d "$tmp/missing.yaml" >/dev/null 2>"$tmp/missing.err"
check "a machine that cannot be built: up -d exits 1" test $? -eq 1
check "and says why (the missing kernel)" grep -q "no-such-kernel.elf" "$tmp/missing.err"

# pause / resume: the vCPUs park, the console goes quiet, then the guest continues where it was.
log=$VMLAUNCH_STATE_DIR/ticker/console.log
check "pause NAME exits 0" bash -c '"$0" pause ticker >/dev/null' "$vml"
check "a paused machine says so (inspect's live state)" \
  json "d['stats']['state'] == 'paused'" < <("$vml" inspect ticker --json)
size1=$(stat -c %s "$log"); sleep 1; size2=$(stat -c %s "$log")
check "a paused guest prints nothing" test "$size1" -eq "$size2"
check "pause of a paused machine is fine" bash -c '"$0" pause ticker >/dev/null' "$vml"
# tick.elf counts 0..9 and wraps: compare counts of whole lines, and the first line after the
# pause (the pause may fall in the middle of a line).
ticks=$(grep -ac '^tick [0-9]$' "$log")
last=$(grep -a '^tick [0-9]$' "$log" | tail -n 1 | cut -d' ' -f2)
check "resume NAME exits 0" bash -c '"$0" resume ticker >/dev/null' "$vml"
check "a resumed guest prints again" \
  wait_for 20 bash -c 'test "$(grep -ac "^tick [0-9]$" "$0")" -ge "$1"' "$log" "$((ticks + 2))"
check "and continues where it stopped" \
  test "$(grep -a '^tick [0-9]$' "$log" | sed -n "$((ticks + 1))p")" = "tick $(((last + 1) % 10))"
check "it runs again (inspect's live state)" json "d['stats']['state'] == 'running'" < <("$vml" inspect ticker --json)
check "pause of an unknown machine exits 1" bash -c '"$0" pause nosuch 2>/dev/null; test $? -eq 1' "$vml"
"$vml" up -d --name frozen "$tmp/ticker.yaml" >/dev/null && frozen_pid=$(json "[m['pid'] for m in d if m['name'] == 'frozen'][0]" < <("$vml" ps --json))
"$vml" pause frozen >/dev/null
check "down of a paused machine stops it (exit 0)" bash -c '"$0" down --timeout 10 frozen >/dev/null 2>&1' "$vml"
check "down of a paused machine: the VMM is gone" gone "$frozen_pid"

# down, graceful by default: no guest power button yet, so it is refused and the machine stopped.
other_pid=$(json "[m['pid'] for m in d if m['name'] == 'other'][0]" < <("$vml" ps --json))
# A control client sees the stop as timestamped asynchronous events.
/usr/bin/python3 - "$VMLAUNCH_STATE_DIR/other/control.sock" >"$tmp/events.out" 2>&1 <<'PY' &
import json, os, socket, sys
fd = os.open(os.path.dirname(sys.argv[1]), os.O_RDONLY)
s = socket.socket(socket.AF_UNIX)
s.settimeout(20)
s.connect("/proc/self/fd/%d/control.sock" % fd)
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    print(chunk.decode(), end="", flush=True)
PY
watcher=$!
check "a control client gets the greeting" wait_for 20 bash -c 'grep -q "\"protocol\":1" "$0"' "$tmp/events.out"
check "down NAME exits 0" bash -c '"$0" down other >/dev/null 2>&1' "$vml"
wait "$watcher"
check "a connected client gets a timestamped STATE event (running -> stopping)" \
  grep -qE '"data":\{"from":"running","to":"stopping"\},"event":"STATE","timestamp":[0-9.]+' "$tmp/events.out"
check "and a STOPPED event saying why" grep -qE '"data":\{"message":"","reason":"stop","status":0\},"event":"STOPPED"' "$tmp/events.out"
check "down NAME: the VMM is gone" gone "$other_pid"
check "down NAME: its state directory is gone" test ! -e "$VMLAUNCH_STATE_DIR/other"
check "down of an unknown machine exits 1" bash -c '"$0" down other 2>/dev/null; test $? -eq 1' "$vml"

# kill -9: ps shows stale, a new up -d of the same name cleans up and works.
kill -9 "$pid"
wait_for 5 gone "$pid"
check "after kill -9, ps shows the machine stale, its VMM gone" \
  json "d[0]['name'] == 'ticker' and d[0]['state'] == 'stale' and 'is gone' in d[0]['stale_reason']" < <("$vml" ps --json)
check "up -d of the stale name works" test "$("$vml" up -d "$tmp/ticker.yaml" 2>/dev/null)" = ticker
newpid=$(json "d[0]['pid']" < <("$vml" ps --json))
check "and runs a new VMM" bash -c 'test "$0" != "$1" && kill -0 "$0"' "$newpid" "$pid"

# A VMM that lives but whose control socket nobody answers: stale, refused by up -d, killed by down.
sock=$VMLAUNCH_STATE_DIR/ticker/control.sock
rm "$sock"
/usr/bin/python3 -c "import os,socket,sys; os.chdir(os.path.dirname(sys.argv[1])); socket.socket(socket.AF_UNIX).bind('control.sock')" "$sock"
check "a control socket nobody answers: ps shows stale, with the reason" \
  json "d[0]['state'] == 'stale' and 'refuses' in d[0]['stale_reason']" < <("$vml" ps --json)
"$vml" up -d "$tmp/ticker.yaml" >/dev/null 2>"$tmp/stale-alive.err"
check "up -d refuses to orphan a stale VMM that still lives (exit 1)" test $? -eq 1
check "down of the stale machine kills its VMM" bash -c '"$0" down ticker >/dev/null 2>&1 && gone "$1"' "$vml" "$newpid"
"$vml" up -d "$tmp/ticker.yaml" >/dev/null
newpid=$(json "d[0]['pid']" < <("$vml" ps --json))

check "down --force exits 0" bash -c '"$0" down --force ticker >/dev/null' "$vml"
check "down --force: the VMM is gone" gone "$newpid"

# SIGTERM to the VMM stops the machine the same way and records it.
"$vml" up -d "$tmp/ticker.yaml" >/dev/null
pid=$(json "d[0]['pid']" < <("$vml" ps --json))
kill -TERM "$pid"
check "SIGTERM stops the VMM" wait_for 10 gone "$pid"
check "ps --all shows it stopped by the signal (status 1)" \
  json "[(m['state'], m['exit']) for m in d if m['name'] == 'ticker'] == [('stopped', {'status': 1, 'reason': 'signal'})]" \
  < <("$vml" ps --all --json)
check "a machine that failed to start stays listed as stopped with status 1" \
  json "[(m['state'], m['exit']['status']) for m in d if m['name'] == 'missing'] == [('stopped', 1)]" < <("$vml" ps --all --json)
check "plain ps leaves stopped machines out" json "d == []" < <("$vml" ps --json)

# A guest that powers itself off: stopped with its own status, its output kept.
check "up -d of a guest that powers off at once" test "$("$vml" up -d "$tmp/pass.yaml" 2>/dev/null)" = passer
check "it ends stopped with status 0 (poweroff)" wait_for 10 bash -c \
  '"$0" ps --all --json | grep -q "\"reason\": \"poweroff\""' "$vml"
check "logs of the stopped machine keep its output" bash -c '"$0" logs passer | grep -q "hello from htif"' "$vml"

# Racing up -d of one name: exactly one wins.
for i in 1 2 3 4; do
  ("$vml" up -d "$tmp/ticker.yaml" >"$tmp/race$i.out" 2>"$tmp/race$i.err"; echo $? >"$tmp/race$i.rc") &
done
wait
wins=$(grep -lx 0 "$tmp"/race?.rc | wc -l)
losses=$(grep -lx 1 "$tmp"/race?.rc | wc -l)
check "four racing up -d of one name: exactly one wins" test "$wins" -eq 1
check "the other three are refused with exit 1" test "$losses" -eq 3
check "one VMM runs for the name" json "[m['state'] for m in d] == ['running']" < <("$vml" ps --json)

# The foreground up runs through the same controller: console on stdout, SIGTERM stops it (exit 1),
# as before the controller existed.
"$vml" up "$tmp/ticker.yaml" </dev/null >"$tmp/fg.out" 2>"$tmp/fg.err" &
fg=$!
check "foreground up: console output on stdout" wait_for 20 grep -q "^tick 2$" "$tmp/fg.out"
kill -TERM "$fg"
wait "$fg"
check "foreground up: SIGTERM ends it with exit 1" test $? -eq 1
check "foreground up: and says so on stderr" grep -q "stopped by signal" "$tmp/fg.err"
rm -f "$tmp/fg.err"

# Timings on this host, for the report (not asserted: the host is shared).
for i in 1 2 3; do
  t0=$(date +%s%N); "$vml" up -d --name "timing$i" "$tmp/ticker.yaml" >/dev/null; t1=$(date +%s%N)
  "$vml" down "timing$i" >/dev/null 2>&1; t2=$(date +%s%N)
  echo "timing: up -d to running $(((t1 - t0) / 1000000)) ms, down to gone $(((t2 - t1) / 1000000)) ms"
done

check "down --all stops and removes everything" bash -c '"$0" down --all >/dev/null 2>&1 && test -z "$(ls "$1")"' \
  "$vml" "$VMLAUNCH_STATE_DIR"
check "down with neither names nor --all is bad input (exit 2)" bash -c '"$0" down 2>/dev/null; test $? -eq 2' "$vml"
# Where the state lives without VMLAUNCH_STATE_DIR: XDG_RUNTIME_DIR/vmlaunch, created private.
env -u VMLAUNCH_STATE_DIR XDG_RUNTIME_DIR="$tmp/xdg" "$vml" ps >/dev/null
check "without VMLAUNCH_STATE_DIR the root is XDG_RUNTIME_DIR/vmlaunch, 0700" test "$(stat -c %a "$tmp/xdg/vmlaunch")" = 700
mkdir -p "$tmp/foreign"
chown 65534 "$tmp/foreign" 2>/dev/null
if [ "$(stat -c %u "$tmp/foreign")" = 65534 ]; then
  VMLAUNCH_STATE_DIR=$tmp/foreign "$vml" ps >/dev/null 2>"$tmp/foreign.log"
  check "a state root another user owns is refused (exit 1)" test $? -eq 1
  check "and the error says whose it is" grep -q "belongs to another user" "$tmp/foreign.log"
else
  skip "a state root another user owns is refused" "cannot chown here (not root)"
fi

for cmd in up ps inspect logs down; do
  check "$cmd --help" bash -c '"$0" "$1" --help | grep -q Usage' "$vml" "$cmd"
done

for f in "$tmp"/*.err; do [ -s "$f" ] && { echo "--- $f"; cat "$f"; }; done
finish
