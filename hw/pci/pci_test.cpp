#include <doctest/doctest.h>

#include <cstring>
#include <functional>

#include "hw/pci/pci_bus.h"

using namespace hw;
using namespace hw::pci;

namespace {

struct Register : Device {
  std::string_view name() const override { return "reg"; }
  void read(uint64_t offset, std::span<uint8_t> data) override {
    std::memset(data.data(), 0x5a, data.size());
  }
  void write(uint64_t, std::span<const uint8_t>) override {}
};

struct Level : IrqLine {
  bool level = false;
  void set_level(bool asserted) override { level = asserted; }
};

std::shared_ptr<PciFunction> function(const char* name, uint16_t device_id, uint64_t bar_size = 0,
                                      BarKind kind = BarKind::Memory32) {
  auto fn = std::make_shared<PciFunction>(name, FunctionIds{0x1af4, device_id, 0x010000});
  if (bar_size) fn->define_bar(0, bar_size, kind, std::make_shared<Register>());
  return fn;
}

struct Machine {
  AddressSpace mmio, pio;
  std::shared_ptr<PciHost> host = std::make_shared<PciHost>("pci.0", PciResources{&mmio, &pio, std::nullopt});
  Cf8ConfigDevice cf8{host};

  uint32_t cf8_read(Bdf bdf, uint8_t reg, unsigned size = 4) {
    uint32_t address = 0x80000000u | bdf.bus << 16 | bdf.device << 11 | bdf.function << 8 | (reg & 0xfc);
    uint8_t a[4];
    std::memcpy(a, &address, 4);
    cf8.write(0, a);
    uint8_t data[4] = {};
    cf8.read(4 + (reg & 3), std::span<uint8_t>(data, size));
    uint32_t value = 0;
    std::memcpy(&value, data, size);
    return value;
  }
  void cf8_write(Bdf bdf, uint8_t reg, uint32_t value) {
    uint32_t address = 0x80000000u | bdf.bus << 16 | bdf.device << 11 | bdf.function << 8 | reg;
    uint8_t a[4];
    std::memcpy(a, &address, 4);
    cf8.write(0, a);
    std::memcpy(a, &value, 4);
    cf8.write(4, a);
  }

  // What a guest's scan does: every device of a bus, functions 1-7 when multi-function, and into bridges.
  std::vector<std::string> walk() {
    std::vector<std::string> found;
    std::function<void(uint8_t)> scan = [&](uint8_t bus) {
      for (uint8_t d = 0; d < 32; ++d) {
        for (uint8_t f = 0; f < 8; ++f) {
          uint32_t ids = cf8_read({bus, d, f}, 0);
          if ((ids & 0xffff) == 0xffff) {
            if (f == 0) break;
            continue;
          }
          char text[32];
          std::snprintf(text, sizeof text, "%s %04x:%04x", Bdf{bus, d, f}.to_string().c_str(), ids & 0xffff,
                        ids >> 16);
          found.push_back(text);
          uint8_t header = static_cast<uint8_t>(cf8_read({bus, d, f}, 0x0e, 1));
          if ((header & 0x7f) == 1) scan(static_cast<uint8_t>(cf8_read({bus, d, f}, 0x19, 1)));
          if (f == 0 && !(header & 0x80)) break;
        }
      }
    };
    scan(0);
    return found;
  }
};

}  // namespace

