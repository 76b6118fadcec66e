#include "hw/x86/tables.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <string>

using namespace hw::x86;

namespace {
std::vector<uint8_t> bytes(const base::GuestMemory& memory, uint64_t at, size_t size) {
  std::vector<uint8_t> out(size);
  REQUIRE(memory.read(at, out));
  return out;
}
uint32_t u32(const std::vector<uint8_t>& b, size_t at) {
  uint32_t v;
  std::memcpy(&v, b.data() + at, 4);
  return v;
}
// The DSDT the tables at `rsdp_at` point to (RSDP -> XSDT -> FADT's X_DSDT), whole.
std::vector<uint8_t> dsdt_of(const base::GuestMemory& memory, uint64_t rsdp_at) {
  auto rsdp = bytes(memory, rsdp_at, 36);
  uint64_t xsdt_at, fadt_at, dsdt_at;
  std::memcpy(&xsdt_at, rsdp.data() + 24, 8);
  std::memcpy(&fadt_at, bytes(memory, xsdt_at + 36, 8).data(), 8);
  std::memcpy(&dsdt_at, bytes(memory, fadt_at + 140, 8).data(), 8);
  return bytes(memory, dsdt_at, u32(bytes(memory, dsdt_at, 36), 4));
}
bool contains(const std::vector<uint8_t>& table, const std::vector<uint8_t>& needle) {
  return std::search(table.begin(), table.end(), needle.begin(), needle.end()) != table.end();
}
}  // namespace

TEST_CASE("MP table: valid checksums, one processor entry per APIC id, BSP first") {
  base::GuestMemory memory;
  REQUIRE(memory.add_region(0, 1 << 20).ok());
  TableInputs inputs{{0, 1, 2, 4}, true, {{3, 1, 10}}};
  auto used = write_mp_table(memory, 0x9fc00, inputs);
  REQUIRE(used.ok());
  auto floating = bytes(memory, 0x9fc00, 16);
  CHECK(std::memcmp(floating.data(), "_MP_", 4) == 0);
  CHECK(checksum(floating.data(), 16) == 0);
  uint32_t config = u32(floating, 4);
  auto header = bytes(memory, config, 44);
  uint16_t length = header[4] | header[5] << 8;
  auto table = bytes(memory, config, length);
  CHECK(checksum(table.data(), length) == 0);
  std::vector<int> ids;
  bool bsp_first = false;
  bool pci_entry = false;
  for (size_t at = 44; at < length;) {
    uint8_t type = table[at];
    if (type == 0) {
      ids.push_back(table[at + 1]);
      if (ids.size() == 1) bsp_first = table[at + 3] & 2;
      at += 20;
    } else {
      if (type == 3 && table[at + 4] == 0 && table[at + 5] == (3 << 2) && table[at + 7] == 10)
        pci_entry = true;
      at += 8;
    }
  }
  CHECK(ids == std::vector<int>{0, 1, 2, 4});
  CHECK(bsp_first);
  CHECK(pci_entry);
}

TEST_CASE("ACPI: RSDP -> XSDT -> MADT with every APIC id, all checksums valid") {
  base::GuestMemory memory;
  REQUIRE(memory.add_region(0, 1 << 20).ok());
  TableInputs inputs{{0, 1}, true, {{3, 1, 11}}};
  auto rsdp_at = write_acpi_tables(memory, 0xe0000, inputs);
  REQUIRE(rsdp_at.ok());
  auto rsdp = bytes(memory, *rsdp_at, 36);
  CHECK(std::memcmp(rsdp.data(), "RSD PTR ", 8) == 0);
  CHECK(checksum(rsdp.data(), 20) == 0);
  CHECK(checksum(rsdp.data(), 36) == 0);
  uint64_t xsdt_at;
  std::memcpy(&xsdt_at, rsdp.data() + 24, 8);
  auto xsdt_header = bytes(memory, xsdt_at, 36);
  auto xsdt = bytes(memory, xsdt_at, u32(xsdt_header, 4));
  CHECK(checksum(xsdt.data(), xsdt.size()) == 0);
  REQUIRE(xsdt.size() == 36 + 16);
  std::vector<std::string> signatures;
  for (size_t i = 36; i < xsdt.size(); i += 8) {
    uint64_t at;
    std::memcpy(&at, xsdt.data() + i, 8);
    auto header = bytes(memory, at, 36);
    auto table = bytes(memory, at, u32(header, 4));
    CHECK(checksum(table.data(), table.size()) == 0);
    signatures.push_back(std::string(table.begin(), table.begin() + 4));
    if (signatures.back() == "APIC") {
      std::vector<int> ids;
      bool level_override = false;
      for (size_t e = 44; e < table.size(); e += table[e + 1]) {
        if (table[e] == 0) ids.push_back(table[e + 3]);
        if (table[e] == 2 && table[e + 3] == 11 && table[e + 8] == 0x0d) level_override = true;
      }
      CHECK(ids == std::vector<int>{0, 1});
      CHECK(level_override);
    }
  }
  CHECK(signatures == std::vector<std::string>{"FACP", "APIC"});
}

