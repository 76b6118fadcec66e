// The userspace IOAPIC against a fake accelerator Vm that records the MSIs and route sets it gets.
#include "hw/x86/ioapic.h"

#include <doctest/doctest.h>

#include <cstring>
#include <vector>

namespace {

using hw::x86::Ioapic;

struct FakeVm : accel::Vm {
  struct Msi {
    uint64_t address;
    uint32_t data;
  };
  std::vector<Msi> msis;
  std::vector<std::vector<accel::Vm::IoapicRoute>> route_sets;
  bool fail_routes = false;

  accel::AccelResult<void> map_memory(const base::GuestMemory::Region&) override { return {}; }
  accel::AccelResult<std::unique_ptr<accel::Vcpu>> create_vcpu(unsigned) override {
    return base::fail(accel::AccelError("no vCPUs here"));
  }
  accel::AccelResult<void> set_irq_line(uint32_t, bool) override {
    return base::fail(accel::AccelError("split irqchip: no in-kernel IOAPIC"));
  }
  accel::AccelResult<void> signal_msi(uint64_t address, uint32_t data) override {
    msis.push_back({address, data});
    return {};
  }
  accel::AccelResult<void> set_ioapic_routes(std::span<const IoapicRoute> routes) override {
    if (fail_routes) return base::fail(accel::AccelError("refused"));
    route_sets.emplace_back(routes.begin(), routes.end());
    return {};
  }
};

uint32_t read32(Ioapic& ioapic, uint64_t offset) {
  uint8_t bytes[4];
  ioapic.read(offset, bytes);
  uint32_t value;
  std::memcpy(&value, bytes, 4);
  return value;
}
void write32(Ioapic& ioapic, uint64_t offset, uint32_t value) {
  uint8_t bytes[4];
  std::memcpy(bytes, &value, 4);
  ioapic.write(offset, bytes);
}
uint32_t reg(Ioapic& ioapic, uint8_t index) {
  write32(ioapic, 0x00, index);
  return read32(ioapic, 0x10);
}
void set_reg(Ioapic& ioapic, uint8_t index, uint32_t value) {
  write32(ioapic, 0x00, index);
  write32(ioapic, 0x10, value);
}
// Programs pin's redirection entry as a guest does: destination (high half) first, then the low half.
void program(Ioapic& ioapic, unsigned pin, uint32_t low, uint8_t destination) {
  set_reg(ioapic, static_cast<uint8_t>(0x11 + 2 * pin), uint32_t{destination} << 24);
  set_reg(ioapic, static_cast<uint8_t>(0x10 + 2 * pin), low);
}

constexpr uint32_t kLevel = 1u << 15, kMasked = 1u << 16, kRemoteIrr = 1u << 14;

struct Fixture {
  FakeVm vm;
  Ioapic ioapic{"ioapic", 2};
  Fixture() { ioapic.attach(&vm); }
};

}  // namespace

TEST_CASE("ioapic: identification registers and reset state (every entry masked)") {
  Fixture f;
  CHECK(reg(f.ioapic, 0x00) == 2u << 24);
  CHECK(reg(f.ioapic, 0x01) == ((23u << 16) | 0x20));
  CHECK(reg(f.ioapic, 0x02) == 2u << 24);
  for (unsigned pin = 0; pin < Ioapic::kPins; ++pin) {
    CHECK(reg(f.ioapic, static_cast<uint8_t>(0x10 + 2 * pin)) == kMasked);
    CHECK(reg(f.ioapic, static_cast<uint8_t>(0x11 + 2 * pin)) == 0);
  }
  write32(f.ioapic, 0x00, 0x3f);
  CHECK(read32(f.ioapic, 0x00) == 0x3f);
  set_reg(f.ioapic, 0x00, 0x05000000);  // the guest may move the id
  CHECK(reg(f.ioapic, 0x00) == 0x05000000);
  set_reg(f.ioapic, 0x01, 0xffffffff);  // version is read-only
  CHECK(reg(f.ioapic, 0x01) == ((23u << 16) | 0x20));
  CHECK(f.vm.msis.empty());
  CHECK(f.vm.route_sets.empty());  // nothing sent at start: the accelerator begins with no routes
}

