// Microsoft's Virtual Machine Generation ID ("Virtual Machine Generation ID", 2012; QEMU's
// `-device vmgenid`, docs/specs/vmgenid.txt there): 16 bytes in guest RAM that the host changes
// whenever the machine may have been duplicated, so that the guest reseeds what must not repeat
// across copies (Linux 6.1's drivers/virt/vmgenid.c feeds it to add_vmfork_randomness, which
// reseeds the CRNG at once).
//
// The guest finds it through the DSDT (hw/x86/tables.cpp): Device (VGEN) with _HID "VMGENCTR",
// _CID "VM_Gen_Counter" and a method ADDR returning the ID's guest-physical address as two 32-bit
// halves. The bytes sit at kAddress, in the BIOS area the e820 map reserves (hw/x86/boot.cpp), so
// the guest kernel never allocates them and reads them directly. A change is announced with
// Notify (VGEN, 0x80), run by the ACPI generic event device's _EVT on this device's interrupt
// (edge, a pulse per change; the same GED as pc's power button, hw/x86/acpi_power_button.h).
//
// When the ID changes: a fresh one at every build of the machine (first start, guest reset) and,
// through load_state, at every `up --restore`: each restored copy gets its own ID and the
// notification, before any vCPU runs (the restore loads devices after RAM, the irqchip and the
// vCPUs, so the pending edge survives into the guest). The IDs come from an RngBackend (the
// device's `rng` backend, or the host kernel's entropy the launcher hands in): hw/ draws none itself.
#pragma once

#include <array>
#include <cstdint>
#include <memory>

#include "backends/rng.h"
#include "base/guest_memory.h"
#include "hw/device.h"
#include "hw/device_state.h"

namespace hw::x86 {

class VmGenId final : public DeviceState {
 public:
  static constexpr size_t kSize = 16;
  // Inside 0xe0000-0xfffff (reserved in e820, below the ACPI tables' limit), page aligned: the guest
  // maps the page write-back; below 1 MiB Linux's /dev/mem may read it too (STRICT_DEVMEM allows it).
  static constexpr uint64_t kAddress = 0xff000;
  using Id = std::array<uint8_t, kSize>;

  VmGenId(const base::GuestMemory& memory, std::shared_ptr<backends::RngBackend> entropy,
          std::shared_ptr<IrqLine> irq)
      : m_memory(memory), m_entropy(std::move(entropy)), m_irq(std::move(irq)) {}

  // Draws the first ID and writes it to guest RAM (no notification: the guest has not started).
  base::ErrorOr<void> start();
  const Id& id() const { return m_id; }

  // Snapshot: the ID the copy had. Loading it draws a new one that differs from it, writes that to
  // guest RAM and notifies the guest: a restored machine is a copy.
  uint32_t state_version() const override { return 1; }
  void save_state(StateWriter& out) override;
  base::ErrorOr<void> load_state(StateReader& in, uint32_t version) override;

 private:
  base::ErrorOr<Id> draw();
  base::ErrorOr<void> publish();

  const base::GuestMemory& m_memory;
  std::shared_ptr<backends::RngBackend> m_entropy;
  std::shared_ptr<IrqLine> m_irq;
  Id m_id{};
};

}  // namespace hw::x86