TEST_CASE("without a PIC (microvm): no PCAT_COMPAT, no ExtINT pin; both tables name the same IOAPIC") {
  base::GuestMemory memory;
  REQUIRE(memory.add_region(0, 1 << 20).ok());
  TableInputs inputs;
  inputs.apic_ids = {0, 1, 2};
  inputs.has_pic = false;
  inputs.ioapic_version = 0x20;
  REQUIRE(ioapic_id(inputs) == 3);

  REQUIRE(write_mp_table(memory, 0x9fc00, inputs).ok());
  auto floating = bytes(memory, 0x9fc00, 16);
  uint32_t config = u32(floating, 4);
  auto header = bytes(memory, config, 44);
  auto table = bytes(memory, config, header[4] | header[5] << 8);
  int ioapics = 0, extint_pins = 0;
  for (size_t at = 44; at < table.size(); at += table[at] == 0 ? 20 : 8) {
    if (table[at] == 2) {
      ++ioapics;
      CHECK(table[at + 1] == 3);
      CHECK(table[at + 2] == 0x20);
      CHECK(u32(table, at + 4) == kIoapicAddress);
    }
    if (table[at] == 3 && table[at + 1] == 3) ++extint_pins;
  }
  CHECK(ioapics == 1);
  CHECK(extint_pins == 0);

  auto rsdp_at = write_acpi_tables(memory, 0xe0000, inputs);
  REQUIRE(rsdp_at.ok());
  auto rsdp = bytes(memory, *rsdp_at, 36);
  uint64_t xsdt_at;
  std::memcpy(&xsdt_at, rsdp.data() + 24, 8);
  auto xsdt = bytes(memory, xsdt_at, 52);
  uint64_t madt_at;
  std::memcpy(&madt_at, xsdt.data() + 44, 8);
  auto madt = bytes(memory, madt_at, u32(bytes(memory, madt_at, 36), 4));
  REQUIRE(std::memcmp(madt.data(), "APIC", 4) == 0);
  CHECK(u32(madt, 40) == 0);  // flags: no PCAT_COMPAT
  bool ioapic = false;
  for (size_t e = 44; e < madt.size(); e += madt[e + 1])
    if (madt[e] == 1) ioapic = madt[e + 2] == 3 && u32(madt, e + 4) == kIoapicAddress;
  CHECK(ioapic);

  TableInputs pc{{0}, true, {}};
  auto pc_rsdp_at = write_acpi_tables(memory, 0xe0000, pc);
  REQUIRE(pc_rsdp_at.ok());
  // With PCI the DSDT holds PCI0, so the MADT sits further on: found again from the RSDP.
  std::memcpy(&xsdt_at, bytes(memory, *pc_rsdp_at + 24, 8).data(), 8);
  std::memcpy(&madt_at, bytes(memory, xsdt_at + 44, 8).data(), 8);
  auto pc_madt = bytes(memory, madt_at, 48);
  REQUIRE(std::memcmp(pc_madt.data(), "APIC", 4) == 0);
  CHECK(u32(pc_madt, 40) == 1);  // pc keeps its 8259s: PCAT_COMPAT
}