TEST_CASE("ioapic: an edge pin sends one MSI per rising edge, composed from its entry") {
  Fixture f;
  program(f.ioapic, 4, 0x24, 1);  // edge, active high, fixed, physical, unmasked, vector 0x24 -> APIC 1
  f.ioapic.set_pin(4, true);
  REQUIRE(f.vm.msis.size() == 1);
  CHECK(f.vm.msis[0].address == 0xfee01000);
  CHECK(f.vm.msis[0].data == 0x24);
  f.ioapic.set_pin(4, true);  // still high: no new edge
  CHECK(f.vm.msis.size() == 1);
  f.ioapic.set_pin(4, false);
  f.ioapic.set_pin(4, true);
  CHECK(f.vm.msis.size() == 2);
  CHECK((reg(f.ioapic, 0x18) & kRemoteIrr) == 0);  // edge pins never hold remote IRR
  f.ioapic.eoi(0x24);                              // nor does an EOI re-send them
  CHECK(f.vm.msis.size() == 2);
  CHECK(f.vm.route_sets.empty());  // edge pins need no EOI reports

  // Logical destination mode, lowest priority, and the extended destination id bits (49-55).
  set_reg(f.ioapic, 0x13, (0x0fu << 24) | (0x05u << 17));
  set_reg(f.ioapic, 0x12, 0x31 | (1u << 8) | (1u << 11));
  f.ioapic.set_pin(1, true);
  REQUIRE(f.vm.msis.size() == 3);
  CHECK(f.vm.msis[2].address == (0xfee00000u | (0x0fu << 12) | (0x05u << 5) | (1u << 2)));
  CHECK(f.vm.msis[2].data == (0x31u | (1u << 8)));
}

TEST_CASE("ioapic: a masked edge pin drops the edge, as the 82093AA does") {
  Fixture f;
  program(f.ioapic, 3, 0x23 | kMasked, 0);
  f.ioapic.set_pin(3, true);
  CHECK(f.vm.msis.empty());
  program(f.ioapic, 3, 0x23, 0);  // unmasking does not bring the lost edge back
  CHECK(f.vm.msis.empty());
  f.ioapic.set_pin(3, false);
  f.ioapic.set_pin(3, true);
  CHECK(f.vm.msis.size() == 1);
}

TEST_CASE("ioapic: a level pin sets remote IRR and is sent again at the EOI while still asserted") {
  Fixture f;
  program(f.ioapic, 5, 0x30 | kLevel, 0);
  REQUIRE(f.vm.route_sets.size() == 1);  // the accelerator learns the level route before any delivery
  REQUIRE(f.vm.route_sets[0].size() == 1);
  CHECK(f.vm.route_sets[0][0].pin == 5);
  CHECK(f.vm.route_sets[0][0].address == 0xfee00000);
  CHECK(f.vm.route_sets[0][0].data == (0x30u | (1u << 15)));

  f.ioapic.set_pin(5, true);
  REQUIRE(f.vm.msis.size() == 1);
  CHECK(f.vm.msis[0].data == (0x30u | (1u << 15)));
  CHECK((reg(f.ioapic, 0x1a) & kRemoteIrr) != 0);
  f.ioapic.set_pin(5, false);
  f.ioapic.set_pin(5, true);  // remote IRR holds it back until the EOI
  CHECK(f.vm.msis.size() == 1);
  f.ioapic.eoi(0x31);  // another vector: not ours
  CHECK(f.vm.msis.size() == 1);
  CHECK((reg(f.ioapic, 0x1a) & kRemoteIrr) != 0);
  f.ioapic.eoi(0x30);  // still asserted: delivered again
  CHECK(f.vm.msis.size() == 2);
  CHECK((reg(f.ioapic, 0x1a) & kRemoteIrr) != 0);
  f.ioapic.set_pin(5, false);
  f.ioapic.eoi(0x30);  // line low now: remote IRR clears, nothing more
  CHECK(f.vm.msis.size() == 2);
  CHECK((reg(f.ioapic, 0x1a) & kRemoteIrr) == 0);

  // The EOI register (version 0x20) does the same for a vector.
  f.ioapic.set_pin(5, true);
  CHECK(f.vm.msis.size() == 3);
  write32(f.ioapic, 0x40, 0x30);
  CHECK(f.vm.msis.size() == 4);
  f.ioapic.set_pin(5, false);
  write32(f.ioapic, 0x40, 0x30);
  CHECK((reg(f.ioapic, 0x1a) & kRemoteIrr) == 0);
  CHECK(f.vm.msis.size() == 4);
}

