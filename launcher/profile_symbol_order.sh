#!/usr/bin/env bash
# Regenerates launcher/symbol_order.txt, the link order of vmlaunch's code (launcher/BUILD).
#
# Why: the kernel maps file-backed code in 64 KiB windows around each page fault (fault-around),
# so code that runs scattered over the binary makes nearly all of .text resident. `vmlaunch up`
# runs ~0.8 MB of its ~3 MB of functions; linking those first, together, keeps the rest of the
# binary off the process's resident set (issue 5's memory goal; docs/benchmarks.md).
#
# How: runs `vmlaunch up` on the kvm_launch benchmark's guest (guests/x86/hello.elf) under
# valgrind's callgrind, which records every function executed, and writes the mangled names of
# those in vmlaunch itself, sorted (stable diffs). Extra vmlaunch configs to profile may be given as
# arguments; their functions are added. Needs /dev/kvm, valgrind and python3.
# Usage: BZ=<name> launcher/profile_symbol_order.sh [CONFIG.yaml...]
#
# A stale list is harmless (names that no longer exist are ignored, new functions land after the
# listed ones); regenerate it after large changes to the startup path.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${BZ:=symbol-order}"
command -v valgrind >/dev/null || { echo "valgrind is missing: apt-get install valgrind" >&2; exit 1; }
BZ=$BZ tools/dev-bazel build //launcher:vmlaunch //guests/x86:hello.elf
bin=/tmp/bz-$BZ/bin
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The same machine bench/kvm_launch boots.
cat >"$work/hello.yaml" <<YAML
name: bench
machine: {arch: x86_64, type: microvm, memory: 32MiB}
cpu: {model: host, count: 1}
accel: [kvm]
boot: {kernel: "$(readlink -f "$bin/guests/x86/hello.elf")", cmdline: "exit=0"}
backends: {chardev: {con0: {driver: stdio}}}
devices: [{driver: ns16550, id: serial0, chardev: con0}]
YAML
cp "$bin/launcher/vmlaunch" "$work/vmlaunch"  # callgrind names objects by path: one we know
n=0
for config in "$work/hello.yaml" "$@"; do
  n=$((n + 1))
  echo x | valgrind --tool=callgrind --demangle=no --callgrind-out-file="$work/cg.$n" \
    "$work/vmlaunch" up "$config" >"$work/out.$n" 2>"$work/err.$n" ||
    { cat "$work/err.$n" >&2; echo "vmlaunch up $config failed under callgrind" >&2; exit 1; }
done
python3 - "$work/vmlaunch" "$work"/cg.* >launcher/symbol_order.txt <<'PY'
import re, sys
# callgrind's compressed names: "fn=(id) name" defines id, later "fn=(id)" reuses it; "ob=" likewise
# sets the object of the functions that follow. A function with cost lines ran.
binary, names = sys.argv[1], set()
for path in sys.argv[2:]:
    objects, functions, current = {}, {}, None
    for line in open(path):
        m = re.match(r"^(c?)(ob|fn)=\((\d+)\)(?: (.*))?$", line.rstrip("\n"))
        if not m:
            continue
        called, kind, ident, name = m.groups()
        table = objects if kind == "ob" else functions
        if name:
            table[ident] = name
        if called:
            continue
        if kind == "ob":
            current = objects[ident]
        elif current == binary:
            fn = re.sub(r"'\d+$", "", functions[ident])  # recursion depth suffix
            if not fn.startswith(("0x", "(")):  # unnamed code, valgrind pseudo-frames
                names.add(fn)
print("\n".join(sorted(names)))
PY
echo "launcher/symbol_order.txt: $(wc -l <launcher/symbol_order.txt) functions" >&2
