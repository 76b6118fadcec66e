#include "hw/riscv/sifive_test.h"

#include <doctest/doctest.h>

namespace {
void w32(hw::Device& d, uint64_t off, uint32_t v) {
  uint8_t b[4] = {uint8_t(v), uint8_t(v >> 8), uint8_t(v >> 16), uint8_t(v >> 24)};
  d.write(off, b);
}
}  // namespace

TEST_CASE("sifive_test: 0x5555 powers off with status 0") {
  hw::PowerController power;
  hw::riscv::SifiveTest dev(power);
  w32(dev, 0, 0x5555);
  REQUIRE(power.stopping());
  auto outcome = power.wait();
  CHECK(outcome.kind == hw::RunOutcome::Kind::PowerOff);
  CHECK(outcome.exit_code == 0);
}

TEST_CASE("sifive_test: a 16-bit write (OpenSBI's writew) powers off too") {
  hw::PowerController power;
  hw::riscv::SifiveTest dev(power);
  uint8_t pass[2] = {0x55, 0x55};
  dev.write(0, pass);
  REQUIRE(power.stopping());
  CHECK(power.wait().exit_code == 0);
}

TEST_CASE("sifive_test: 0x3333 powers off with the code in the high half") {
  hw::PowerController power;
  hw::riscv::SifiveTest dev(power);
  w32(dev, 0, (42u << 16) | 0x3333);
  auto outcome = power.wait();
  CHECK(outcome.kind == hw::RunOutcome::Kind::PowerOff);
  CHECK(outcome.exit_code == 42);
}

TEST_CASE("sifive_test: 0x7777 resets") {
  hw::PowerController power;
  hw::riscv::SifiveTest dev(power);
  w32(dev, 0, 0x7777);
  CHECK(power.wait().kind == hw::RunOutcome::Kind::Reset);
}

TEST_CASE("sifive_test: other values, offsets and widths do nothing") {
  hw::PowerController power;
  hw::riscv::SifiveTest dev(power);
  w32(dev, 0, 0x1234);
  w32(dev, 4, 0x5555);
  uint8_t byte = 0x55;
  dev.write(0, {&byte, 1});
  CHECK_FALSE(power.stopping());
  uint8_t out[4] = {1, 1, 1, 1};
  dev.read(0, out);
  CHECK(out[0] == 0);
}
