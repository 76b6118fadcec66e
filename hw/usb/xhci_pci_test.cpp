// qemu-xhci's PCI face: QEMU's ids and class, a 64-bit 16 KiB BAR 0, and the interrupter's level as
// INTx, or as one MSI message per rising edge once the guest enables MSI (which clears IMAN.IP).
#include "hw/usb/xhci_pci.h"

#include <doctest/doctest.h>

#include <cstring>
#include <vector>

namespace {

struct Msis : hw::MsiSink {
  std::vector<std::pair<uint64_t, uint32_t>> sent;
  void signal(uint64_t address, uint32_t data) override { sent.push_back({address, data}); }
};

struct Line : hw::IrqLine {
  bool level = false;
  void set_level(bool asserted) override { level = asserted; }
};

void w32(hw::Device& d, uint64_t offset, uint32_t value) {
  uint8_t b[4];
  std::memcpy(b, &value, 4);
  d.write(offset, b);
}

// Raises the interrupter: a No Op command on a ring set up in guest memory, its completion event.
void raise(base::GuestMemory& memory, hw::usb::Xhci& xhci) {
  REQUIRE(memory.write_le<uint64_t>(0x3000, 0x4000));
  REQUIRE(memory.write_le<uint32_t>(0x3008, 16));
  REQUIRE(memory.write_le<uint32_t>(0x200c, (23u << 10) | 1));  // No Op command, cycle 1
  w32(xhci, 0x40 + 0x38, 1);
  w32(xhci, 0x40 + 0x18, 0x2000 | 1);
  w32(xhci, 0x1000 + 0x28, 1);
  w32(xhci, 0x1000 + 0x38, 0x4000);
  w32(xhci, 0x1000 + 0x30, 0x3000);
  w32(xhci, 0x1000 + 0x34, 0);
  w32(xhci, 0x1000 + 0x20, 2);
  w32(xhci, 0x40, 5);
  w32(xhci, 0x2000, 0);
}

}  // namespace

TEST_CASE("qemu-xhci PCI function: ids, BAR 0, MSI capability") {
  base::GuestMemory memory;
  REQUIRE(memory.add_region(0, 1 << 20).ok());
  auto msi = std::make_shared<Msis>();
  auto [fn, xhci] = hw::usb::make_xhci_function("usb0", memory, msi);
  CHECK(fn->config_read(hw::pci::kVendorId, 2) == 0x1b36);
  CHECK(fn->config_read(hw::pci::kDeviceId, 2) == 0x000d);
  CHECK((fn->config_read(0x08, 4) >> 8) == 0x0c0330);
  CHECK(fn->config_read(0x60, 1) == 0x30);
  fn->config_write(hw::pci::kBar0, 4, 0xffffffff);
  CHECK(fn->config_read(hw::pci::kBar0, 4) ==
        ((~static_cast<uint32_t>(hw::usb::Xhci::kMmioSize - 1)) | 0x4));  // 64-bit
  const uint8_t cap = static_cast<uint8_t>(fn->config_read(hw::pci::kCapabilityPointer, 1));
  REQUIRE(cap != 0);
  CHECK(fn->config_read(cap, 1) == 0x05);

  // MSI on: one message per event, none as INTx.
  auto line = std::make_shared<Line>();
  fn->set_irq_line(line);
  fn->set_interrupt(1, 10);
  fn->config_write(cap + 4, 4, 0xfee00000);
  fn->config_write(cap + 8, 4, 0);
  fn->config_write(cap + 12, 2, 0x4041);
  fn->config_write(cap + 2, 2, 1);
  raise(memory, *xhci);
  REQUIRE(msi->sent.size() == 1);
  CHECK(msi->sent[0] == std::pair<uint64_t, uint32_t>{0xfee00000, 0x4041});
  CHECK_FALSE(line->level);
  // The message took IMAN.IP with it (xHCI 1.2, 5.5.2.1: a driver on MSI never clears it), so MSI
  // switched off leaves INTx low.
  uint8_t iman[4];
  xhci->read(0x1000 + 0x20, iman);
  CHECK((iman[0] & 1) == 0);
  fn->config_write(cap + 2, 2, 0);
  CHECK_FALSE(line->level);
  // On INTx an event holds the line until the driver clears IP.
  w32(*xhci, 0x40, 2);  // HCRST, then the same No Op again
  raise(memory, *xhci);
  CHECK(msi->sent.size() == 1);
  CHECK(line->level);
  w32(*xhci, 0x1000 + 0x20, 3);
  CHECK_FALSE(line->level);
}

TEST_CASE("qemu-xhci PCI function without MSI: no capability, INTx follows the interrupter") {
  base::GuestMemory memory;
  REQUIRE(memory.add_region(0, 1 << 20).ok());
  auto [fn, xhci] = hw::usb::make_xhci_function("usb0", memory, nullptr);
  CHECK(fn->config_read(hw::pci::kCapabilityPointer, 1) == 0);
  auto line = std::make_shared<Line>();
  fn->set_irq_line(line);
  fn->set_interrupt(1, 10);
  raise(memory, *xhci);
  CHECK(line->level);
  w32(*xhci, 0x1000 + 0x20, 3);  // IP cleared
  CHECK_FALSE(line->level);
}
