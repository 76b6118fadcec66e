#include "hw/x86/tables.h"

#include <algorithm>
#include <cstring>
#include <initializer_list>
#include <string>

namespace hw::x86 {
namespace {

struct Bytes {
  std::vector<uint8_t> data;
  template <typename T>
  void add(T value) {
    uint8_t raw[sizeof(T)];
    std::memcpy(raw, &value, sizeof(T));
    data.insert(data.end(), raw, raw + sizeof(T));
  }
  void add_text(const char* text, size_t size) {
    for (size_t i = 0; i < size; ++i)
      data.push_back(static_cast<uint8_t>(i < std::strlen(text) ? text[i] : ' '));
  }
  template <typename T>
  void set(size_t offset, T value) {
    std::memcpy(data.data() + offset, &value, sizeof(T));
  }
};

// An ACPI table header with the length and checksum filled in by finish_sdt.
Bytes sdt(const char* signature, uint8_t revision) {
  Bytes t;
  t.add_text(signature, 4);
  t.add<uint32_t>(0);
  t.add<uint8_t>(revision);
  t.add<uint8_t>(0);
  t.add_text("VMLNCH", 6);
  t.add_text("VMLAUNCH", 8);
  t.add<uint32_t>(1);
  t.add_text("VMLN", 4);
  t.add<uint32_t>(1);
  return t;
}
void finish_sdt(Bytes& t) {
  t.set<uint32_t>(4, static_cast<uint32_t>(t.data.size()));
  t.data[9] = 0;
  t.data[9] = static_cast<uint8_t>(-checksum(t.data.data(), t.data.size()));
}

}  // namespace

uint8_t ioapic_id(const TableInputs& inputs) {
  uint32_t top = 0;
  for (uint32_t id : inputs.apic_ids) top = std::max(top, id);
  return static_cast<uint8_t>(std::min<uint32_t>(top + 1, 0xfe));
}

uint8_t checksum(const uint8_t* bytes, size_t size) {
  uint8_t sum = 0;
  for (size_t i = 0; i < size; ++i) sum = static_cast<uint8_t>(sum + bytes[i]);
  return sum;
}

base::ErrorOr<uint64_t> write_mp_table(const base::GuestMemory& memory, uint64_t address,
                                       const TableInputs& inputs) {
  const uint8_t ioapic = ioapic_id(inputs);
  const uint8_t pci_bus = 0, isa_bus = inputs.has_pci ? 1 : 0;
  Bytes table;
  table.add_text("PCMP", 4);
  table.add<uint16_t>(0);  // length, below
  table.add<uint8_t>(4);   // spec 1.4
  table.add<uint8_t>(0);   // checksum, below
  table.add_text("VMLAUNCH", 8);
  table.add_text("VM", 12);
  table.add<uint32_t>(0);
  table.add<uint16_t>(0);
  table.add<uint16_t>(0);  // entry count, below
  table.add<uint32_t>(static_cast<uint32_t>(kLapicAddress));
  table.add<uint16_t>(0);
  table.add<uint8_t>(0);
  table.add<uint8_t>(0);
  uint16_t entries = 0;
  for (size_t i = 0; i < inputs.apic_ids.size(); ++i) {
    if (inputs.apic_ids[i] > 0xfe) return base::fail(base::Error("APIC ids above 254 need x2APIC tables"));
    table.add<uint8_t>(0);
    table.add<uint8_t>(static_cast<uint8_t>(inputs.apic_ids[i]));
    table.add<uint8_t>(0x14);                  // LAPIC version
    table.add<uint8_t>(i == 0 ? 0x03 : 0x01);  // enabled, BSP
    table.add<uint32_t>(0x600);                // CPU signature: family 6
    table.add<uint32_t>(0x201);                // FPU, APIC
    table.add<uint64_t>(0);
    ++entries;
  }
  if (inputs.has_pci) {
    table.add<uint8_t>(1);
    table.add<uint8_t>(pci_bus);
    table.add_text("PCI", 6);
    ++entries;
  }
  table.add<uint8_t>(1);
  table.add<uint8_t>(isa_bus);
  table.add_text("ISA", 6);
  ++entries;
  table.add<uint8_t>(2);
  table.add<uint8_t>(ioapic);
  table.add<uint8_t>(inputs.ioapic_version);
  table.add<uint8_t>(1);
  table.add<uint32_t>(static_cast<uint32_t>(kIoapicAddress));
  ++entries;
  auto io_interrupt = [&](uint8_t type, uint16_t flags, uint8_t bus, uint8_t irq, uint8_t pin) {
    table.add<uint8_t>(3);
    table.add<uint8_t>(type);
    table.add<uint16_t>(flags);
    table.add<uint8_t>(bus);
    table.add<uint8_t>(irq);
    table.add<uint8_t>(ioapic);
    table.add<uint8_t>(pin);
    ++entries;
  };
  if (inputs.has_pic) io_interrupt(3, 0, isa_bus, 0, 0);  // ExtINT from the PIC
  for (uint8_t irq = 0; irq < 16; ++irq) {
    if (irq == 2) continue;
    io_interrupt(0, 0, isa_bus, irq, irq == 0 ? 2 : irq);
  }
  // PCI INTx: level triggered, active high. KVM's IOAPIC takes the line's level as we drive it and
  // XORs in the programmed polarity, and we drive "asserted" as 1, so the pins must be active high
  // (QEMU's pc declares its PCI links the same way).
  for (const PciIntx& intx : inputs.pci_irqs)
    io_interrupt(0, 0x0d, pci_bus, static_cast<uint8_t>((intx.device << 2) | ((intx.pin - 1) & 3)), intx.gsi);
  for (uint8_t lint = 0; lint < 2; ++lint) {
    table.add<uint8_t>(4);
    table.add<uint8_t>(lint == 0 ? 3 : 1);  // ExtINT, NMI
    table.add<uint16_t>(0);
    table.add<uint8_t>(isa_bus);
    table.add<uint8_t>(0);
    table.add<uint8_t>(0xff);
    table.add<uint8_t>(lint);
    ++entries;
  }
  table.set<uint16_t>(4, static_cast<uint16_t>(table.data.size()));
  table.set<uint16_t>(34, entries);
  table.data[7] = static_cast<uint8_t>(-checksum(table.data.data(), table.data.size()));

  Bytes floating;
  floating.add_text("_MP_", 4);
  floating.add<uint32_t>(static_cast<uint32_t>(address + 16));
  floating.add<uint8_t>(1);
  floating.add<uint8_t>(4);
  floating.add<uint8_t>(0);
  floating.add<uint8_t>(0);
  floating.add<uint32_t>(0);
  floating.data[10] = static_cast<uint8_t>(-checksum(floating.data.data(), floating.data.size()));
  if (!memory.write(address, floating.data) || !memory.write(address + 16, table.data))
    return base::fail(base::Error("the MP table does not fit in guest RAM"));
  return 16 + table.data.size();
}

base::ErrorOr<uint64_t> write_acpi_tables(const base::GuestMemory& memory, uint64_t address,
                                          const TableInputs& inputs) {
  const uint64_t rsdp_address = address;
  const uint64_t dsdt_address = address + 0x40;

  Bytes dsdt = sdt("DSDT", 2);
  if (inputs.sleep_port) {
    // Name (_S5, Package (4) { 5, 0, 0, 0 }): SLP_TYP 5 for the sleep control register.
    for (uint8_t byte :
         std::initializer_list<uint8_t>{0x08, '_', 'S', '5', '_', 0x12, 0x07, 0x04, 0x0a, 0x05, 0, 0, 0})
      dsdt.add<uint8_t>(byte);
  }
  if (!inputs.serial_ports.empty()) {
    // Scope (\_SB) { Device (COMn) { _HID PNP0501, _UID n, _CRS { IO (port, 8), IRQNoFlags {irq} } } }
    Bytes scope;
    for (size_t i = 0; i < inputs.serial_ports.size() && i < 9; ++i) {
      const auto& com = inputs.serial_ports[i];
      const uint16_t mask = static_cast<uint16_t>(1u << (com.irq & 15));
      const std::vector<uint8_t> body = {'C',
                                         'O',
                                         'M',
                                         static_cast<uint8_t>('1' + i),
                                         0x08,
                                         '_',
                                         'H',
                                         'I',
                                         'D',
                                         0x0c,
                                         0x41,
                                         0xd0,
                                         0x05,
                                         0x01,  // EisaId ("PNP0501")
                                         0x08,
                                         '_',
                                         'U',
                                         'I',
                                         'D',
                                         0x0a,
                                         static_cast<uint8_t>(i + 1),
                                         0x08,
                                         '_',
                                         'C',
                                         'R',
                                         'S',
                                         0x11,
                                         0x10,
                                         0x0a,
                                         0x0d,  // Buffer (13)
                                         0x47,
                                         0x01,
                                         static_cast<uint8_t>(com.port),
                                         static_cast<uint8_t>(com.port >> 8),
                                         static_cast<uint8_t>(com.port),
                                         static_cast<uint8_t>(com.port >> 8),
                                         0x00,
                                         0x08,  // IO
                                         0x22,
                                         static_cast<uint8_t>(mask),
                                         static_cast<uint8_t>(mask >> 8),  // IRQNoFlags
                                         0x79,
                                         0x00};  // EndTag
      scope.add<uint8_t>(0x5b);                  // DeviceOp
      scope.add<uint8_t>(0x82);
      scope.add<uint8_t>(static_cast<uint8_t>(body.size() + 1));  // PkgLength (< 64: one byte)
      for (uint8_t byte : body) scope.add<uint8_t>(byte);
    }
    // ScopeOp with a two-byte PkgLength (the devices may exceed 63 bytes).
    const size_t length = scope.data.size() + 2 + 4;
    dsdt.add<uint8_t>(0x10);
    dsdt.add<uint8_t>(static_cast<uint8_t>(0x40 | (length & 0x0f)));
    dsdt.add<uint8_t>(static_cast<uint8_t>(length >> 4));
    for (uint8_t byte : {'_', 'S', 'B', '_'}) dsdt.add<uint8_t>(byte);
    for (uint8_t byte : scope.data) dsdt.add<uint8_t>(byte);
  }
  finish_sdt(dsdt);
  const uint64_t fadt_address = dsdt_address + ((dsdt.data.size() + 15) & ~15ull);

  Bytes fadt = sdt("FACP", 6);
  fadt.data.resize(276);
  fadt.set<uint32_t>(40, static_cast<uint32_t>(dsdt_address));  // DSDT
  fadt.set<uint32_t>(112, (1u << 20) | (1u << 4));              // HW_REDUCED_ACPI, PWR_BUTTON (none)
  fadt.set<uint16_t>(109, 0);                                   // IAPC_BOOT_ARCH: no legacy devices claimed
  fadt.data[131] = 5;                                           // FADT minor version 6.5
  fadt.set<uint64_t>(140, dsdt_address);                        // X_DSDT
  if (inputs.sleep_port) {
    // SLEEP_CONTROL_REG and SLEEP_STATUS_REG: generic addresses in system I/O, 8 bits, byte access.
    for (unsigned i = 0; i < 2; ++i) {
      const size_t at = 244 + 12 * i;
      fadt.data[at] = 1;
      fadt.data[at + 1] = 8;
      fadt.data[at + 3] = 1;
      fadt.set<uint64_t>(at + 4, inputs.sleep_port + i);
    }
  }
  fadt.set<uint64_t>(268, 0x564d4c41554e4348ull);  // hypervisor vendor identity
  finish_sdt(fadt);
  const uint64_t madt_address = fadt_address + ((fadt.data.size() + 15) & ~15ull);

  Bytes madt = sdt("APIC", 5);
  madt.add<uint32_t>(static_cast<uint32_t>(kLapicAddress));
  // PCAT_COMPAT says there are 8259s too. Without them it must stay clear: Linux since 2024
  // ("x86/i8259: Skip probing when ACPI/MADT advertises PCAT compatibility") then believes in a PIC
  // without probing; with the flag clear it probes (writes the mask at port 0x21 and reads it back,
  // which reads 0xff here as nothing decodes the port) and runs with its NULL legacy PIC, which is
  // what Linux 6.1 concludes either way. ISA IRQs still map 1:1 to IOAPIC pins (plus the override).
  madt.add<uint32_t>(inputs.has_pic ? 1 : 0);
  for (size_t i = 0; i < inputs.apic_ids.size(); ++i) {
    if (inputs.apic_ids[i] > 0xfe) return base::fail(base::Error("APIC ids above 254 need x2APIC tables"));
    madt.add<uint8_t>(0);
    madt.add<uint8_t>(8);
    madt.add<uint8_t>(static_cast<uint8_t>(i));
    madt.add<uint8_t>(static_cast<uint8_t>(inputs.apic_ids[i]));
    madt.add<uint32_t>(1);  // enabled
  }
  madt.add<uint8_t>(1);
  madt.add<uint8_t>(12);
  madt.add<uint8_t>(ioapic_id(inputs));
  madt.add<uint8_t>(0);
  madt.add<uint32_t>(static_cast<uint32_t>(kIoapicAddress));
  madt.add<uint32_t>(0);
  madt.add<uint8_t>(2);  // ISA IRQ 0 -> GSI 2
  madt.add<uint8_t>(10);
  madt.add<uint8_t>(0);
  madt.add<uint8_t>(0);
  madt.add<uint32_t>(2);
  madt.add<uint16_t>(0);
  // PCI INTx GSIs below 16 are level triggered, active high (see the MP table above).
  std::vector<uint8_t> pci_gsis;
  for (const PciIntx& intx : inputs.pci_irqs)
    if (intx.gsi < 16 && std::find(pci_gsis.begin(), pci_gsis.end(), intx.gsi) == pci_gsis.end())
      pci_gsis.push_back(intx.gsi);
  for (uint8_t gsi : pci_gsis) {
    madt.add<uint8_t>(2);
    madt.add<uint8_t>(10);
    madt.add<uint8_t>(0);
    madt.add<uint8_t>(gsi);
    madt.add<uint32_t>(gsi);
    madt.add<uint16_t>(0x0d);
  }
  madt.add<uint8_t>(4);  // LINT1 is NMI on every processor
  madt.add<uint8_t>(6);
  madt.add<uint8_t>(0xff);
  madt.add<uint16_t>(0);
  madt.add<uint8_t>(1);
  finish_sdt(madt);
  const uint64_t xsdt_address = madt_address + ((madt.data.size() + 15) & ~15ull);

  Bytes xsdt = sdt("XSDT", 1);
  xsdt.add<uint64_t>(fadt_address);
  xsdt.add<uint64_t>(madt_address);
  finish_sdt(xsdt);

  Bytes rsdp;
  rsdp.add_text("RSD PTR ", 8);
  rsdp.add<uint8_t>(0);
  rsdp.add_text("VMLNCH", 6);
  rsdp.add<uint8_t>(2);
  rsdp.add<uint32_t>(0);
  rsdp.add<uint32_t>(36);
  rsdp.add<uint64_t>(xsdt_address);
  rsdp.add<uint8_t>(0);
  rsdp.add<uint8_t>(0);
  rsdp.add<uint16_t>(0);
  rsdp.data[8] = static_cast<uint8_t>(-checksum(rsdp.data.data(), 20));
  rsdp.data[32] = static_cast<uint8_t>(-checksum(rsdp.data.data(), 36));

  if (!memory.write(rsdp_address, rsdp.data) || !memory.write(dsdt_address, dsdt.data) ||
      !memory.write(fadt_address, fadt.data) || !memory.write(madt_address, madt.data) ||
      !memory.write(xsdt_address, xsdt.data))
    return base::fail(base::Error("the ACPI tables do not fit in guest RAM"));
  return rsdp_address;
}

}  // namespace hw::x86