TEST_CASE("a CF8/CFC walk finds exactly the plugged functions, behind bridges too") {
  Machine m;
  REQUIRE(
      m.host
          ->plug("pci.0", 0, 0, std::make_shared<PciFunction>("host", FunctionIds{0x8086, 0x1237, 0x060000}))
          .ok());
  REQUIRE(m.host->plug("pci.0", 3, 0, function("a", 0x1041, 0x4000)).ok());
  REQUIRE(m.host->plug("pci.0", 4, 0, function("b", 0x1042, 0x1000)).ok());
  REQUIRE(m.host->plug("pci.0", 4, 1, function("c", 0x1044, 0x20, BarKind::Io)).ok());
  REQUIRE(m.host->plug("pci.0", 5, 0, std::make_shared<PciBridge>("br1")).ok());
  REQUIRE(m.host->plug("br1", 1, 0, function("d", 0x1041, 0x4000)).ok());
  REQUIRE(m.host->plug("br1", 2, 0, std::make_shared<PciBridge>("br2")).ok());
  REQUIRE(m.host->plug("br2", 0, 0, function("e", 0x1043, 0x100000, BarKind::Memory64)).ok());
  REQUIRE(m.host->plug("pci.0", 6, 0, std::make_shared<PciBridge>("br3")).ok());
  REQUIRE(m.host->assign_resources({0xc0000000, 0x3ec00000}, {0xc000, 0x4000}).ok());

  std::vector<std::string> expected = {
      "00:00.0 8086:1237", "00:03.0 1af4:1041", "00:04.0 1af4:1042", "00:04.1 1af4:1044", "00:05.0 1b36:0001",
      "01:01.0 1af4:1041", "01:02.0 1b36:0001", "02:00.0 1af4:1043", "00:06.0 1b36:0001",
  };
  CHECK(m.walk() == expected);
  // The host's own view agrees (BDFs after numbering).
  std::vector<std::string> listed;
  for (auto& [bdf, fn] : m.host->functions()) listed.push_back(bdf.to_string());
  CHECK(listed == std::vector<std::string>{"00:00.0", "00:03.0", "00:04.0", "00:04.1", "00:05.0", "01:01.0",
                                           "01:02.0", "02:00.0", "00:06.0"});
  // Bridge numbering: br1 = 1 (subordinate 2), br2 = 2, br3 = 3.
  CHECK(m.cf8_read({0, 5, 0}, 0x18) == 0x00020100u);
  CHECK(m.cf8_read({1, 2, 0}, 0x18) == 0x00020201u);
  CHECK((m.cf8_read({0, 6, 0}, 0x18) & 0xffffff) == 0x030300u);
}

TEST_CASE("BAR sizing reads back the size mask and type bits") {
  Machine m;
  REQUIRE(m.host->plug("pci.0", 1, 0, function("mem", 1, 0x4000)).ok());
  REQUIRE(m.host->plug("pci.0", 2, 0, function("io", 2, 0x20, BarKind::Io)).ok());
  REQUIRE(m.host->plug("pci.0", 3, 0, function("mem64", 3, 0x200000, BarKind::Memory64)).ok());
  m.cf8_write({0, 1, 0}, 0x10, 0xffffffff);
  CHECK(m.cf8_read({0, 1, 0}, 0x10) == 0xffffc000u);
  m.cf8_write({0, 2, 0}, 0x10, 0xffffffff);
  CHECK(m.cf8_read({0, 2, 0}, 0x10) == 0xffffffe1u);
  m.cf8_write({0, 3, 0}, 0x10, 0xffffffff);
  m.cf8_write({0, 3, 0}, 0x14, 0xffffffff);
  CHECK(m.cf8_read({0, 3, 0}, 0x10) == 0xffe00004u);
  CHECK(m.cf8_read({0, 3, 0}, 0x14) == 0xffffffffu);
  CHECK(m.cf8_read({0, 1, 0}, 0x14) == 0u);  // unimplemented BAR
}

TEST_CASE("BARs are mapped where the registers say, only while decoding is on") {
  Machine m;
  REQUIRE(m.host->plug("pci.0", 1, 0, function("mem", 1, 0x1000)).ok());
  REQUIRE(m.host->assign_resources({0xc0000000, 0x1000000}, {0xc000, 0x1000}).ok());
  uint8_t byte = 0;
  CHECK(m.mmio.read(0xc0000000, {&byte, 1}));
  CHECK(byte == 0x5a);
  m.cf8_write({0, 1, 0}, 0x04, 0);  // memory decode off
  CHECK_FALSE(m.mmio.read(0xc0000000, {&byte, 1}));
  m.cf8_write({0, 1, 0}, 0x10, 0xd0000000);
  m.cf8_write({0, 1, 0}, 0x04, kCommandMemory);
  CHECK_FALSE(m.mmio.read(0xc0000000, {&byte, 1}));
  CHECK(m.mmio.read(0xd0000800, {&byte, 1}));
}

