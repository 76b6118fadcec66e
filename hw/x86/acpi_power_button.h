// x86_64/pc's power button: an ACPI Generic Event Device (ACPI0013, ACPI 6.5 §5.6.9) whose one
// interrupt runs its _EVT method, which notifies the control-method power button PWRB (PNP0C0C)
// with 0x80 ("pressed"); both are in the DSDT (tables.cpp). Linux's GED driver (evged) runs _EVT,
// its ACPI button driver turns the notification into KEY_POWER. QEMU's microvm and arm virt press
// their buttons the same way. A GED keeps the platform hardware-reduced: full ACPI's fixed-feature
// button would need the PM1 block and with it Linux's PIT-based timer setup, which under the nested
// KVM host's TCG fails its APIC timer check and stalls the guest clock.
//
// The interrupt is edge-triggered (a pulse per press), so no status register needs clearing; _EVT
// has only this one source. No registers: the device is an interrupt line and the tables.
#pragma once

#include <memory>

#include "hw/device.h"
#include "hw/device_state.h"

namespace hw::x86 {

class AcpiPowerButton final : public DeviceState {
 public:
  explicit AcpiPowerButton(std::shared_ptr<IrqLine> irq) : m_irq(std::move(irq)) {}
  // One press: a rising edge on the GED's interrupt. Any thread.
  void press() {
    if (m_irq) m_irq->pulse();
  }

  // Snapshot: a press is a pulse, over before any snapshot; nothing to save.
  uint32_t state_version() const override { return 1; }
  void save_state(StateWriter&) override {}
  base::ErrorOr<void> load_state(StateReader& in, uint32_t version) override {
    TRY(check_version(version, 1, "acpi-power-button"));
    return in.finish("acpi-power-button");
  }

 private:
  std::shared_ptr<IrqLine> m_irq;
};

}  // namespace hw::x86
