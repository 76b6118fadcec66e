#!/usr/bin/env bash
# tools/nested-host itself: one boot of the nested KVM host checks what a command inside sees and
# what comes back (status, stdout, stderr, files), the extra outer device and the outer QMP socket;
# then the cheap paths (timeout, bad usage, kvm_or_nested's choice).
source tests/lib.sh
set -u
WORK=${TEST_TMPDIR:-$(mktemp -d)}
NESTED=$PWD/tools/nested-host
# A unix socket path must stay under 108 bytes; Bazel's TEST_TMPDIR can be longer.
SOCKDIR=$(mktemp -d /tmp/nested-test.XXXXXX)
trap 'rm -rf "$SOCKDIR"' EXIT

cat >"$WORK/inside.sh" <<'SH'
echo "stdout line"
echo "stderr line" >&2
echo "cwd=$PWD"
echo "var=$NESTED_TEST_VAR"
[ -c /dev/kvm ] && echo "kvm: /dev/kvm is a character device"
[ -d /sys/module/vfio_pci ] && echo "modprobe: vfio_pci loaded"
# init's kvm-hold keeps one idle VM for the whole run (tests/nested/kvm_hold.c says why).
for p in /proc/[0-9]*; do
  [ "$(cat "$p/comm" 2>/dev/null)" = kvm-hold ] && ls -l "$p/fd" | grep -q "anon_inode:kvm-vm" && echo "kvm-hold: holds a VM"
done
echo written >"$NESTED_TEST_WORK/from-inside"
if touch /usr/nested-host-probe 2>/dev/null; then echo "root: writable"; else echo "root: read-only"; fi
for d in /sys/bus/pci/devices/*; do
  [ "$(cat "$d/vendor"):$(cat "$d/device")" = 0x1234:0x11e8 ] && echo "edu: at ${d##*/}"
done
# The host side talks to the outer QMP socket meanwhile; wait (bounded) for its answer.
for _ in $(seq 1200); do [ -s "$NESTED_TEST_WORK/qmp-done" ] && break; sleep 0.5; done
cat "$NESTED_TEST_WORK/qmp-done"
exit 7
SH

NESTED_TEST_VAR="hello 'quoted' world" NESTED_TEST_WORK=$WORK \
  "$NESTED" --device edu --modprobe vfio_pci --qmp "$SOCKDIR/qmp" --rw "$WORK" --timeout 1200 -- bash "$WORK/inside.sh" \
  >"$WORK/out" 2>"$WORK/err" &
nested_pid=$!
python3 - "$SOCKDIR/qmp" "$WORK/qmp-done" <<'PY' >"$WORK/qmp.log" 2>&1
import json, os, socket, sys, time
path, done = sys.argv[1], sys.argv[2]
deadline = time.time() + 600
while not os.path.exists(path):
    if time.time() > deadline: sys.exit("no QMP socket")
    time.sleep(0.2)
s = socket.socket(socket.AF_UNIX); s.connect(path); f = s.makefile("rw")
def call(cmd):
    f.write(json.dumps({"execute": cmd}) + "\n"); f.flush()
    while True:
        msg = json.loads(f.readline())
        if "return" in msg or "error" in msg: return msg
greeting = json.loads(f.readline())
call("qmp_capabilities")
status = call("query-status")["return"]["status"]
edu = [d for bus in call("query-pci")["return"] for d in bus["devices"]
       if d["id"]["vendor"] == 0x1234 and d["id"]["device"] == 0x11e8]
with open(done + ".tmp", "w") as out:
    out.write("qmp: status %s, edu in query-pci: %d\n" % (status, len(edu)))
os.rename(done + ".tmp", done)
PY
wait "$nested_pid"
RC=$?
echo "exit status $RC; stdout:"
sed 's/^/    | /' "$WORK/out"
echo "stderr:"
sed 's/^/    | /' "$WORK/err"
sed 's/^/    qmp client: /' "$WORK/qmp.log"

exit_status_comes_back() { [ "$RC" -eq 7 ]; }
stdout_and_stderr_apart() {
  grep -qx "stdout line" "$WORK/out" && ! grep -q "stderr line" "$WORK/out" && grep -qx "stderr line" "$WORK/err"
}
same_directory_and_environment() {
  grep -qx "cwd=$PWD" "$WORK/out" && grep -qx "var=hello 'quoted' world" "$WORK/out"
}
kvm_inside() { grep -q "^kvm: /dev/kvm is a character device" "$WORK/out"; }
idle_vm_held() { grep -qx "kvm-hold: holds a VM" "$WORK/out"; }
module_on_request() { grep -qx "modprobe: vfio_pci loaded" "$WORK/out"; }
shared_directory_writable_root_read_only() {
  [ "$(cat "$WORK/from-inside" 2>/dev/null)" = written ] && grep -qx "root: read-only" "$WORK/out"
}
extra_device_inside() { grep -q "^edu: at 0000:" "$WORK/out"; }
outer_qmp_answers() { grep -qx "qmp: status running, edu in query-pci: 1" "$WORK/out"; }
timeout_is_124() {
  "$NESTED" --timeout 2 -- true >"$WORK/timeout.out" 2>&1
  local rc=$?
  sed 's/^/    | /' "$WORK/timeout.out" | head -n 3
  [ "$rc" -eq 124 ] && grep -q "timed out after 2s" "$WORK/timeout.out"
}
bad_usage_is_2() {
  "$NESTED" --frobnicate -- true 2>"$WORK/usage.out"
  local a=$?
  "$NESTED" --memory lots -- true 2>>"$WORK/usage.out"
  local b=$?
  "$NESTED" --help | grep -q "^usage: tools/nested-host" && [ "$a" -eq 2 ] && [ "$b" -eq 2 ] &&
    grep -q "unknown option --frobnicate" "$WORK/usage.out" && grep -q "not a positive number: lots" "$WORK/usage.out"
}
kvm_or_nested_obeys_override() {
  local direct bad
  direct=$(VMLAUNCH_NESTED=never tests/nested/kvm_or_nested echo direct 2>&1)
  VMLAUNCH_NESTED=sometimes tests/nested/kvm_or_nested true 2>/dev/null
  bad=$?
  [ "$direct" = "kvm_or_nested: on this host's /dev/kvm"$'\n'"direct" ] && [ "$bad" -eq 2 ]
}

for c in exit_status_comes_back stdout_and_stderr_apart same_directory_and_environment kvm_inside \
  idle_vm_held module_on_request shared_directory_writable_root_read_only extra_device_inside outer_qmp_answers timeout_is_124 \
  bad_usage_is_2 kvm_or_nested_obeys_override; do
  echo "== $c"
  check "$c" "$c"
done
finish