TEST_CASE("an expansion ROM: sized through 0x30, mapped only while enabled and decoding, read-only") {
  Machine m;
  auto fn = function("rom", 1, 0x1000);
  fn->define_rom(0x800, std::make_shared<Register>());
  REQUIRE(m.host->plug("pci.0", 1, 0, fn).ok());
  auto plain = function("plain", 2, 0x1000);
  REQUIRE(m.host->plug("pci.0", 2, 0, plain).ok());
  REQUIRE(m.host->assign_resources({0xc0000000, 0x1000000}, {0xc000, 0x1000}).ok());
  m.cf8_write({0, 1, 0}, 0x30, 0xffffffff);
  CHECK(m.cf8_read({0, 1, 0}, 0x30) == 0xfffff801u);  // 2 KiB, the enable bit writable
  m.cf8_write({0, 2, 0}, 0x30, 0xffffffff);
  CHECK(m.cf8_read({0, 2, 0}, 0x30) == 0u);  // no ROM: nothing sticks
  uint8_t byte = 0;
  m.cf8_write({0, 1, 0}, 0x30, 0xd0000000);  // placed, not enabled
  CHECK_FALSE(m.mmio.read(0xd0000000, {&byte, 1}));
  m.cf8_write({0, 1, 0}, 0x30, 0xd0000001);
  CHECK(m.mmio.read(0xd00007ff, {&byte, 1}));
  CHECK(byte == 0x5a);
  CHECK_FALSE(m.mmio.read(0xd0000800, {&byte, 1}));
  m.cf8_write({0, 1, 0}, 0x04, 0);  // memory decode off: gone with the BARs
  CHECK_FALSE(m.mmio.read(0xd0000000, {&byte, 1}));
  m.cf8_write({0, 1, 0}, 0x04, kCommandMemory);
  CHECK(m.mmio.read(0xd0000000, {&byte, 1}));
  // Over another function's BAR: refused, the ROM stays unmapped and the BAR keeps answering.
  uint32_t other = m.cf8_read({0, 2, 0}, 0x10) & ~0xfu;
  m.cf8_write({0, 1, 0}, 0x30, other | 1);
  CHECK(m.mmio.read(other, {&byte, 1}));
  CHECK_FALSE(m.mmio.read(0xd0000000, {&byte, 1}));
}

TEST_CASE("I/O BARs land in port space, or in MMIO for hosts without ports") {
  AddressSpace mmio, pio;
  PciHost host("pcie.0", PciResources{&mmio, &pio, 0x3000000});
  REQUIRE(host.plug("pcie.0", 1, 0, function("io", 1, 0x20, BarKind::Io)).ok());
  REQUIRE(host.assign_resources({0x40000000, 0x1000000}, {0x1000, 0xf000}).ok());
  uint8_t byte = 0;
  CHECK(mmio.read(0x3001000, {&byte, 1}));
  CHECK(pio.mappings().empty());
}

TEST_CASE("capabilities chain from 0x34 and set the status bit") {
  PciFunction fn("caps", FunctionIds{0x1af4, 0x1041, 0});
  const uint8_t first[14] = {};
  const uint8_t second[2] = {0x12, 0x34};
  uint8_t a = fn.add_capability(0x09, first);
  uint8_t b = fn.add_capability(0x11, second);
  CHECK(a == 0x40);
  CHECK(b == 0x50);
  CHECK(fn.config_read(kCapabilityPointer, 1) == 0x40);
  CHECK(fn.config_read(0x40, 2) == 0x5009);
  CHECK(fn.config_read(0x50, 4) == 0x34120011u);
  CHECK((fn.config_read(kStatus, 2) & kStatusCapabilities) != 0);
}

TEST_CASE("ECAM reaches the same functions by offset") {
  AddressSpace mmio, pio;
  auto host = std::make_shared<PciHost>("pcie.0", PciResources{&mmio, &pio, std::nullopt});
  REQUIRE(host->plug("pcie.0", 2, 0, std::make_shared<PciBridge>("br")).ok());
  REQUIRE(host->plug("br", 0, 0, function("x", 0x1042)).ok());
  REQUIRE(host->assign_resources({0x40000000, 0x1000000}, {0x1000, 0xf000}).ok());
  EcamDevice ecam(host);
  uint8_t data[4];
  ecam.read((1u << 20) | (0u << 15), data);
  CHECK(data[0] == 0xf4);
  CHECK(data[2] == 0x42);
  ecam.read((2u << 15), data);  // nothing at 00:02.0's sibling? no: the bridge is there
  CHECK(data[0] == 0x36);
  ecam.read((5u << 20), data);  // bus 5 does not exist
  CHECK(data[0] == 0xff);
}

