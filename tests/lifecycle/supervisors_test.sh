#!/usr/bin/env bash
# The supervisor examples in docs/supervisors: the systemd unit passes `systemd-analyze verify`, and
# the command line each of them runs (with the instance name and file filled in) starts a machine
# that ps sees and that stops with the forced-stop status when down --force ends it. The Nomad job's
# kill_timeout leaves the grace period (--stop-timeout) room before Nomad kills.
source tests/lib.sh
source tests/lifecycle/machine.sh

unit=docs/supervisors/vmlaunch@.service
job=docs/supervisors/vmlaunch.nomad.hcl
machine "$tmp/web.yaml" web "$tick"

# runs_as NAME ARGS...: vmlaunch ARGS runs a machine named NAME until down --force (exit 12).
runs_as() {
  local name=$1 pid rc
  shift
  "$vml" "$@" </dev/null >/dev/null 2>"$tmp/$name.err" &
  pid=$!
  wait_for 20 bash -c '"$0" inspect "$1" --json | grep -q "\"state\": \"running\""' "$vml" "$name" || return 1
  "$vml" down --force "$name" >/dev/null || return 1
  wait "$pid"
  rc=$?
  [ "$rc" -eq 12 ]
}

if command -v systemd-analyze >/dev/null; then
  sed "s#/usr/local/bin/vmlaunch#$vml#" "$unit" >"$tmp/vmlaunch@.service"
  out=$(cd "$tmp" && systemd-analyze verify ./vmlaunch@.service 2>&1)
  check "the systemd unit passes systemd-analyze verify" test -z "$out" -a $? -eq 0
  [ -n "$out" ] && echo "$out"
else
  skip "the systemd unit passes systemd-analyze verify" "no systemd-analyze here"
fi
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
read -r -a argv <<<"$(printf '%s' "$exec_start" | sed "s#%i#web#g; s#/etc/vmlaunch/web.yaml#$tmp/web.yaml#")"
check "the unit's ExecStart runs vmlaunch up in the foreground" test "${argv[0]##*/}" = vmlaunch -a "${argv[1]}" = up
check "the unit's ExecStart starts the machine, named after the instance" runs_as web "${argv[@]:1}"
check "TimeoutStopSec leaves room for --stop-timeout" test "$(sed -n 's/^TimeoutStopSec=//p' "$unit")" -gt \
  "$(printf '%s' "$exec_start" | sed -n 's/.*--stop-timeout \([0-9]*\).*/\1/p')"

mapfile -t nomad_args < <(/usr/bin/python3 - "$job" "$tmp/web.yaml" <<'PY'
import json, re, sys
text = open(sys.argv[1]).read()
args = json.loads(re.search(r'args\s*=\s*(\[[^\]]*\])', text).group(1))
for a in args:
    print(a.replace("${NOMAD_ALLOC_INDEX}", "0").replace("/etc/vmlaunch/web.yaml", sys.argv[2]))
PY
)
check "the Nomad job's command is vmlaunch" grep -q 'command = "/usr/local/bin/vmlaunch"' "$job"
check "the Nomad job's args start the machine" runs_as web-0 "${nomad_args[@]}"
kill_timeout=$(sed -n 's/.*kill_timeout *= *"\([0-9]*\)s".*/\1/p' "$job")
grace=$(printf '%s\n' "${nomad_args[@]}" | sed -n '/--stop-timeout/{n;p}')
check "the Nomad job's kill_timeout leaves room for --stop-timeout" test "$kill_timeout" -gt "$grace"
check "and it stops with SIGTERM (the graceful path)" grep -q 'kill_signal *= *"SIGTERM"' "$job"
finish
