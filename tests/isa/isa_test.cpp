// Each case runs one assembled test program (tests/isa/*.S) on the jit accelerator and checks the
// verdict it wrote to tohost: 1 = pass, (n << 1) | 1 = its test number n failed.
#include <doctest/doctest.h>

#include "tests/isa/isa_harness.h"

namespace {

void expect_pass(const char* name, unsigned harts = 1) {
  const auto result = isa::run_image(std::string("tests/isa/") + name + ".bin", harts);
  INFO(name);
  REQUIRE(result.error.empty());
  REQUIRE_MESSAGE(result.finished, "no tohost write before the time limit");
  CHECK_MESSAGE(result.tohost == 1, "failed test number " << (result.tohost >> 1));
}

}  // namespace

TEST_CASE("isa: RV64I") {
  expect_pass("rv64i");
}
TEST_CASE("isa: RV64M") {
  expect_pass("rv64m");
}
TEST_CASE("isa: RV64A") {
  expect_pass("rv64a");
}
TEST_CASE("isa: RV64C") {
  expect_pass("rv64c");
}
TEST_CASE("isa: traps, delegation, interrupts, wfi, Sstc") {
  expect_pass("traps");
}

TEST_CASE("isa: the harness reports a failing test's number") {
  const auto result = isa::run_image("tests/isa/selftest_fail.bin");
  REQUIRE(result.finished);
  CHECK(result.tohost == ((7 << 1) | 1));
}