TEST_CASE("hostile config accesses: wrong sizes, beyond the space, absent functions, taken slots") {
  Machine m;
  REQUIRE(m.host->plug("pci.0", 1, 0, function("a", 1)).ok());
  CHECK_FALSE(m.host->plug("pci.0", 1, 0, function("b", 2)).ok());
  CHECK_FALSE(m.host->plug("pci.0", 32, 0, function("c", 3)).ok());
  CHECK_FALSE(m.host->plug("nope", 1, 0, function("d", 4)).ok());
  PciFunction* fn = m.host->route(0, 1, 0);
  REQUIRE(fn);
  CHECK(fn->config_read(4095, 4) == 0xffffffffu);
  CHECK(fn->config_read(0, 3) == 0xffffffffu);
  fn->config_write(0, 4, 0);  // vendor/device are read-only
  CHECK(fn->config_read(0, 2) == 0x1af4);
  CHECK(m.cf8_read({0, 9, 0}, 0) == 0xffffffffu);
  CHECK(m.cf8_read({7, 0, 0}, 0) == 0xffffffffu);
}

TEST_CASE("INTx follows the function's level unless the command register disables it") {
  PciFunction fn("irq", FunctionIds{0x1af4, 1, 0});
  auto line = std::make_shared<Level>();
  fn.set_irq_line(line);
  fn.set_interrupt(1, 11);
  CHECK(fn.config_read(kInterruptLine, 2) == 0x010b);
  fn.set_intx(true);
  CHECK(line->level);
  CHECK((fn.config_read(kStatus, 2) & kStatusInterrupt) != 0);
  fn.config_write(kCommand, 2, kCommandIntxDisable);
  CHECK_FALSE(line->level);
  fn.config_write(kCommand, 2, 0);
  CHECK(line->level);
}

TEST_CASE("a bridge with a chassis number carries the Slot Numbering capability; without, no capability") {
  PciBridge plain("br0");
  CHECK((plain.config_read(0x06, 2) & 0x10) == 0);  // status: no capability list
  PciBridge numbered("br1", 7);
  CHECK((numbered.config_read(0x06, 2) & 0x10) != 0);
  uint8_t at = static_cast<uint8_t>(numbered.config_read(kCapabilityPointer, 1));
  REQUIRE(at >= 0x40);
  CHECK(numbered.config_read(at, 1) == 0x04);      // PCI_CAP_ID_SLOTID
  CHECK(numbered.config_read(at + 1, 1) == 0);     // last capability
  CHECK(numbered.config_read(at + 2, 1) == 0x20);  // no expansion slots, first in chassis
  CHECK(numbered.config_read(at + 3, 1) == 7);     // the chassis number
  numbered.config_write(at + 3, 1, 9);             // read-only for the guest
  CHECK(numbered.config_read(at + 3, 1) == 7);
}

TEST_CASE("a snapshot of the host keeps functions behind a bridge the guest left unnumbered") {
  auto build = [](Machine& m) {
    REQUIRE(m.host->plug("pci.0", 3, 0, function("a", 0x1041, 0x4000)).ok());
    REQUIRE(m.host->plug("pci.0", 5, 0, std::make_shared<PciBridge>("br1")).ok());
    REQUIRE(m.host->plug("br1", 1, 0, function("d", 0x1042, 0x1000)).ok());
    REQUIRE(m.host->assign_resources({0xc0000000, 0x3ec00000}, {0xc000, 0x4000}).ok());
  };
  Machine saved;
  build(saved);
  saved.cf8_write({1, 1, 0}, 0x3c, 0x0b);      // d's interrupt line register, behind the bridge
  saved.cf8_write({0, 5, 0}, 0x18, 0);         // then the guest clears br1's bus numbers
  CHECK(saved.host->functions().size() == 2);  // a scan by bus numbers no longer reaches d
  StateWriter out;
  saved.host->save_state(out);

  Machine restored;
  build(restored);
  StateReader in(out.data());
  REQUIRE(restored.host->load_state(in).ok());
  CHECK(in.at_end());
  CHECK(restored.cf8_read({0, 5, 0}, 0x18) == 0);   // br1 as the guest left it
  restored.cf8_write({0, 5, 0}, 0x18, 0x00010100);  // numbered again, d is there with its register
  CHECK((restored.cf8_read({1, 1, 0}, 0x3c) & 0xff) == 0x0b);
}
