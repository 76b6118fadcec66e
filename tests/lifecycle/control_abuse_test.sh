#!/usr/bin/env bash
# The control socket is hostile input: thousands of random, malformed, oversized and truncated
# requests, abrupt disconnects, too many clients and one that never reads must neither stop nor
# stall the machine; afterwards the guest still prints on its console.
source tests/lib.sh
source tests/lifecycle/machine.sh

machine "$tmp/abused.yaml" abused "$tick"
check "up -d" test "$("$vml" up -d "$tmp/abused.yaml")" = abused
dir=$VMLAUNCH_STATE_DIR/abused
pid=$(json "d[0]['pid']" < <("$vml" ps --json))
/usr/bin/python3 tests/lifecycle/control_abuse.py "$dir/control.sock" 3000 >"$tmp/abuse.out" 2>&1
status=$?
cat "$tmp/abuse.out"
check "3000 abusive requests: every reply a JSON object, typed errors, server still answering" test "$status" -eq 0
check "every bad request got an error object" grep -qE "errors [0-9]{3,}" "$tmp/abuse.out"
check "the VMM survived" bash -c '! gone "$0"' "$pid"
before=$(wc -c <"$dir/console.log")
check "the guest still prints on its console" wait_for 10 bash -c 'test "$(wc -c <"$0")" -gt "$1"' "$dir/console.log" "$before"
check "ps still shows it running" json "d[0]['state'] == 'running'" < <("$vml" ps --json)
check "down still stops it" bash -c '"$0" down abused >/dev/null 2>&1' "$vml"
check "the VMM is gone" gone "$pid"
finish
