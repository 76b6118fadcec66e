#!/usr/bin/env bash
# `vmlaunch plan`, `devices` and `accel` as users run them: exit codes, formats, the lock file.
source tests/lib.sh
vmlaunch=launcher/vmlaunch
tmp=${TEST_TMPDIR:-$(mktemp -d)}
export HOME=${HOME:-$tmp}  # examples name ${HOME}/.cache/...; Bazel may run tests without HOME

plan_ok() { "$vmlaunch" plan "$1" >"$tmp/out" 2>"$tmp/err"; }
for example in examples/*.yaml examples/*.toml; do
  check "plan $example exits 0" plan_ok "$example"
done

# A broken machine: all problems reported at once, exit 2.
cat >"$tmp/bad.yaml" <<'YAML'
machine: {arch: riscv64, type: virt, memory: 256MiB}
devices:
  - {driver: virtio-rng-pci, bus: pci.9}
  - {driver: virtio-rng-pci, addr: 0}
  - {driver: virtio-rng-pci, addr: 40}
YAML
bad_plan() {
  "$vmlaunch" plan "$tmp/bad.yaml" >"$tmp/out" 2>"$tmp/err"
  [ $? -eq 2 ] && grep -q 'bad.yaml:3:35: devices\[0\].bus: unknown bus "pci.9"' "$tmp/err" &&
    grep -q 'bad.yaml:4:36: devices\[1\].addr: "pcie.0" 00.0 is already taken by the machine.s pcie-host' "$tmp/err" &&
    grep -q 'bad.yaml:5:36: devices\[2\].addr: ' "$tmp/err" && [ "$(grep -c 'bad.yaml:5:36' "$tmp/err")" -eq 1 ]
}
check "plan reports schema and graph errors together with file:line:col and exits 2" bad_plan
check "plan of a missing file exits 1" bash -c "'$vmlaunch' plan '$tmp/nope.yaml' 2>/dev/null; [ \$? -eq 1 ]"

json_ok() {
  "$vmlaunch" plan --format json examples/hello-riscv.yaml >"$tmp/plan.json" || return 1
  if command -v python3 >/dev/null; then python3 -m json.tool "$tmp/plan.json" >/dev/null; else grep -q '"devices"' "$tmp/plan.json"; fi
}
check "plan --format json is JSON" json_ok
if command -v dot >/dev/null; then
  check "plan --format dot renders with dot -Tsvg" bash -c \
    "'$vmlaunch' plan --format dot examples/hello-riscv.yaml | dot -Tsvg | grep -q '<svg'"
else
  skip "plan --format dot renders" "graphviz not installed"
fi
check "plan rejects an unknown format" bash -c "! '$vmlaunch' plan --format xml examples/hello-riscv.yaml 2>/dev/null"

# --lock writes <config>.lock; after removing a device the others keep their addresses.
cat >"$tmp/m.yaml" <<'YAML'
machine: {arch: riscv64, type: virt, memory: 256MiB}
backends: {net: {n0: {driver: user}, n1: {driver: user}}}
devices:
  - {driver: virtio-net-pci, id: a, netdev: n0}
  - {driver: virtio-net-pci, id: b, netdev: n1}
YAML
lock_written() {
  "$vmlaunch" plan --lock "$tmp/m.yaml" >"$tmp/out" 2>"$tmp/err" && grep -q '"id": "b", .*"addr": "02.0"' "$tmp/m.yaml.lock"
}
check "plan --lock writes the inferred addresses" lock_written
lock_honoured() {
  sed -i '/id: a,/d; s/n0: {driver: user}, //' "$tmp/m.yaml"
  "$vmlaunch" plan "$tmp/m.yaml" >"$tmp/out" 2>"$tmp/err" &&
    grep -q 'L dev b: virtio-net-pci @ 02.0' "$tmp/out" &&
    grep -q 'm.yaml.lock:5:5: warning: stale lock entry for "a"' "$tmp/err"
}
check "the lock keeps b at 02.0 after a is removed, and reports a's stale entry" lock_honoured

check "devices lists types by bus kind" bash -c "'$vmlaunch' devices | grep -q '^pci devices:' && '$vmlaunch' devices | grep -q '^  virtio-scsi-pci'"
check "devices NAME shows properties with defaults" bash -c \
  "'$vmlaunch' devices virtio-blk-pci | grep -q 'num-queues=<int 1..64> .*(default: 1)'"
check "devices with an unknown name suggests one and exits 2" bash -c \
  "'$vmlaunch' devices virtio-blk-pcie 2>&1 | grep -q 'did you mean \"virtio-blk-pci\"'; [ \${PIPESTATUS[0]} -eq 2 ]"
check "accel lists the six accelerators" bash -c "[ \$('$vmlaunch' accel | grep -cE '^(kvm|jit|xen|hvf|whpx|nvmm) ') -eq 6 ]"
check "accel explains xen" bash -c "'$vmlaunch' accel | grep -q '^xen .*known, but not available on a Linux host'"
# The plan is the file's, not the host's: stdout is the same whether /dev/kvm is missing, is not a KVM
# device, or is the host's; only the stderr note differs. validate agrees with plan everywhere.
same_on_every_host() {
  local example=$1 kvm i=0
  for kvm in /nonexistent/kvm /dev/null /dev/kvm; do
    i=$((i + 1))
    VMLAUNCH_KVM_DEVICE=$kvm "$vmlaunch" plan "$example" >"$tmp/plan-$i.txt" 2>"$tmp/err" || return 1
    grep -q '^note: this host' "$tmp/err" || return 1
    VMLAUNCH_KVM_DEVICE=$kvm "$vmlaunch" plan --format json "$example" >"$tmp/plan-$i.json" 2>/dev/null || return 1
    VMLAUNCH_KVM_DEVICE=$kvm "$vmlaunch" validate --json "$example" >"$tmp/validate-$i.json" 2>/dev/null || return 1
  done
  cmp -s "$tmp/plan-1.txt" "$tmp/plan-2.txt" && cmp -s "$tmp/plan-1.txt" "$tmp/plan-3.txt" &&
    cmp -s "$tmp/plan-1.json" "$tmp/plan-2.json" && cmp -s "$tmp/plan-1.json" "$tmp/plan-3.json" &&
    cmp -s "$tmp/validate-1.json" "$tmp/validate-2.json" && cmp -s "$tmp/validate-1.json" "$tmp/validate-3.json"
}
for example in examples/*.yaml examples/*.toml; do
  check "plan and validate of $example are the same with and without /dev/kvm" same_on_every_host "$example"
done
no_kvm_note() {
  VMLAUNCH_KVM_DEVICE=/nonexistent/kvm "$vmlaunch" plan examples/x86_64-microvm.yaml >"$tmp/out" 2>"$tmp/err" &&
    grep -q '^accelerator: kvm (first of \[kvm\] that runs x86_64 guests)$' "$tmp/out" &&
    grep -q '^note: this host cannot run this machine (kvm: /nonexistent/kvm: No such file or directory); `vmlaunch up` here would exit 1$' "$tmp/err"
}
check "plan notes on stderr that this host cannot run kvm" no_kvm_note
up_without_kvm() {
  VMLAUNCH_KVM_DEVICE=/nonexistent/kvm "$vmlaunch" up examples/x86_64-microvm.yaml >"$tmp/out" 2>"$tmp/err"
  [ $? -eq 1 ] && grep -q 'cannot run .*kvm: /nonexistent/kvm: No such file or directory' "$tmp/err"
}
check "up without a usable accelerator exits 1 with each candidate's reason" up_without_kvm
validate_graph() {
  "$vmlaunch" validate "$tmp/bad.yaml" >"$tmp/out" 2>"$tmp/err"
  [ $? -eq 2 ] && grep -q 'bad.yaml:3:35: devices\[0\].bus: unknown bus "pci.9"' "$tmp/err" &&
    grep -q 'bad.yaml:4:36: devices\[1\].addr: "pcie.0" 00.0 is already taken' "$tmp/err"
}
check "validate reports the device graph's errors as plan does (exit 2)" validate_graph
accel_json() {
  "$vmlaunch" accel --json >"$tmp/accel.json" || return 1
  python3 - "$tmp/accel.json" <<'PY'
import json, os, sys
j = json.load(open(sys.argv[1]))
assert j["host"]["arch"] == os.uname().machine, j["host"]
assert j["host"]["cpus"] >= 1 and j["host"]["memory_bytes"] > 0
names = [a["name"] for a in j["accelerators"]]
assert names == ["kvm", "jit", "xen", "hvf", "whpx", "nvmm"], names
jit = j["accelerators"][1]
assert jit["usable"] and jit["in_build"] and jit["guest_arches"] == ["riscv64"], jit
PY
}
check "accel --json reports host facts and each accelerator" accel_json
# A passthrough entry for a device this host cannot hand over: exit 1 before anything starts, the
# problem at the entry's host: (no host here has an IOMMU and a GPU at 01:00.0 bound to vfio-pci).
up_passthrough() {
  "$vmlaunch" up examples/passthrough-pc.yaml </dev/null >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  sed 's/^/    | /' "$tmp/err"
  [ $rc -eq 1 ] && grep -q 'passthrough-pc.yaml:10:[0-9]*: passthrough.gpu0.host: ' "$tmp/err" &&
    ! grep -qi 'internal\|unknown backend kind' "$tmp/err"
}
check "up checks passthrough entries on this host first (exit 1, at the entry)" up_passthrough
check "plan --help works" bash -c "'$vmlaunch' plan --help | grep -q -- '--lock'"
finish
