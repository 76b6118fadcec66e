// The tables a guest reads to find its CPUs and interrupt routing, generated from the machine:
// the Intel MultiProcessor table (floating pointer in the EBDA) and ACPI (RSDP in the BIOS area,
// XSDT, MADT, a hardware-reduced FADT and a DSDT with \\_S5, the COM ports and the PCI root bridge).
// Both list every vCPU by its APIC id (the same ids CPUID reports), the IOAPIC, ISA IRQ 0 -> GSI 2,
// and the PCI INTx routing of bus 0 (MP table entries; MADT overrides making those GSIs level, active high).
#pragma once

#include <cstdint>
#include <vector>

#include "base/guest_memory.h"
#include "base/result.h"

namespace hw::x86 {

struct PciIntx {
  uint8_t device = 0;  // slot on bus 0
  uint8_t pin = 1;     // 1..4 = INTA..INTD
  uint8_t gsi = 0;
};

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
  std::vector<VirtioMmio> virtio_mmio = {};
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
// Writes RSDP and tables from `address`; returns the RSDP's address.
base::ErrorOr<uint64_t> write_acpi_tables(const base::GuestMemory& memory, uint64_t address,
                                          const TableInputs& inputs);

// Byte sum used by both table formats (the tables are valid when it is 0).
uint8_t checksum(const uint8_t* bytes, size_t size);

}  // namespace hw::x86
