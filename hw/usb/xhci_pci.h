// qemu-xhci's PCI function (xhci_pci.cpp): the Xhci controller behind BAR 0 of a PciFunction with
// QEMU's ids, an MSI capability where the machine has MSI, else INTx. The device model factory
// builds one per qemu-xhci device; tests build it directly.
#pragma once

#include <memory>
#include <string>

#include "base/guest_memory.h"
#include "hw/device.h"
#include "hw/pci/pci_function.h"
#include "hw/usb/xhci.h"

namespace hw::usb {

struct XhciFunction {
  std::shared_ptr<pci::PciFunction> function;
  std::shared_ptr<Xhci> controller;
};

// `msi` may be null: no MSI capability then, the interrupter drives INTx.
XhciFunction make_xhci_function(std::string name, const base::GuestMemory& memory,
                                std::shared_ptr<MsiSink> msi);

}  // namespace hw::usb
