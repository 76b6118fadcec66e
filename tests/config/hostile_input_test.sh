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

# Bad input the file alone decides is exit 2 at `validate`, with the place and the fix (these
# surfaced only at `up`, or never).
machine() {
  printf 'machine: {arch: riscv64, type: virt, memory: %s}\naccel: [jit]\nboot: {firmware: opensbi}\n' "${1:-256MiB}"
}
{ machine; printf 'backends:\n  net: {n: {driver: user, hostfwd: ["tcp:127.0.0.1:99999-:22"]}}\n'
  printf 'devices:\n  - {driver: virtio-net-pci, netdev: n}\n'; } >"$work/fwd-port.yaml"
check "hostfwd port 99999" expect 2 'fwd-port.yaml:5:37: backends.net.n.hostfwd\[0\]: .*host port 99999 is not 0-65535' \
  "$vmlaunch" validate "$work/fwd-port.yaml"
sed 's/127.0.0.1:99999/999.1.1.1:2222/' "$work/fwd-port.yaml" >"$work/fwd-addr.yaml"
check "hostfwd address 999.1.1.1" expect 2 'hostfwd\[0\]: .*host address 999.1.1.1 is not an IPv4 address' \
  "$vmlaunch" validate "$work/fwd-addr.yaml"
{ machine; printf 'backends:\n  chardev: {c: {driver: socket, path: /tmp/x.sock, port: 4444}}\n'
  printf 'devices:\n  - {driver: ns16550, chardev: c}\n'; } >"$work/sock-both.yaml"
check "socket with path and port" expect 2 'sock-both.yaml:5:58: backends.chardev.c.port: .*both a unix socket path and a TCP port' \
  "$vmlaunch" validate "$work/sock-both.yaml"
machine 1KiB >"$work/ram-1k.yaml"
check "1 KiB of RAM" expect 2 'ram-1k.yaml:1:46: machine.memory: memory 1024 bytes is too small' \
  "$vmlaunch" validate "$work/ram-1k.yaml"
machine 10000000 >"$work/ram-odd.yaml"
check "RAM not whole pages" expect 2 'not a whole number of 4KiB pages' "$vmlaunch" validate "$work/ram-odd.yaml"
machine 17592186044415M >"$work/ram-huge.yaml"
check "RAM beyond 2^48" expect 2 'ends beyond the 2\^48-byte guest physical address space' \
  "$vmlaunch" validate "$work/ram-huge.yaml"
{ machine; printf 'devices:\n'
  for i in $(seq 0 256); do
    parent=pcie.0; [ "$i" = 0 ] || parent=b$((i - 1))
    printf '  - {driver: pci-bridge, id: b%d, bus: %s}\n' "$i" "$parent"
  done; } >"$work/buses.yaml"
check "more than 255 PCI bridges" expect 2 'devices\[255\]: bridge "b255" would be PCI bus 256' \
  "$vmlaunch" validate "$work/buses.yaml"
{ machine; printf 'devices:\n  - {driver: null, id: x}\n'; } >"$work/null.yaml"
check "driver: null says to quote it" expect 2 'null.yaml:5:14: devices\[0\].driver: expected string, got null \(.*write "null" in quotes' \
  "$vmlaunch" validate "$work/null.yaml"
one_null_error() { test "$("$vmlaunch" validate "$work/null.yaml" 2>&1 | grep -c 'devices\[0\].driver')" = 1; }
check "driver: null reported once" one_null_error
{ machine; printf 'devices:\n  - {driver: virtio-rng-pci, addr: "20"}\n'; } >"$work/hex.yaml"
check 'addr: "20" is read as hex' expect 2 'address "20" is read as hex \(slot 0x20 = 32\).*write addr: 20 \(a number\) or "14"' \
  "$vmlaunch" validate "$work/hex.yaml"
{ machine; printf 'name: ${VML_UNSET_A:-${VML_UNSET_B:-nested}}\n'; } >"$work/nested-default.yaml"
check 'nested default ${A:-${B:-x}}' expect 0 'machine riscv64/virt "nested"' \
  bash -c "'$vmlaunch' plan '$work/nested-default.yaml' >&2"

# cpu.features by the rules of the architecture's accelerator, at validate: an x86 name on riscv64.
{ printf 'machine: {arch: riscv64, type: virt, memory: 256MiB}\ncpu: {model: rv64gc, features: [sstc, avx2]}\n'
  printf 'accel: [jit]\nboot: {firmware: opensbi}\n'; } >"$work/features.yaml"
check "cpu.features of the wrong architecture" expect 2 'features.yaml:2:39: cpu.features\[1\]: jit: cpu feature \+avx2 is not implemented' \
  "$vmlaunch" validate "$work/features.yaml"
one_feature_error() { test "$("$vmlaunch" validate "$work/features.yaml" 2>&1 | grep -c 'cpu.features')" = 1; }
check "a bare feature name means +name" one_feature_error
{ printf 'machine: {arch: x86_64, type: microvm, memory: 256MiB}\ncpu: {model: host, features: [-x2apic, +sstc]}\n'
  printf 'accel: [kvm]\nboot: {kernel: /nonexistent}\n'; } >"$work/features-x86.yaml"
check "a riscv64 feature on x86_64" expect 2 'cpu.features\[1\]: kvm: cpu feature "sstc" is not an x86 feature' \
  "$vmlaunch" validate "$work/features-x86.yaml"

# The other language's body under a file name: said plainly, not as what the wrong parser made of it.
printf 'name = "x"\n[machine]\narch = "riscv64"\n' >"$work/toml-body.yaml"
check "TOML body in a .yaml file" expect 2 'toml-body.yaml:1:1: this file is named .yaml but its body is TOML \(rename it to .toml' \
  "$vmlaunch" validate "$work/toml-body.yaml"
printf 'name: x\nmachine: {arch: riscv64}\n' >"$work/yaml-body.toml"
check "YAML body in a .toml file" expect 2 'yaml-body.toml:1:1: this file is named .toml but its body is YAML \(rename it to .yaml' \
  "$vmlaunch" validate "$work/yaml-body.toml"

finish