TEST_CASE("ioapic: a masked level pin waits; unmasking an asserted line delivers it") {
  Fixture f;
  program(f.ioapic, 9, 0x29 | kLevel | kMasked, 0);
  f.ioapic.set_pin(9, true);
  CHECK(f.vm.msis.empty());
  CHECK((reg(f.ioapic, 0x22) & kRemoteIrr) == 0);
  set_reg(f.ioapic, 0x22, 0x29 | kLevel);
  REQUIRE(f.vm.msis.size() == 1);
  CHECK((reg(f.ioapic, 0x22) & kRemoteIrr) != 0);
  // Masked while in service: the EOI still clears remote IRR (the route stays known while masked),
  // and the asserted line fires at the unmask.
  set_reg(f.ioapic, 0x22, 0x29 | kLevel | kMasked);
  f.ioapic.eoi(0x29);
  CHECK((reg(f.ioapic, 0x22) & kRemoteIrr) == 0);
  CHECK(f.vm.msis.size() == 1);
  set_reg(f.ioapic, 0x22, 0x29 | kLevel);
  CHECK(f.vm.msis.size() == 2);
  // Switching the pin to edge clears a stuck remote IRR (Linux does this on IOAPICs without an EOI
  // register), and switching back to level delivers the still-asserted line.
  set_reg(f.ioapic, 0x22, 0x29 | kMasked);
  CHECK((reg(f.ioapic, 0x22) & kRemoteIrr) == 0);
  set_reg(f.ioapic, 0x22, 0x29 | kLevel);
  CHECK(f.vm.msis.size() == 3);
}

TEST_CASE("ioapic: routes list the level pins and are sent only when they change") {
  Fixture f;
  program(f.ioapic, 4, 0x24, 0);  // edge: no routes
  CHECK(f.vm.route_sets.empty());
  program(f.ioapic, 10, 0x40 | kLevel | kMasked, 1);
  REQUIRE(f.vm.route_sets.size() == 1);
  CHECK(f.vm.route_sets[0].size() == 1);
  CHECK(f.vm.route_sets[0][0].pin == 10);
  CHECK(f.vm.route_sets[0][0].address == 0xfee01000);
  set_reg(f.ioapic, 0x24, 0x40 | kLevel);  // unmasking: the message is unchanged, nothing sent
  set_reg(f.ioapic, 0x25, 1u << 24);       // the same destination rewritten
  CHECK(f.vm.route_sets.size() == 1);
  program(f.ioapic, 11, 0x41 | kLevel, 0);
  REQUIRE(f.vm.route_sets.size() == 2);
  CHECK(f.vm.route_sets[1].size() == 2);
  set_reg(f.ioapic, 0x24, 0x42 | kLevel);  // a new vector
  REQUIRE(f.vm.route_sets.size() == 3);
  CHECK(f.vm.route_sets[2][0].data == (0x42u | (1u << 15)));
  set_reg(f.ioapic, 0x24, 0x42);  // back to edge: the route goes away
  REQUIRE(f.vm.route_sets.size() == 4);
  REQUIRE(f.vm.route_sets[3].size() == 1);
  CHECK(f.vm.route_sets[3][0].pin == 11);

  // A refused set is retried at the next change instead of being taken as sent.
  f.vm.fail_routes = true;
  set_reg(f.ioapic, 0x24, 0x43 | kLevel);
  CHECK(f.vm.route_sets.size() == 4);
  f.vm.fail_routes = false;
  set_reg(f.ioapic, 0x24, 0x43 | kLevel);
  REQUIRE(f.vm.route_sets.size() == 5);
  CHECK(f.vm.route_sets[4].size() == 2);
  CHECK(f.ioapic.ignored_accesses() == 1);
}

