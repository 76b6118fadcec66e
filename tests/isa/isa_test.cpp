// Each case runs one assembled test program (tests/isa/*.S) on the jit accelerator and checks the
// verdict it wrote to tohost: 1 = pass, (n << 1) | 1 = its test number n failed.
#include <doctest/doctest.h>

#include <cstdio>
#include <cstring>
#include <ios>
#include <string>
#include <vector>

#include "tests/isa/isa_harness.h"
#include "tests/skip.h"

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
TEST_CASE("isa: Sv39 translation, A/D bits, permission faults") {
  expect_pass("vm_sv39");
}
TEST_CASE("isa: self-modifying code and fence.i") {
  expect_pass("selfmod");
}
TEST_CASE("isa: mstatus.FS, fcsr, reserved rounding modes, NaN boxing") {
  expect_pass("fp_priv");
}
TEST_CASE("isa: PMP (NAPOT, NA4, TOR, priority, locking)") {
  expect_pass("pmp");
}
TEST_CASE("isa: Sv48 translation") {
  expect_pass("vm_sv48");
}
TEST_CASE("isa: two harts, AMOs and LR/SC atomic across host threads") {
  expect_pass("smp", 2);
}

TEST_CASE("isa: debug triggers (Sdtrig: mcontrol, mcontrol6, M/S/U, execute, load, store, AMO)") {
  expect_pass("triggers");
}

TEST_CASE("isa: the harness reports a failing test's number") {
  const auto result = isa::run_image("tests/isa/selftest_fail.bin");
  REQUIRE(result.finished);
  CHECK(result.tohost == ((7 << 1) | 1));
}

namespace {

// Runs tests/isa/NAME.bin here and NAME_linux.elf under qemu-riscv64-static and compares the
// result buffers record by record (record = `record_size` bytes).
void compare_with_qemu(const std::string& name, size_t record_size) {
  const auto ours = isa::run_image("tests/isa/" + name + ".bin", 1, 32);
  REQUIRE(ours.error.empty());
  REQUIRE(ours.finished);
  REQUIRE(ours.tohost == 1);
  REQUIRE(ours.dump.size() > 10000);
  FILE* pipe = popen(("qemu-riscv64-static tests/isa/" + name + "_linux.elf 2>/dev/null").c_str(), "r");
  std::vector<uint8_t> theirs;
  if (pipe) {
    uint8_t buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) theirs.insert(theirs.end(), buf, buf + n);
    pclose(pipe);
  }
  if (theirs.empty()) VML_SKIP("qemu-riscv64-static not installed (tools/packages.txt: qemu-user-static)");
  REQUIRE(theirs.size() == ours.dump.size());
  size_t mismatches = 0;
  for (size_t record = 0; record * record_size < theirs.size(); ++record) {
    if (std::memcmp(&theirs[record * record_size], &ours.dump[record * record_size], record_size) == 0)
      continue;
    if (++mismatches <= 10) {
      uint64_t t[3] = {}, o[3] = {};
      std::memcpy(t, &theirs[record * record_size], record_size);
      std::memcpy(o, &ours.dump[record * record_size], record_size);
      MESSAGE("record " << record << ": qemu " << std::hex << t[0] << " " << t[1] << " " << t[2] << " | ours "
                        << o[0] << " " << o[1] << " " << o[2]);
    }
  }
  CHECK(mismatches == 0);
}

}  // namespace

// F/D against QEMU's softfloat: raw results and fflags for every (instruction, rounding mode,
// operands) run.
TEST_CASE("isa: F/D results and fflags match qemu-riscv64 bit for bit") {
  compare_with_qemu("fp_diff", 24);
}

// RV64IM register-register instructions and all AMOs over edge-case operands.
TEST_CASE("isa: integer and AMO results match qemu-riscv64") {
  compare_with_qemu("int_diff", 16);
}
