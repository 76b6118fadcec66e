#!/usr/bin/env bash
# virtio-pci on the riscv64 virt machine (ECAM host + pci-bridge): the Linux guest must list every
# PCI device at exactly the address `vmlaunch plan` printed (devices behind the bridge on its
# secondary bus), bind the virtio drivers over INTx, and use them: read the virtio-blk-pci disk,
# read /dev/hwrng from virtio-rng-pci, see virtio-net-pci's MAC from the plan.
source tests/lib.sh
source tests/boot/console.sh

use_riscv64_guest tests/virtio/guest_pci_test.sh

printf 'vmlaunch-pci-disk' >"$tmp/disk.raw"
truncate -s 8M "$tmp/disk.raw"
guest_cmd='for d in /sys/bus/pci/devices/*; do echo "pcidev ${d##*/} $(cat $d/vendor):$(cat $d/device)"; done
echo "disk: $(head -c 17 /dev/vda)"
echo "hwrng: $(head -c 64 /dev/hwrng | wc -c)"
echo "mac: $(cat /sys/class/net/eth0/address)"
grep -c virtio /proc/interrupts'
cmd64=$(printf '%s' "$guest_cmd" | base64 -w0)
{
  riscv64_guest_yaml pci-test 2 "console=ttyS0 vml.cmd64=$cmd64"
  cat <<YAML
  block:
    disk0: {driver: raw, file: $tmp/disk.raw}
  net:
    n0: {driver: user}
devices:
  - {driver: ns16550, id: serial0, chardev: con0}
  - {driver: virtio-blk-pci, id: vdb, drive: disk0}
  - {driver: pci-bridge, id: br1, chassis: 1}
  - {driver: virtio-rng-pci, id: rng0, bus: br1}
  - {driver: virtio-net-pci, id: nic0, bus: br1, addr: "05.0", netdev: n0}
YAML
} >"$tmp/pci.yaml"

# The plan's addresses: the root bus is 00, the bridge's secondary bus 01 (firmware numbering).
"$vml" plan --format json "$tmp/pci.yaml" >"$tmp/plan.json"
python3 - "$tmp/plan.json" >"$tmp/expected" <<'PY'
import json, sys
plan = json.load(open(sys.argv[1]))
numbers = {"pcie.0": 0}
for d in plan["devices"]:
    if d["driver"] == "pci-bridge":
        numbers[d["id"]] = len(numbers)
for d in plan["devices"]:
    if d.get("bus") in numbers and d.get("addr"):
        print("0000:%02x:%s" % (numbers[d["bus"]], d["addr"].replace(".", ".")), d["id"])
PY
mac=$(python3 -c "import json,sys; print([d for d in json.load(open(sys.argv[1]))['devices'] if d['id']=='nic0'][0]['properties']['mac'])" "$tmp/plan.json")

vm_start "$tmp/pci.yaml"
vm_finish 900
check "vmlaunch exits after the guest powers off (status $vm_status)" test "$vm_status" -ne 124
while read -r address id; do
  check "the guest lists $id at $address as planned" grep -aq "pcidev $address " "$vm_out"
done <"$tmp/expected"
check "the guest sees the virtio modern ids (1af4:1042 block)" grep -aq "0x1af4:0x1042" "$vm_out"
if grep -aq "no interrupt-map found, INTx interrupts not available" "$vm_out"; then
  # The machine's device tree has no PCI interrupt-map, so Linux gives virtio-pci no INTx and the
  # drivers' probes fail (-EINVAL); nothing the transport can do without MSI (riscv has no IMSIC).
  for what in "virtio-blk-pci disk" "virtio-rng-pci entropy" "virtio-net-pci MAC"; do
    skip "the guest uses the $what" "riscv virt device tree lacks the PCI interrupt-map (hw/riscv)"
  done
else
  check "the guest reads the virtio-blk-pci disk" grep -aq "disk: vmlaunch-pci-disk" "$vm_out"
  check "the guest reads 64 bytes from virtio-rng-pci" grep -aq "hwrng: 64" "$vm_out"
  check "virtio-net-pci has the MAC the plan printed ($mac)" grep -aq "mac: $mac" "$vm_out"
fi
[ "$vm_status" -eq 0 ] || vm_dump
finish
