// The ISA programs with the LLVM tier forced and lockstep on: every compiled region is also run on
// the interpreter from the same state and compared at each exit (jit/lockstep.h). A divergence
// stops the hart and comes back as the vCPU's error; the programs must pass with none, and the
// stats must show that exits were really compared.
#include <doctest/doctest.h>

#include <string>

#include "tests/isa/isa_harness.h"

namespace {

uint64_t json_number(const std::string& json, const std::string& key) {
  const size_t at = json.find("\"" + key + "\": ");
  if (at == std::string::npos) return 0;
  return std::stoull(json.substr(at + key.size() + 4));
}

void expect_pass_lockstep(const char* name, unsigned harts = 1) {
  const auto result = isa::run_image(std::string("tests/isa/") + name + ".bin", harts, 32, 120,
                                     {{"tier", "llvm"}, {"lockstep", "true"}});
  INFO(name);
  REQUIRE_MESSAGE(result.error.empty(), result.error);
  REQUIRE_MESSAGE(result.vcpu_error.empty(), result.vcpu_error);
  REQUIRE_MESSAGE(result.finished, "no tohost write before the time limit");
  CHECK_MESSAGE(result.tohost == 1, "failed test number " << (result.tohost >> 1));
  const uint64_t compared = json_number(result.stats_json, "lockstep_compared");
  const uint64_t device = json_number(result.stats_json, "lockstep_device_exits");
  MESSAGE(std::string(name) << ": " << compared << " region exits compared (" << device
                            << " before a device access); "
                            << json_number(result.stats_json, "compiled_instructions") << " of "
                            << json_number(result.stats_json, "guest_instructions")
                            << " instructions ran in compiled code");
  CHECK(result.stats_json.find("\"lockstep\": true") != std::string::npos);
  CHECK(compared > 0);
}

}  // namespace

TEST_CASE("isa, lockstep: RV64I") {
  expect_pass_lockstep("rv64i");
}
TEST_CASE("isa, lockstep: RV64M") {
  expect_pass_lockstep("rv64m");
}
TEST_CASE("isa, lockstep: RV64A") {
  expect_pass_lockstep("rv64a");
}
TEST_CASE("isa, lockstep: RV64C") {
  expect_pass_lockstep("rv64c");
}
TEST_CASE("isa, lockstep: traps, delegation, interrupts, wfi, Sstc") {
  expect_pass_lockstep("traps");
}
TEST_CASE("isa, lockstep: Sv39") {
  expect_pass_lockstep("vm_sv39");
}
TEST_CASE("isa, lockstep: Sv48") {
  expect_pass_lockstep("vm_sv48");
}
TEST_CASE("isa, lockstep: self-modifying code and fence.i") {
  expect_pass_lockstep("selfmod");
}
TEST_CASE("isa, lockstep: FP privileged state") {
  expect_pass_lockstep("fp_priv");
}
TEST_CASE("isa, lockstep: PMP") {
  expect_pass_lockstep("pmp");
}
TEST_CASE("isa, lockstep: two harts, AMOs and LR/SC (harts take turns)") {
  expect_pass_lockstep("smp", 2);
}
TEST_CASE("isa, lockstep: the integer differential program") {
  expect_pass_lockstep("int_diff");
}
TEST_CASE("isa, lockstep: the FP differential program") {
  expect_pass_lockstep("fp_diff");
}
TEST_CASE("isa, lockstep: needs a compiled tier") {
  const auto result = isa::run_image("tests/isa/rv64i.bin", 1, 16, 20, {{"lockstep", "true"}});
  CHECK(result.error.find("lockstep needs a compiled tier") != std::string::npos);
  const auto bad = isa::run_image("tests/isa/rv64i.bin", 1, 16, 20, {{"tier", "llvm"}, {"lockstep", "yes"}});
  CHECK(bad.error.find("lockstep must be true or false") != std::string::npos);
}
