#include "hw/riscv/plic.h"

#include <doctest/doctest.h>

#include <map>

namespace {

struct Lines {
  std::map<std::pair<unsigned, unsigned>, bool> level;
  hw::riscv::HartIrqSink sink() {
    return [this](unsigned hart, unsigned bit, bool l) { level[{hart, bit}] = l; };
  }
  bool meip(unsigned hart) { return level[{hart, hw::riscv::kMipMeip}]; }
  bool seip(unsigned hart) { return level[{hart, hw::riscv::kMipSeip}]; }
};

void w32(hw::Device& d, uint64_t off, uint32_t v) {
  uint8_t b[4] = {uint8_t(v), uint8_t(v >> 8), uint8_t(v >> 16), uint8_t(v >> 24)};
  d.write(off, b);
}
uint32_t r32(hw::Device& d, uint64_t off) {
  uint8_t b[4];
  d.read(off, b);
  return b[0] | b[1] << 8 | b[2] << 16 | uint32_t(b[3]) << 24;
}

constexpr uint64_t kEnable = 0x2000, kCtx = 0x200000;

struct Rig {
  Lines lines;
  std::shared_ptr<hw::riscv::Plic> plic = std::make_shared<hw::riscv::Plic>(2, 96, lines.sink());
};

}  // namespace

TEST_CASE("plic: a pending, enabled source above threshold raises the context's line") {
  Rig r;
  auto uart = r.plic->source_line(10);
  REQUIRE(uart);
  uart->set_level(true);
  CHECK((r32(*r.plic, 0x1000) & (1u << 10)) != 0);  // pending
  CHECK_FALSE(r.lines.seip(0));                     // priority 0: never
  w32(*r.plic, 4 * 10, 1);
  CHECK_FALSE(r.lines.seip(0));                // not enabled yet
  w32(*r.plic, kEnable + 0x80 * 1, 1u << 10);  // context 1 = hart 0 S-mode
  CHECK(r.lines.seip(0));
  CHECK_FALSE(r.lines.meip(0));
  w32(*r.plic, kCtx + 0x1000 * 1, 1);  // threshold 1 masks priority 1
  CHECK_FALSE(r.lines.seip(0));
  w32(*r.plic, kCtx + 0x1000 * 1, 0);
  CHECK(r.lines.seip(0));
}

TEST_CASE("plic: claim returns the highest priority source and clears pending; complete re-arms") {
  Rig r;
  w32(*r.plic, 4 * 3, 2);
  w32(*r.plic, 4 * 5, 5);
  w32(*r.plic, kEnable, (1u << 3) | (1u << 5));  // context 0 = hart 0 M-mode
  r.plic->set_source_level(3, true);
  r.plic->set_source_level(5, true);
  CHECK(r.lines.meip(0));
  CHECK(r32(*r.plic, kCtx + 4) == 5);
  CHECK(r32(*r.plic, kCtx + 4) == 3);
  CHECK(r32(*r.plic, kCtx + 4) == 0);  // nothing left
  CHECK_FALSE(r.lines.meip(0));
  // Source 5's line is still high: completion makes it pending again.
  w32(*r.plic, kCtx + 4, 5);
  CHECK(r.lines.meip(0));
  CHECK(r32(*r.plic, kCtx + 4) == 5);
  // Source 3 dropped its line before completion: stays quiet.
  r.plic->set_source_level(3, false);
  w32(*r.plic, kCtx + 4, 3);
  CHECK((r32(*r.plic, 0x1000) & (1u << 3)) == 0);
}

TEST_CASE("plic: completion through another context releases a claimed source (affinity moved)") {
  Rig r;
  w32(*r.plic, 4 * 10, 1);
  w32(*r.plic, kEnable + 0x80 * 1, 1u << 10);  // hart 0 S-mode
  r.plic->set_source_level(10, true);
  CHECK(r32(*r.plic, kCtx + 0x1000 * 1 + 4) == 10);
  // Linux moves the interrupt to hart 1 before hart 0 completes it.
  w32(*r.plic, kEnable + 0x80 * 1, 0);
  w32(*r.plic, kEnable + 0x80 * 3, 1u << 10);
  w32(*r.plic, kCtx + 0x1000 * 1 + 4, 10);  // completed by hart 0's context
  CHECK(r.lines.seip(1));                   // the still-high line is pending again, now on hart 1
  CHECK(r32(*r.plic, kCtx + 0x1000 * 3 + 4) == 10);
}