TEST_CASE("with a sleep port: the FADT points at the sleep registers and the DSDT names \\_S5") {
  base::GuestMemory memory;
  REQUIRE(memory.add_region(0, 1 << 20).ok());
  TableInputs inputs;
  inputs.apic_ids = {0};
  inputs.sleep_port = 0x600;
  auto rsdp_at = write_acpi_tables(memory, 0xe0000, inputs);
  REQUIRE(rsdp_at.ok());
  auto rsdp = bytes(memory, *rsdp_at, 36);
  uint64_t xsdt_at;
  std::memcpy(&xsdt_at, rsdp.data() + 24, 8);
  uint64_t fadt_at;
  std::memcpy(&fadt_at, bytes(memory, xsdt_at + 36, 8).data(), 8);
  auto fadt = bytes(memory, fadt_at, 276);
  REQUIRE(std::memcmp(fadt.data(), "FACP", 4) == 0);
  CHECK(checksum(fadt.data(), fadt.size()) == 0);
  // SLEEP_CONTROL_REG at 244, SLEEP_STATUS_REG at 256: system I/O, 8 bits, byte access, the port.
  for (unsigned i = 0; i < 2; ++i) {
    const size_t at = 244 + 12 * i;
    CHECK(fadt[at] == 1);
    CHECK(fadt[at + 1] == 8);
    CHECK(fadt[at + 3] == 1);
    uint64_t port;
    std::memcpy(&port, fadt.data() + at + 4, 8);
    CHECK(port == 0x600 + i);
  }
  uint64_t dsdt_at;
  std::memcpy(&dsdt_at, fadt.data() + 140, 8);
  auto dsdt = bytes(memory, dsdt_at, u32(bytes(memory, dsdt_at, 36), 4));
  CHECK(checksum(dsdt.data(), dsdt.size()) == 0);
  const std::vector<uint8_t> s5 = {0x08, '_', 'S', '5', '_', 0x12, 0x07, 0x04, 0x0a, 0x05, 0x00, 0x00, 0x00};
  REQUIRE(dsdt.size() == 36 + s5.size());
  CHECK(std::vector<uint8_t>(dsdt.begin() + 36, dsdt.end()) == s5);

  // Without one, neither (the guest would try a register that is not there).
  inputs.sleep_port = 0;
  rsdp_at = write_acpi_tables(memory, 0xe0000, inputs);
  REQUIRE(rsdp_at.ok());
  fadt = bytes(memory, fadt_at, 276);
  CHECK(fadt[244] == 0);
  CHECK(u32(bytes(memory, dsdt_at, 36), 4) == 36);
}

