// The ISA programs of isa_test again, with the LLVM tier forced (tier llvm: every block head is
// compiled before it runs, threshold 1): traps from compiled code, paging, PMP, self-modifying
// code and two harts must give the interpreter's verdicts.
#include <doctest/doctest.h>

#include <string>

#include "tests/isa/isa_harness.h"

namespace {

void expect_pass_compiled(const char* name, unsigned harts = 1) {
  const auto result =
      isa::run_image(std::string("tests/isa/") + name + ".bin", harts, 32, 60, {{"tier", "llvm"}});
  INFO(name);
  REQUIRE_MESSAGE(result.error.empty(), result.error);
  REQUIRE_MESSAGE(result.finished, "no tohost write before the time limit");
  CHECK_MESSAGE(result.tohost == 1, "failed test number " << (result.tohost >> 1));
}

}  // namespace

TEST_CASE("isa, tier llvm: RV64I") {
  expect_pass_compiled("rv64i");
}
TEST_CASE("isa, tier llvm: RV64M") {
  expect_pass_compiled("rv64m");
}
TEST_CASE("isa, tier llvm: RV64A") {
  expect_pass_compiled("rv64a");
}
TEST_CASE("isa, tier llvm: RV64C") {
  expect_pass_compiled("rv64c");
}
TEST_CASE("isa, tier llvm: traps, delegation, interrupts, wfi, Sstc") {
  expect_pass_compiled("traps");
}
TEST_CASE("isa, tier llvm: Sv39") {
  expect_pass_compiled("vm_sv39");
}
TEST_CASE("isa, tier llvm: Sv48") {
  expect_pass_compiled("vm_sv48");
}
TEST_CASE("isa, tier llvm: self-modifying code and fence.i") {
  expect_pass_compiled("selfmod");
}
TEST_CASE("isa, tier llvm: FP privileged state") {
  expect_pass_compiled("fp_priv");
}
TEST_CASE("isa, tier llvm: PMP") {
  expect_pass_compiled("pmp");
}
TEST_CASE("isa, tier llvm: two harts, AMOs and LR/SC") {
  expect_pass_compiled("smp", 2);
}
TEST_CASE("isa, tier llvm: debug triggers (armed triggers keep the hart in the interpreter)") {
  expect_pass_compiled("triggers");
}
TEST_CASE("isa, tier llvm: the integer differential program") {
  expect_pass_compiled("int_diff");
}
TEST_CASE("isa, tier llvm: a bad tier setting is an error, not ignored") {
  const auto result = isa::run_image("tests/isa/rv64i.bin", 1, 16, 20, {{"tier", "fast"}});
  CHECK(result.error.find("tier \"fast\" unknown") != std::string::npos);
}
