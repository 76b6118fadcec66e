// The tables a guest reads to find its CPUs and interrupt routing, generated from the machine:
// the Intel MultiProcessor table (floating pointer in the EBDA) and ACPI (RSDP in the BIOS area,
// XSDT, MADT, a hardware-reduced FADT and a DSDT with \\_S5, the COM ports, the keyboard controller,
// pvpanic, the power button, the VM generation ID, the virtio-mmio transports and the PCI root bridge).
// Both list every vCPU by its APIC id (the same ids CPUID reports), the IOAPIC, ISA IRQ 0 -> GSI 2,
// and the PCI INTx routing of bus 0 (MP table entries; MADT overrides making those GSIs level, active high).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "base/guest_memory.h"
#include "base/result.h"

namespace hw::x86 {

struct PciIntx {
  uint8_t device = 0;  // slot on bus 0
  uint8_t pin = 1;     // 1..4 = INTA..INTD
  uint8_t gsi = 0;
};

// The DSDT names virtio-mmio transports VR00..VRFF: at most this many are declared.
inline constexpr size_t kMaxDsdtVirtioMmio = 256;

struct TableInputs {
  std::vector<uint32_t> apic_ids;  // vCPU 0 first (the BSP)
  bool has_pci = false;
  std::vector<PciIntx> pci_irqs;
  // Whether the machine has the 8259 pair (pc: in the kernel; microvm with the split irqchip: none).
  bool has_pic = true;
  uint8_t ioapic_version = 0x11;  // what the IOAPIC's version register says (0x11 KVM's, 0x20 ours)
  // I/O port of the ACPI sleep control register (status at +1; hw/x86/acpi_sleep.h), 0 for none:
  // with one, the FADT points at both and the DSDT names \_S5, so the guest can power off.
  uint16_t sleep_port = 0;
  // With a value, the DSDT has the power button: a generic event device GED0 (ACPI0013) with this
  // interrupt (edge, active high) whose _EVT notifies PWRB (PNP0C0C) "pressed" (0x80).
  std::optional<uint8_t> power_button_irq = std::nullopt;
  // With a value, the DSDT has the VM generation ID (hw/x86/vmgenid.h): Device (VGEN) { _HID
  // "VMGENCTR", _CID "VM_Gen_Counter", Method (ADDR) returning `address` as two 32-bit halves }, and
  // the generic event device GED0 takes `irq` too, its _EVT then notifying VGEN (0x80) for it.
  struct VmGenId {
    uint64_t address = 0;
    uint8_t irq = 0;
  };
  std::optional<VmGenId> vmgenid = std::nullopt;
  // QEMU's pvpanic on an I/O port (hw/x86/pvpanic_isa.h), declared as QEMU0001; 0 for none.
  uint16_t pvpanic_port = 0;
  // The i8042 keyboard controller at ports 0x60/0x64: the DSDT's PNP0303 (with `keyboard_irq`) and
  // the FADT's IAPC_BOOT_ARCH 8042 flag. Linux's i8042 driver finds it through the former; without
  // a PIC (microvm) the declaration is also what maps its IRQ.
  bool i8042 = false;
  uint8_t keyboard_irq = 1;
  // The COM ports, declared in the DSDT as PNP0501 devices with their ports and IRQ. Without a PIC
  // (microvm) Linux maps no ISA IRQ by itself, so an undeclared port's IRQ never gets a handler and
  // its tty (the console's userspace output) never transmits; QEMU's microvm declares them too.
  struct SerialPort {
    uint16_t port = 0;
    uint8_t irq = 0;
  };
  std::vector<SerialPort> serial_ports = {};
  // The virtio-mmio transports, declared in the DSDT as LNRO0005 devices with their registers and
  // IRQ (as QEMU's microvm does): Linux's virtio_mmio driver finds them through ACPI, also when it
  // is a module that gets no virtio_mmio.device= parameters from the command line.
  struct VirtioMmio {
    uint64_t base = 0;
    uint32_t size = 0;
    uint8_t irq = 0;
  };
  std::vector<VirtioMmio> virtio_mmio = {};  // at most kMaxDsdtVirtioMmio are declared (VR00-VRFF)
  // With has_pci: the host bridge's 32-bit MMIO window (where the BARs are). The DSDT then declares
  // the root bridge PCI0 (PNP0A03: bus 0-255, I/O around 0xcf8, this window) and its _PRT from
  // pci_irqs. An ACPI guest finds PCI only through that device: Linux scans no bus without it.
  uint64_t pci_mmio_base = 0;
  uint64_t pci_mmio_size = 0;
};

// The IOAPIC's id in both tables: one above the highest APIC id. The IOAPIC model reports the same.
uint8_t ioapic_id(const TableInputs& inputs);

inline constexpr uint64_t kIoapicAddress = 0xfec00000;
inline constexpr uint64_t kLapicAddress = 0xfee00000;

// Writes the MP table at `address` (floating pointer first, then the config table); returns bytes used.
base::ErrorOr<uint64_t> write_mp_table(const base::GuestMemory& memory, uint64_t address,
                                       const TableInputs& inputs);
// Writes RSDP and tables from `address`; returns the RSDP's address. With a VM generation ID the
// tables must end below its address (they are refused otherwise).
base::ErrorOr<uint64_t> write_acpi_tables(const base::GuestMemory& memory, uint64_t address,
                                          const TableInputs& inputs);

// Byte sum used by both table formats (the tables are valid when it is 0).
uint8_t checksum(const uint8_t* bytes, size_t size);

}  // namespace hw::x86
