// The I/O APIC of x86 machines whose accelerator keeps only the LAPICs (VmSpec::X86Irqchip::Split,
// used by `microvm`): an 82093AA-style IOAPIC at 0xfec00000 with 24 pins, emulated here.
//
// Registers (indirect, as on the chip): IOREGSEL at offset 0x00 selects a register, IOWIN at 0x10
// reads/writes it with 32-bit accesses; 0x00 ID (bits 24-31), 0x01 version (0x20: 24 entries and the
// EOI register at offset 0x40, as QEMU's userspace IOAPIC), 0x02 arbitration, 0x10 + 2 * pin the
// 64-bit redirection entries (low half first). Each entry: vector, delivery mode, destination mode,
// delivery status (read-only), polarity, remote IRR (read-only), trigger mode, mask, destination.
//
// Interrupts leave as MSIs through accel::Vm::signal_msi, composed from the entry as QEMU's
// hw/intc/ioapic.c does. Edge pins fire on a rising edge while unmasked; level pins fire while
// asserted, unmasked and without remote IRR, set remote IRR, and fire again at the EOI if the line
// is still asserted. EOIs arrive from the LAPICs (accel::VmOps::ioapic_eoi) or through the EOI
// register; for the LAPIC path the IOAPIC tells the accelerator its level-triggered routes
// (accel::Vm::set_ioapic_routes) whenever they change.
//
// Threads: pin changes come from any device thread, register accesses and EOIs from vCPU threads;
// one mutex orders them all. Guest input is hostile: every register index and value is accepted
// and kept within the chip's state; unknown registers read 0.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "accel/accelerator.h"
#include "hw/device.h"
#include "hw/device_state.h"

namespace hw::x86 {

class Ioapic final : public Device, public DeviceState {
 public:
  static constexpr unsigned kPins = 24;
  static constexpr uint8_t kVersion = 0x20;
  static constexpr uint64_t kSize = 0x1000;

  // `id`: the IOAPIC id the MP table and MADT list (hw/x86/tables.h ioapic_id).
  Ioapic(std::string name, uint8_t id) : m_name(std::move(name)), m_id(id) {
    for (auto& entry : m_entries) entry = kMasked;
  }

  // Where interrupts and routes go. nullptr detaches (machine teardown): later pin changes only
  // update the state. The Vm outlives the attachment.
  void attach(accel::Vm* vm);

  // The input level of `pin` (true = asserted). Out-of-range pins are ignored.
  void set_pin(unsigned pin, bool asserted);
  // A LAPIC EOI of `vector` (broadcast to every level-triggered pin using it, as on a PC).
  void eoi(uint8_t vector);

  std::string_view name() const override { return m_name; }
  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  // Snapshot: id, register select, the 24 entries (with remote IRR), input levels and pending
  // edges. Loading re-sends the level-triggered routes to the accelerator and delivers what the
  // loaded state says is deliverable.
  uint32_t state_version() const override { return 1; }
  void save_state(StateWriter& out) override;
  base::ErrorOr<void> load_state(StateReader& in, uint32_t version) override;

  // For tests and diagnostics.
  uint64_t entry(unsigned pin) const;
  // The MSI the entry of `pin` would send now (the route the accelerator is told about).
  static accel::Vm::IoapicRoute compose(unsigned pin, uint64_t entry);
  uint64_t ignored_accesses() const;

  // Redirection entry bits.
  static constexpr uint64_t kVectorMask = 0xff;
  static constexpr unsigned kDeliveryShift =
      8;  // 3 bits: fixed, lowest priority, SMI, -, NMI, INIT, -, ExtINT
  static constexpr uint64_t kDestLogical = 1u << 11;
  static constexpr uint64_t kDeliveryStatus = 1u << 12;
  static constexpr uint64_t kActiveLow = 1u << 13;
  static constexpr uint64_t kRemoteIrr = 1u << 14;
  static constexpr uint64_t kLevel = 1u << 15;
  static constexpr uint64_t kMasked = 1u << 16;
  static constexpr uint64_t kReadOnly = kDeliveryStatus | kRemoteIrr;
  // Writable: low half bits 0-16, high half bits 48-63 (destination, and Linux's extended destination
  // id in 49-55, which QEMU and KVM pass on in the MSI address).
  static constexpr uint64_t kWritable = ((kMasked << 1) - 1 - kReadOnly) | (uint64_t{0xffff} << 48);

 private:
  uint32_t read_register(uint8_t index) const;
  void write_register(uint8_t index, uint32_t value);
  void service();  // delivers every pending, deliverable pin
  void deliver(unsigned pin);
  void update_routes();  // tells the accelerator the level-triggered routes, if changed
  void eoi_locked(uint8_t vector);
  void note_ignored(const char* what, uint64_t offset);

  mutable std::mutex m_lock;
  std::string m_name;
  uint8_t m_id;
  uint8_t m_select = 0;
  std::array<uint64_t, kPins> m_entries{};
  uint32_t m_level = 0;         // pins whose input is asserted
  uint32_t m_edge_pending = 0;  // edge pins that saw a rising edge while unmasked
  accel::Vm* m_vm = nullptr;
  std::optional<std::vector<accel::Vm::IoapicRoute>> m_routes;  // last set sent to the accelerator
  uint64_t m_ignored = 0;
  bool m_warned = false;
};

}  // namespace hw::x86
