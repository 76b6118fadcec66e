// The PCI device models machines find by catalogue driver name (hw/device_model.h):
//   "pci-host-bridge"  x86 pc: CF8/CFC config mechanism, host bridge 8086:1237 at 00.0 of pci.0
//   "gpex-pcihost"     riscv virt: ECAM window, host bridge 1b36:0008 at 00.0 of pcie.0
//   "pci-bridge"       type 1 bridge 1b36:0001 providing the bus named after its id
// and the two calls machine builders and other PCI device models make.
#pragma once

#include <memory>

#include "base/result.h"
#include "hw/device_model.h"
#include "hw/pci/pci_bus.h"

namespace hw::pci {

// The PCI host a machine's Bus got from its host-bridge model, or null (a machine without PCI).
std::shared_ptr<PciHost> host_for(const Bus& bus);

// For PCI function models (virtio-*-pci ...): plugs `fn` at the graph's address of env.device
// (bus by name, slot.function) and wires INTA# to env.irq with the interrupt line register set to the
// graph's IRQ. Return nullptr from the factory afterwards: the function maps its BARs itself.
base::Result<void, base::Error> plug_function(DeviceEnv& env, std::shared_ptr<PciFunction> fn);

// After every device is plugged: firmware-style bus numbering and BAR assignment from the graph's
// PCI windows of the host. No-op for a Bus without a PCI host.
base::Result<void, base::Error> finish(Bus& bus, const graph::Graph& graph);

}  // namespace hw::pci
