#include "hw/riscv/htif.h"

#include <doctest/doctest.h>

#include <string>

#include "hw/testing/recording_char.h"

namespace {

void w64(hw::Device& d, uint64_t off, uint64_t v) {
  uint8_t b[8];
  for (int i = 0; i < 8; ++i) b[i] = uint8_t(v >> (8 * i));
  d.write(off, b);
}
uint64_t r64(hw::Device& d, uint64_t off) {
  uint8_t b[8];
  d.read(off, b);
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = v << 8 | b[i];
  return v;
}

struct Rig {
  hw::PowerController power;
  std::shared_ptr<hw::testing::RecordingChar> console = std::make_shared<hw::testing::RecordingChar>();
  base::GuestMemory memory;
  hw::riscv::Htif htif{0x80001000, 0x1000, 0x0, 0x40, power, console, &memory};
  Rig() { REQUIRE(memory.add_region(0x80000000, 0x1000).ok()); }
};

}  // namespace

TEST_CASE("htif: exit command powers off with the test's status") {
  Rig r;
  w64(r.htif, 0, (7 << 1) | 1);
  REQUIRE(r.power.stopping());
  auto outcome = r.power.wait();
  CHECK(outcome.kind == hw::RunOutcome::Kind::PowerOff);
  CHECK(outcome.exit_code == 7);
}

TEST_CASE("htif: tohost 1 means pass") {
  Rig r;
  w64(r.htif, 0, 1);
  CHECK(r.power.wait().exit_code == 0);
}

TEST_CASE("htif: console putchar reaches the console and is acknowledged") {
  Rig r;
  for (char c : std::string("ok\n")) {
    w64(r.htif, 0, (1ull << 56) | (1ull << 48) | uint8_t(c));
    CHECK(r64(r.htif, 0) == 0);
    CHECK(r64(r.htif, 0x40) == ((1ull << 56) | (1ull << 48)));
    w64(r.htif, 0x40, 0);
  }
  CHECK(r.console->output == "ok\n");
  CHECK_FALSE(r.power.stopping());
}

TEST_CASE("htif: rv32 split writes complete on the high word") {
  Rig r;
  uint8_t lo[4] = {(3 << 1) | 1, 0, 0, 0}, hi[4] = {0, 0, 0, 0};
  r.htif.write(0, lo);
  CHECK_FALSE(r.power.stopping());
  r.htif.write(4, hi);
  CHECK(r.power.wait().exit_code == 3);
}

TEST_CASE("htif: SYS_write syscall prints a guest buffer and returns its length") {
  Rig r;
  const char text[] = "hello";
  REQUIRE(r.memory.write(0x80000100, {reinterpret_cast<const uint8_t*>(text), 5}));
  uint64_t args = 0x80000000;
  REQUIRE(r.memory.write_le<uint64_t>(args, 64));
  REQUIRE(r.memory.write_le<uint64_t>(args + 8, 1));
  REQUIRE(r.memory.write_le<uint64_t>(args + 16, 0x80000100));
  REQUIRE(r.memory.write_le<uint64_t>(args + 24, 5));
  w64(r.htif, 0, args);
  CHECK(r.console->output == "hello");
  CHECK(*r.memory.read_le<uint64_t>(args) == 5);
  CHECK(r64(r.htif, 0x40) == 1);
}

TEST_CASE("htif: a syscall with a bad buffer fails without touching the host") {
  Rig r;
  uint64_t args = 0x80000000;
  REQUIRE(r.memory.write_le<uint64_t>(args, 64));
  REQUIRE(r.memory.write_le<uint64_t>(args + 8, 1));
  REQUIRE(r.memory.write_le<uint64_t>(args + 16, 0xdead0000));
  REQUIRE(r.memory.write_le<uint64_t>(args + 24, 1 << 20));
  w64(r.htif, 0, args);
  CHECK(static_cast<int64_t>(*r.memory.read_le<uint64_t>(args)) == -14);
  CHECK(r.console->output.empty());
}

TEST_CASE("htif: the rest of the window behaves as RAM and the loader can fill it") {
  Rig r;
  uint8_t code[4] = {1, 2, 3, 4};
  CHECK(r.htif.load(0x100, code));
  CHECK_FALSE(r.htif.load(0xffe, code));
  uint8_t back[4] = {};
  r.htif.read(0x100, back);
  CHECK(back[3] == 4);
  w64(r.htif, 0x200, 0x1122334455667788ull);
  CHECK(r64(r.htif, 0x200) == 0x1122334455667788ull);
  uint8_t out[8] = {9, 9, 9, 9, 9, 9, 9, 9};
  r.htif.read(0xffc, out);  // straddles the end
  CHECK(out[0] == 0);
  CHECK_FALSE(r.power.stopping());
}