TEST_CASE("ioapic: hostile register accesses stay inside the chip") {
  Fixture f;
  // Read-only bits cannot be set by writes.
  set_reg(f.ioapic, 0x10, 0xffffffff);
  CHECK(reg(f.ioapic, 0x10) == (0xffffffffu & ~(kRemoteIrr | (1u << 12)) & 0x1ffffu));
  set_reg(f.ioapic, 0x11, 0xffffffff);
  CHECK(reg(f.ioapic, 0x11) == 0xffff0000u);
  // Every register index: beyond the table reads 0, writes change nothing.
  for (unsigned index = 0x10 + 2 * Ioapic::kPins; index < 0x100; ++index) {
    set_reg(f.ioapic, static_cast<uint8_t>(index), 0xffffffff);
    CHECK(reg(f.ioapic, static_cast<uint8_t>(index)) == 0);
  }
  for (unsigned index = 0x03; index < 0x10; ++index) CHECK(reg(f.ioapic, static_cast<uint8_t>(index)) == 0);
  // IOREGSEL keeps 8 bits: 0x110 selects register 0x10, not something past the table.
  write32(f.ioapic, 0x00, 0x110);
  CHECK(read32(f.ioapic, 0x00) == 0x10);
  // Bad widths and offsets: reads give zeros, writes are dropped, nothing is delivered.
  uint8_t one = 0xff;
  write32(f.ioapic, 0x00, 0x12);
  f.ioapic.write(0x10, {&one, 1});
  CHECK(reg(f.ioapic, 0x12) == kMasked);
  uint8_t wide[8];
  std::memset(wide, 0xaa, sizeof wide);
  f.ioapic.read(0x10, wide);
  for (uint8_t b : wide) CHECK(b == 0);
  f.ioapic.write(0x10, wide);
  for (uint64_t offset : {0x04ull, 0x14ull, 0x20ull, 0x44ull, 0xfffull, 0x1000ull, ~0ull}) {
    std::memset(wide, 0xaa, 4);
    f.ioapic.read(offset, {wide, 4});
    CHECK(wide[0] == 0);
    f.ioapic.write(offset, {wide, 4});
  }
  f.ioapic.read(0x00, {});  // empty accesses
  f.ioapic.write(0x00, {});
  // Out-of-range pins and EOIs of unused vectors are ignored.
  f.ioapic.set_pin(24, true);
  f.ioapic.set_pin(~0u, true);
  f.ioapic.eoi(0);
  f.ioapic.eoi(0xff);
  write32(f.ioapic, 0x40, 0xffffffff);
  CHECK(f.ioapic.ignored_accesses() > 0);
  // ExtINT has no 8259 behind it and reserved modes have no meaning: nothing is sent, no remote IRR.
  program(f.ioapic, 6, 0x26 | (7u << 8) | kLevel, 0);
  program(f.ioapic, 7, 0x27 | (3u << 8), 0);
  f.ioapic.set_pin(6, true);
  f.ioapic.set_pin(7, true);
  CHECK((reg(f.ioapic, 0x1c) & kRemoteIrr) == 0);
  CHECK(f.vm.msis.empty());  // pin 0's all-ones entry above is masked
}

TEST_CASE("ioapic: once detached (machine teardown), pin changes send nothing") {
  Fixture f;
  program(f.ioapic, 4, 0x24, 0);
  f.ioapic.attach(nullptr);
  f.ioapic.set_pin(4, true);
  CHECK(f.vm.msis.empty());
  program(f.ioapic, 5, 0x25 | kLevel, 0);
  CHECK(f.vm.route_sets.empty());
}