TEST_CASE("COM ports are PNP0501 devices under \\_SB with their I/O range and IRQ") {
  base::GuestMemory memory;
  REQUIRE(memory.add_region(0, 1 << 20).ok());
  TableInputs inputs;
  inputs.apic_ids = {0};
  inputs.serial_ports = {{0x3f8, 4}, {0x2f8, 3}};
  auto rsdp_at = write_acpi_tables(memory, 0xe0000, inputs);
  REQUIRE(rsdp_at.ok());
  auto dsdt = dsdt_of(memory, *rsdp_at);
  CHECK(checksum(dsdt.data(), dsdt.size()) == 0);
  // ScopeOp, a two-byte PkgLength covering the rest of the table, \_SB_.
  REQUIRE(dsdt.size() > 42);
  CHECK(dsdt[36] == 0x10);
  CHECK((dsdt[37] >> 6) == 1);
  CHECK(((dsdt[37] & 0x0f) | (dsdt[38] << 4)) == dsdt.size() - 37);
  CHECK(std::string(dsdt.begin() + 39, dsdt.begin() + 43) == "_SB_");
  // Each device: DeviceOp, PkgLength, name, then _HID EisaId("PNP0501") and the resources.
  auto find = [&](const std::vector<uint8_t>& needle) { return contains(dsdt, needle); };
  CHECK(find({0x5b, 0x82, 44, 'C', 'O', 'M', '1', 0x08, '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x05, 0x01}));
  CHECK(find({0x5b, 0x82, 44, 'C', 'O', 'M', '2'}));
  CHECK(
      find({0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x00, 0x08, 0x22, 0x10, 0x00, 0x79, 0x00}));  // 0x3f8, IRQ 4
  CHECK(
      find({0x47, 0x01, 0xf8, 0x02, 0xf8, 0x02, 0x00, 0x08, 0x22, 0x08, 0x00, 0x79, 0x00}));  // 0x2f8, IRQ 3
  CHECK(dsdt.size() == 36 + 3 + 4 + 2 * 46);
}

TEST_CASE("with PCI: the DSDT declares the root bridge PCI0, its windows, INTx routes and links") {
  base::GuestMemory memory;
  REQUIRE(memory.add_region(0, 1 << 20).ok());
  TableInputs inputs;
  inputs.apic_ids = {0, 1};
  inputs.has_pci = true;
  inputs.pci_irqs = {{3, 1, 11}, {4, 1, 10}};
  inputs.pci_mmio_base = 0xc0000000;
  inputs.pci_mmio_size = 0x3ec00000;
  auto rsdp_at = write_acpi_tables(memory, 0xe0000, inputs);
  REQUIRE(rsdp_at.ok());
  auto dsdt = dsdt_of(memory, *rsdp_at);
  CHECK(checksum(dsdt.data(), dsdt.size()) == 0);
  // Scope (\_SB) covers the rest of the table; in it two interrupt links, then PCI0 to the end.
  REQUIRE(dsdt.size() > 50);
  CHECK(dsdt[36] == 0x10);
  CHECK(((dsdt[37] & 0x0f) | (dsdt[38] << 4)) == dsdt.size() - 37);
  CHECK(std::string(dsdt.begin() + 39, dsdt.begin() + 43) == "_SB_");
  auto find = [&](const std::vector<uint8_t>& needle) { return contains(dsdt, needle); };
  const std::string pci0 = "PCI0";
  const size_t at = std::search(dsdt.begin(), dsdt.end(), pci0.begin(), pci0.end()) - dsdt.begin();
  REQUIRE(at + 4 <= dsdt.size());
  CHECK(dsdt[at - 4] == 0x5b);
  CHECK(dsdt[at - 3] == 0x82);
  CHECK((dsdt[at - 2] >> 6) == 1);
  CHECK(((dsdt[at - 2] & 0x0f) | (dsdt[at - 1] << 4)) == dsdt.size() - (at - 2));
  CHECK(find({0x08, '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x0a, 0x03}));  // EisaId ("PNP0A03")
  // Bus numbers 0-255; I/O 0-0xcf7 and 0xd00-0xffff; memory 0xc0000000-0xfebfffff.
  CHECK(find({0x88, 13, 0, 2, 0x0c, 0, 0, 0, 0, 0, 0xff, 0, 0, 0, 0, 1}));
  CHECK(find({0x88, 13, 0, 1, 0x0c, 3, 0, 0, 0, 0, 0xf7, 0x0c, 0, 0, 0xf8, 0x0c}));
  CHECK(find({0x88, 13, 0, 1, 0x0c, 3, 0, 0, 0x00, 0x0d, 0xff, 0xff, 0, 0, 0x00, 0xf3}));
  CHECK(find({0x87, 23,   0,    0,    0x0c, 1, 0, 0, 0, 0, 0, 0,    0,
              0xc0, 0xff, 0xff, 0xbf, 0xfe, 0, 0, 0, 0, 0, 0, 0xc0, 0x3e}));
  // _PRT: slot 3 INTA through LK00, slot 4 INTA through LK01.
  CHECK(find({0x08, '_', 'P', 'R', 'T', 0x12}));
  CHECK(find({0x12, 21, 4, 0x0c, 0xff, 0xff, 3, 0, 0x0c, 0, 0, 0, 0, 'L', 'K', '0', '0', 0x0c, 0, 0, 0, 0}));
  CHECK(find({0x12, 21, 4, 0x0c, 0xff, 0xff, 4, 0, 0x0c, 0, 0, 0, 0, 'L', 'K', '0', '1', 0x0c, 0, 0, 0, 0}));
  // The links: PNP0C0F, GSI 11 and 10 as level, active high, shared (_PRS and _CRS), and _SRS.
  CHECK(find({'L', 'K', '0', '0', 0x08, '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x0c, 0x0f}));
  CHECK(find({'_', 'C', 'R', 'S', 0x11, 17, 0x0c, 11, 0, 0, 0, 0x89, 6, 0, 0x09, 1, 11, 0, 0, 0, 0x79, 0}));
  CHECK(find({'_', 'P', 'R', 'S', 0x11, 17, 0x0c, 11, 0, 0, 0, 0x89, 6, 0, 0x09, 1, 10, 0, 0, 0, 0x79, 0}));
  CHECK(find({0x14, 6, '_', 'S', 'R', 'S', 1}));
}

TEST_CASE("virtio-mmio transports: LNRO0005 devices in the DSDT with their registers and IRQ") {
  base::GuestMemory memory;
  REQUIRE(memory.add_region(0, 1 << 20).ok());
  TableInputs inputs;
  inputs.apic_ids = {0};
  inputs.has_pic = false;
  inputs.virtio_mmio = {{0xfeb00000, 512, 5}, {0xfeb00200, 512, 6}};
  auto rsdp_at = write_acpi_tables(memory, 0xe0000, inputs);
  REQUIRE(rsdp_at.ok());
  auto dsdt = dsdt_of(memory, *rsdp_at);
  CHECK(checksum(dsdt.data(), dsdt.size()) == 0);
  REQUIRE(dsdt.size() > 43);
  CHECK(dsdt[36] == 0x10);
  CHECK(((dsdt[37] & 0x0f) | (dsdt[38] << 4)) == dsdt.size() - 37);
  auto find = [&](const std::vector<uint8_t>& needle) { return contains(dsdt, needle); };
  // DeviceOp, PkgLength (one byte: 58 bytes follow it), VR00, _HID "LNRO0005".
  CHECK(find({0x5b, 0x82, 59,  'V', 'R', '0', '0', 0x08, '_', 'H', 'I',
              'D',  0x0d, 'L', 'N', 'R', 'O', '0', '0',  '0', '5', 0}));
  CHECK(find({0x5b, 0x82, 59, 'V', 'R', '0', '1'}));
  // Memory32Fixed (ReadWrite, base, 512), IRQNoFlags {5} / {6}.
  CHECK(find({0x86, 9, 0, 1, 0x00, 0x00, 0xb0, 0xfe, 0x00, 0x02, 0, 0, 0x22, 0x20, 0x00, 0x79, 0}));
  CHECK(find({0x86, 9, 0, 1, 0x00, 0x02, 0xb0, 0xfe, 0x00, 0x02, 0, 0, 0x22, 0x40, 0x00, 0x79, 0}));
}

TEST_CASE("ACPI: keyboard controller, pvpanic and the power button (GED -> PWRB) in the DSDT") {
  base::GuestMemory memory;
  REQUIRE(memory.add_region(0, 1 << 20).ok());
  TableInputs inputs{{0}, true, {{3, 1, 10}}};
  inputs.sleep_port = 0x600;
  inputs.pvpanic_port = 0x505;
  inputs.i8042 = true;
  inputs.power_button_irq = 9;
  auto rsdp_at = write_acpi_tables(memory, 0xe0000, inputs);
  REQUIRE(rsdp_at.ok());
  uint64_t xsdt_at, fadt_at;
  std::memcpy(&xsdt_at, bytes(memory, *rsdp_at + 24, 8).data(), 8);
  std::memcpy(&fadt_at, bytes(memory, xsdt_at + 36, 8).data(), 8);
  auto fadt = bytes(memory, fadt_at, 276);
  CHECK(checksum(fadt.data(), 276) == 0);
  CHECK((u32(fadt, 112) & (1u << 20)) != 0);  // still hardware-reduced
  CHECK((fadt[109] & 2) == 2);                // IAPC_BOOT_ARCH: 8042
  auto dsdt = dsdt_of(memory, *rsdp_at);
  CHECK(checksum(dsdt.data(), dsdt.size()) == 0);
  // KBD_ (PNP0303, ports 0x60 and 0x64, IRQ 1).
  CHECK(contains(dsdt, {'K', 'B', 'D', '_', 0x08, '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x03, 0x03}));
  CHECK(contains(dsdt, {0x47, 0x01, 0x60, 0x00, 0x60, 0x00, 0x01, 0x01, 0x47, 0x01,
                        0x64, 0x00, 0x64, 0x00, 0x01, 0x01, 0x22, 0x02, 0x00, 0x79}));
  // PEVT ("QEMU0001", port 0x505).
  CHECK(contains(
      dsdt, {'P', 'E', 'V', 'T', 0x08, '_', 'H', 'I', 'D', 0x0d, 'Q', 'E', 'M', 'U', '0', '0', '0', '1', 0}));
  CHECK(contains(dsdt, {0x47, 0x01, 0x05, 0x05, 0x05, 0x05, 0x01, 0x01, 0x79}));
  // PWRB (PNP0C0C); GED0 ("ACPI0013") with an edge, active-high interrupt on GSI 9 and
  // Method (_EVT, 1) { Notify (\_SB.PWRB, 0x80) }.
  CHECK(contains(dsdt, {'P', 'W', 'R', 'B', 0x08, '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x0c, 0x0c}));
  CHECK(contains(
      dsdt, {'G', 'E', 'D', '0', 0x08, '_', 'H', 'I', 'D', 0x0d, 'A', 'C', 'P', 'I', '0', '0', '1', '3', 0}));
  CHECK(contains(dsdt, {0x89, 6, 0, 0x03, 1, 9, 0, 0, 0, 0x79}));
  CHECK(contains(dsdt, {0x14, 0x13, '_', 'E', 'V', 'T', 0x01, 0x86, 0x5c, 0x2e,
                        '_',  'S',  'B', '_', 'P', 'W', 'R',  'B',  0x0a, 0x80}));
}

TEST_CASE("ACPI: without them the DSDT names no keyboard, pvpanic or power button; no 8042 flag") {
  base::GuestMemory memory;
  REQUIRE(memory.add_region(0, 1 << 20).ok());
  TableInputs inputs{{0}, false, {}};
  inputs.sleep_port = 0x600;
  auto rsdp_at = write_acpi_tables(memory, 0xe0000, inputs);
  REQUIRE(rsdp_at.ok());
  uint64_t xsdt_at, fadt_at;
  std::memcpy(&xsdt_at, bytes(memory, *rsdp_at + 24, 8).data(), 8);
  std::memcpy(&fadt_at, bytes(memory, xsdt_at + 36, 8).data(), 8);
  auto fadt = bytes(memory, fadt_at, 276);
  CHECK(fadt[109] == 0);
  auto dsdt = dsdt_of(memory, *rsdp_at);
  CHECK_FALSE(contains(dsdt, {'K', 'B', 'D', '_'}));
  CHECK_FALSE(contains(dsdt, {'P', 'E', 'V', 'T'}));
  CHECK_FALSE(contains(dsdt, {'G', 'E', 'D', '0'}));
}

TEST_CASE("ACPI: the VM generation ID is VGEN with ADDR, notified by the GED next to the power button") {
  base::GuestMemory memory;
  REQUIRE(memory.add_region(0, 1 << 20).ok());
  TableInputs inputs{{0}, false, {}};
  inputs.power_button_irq = 9;
  inputs.vmgenid = TableInputs::VmGenId{0xff000, 16};
  auto rsdp_at = write_acpi_tables(memory, 0xe0000, inputs);
  REQUIRE(rsdp_at.ok());
  auto dsdt = dsdt_of(memory, *rsdp_at);
  CHECK(checksum(dsdt.data(), dsdt.size()) == 0);
  // Device (VGEN) { Name (_HID, "VMGENCTR"), Name (_CID, "VM_Gen_Counter"), Name (_DDN, ...), ADDR }:
  // 82 bytes of body (PkgLength 0x54 in two bytes).
  CHECK(contains(dsdt, {0x5b, 0x82, 0x44, 0x05, 'V', 'G', 'E', 'N', 0x08, '_', 'H', 'I', 'D', 0x0d,
                        'V',  'M',  'G',  'E',  'N', 'C', 'T', 'R', 0}));
  CHECK(contains(dsdt, {0x08, '_', 'C', 'I', 'D', 0x0d, 'V', 'M', '_', 'G', 'e', 'n', '_', 'C', 'o', 'u', 'n',
                        't', 'e', 'r', 0}));
  // Method (ADDR, 0) { Return (Package (2) { 0x000ff000, 0 }) }: the low half, then the high half.
  CHECK(contains(dsdt, {0x14, 0x14, 'A', 'D', 'D', 'R', 0x00, 0xa4, 0x12, 0x0c, 0x02, 0x0c, 0x00, 0xf0, 0x0f,
                        0x00, 0x0c, 0x00, 0x00, 0x00, 0x00}));
  // GED0: one interrupt descriptor per source (Linux takes the first GSI of each), GSI 9 and 16, and
  // Method (_EVT, 1) { If (LEqual (Arg0, 9)) { Notify (\_SB.PWRB, 0x80) }
  //                    If (LEqual (Arg0, 16)) { Notify (\_SB.VGEN, 0x80) } }
  CHECK(contains(dsdt, {0x89, 6, 0, 0x03, 1, 9, 0, 0, 0, 0x89, 6, 0, 0x03, 1, 16, 0, 0, 0, 0x79}));
  CHECK(contains(dsdt, {0x14, 0x2c, '_',  'E',  'V', 'T', 0x01, 0xa0, 0x12, 0x93, 0x68, 0x0a, 0x09, 0x86,
                        0x5c, 0x2e, '_',  'S',  'B', '_', 'P',  'W',  'R',  'B',  0x0a, 0x80, 0xa0, 0x12,
                        0x93, 0x68, 0x0a, 0x10, 0x86, 0x5c, '.', '_', 'S',  'B',  '_',  'V',  'G',  'E',
                        'N',  0x0a, 0x80}));
}

TEST_CASE("ACPI: a VM generation ID alone (microvm) has a GED of its own; a high address is split") {
  base::GuestMemory memory;
  REQUIRE(memory.add_region(0, 1 << 20).ok());
  TableInputs inputs{{0}, false, {}};
  inputs.vmgenid = TableInputs::VmGenId{0x123456000ull, 16};
  auto rsdp_at = write_acpi_tables(memory, 0xe0000, inputs);
  REQUIRE(rsdp_at.ok());
  auto dsdt = dsdt_of(memory, *rsdp_at);
  CHECK(checksum(dsdt.data(), dsdt.size()) == 0);
  CHECK_FALSE(contains(dsdt, {'P', 'W', 'R', 'B'}));
  CHECK(contains(dsdt, {0x12, 0x0c, 0x02, 0x0c, 0x00, 0x60, 0x45, 0x23, 0x0c, 0x01, 0x00, 0x00, 0x00}));
  CHECK(contains(dsdt, {0x89, 6, 0, 0x03, 1, 16, 0, 0, 0, 0x79}));
  // One source: _EVT notifies it without a test.
  CHECK(contains(dsdt, {0x14, 0x13, '_', 'E', 'V', 'T', 0x01, 0x86, 0x5c, 0x2e, '_', 'S', 'B', '_', 'V', 'G',
                        'E', 'N', 0x0a, 0x80}));
}

TEST_CASE("ACPI: tables that would reach the VM generation ID are refused") {
  base::GuestMemory memory;
  REQUIRE(memory.add_region(0, 1 << 20).ok());
  TableInputs inputs{{0}, false, {}};
  inputs.vmgenid = TableInputs::VmGenId{0xe0100, 16};
  auto written = write_acpi_tables(memory, 0xe0000, inputs);
  REQUIRE_FALSE(written.ok());
  CHECK(written.error().message.find("VM generation ID") != std::string::npos);
}