TEST_CASE("plic: equal priorities claim the lowest source first") {
  Rig r;
  w32(*r.plic, 4 * 7, 1);
  w32(*r.plic, 4 * 2, 1);
  w32(*r.plic, kEnable + 0x80 * 3, (1u << 7) | (1u << 2));  // hart 1 S-mode
  r.plic->set_source_level(7, true);
  r.plic->set_source_level(2, true);
  CHECK(r.lines.seip(1));
  CHECK(r32(*r.plic, kCtx + 0x1000 * 3 + 4) == 2);
}

TEST_CASE("plic: sources above 31 use the next enable word") {
  Rig r;
  w32(*r.plic, 4 * 33, 1);
  w32(*r.plic, kEnable + 4, 1u << 1);
  r.plic->set_source_level(33, true);
  CHECK(r.lines.meip(0));
  CHECK(r32(*r.plic, kCtx + 4) == 33);
}

TEST_CASE("plic: registers read back and source 0 is hardwired") {
  Rig r;
  w32(*r.plic, 0, 7);
  CHECK(r32(*r.plic, 0) == 0);
  w32(*r.plic, 4, 9);
  CHECK(r32(*r.plic, 4) == 1);  // priority is 3 bits
  w32(*r.plic, kEnable, 0xffffffff);
  CHECK(r32(*r.plic, kEnable) == 0xfffffffe);
  w32(*r.plic, kEnable + 8, 0xffffffff);  // sources 64..95
  CHECK(r32(*r.plic, kEnable + 8) == 0xffffffff);
  CHECK(r.plic->source_line(0) == nullptr);
  CHECK(r.plic->source_line(96) == nullptr);
}

TEST_CASE("plic: hostile accesses are ignored") {
  Rig r;
  w32(*r.plic, kCtx + 0x1000 * 4 + 4, 1);  // context 4 does not exist with 2 harts
  CHECK(r32(*r.plic, kCtx + 0x1000 * 4 + 4) == 0);
  uint8_t b = 0xff;
  r.plic->write(1, {&b, 1});
  r.plic->read(0x5ffffc, {&b, 1});
  CHECK(b == 0);
  w32(*r.plic, kCtx + 4, 0xffffffff);  // completing a nonexistent source
  CHECK(r.lines.level.empty());
}

TEST_CASE("plic: saved state loads into a fresh PLIC, which drives its outputs again") {
  Rig a;
  auto line = a.plic->source_line(10);
  w32(*a.plic, 4 * 10, 3);
  w32(*a.plic, 4 * 11, 2);
  w32(*a.plic, kEnable + 0x80 * 1, (1u << 10) | (1u << 11));
  w32(*a.plic, kCtx + 0x1000 * 1, 1);
  line->set_level(true);
  a.plic->source_line(11)->set_level(true);
  CHECK(r32(*a.plic, kCtx + 0x1000 * 1 + 4) == 10);  // claimed: 11 stays pending
  REQUIRE(a.lines.seip(0));
  hw::StateWriter out;
  a.plic->save_state(out);
  const std::vector<uint8_t> saved = out.take();

  Rig b;
  CHECK_FALSE(b.lines.seip(0));
  hw::StateReader in(saved);
  REQUIRE(b.plic->load_state(in, 1).ok());
  CHECK(b.lines.seip(0));  // source 11 pending, enabled, above threshold
  CHECK_FALSE(b.lines.meip(0));
  CHECK(r32(*b.plic, 4 * 10) == 3);
  CHECK(r32(*b.plic, kCtx + 0x1000 * 1) == 1);
  CHECK(r32(*b.plic, kCtx + 0x1000 * 1 + 4) == 11);
  w32(*b.plic, kCtx + 0x1000 * 1 + 4, 10);  // completing 10: its line was high, so pending again
  CHECK(r32(*b.plic, kCtx + 0x1000 * 1 + 4) == 10);

  Rig c;
  hw::StateReader short_in(std::span<const uint8_t>(saved).first(saved.size() - 1));
  CHECK_FALSE(c.plic->load_state(short_in, 1).ok());
  hw::StateReader again(saved);
  CHECK_FALSE(c.plic->load_state(again, 2).ok());  // a version this build does not read
  auto other = std::make_shared<hw::riscv::Plic>(1, 96, c.lines.sink());
  hw::StateReader one_hart(saved);
  CHECK_FALSE(other->load_state(one_hart, 1).ok());  // saved with two harts' contexts
}
