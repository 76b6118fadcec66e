#!/usr/bin/env bash
# Hostile-but-realistic input to `vmlaunch validate` and `plan` (issue 14): every case ends at
# once with a clear message and the right exit status, and touches nothing it should not.
set -uo pipefail
source tests/lib.sh
vmlaunch=$PWD/launcher/vmlaunch
work=$(mktemp -d "${TEST_TMPDIR:-/tmp}/hostile.XXXXXX")
trap 'rm -rf "$work"' EXIT
example=$PWD/examples/hello-riscv.yaml

# `expect STATUS PATTERN CMD...`: CMD exits STATUS within 10 s and its stderr matches PATTERN.
expect() {
  local status=$1 pattern=$2 err actual
  shift 2
  err=$(timeout 10 "$@" 2>&1 >/dev/null)
  actual=$?
  if [ "$actual" != "$status" ] || ! grep -qE -- "$pattern" <<<"$err"; then
    echo "    exit $actual (want $status); stderr:"
    head -c 2000 <<<"$err" | sed 's/^/    /'
    return 1
  fi
}

# Only regular files are read, with a size cap; `-` is stdin with the same cap.
mkfifo "$work/fifo.yaml"
truncate -s 1T "$work/sparse.yaml"
printf 'extends: /dev/zero\nname: x\n' >"$work/extends-zero.yaml"
check "config /dev/zero" expect 1 "/dev/zero: cannot read file: is a character device, not a regular file" \
  "$vmlaunch" validate /dev/zero
check "config FIFO" expect 1 "is a FIFO, not a regular file" "$vmlaunch" validate "$work/fifo.yaml"
check "config sparse 1 TiB" expect 1 "over the 16 MiB limit" "$vmlaunch" validate "$work/sparse.yaml"
check "extends /dev/zero" expect 2 'extends: cannot read "/dev/zero": is a character device' \
  "$vmlaunch" validate "$work/extends-zero.yaml"
check "config from stdin" expect 0 "^$" "$vmlaunch" validate - <"$example"
check "stdin over the cap" expect 1 "larger than 16 MiB" \
  bash -c "head -c 17M /dev/zero | tr '\\0' '#' | '$vmlaunch' validate -"

# Not a machine file: nothing of it is echoed; NUL refused; control characters escaped.
printf 'root:$6$salt$secrethash:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n' >"$work/shadow"
printf 'extends: %s\nname: x\n' "$work/shadow" >"$work/extends-shadow.yaml"
check "extends a non-config" expect 2 "shadow:1:1: this is not a vmlaunch machine file" \
  "$vmlaunch" validate "$work/extends-shadow.yaml"
no_secret() { ! "$vmlaunch" validate "$work/extends-shadow.yaml" 2>&1 | grep -qE 'secrethash|daemon'; }
check "no line of it echoed" no_secret
printf 'name: "a\\0b"\n' >"$work/nul.yaml"
check "NUL in a string" expect 2 'nul.yaml:1:7: a NUL byte \(\\0\) inside a string' "$vmlaunch" validate "$work/nul.yaml"
printf 'machine: {arch: "\\e[31mred"}\n' >"$work/esc.yaml"
no_escape() { ! "$vmlaunch" validate "$work/esc.yaml" 2>&1 | grep -q $'\e'; }
check "ESC is escaped in messages" no_escape
check "ESC shown as \\e" expect 2 '\\e\[31mred' "$vmlaunch" validate "$work/esc.yaml"

# `up` with a socket net backend that cannot listen: an error at the option, exit 1 (it aborted
# with std::system_error); a regular file at `path:` is kept.
net_config() {
  printf 'name: n\nmachine: {arch: riscv64, type: virt, memory: 256MiB}\naccel: [jit]\n'
  printf 'boot: {firmware: opensbi}\nbackends:\n  net: {n: {driver: socket, path: "%s", server: true}}\n' "$1"
  printf 'devices:\n  - {driver: virtio-net-pci, netdev: n}\n'
}
net_config /nonexistent/n.sock >"$work/net-missing.yaml"
check "up: socket in a missing directory" expect 1 \
  "net-missing.yaml:6:[0-9]+: .*option 'path': net socket: listen on /nonexistent/n.sock: No such file" \
  "$vmlaunch" up "$work/net-missing.yaml"
short=$(mktemp -d /tmp/vml.XXXXXX)  # Bazel's TEST_TMPDIR is too long for a unix socket path
trap 'rm -rf "$work" "$short"' EXIT
echo precious >"$short/data.txt"
net_config "$short/data.txt" >"$work/net-file.yaml"
check "up: socket path naming a regular file" expect 1 "exists and is a regular file, not a socket" \
  "$vmlaunch" up "$work/net-file.yaml"
check "the regular file is kept" test "$(cat "$short/data.txt")" = precious

# Lock files: only next to a regular machine file, never through a symlink, written atomically.
cp "$example" "$work/m.yaml"
check "plan --lock writes m.yaml.lock" expect 0 "wrote $work/m.yaml.lock" "$vmlaunch" plan --lock "$work/m.yaml"
check "no temporary file left" test "$(ls "$work" | grep -c '^m.yaml.lock')" = 1
check "plan --lock /dev/stdin" expect 1 "is not a machine file in a directory" \
  bash -c "'$vmlaunch' plan --lock /dev/stdin <'$example'"
check "no /dev/stdin.lock" test ! -e /dev/stdin.lock
check "plan --lock -" expect 1 "stdin has no lock file" bash -c "'$vmlaunch' plan --lock - <'$example'"
cp "$example" "$work/l.yaml"
keep='{"vmlaunch-lock": 1, "machine": "riscv64/virt", "devices": []}'
echo "$keep" >"$work/target"
ln -s "$work/target" "$work/l.yaml.lock"
check "plan --lock through a symlink" expect 1 "exists and is not a regular file" \
  "$vmlaunch" plan --lock "$work/l.yaml"
check "symlink target kept" test "$(cat "$work/target")" = "$keep"

finish