TEST_CASE("ioapic: random register traffic, pin changes and EOIs keep the chip's invariants") {
  Fixture f;
  uint64_t state = 0x9e3779b97f4a7c15ull;
  auto next = [&] {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  const uint64_t offsets[] = {0x00, 0x10, 0x40, 0x04, 0x11, 0x3f, 0xfff};
  const size_t widths[] = {1, 2, 4, 8};
  for (int i = 0; i < 100000; ++i) {
    const uint64_t r = next();
    uint8_t bytes[8];
    const uint64_t value = next();
    std::memcpy(bytes, &value, 8);
    const std::span<uint8_t> data(bytes, widths[(r >> 8) % 4]);
    switch (r % 5) {
      case 0:
        f.ioapic.write(offsets[(r >> 4) % 7], data);
        break;
      case 1:
        f.ioapic.read(offsets[(r >> 4) % 7], data);
        break;
      case 2:
        set_reg(f.ioapic, static_cast<uint8_t>(r >> 16), static_cast<uint32_t>(value));
        break;
      case 3:
        f.ioapic.set_pin(static_cast<unsigned>((r >> 16) % 32), (r >> 24) & 1);
        break;
      default:
        f.ioapic.eoi(static_cast<uint8_t>(r >> 16));
        break;
    }
  }
  for (unsigned pin = 0; pin < Ioapic::kPins; ++pin) {
    const uint64_t entry = f.ioapic.entry(pin);
    CHECK((entry & 0x0000fffffffe0000ull) == 0);                  // reserved bits 17-47 stay clear
    CHECK((entry & (1u << 12)) == 0);                             // delivery status never reads 1
    if (!(entry & (1u << 15))) CHECK((entry & kRemoteIrr) == 0);  // remote IRR only on level pins
  }
  for (const auto& msi : f.vm.msis) {
    CHECK((msi.address & 0xfff00003ull) == 0xfee00000ull);
    const unsigned mode = (msi.data >> 8) & 7;
    CHECK((mode != 3 && mode != 6 && mode != 7));  // reserved and ExtINT messages are never sent
    CHECK((msi.data & ~0x87ffu) == 0);
  }
  for (const auto& set : f.vm.route_sets)
    for (const auto& route : set) CHECK(route.pin < Ioapic::kPins);
  CHECK(!f.vm.msis.empty());
}

// Snapshot: a level pin in service (remote IRR set) comes back with its entry, and the fresh
// accelerator is told its route again; its EOI then re-delivers the still-asserted line.
TEST_CASE("ioapic state saves and loads entries, levels and remote IRR, and re-sends the routes") {
  FakeVm vm_a;
  Ioapic a("ioapic", 0);
  a.attach(&vm_a);
  set_reg(a, 0x11 + 2 * 5, 0);
  set_reg(a, 0x10 + 2 * 5, 0x45 | (1u << 15));  // vector 0x45, level, unmasked
  set_reg(a, 0x10 + 2 * 2, 0x33);               // edge, unmasked
  write32(a, 0x00, 0x12);                       // a register selected
  a.set_pin(5, true);
  REQUIRE(vm_a.msis.size() == 1);
  REQUIRE((a.entry(5) & Ioapic::kRemoteIrr) != 0);
  hw::StateWriter out;
  a.save_state(out);

  FakeVm vm_b;
  Ioapic b("ioapic", 0);
  b.attach(&vm_b);
  hw::StateReader in(out.data());
  REQUIRE(b.load_state(in, a.state_version()).ok());
  CHECK(b.entry(5) == a.entry(5));
  CHECK(b.entry(2) == a.entry(2));
  CHECK(read32(b, 0x10) == reg(a, 0x12));
  REQUIRE(!vm_b.route_sets.empty());
  CHECK(vm_b.route_sets.back().size() == 1);
  CHECK(vm_b.route_sets.back()[0].pin == 5);
  CHECK(vm_b.msis.empty());  // in service: nothing re-sent until the EOI
  b.eoi(0x45);
  CHECK(vm_b.msis.size() == 1);  // the line is still asserted

  hw::StateReader short_in(std::span<const uint8_t>(out.data()).first(10));
  Ioapic c("ioapic", 0);
  CHECK(!c.load_state(short_in, 1).ok());
  hw::StateReader again(out.data());
  CHECK(!c.load_state(again, 2).ok());
}
