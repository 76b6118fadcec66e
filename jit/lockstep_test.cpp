// Lockstep mode (jit/lockstep.h): every compiled region checked against the interpreter at its
// exit. It must catch a wrong compiled result (a test hook corrupts what the region computed) and
// name the instruction, and find no difference on the random programs of jit/random_program.h
// (integer, M, A, F/D in every rounding mode, C, loads/stores across a page boundary, faults),
// run in M mode without translation and in S mode under Sv39 (data accesses through the TLB,
// page faults).
#include <doctest/doctest.h>

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/guest_memory.h"
#include "base/timebase.h"
#include "jit/hart.h"
#include "jit/random_program.h"
#include "jit/test_support.h"
#include "jit/tier_manager.h"

namespace {

using jit::testing::kBase;
using jit::testing::RandomProgram;
constexpr const char* kTierPath = "jit/libvmlaunch_jit_llvm.so";  // runfiles-relative (data dep)

std::unique_ptr<jit::TierManager> llvm_tier() {
  jit::TierOptions options;
  options.mode = jit::TierOptions::Mode::kLlvm;
  options.library = kTierPath;
  auto tier = jit::TierManager::create(options);
  REQUIRE_MESSAGE(tier.ok(), (tier.ok() ? "" : tier.error()));
  return std::move(*tier);
}

// One device register at kDevice: counts the writes and keeps the last value.
constexpr uint64_t kDevice = 0x10000000;
class CountingDevice final : public accel::VmOps {
 public:
  bool mmio_read(uint64_t, std::span<uint8_t>) override { return false; }
  bool mmio_write(uint64_t addr, std::span<const uint8_t> data) override {
    if (addr != kDevice || data.size() != 4) return false;
    ++writes;
    last = static_cast<uint32_t>(data[0] | data[1] << 8 | data[2] << 16 | data[3] << 24);
    return true;
  }
  bool pio_read(uint16_t, std::span<uint8_t>) override { return false; }
  bool pio_write(uint16_t, std::span<const uint8_t>) override { return false; }
  uint64_t writes = 0;
  uint32_t last = 0;
};

struct Machine {
  explicit Machine(jit::TierManager* tier) : platform(ops, timebase) {
    auto r = memory.add_region(kBase, RandomProgram::kRamSize);
    REQUIRE(r.ok());
    platform.add_ram(*r);
    hart = std::make_unique<jit::Hart>(platform, 0);
    hart->set_tier(tier);
    hart->set_lockstep(true);
  }
  void write(uint64_t pa, std::span<const uint32_t> words) {
    REQUIRE(memory.write(pa, std::span(reinterpret_cast<const uint8_t*>(words.data()), words.size_bytes())));
  }
  base::GuestMemory memory;
  base::Timebase timebase;
  CountingDevice ops;
  jit::Platform platform;
  std::unique_ptr<jit::Hart> hart;
};

// loop: addi t0, t0, 1; addi t1, t1, 2; add t2, t0, t1; sd t2, 0(s0); j loop
constexpr uint32_t kLoop[] = {0x00128293, 0x00230313, 0x006283b3, 0x00743023, 0xff1ff06f};

void start_loop(Machine& m) {
  m.write(kBase, kLoop);
  jit::CpuState s{};
  s.pc = kBase;
  s.mstatus = 0xa00000000ull;
  s.x[8] = kBase + 0x1000;  // s0: where the loop stores
  m.hart->set_state(s);
}

}  // namespace

TEST_CASE("lockstep: a compiled loop agrees with the interpreter at every exit") {
  auto tier = llvm_tier();
  Machine m(tier.get());
  start_loop(m);
  m.hart->step(100000);
  const jit::Lockstep* lockstep = m.hart->lockstep();
  REQUIRE(lockstep);
  CHECK_MESSAGE(lockstep->failure().empty(), lockstep->failure());
  CHECK(m.hart->compiled_instructions() > 90000);
  CHECK(lockstep->compared() > 0);
  CHECK(lockstep->device_exits() == 0);
  CHECK(m.hart->state().instret == 100000);
  CHECK(m.hart->state().x[7] == m.hart->state().x[5] + m.hart->state().x[6]);
  uint64_t stored = 0;
  REQUIRE(m.memory.read(kBase + 0x1000, std::span(reinterpret_cast<uint8_t*>(&stored), 8)));
  CHECK(stored == m.hart->state().x[7]);  // the stores were undone and made again, not lost
}

TEST_CASE("lockstep: a wrong register from compiled code is caught and the instruction named") {
  auto tier = llvm_tier();
  Machine m(tier.get());
  start_loop(m);
  m.hart->lockstep()->corrupt_for_test = [](jit::CpuState* s, std::vector<jit::Lockstep::Store>*, uint64_t) {
    s->x[7] ^= 0x10;  // as if the region computed `add t2` wrong
  };
  m.hart->step(100000);
  const std::string report = m.hart->lockstep()->failure();
  INFO(report);
  CHECK(report.find("entered at pc 0x80000000") != std::string::npos);
  CHECK(report.find("x7 (t2)") != std::string::npos);
  CHECK(report.find("0x80000008: 006283b3 (add)") != std::string::npos);
  CHECK(m.hart->state().instret < 100000);  // the hart stopped at the first divergence
  CHECK(m.hart->lockstep()->compared() == 0);
}

TEST_CASE("lockstep: a wrong store and a wrong pc from compiled code are caught") {
  auto tier = llvm_tier();
  {
    Machine m(tier.get());
    start_loop(m);
    m.hart->lockstep()->corrupt_for_test = [](jit::CpuState*, std::vector<jit::Lockstep::Store>* stores,
                                              uint64_t) {
      if (!stores->empty()) stores->front().after[0] ^= 1;  // the region stored another value
    };
    m.hart->step(100000);
    const std::string report = m.hart->lockstep()->failure();
    INFO(report);
    CHECK(report.find("store 1: compiled 8 bytes at pa 0x80001000") != std::string::npos);
    CHECK(report.find("0x8000000c: 00743023 (sd)") != std::string::npos);
  }
  {
    Machine m(tier.get());
    start_loop(m);
    m.hart->lockstep()->corrupt_for_test = [](jit::CpuState* s, std::vector<jit::Lockstep::Store>*,
                                              uint64_t) { s->pc += 4; };
    m.hart->step(100000);
    const std::string report = m.hart->lockstep()->failure();
    INFO(report);
    CHECK(report.find("pc compiled") != std::string::npos);
    CHECK(report.find("the last instruction: 0x80000010") != std::string::npos);
  }
}

TEST_CASE("lockstep: compiled code stops before a device access; the device sees each write once") {
  auto tier = llvm_tier();
  Machine m(tier.get());
  // loop: addi t0, t0, 1; sw t0, 0(s1); j loop
  const uint32_t code[] = {0x00128293, jit::testing::encode::s(2, 0, 9, 5), jit::testing::encode::j(-8, 0)};
  m.write(kBase, code);
  jit::CpuState s{};
  s.pc = kBase;
  s.mstatus = 0xa00000000ull;
  s.x[9] = kDevice;
  m.hart->set_state(s);
  m.hart->step(30000);
  const jit::Lockstep* lockstep = m.hart->lockstep();
  CHECK_MESSAGE(lockstep->failure().empty(), lockstep->failure());
  CHECK(m.hart->compiled_instructions() > 0);
  CHECK(lockstep->device_exits() > 0);
  CHECK(lockstep->compared() >= lockstep->device_exits());
  const uint64_t t0 = m.hart->state().x[5];
  CHECK(m.ops.writes >= t0 - 1);  // every sw reached the device, and only once
  CHECK(m.ops.writes <= t0);
  CHECK(m.ops.last == m.ops.writes);
}

namespace {

// Runs `program` with lockstep under tier llvm; in S mode under Sv39 when `paged` (an identity
// gigapage over RAM; x29's address is unmapped, so its accesses page-fault). Returns exits compared.
uint64_t run_random(jit::TierManager* tier, const RandomProgram& program, uint32_t seed, bool paged,
                    uint64_t instructions) {
  Machine m(tier);
  REQUIRE(m.memory.write(kBase, program.code));
  REQUIRE(m.memory.write(kBase + program.kHandler, program.handler));
  REQUIRE(m.memory.write(kBase + program.kData, program.data));
  jit::CpuState s{};
  for (unsigned r = 0; r < 32; ++r) s.x[r] = program.regs[r];
  s.pc = kBase;
  s.priv = jit::Priv::kM;
  s.mstatus = 0xa00000000ull;  // UXL/SXL = 64
  if (paged) {
    // What the program's M-mode prologue (9 instructions) would set, then its body in S mode.
    constexpr uint64_t kRoot = RandomProgram::kRamSize - 0x1000;
    const uint64_t pte = ((kBase >> 12) << 10) | 0xcf;  // V R W X A D, 1 GiB at VA = PA
    REQUIRE(m.memory.write(kBase + kRoot + 2 * 8, std::span(reinterpret_cast<const uint8_t*>(&pte), 8)));
    REQUIRE(program.code.size() > 36);
    CHECK((program.code[32] & 0x7f) == 0x73);  // the prologue's last instruction: csrwi frm
    s.pc = kBase + 36;
    s.priv = jit::Priv::kS;
    s.mstatus |= 0x6000 | (1ull << 11);  // FS dirty; MPP = S, so the handler's mret returns to S
    s.frm = seed % 5;
    s.mtvec = kBase + program.kHandler;
    s.satp = (8ull << 60) | ((kBase + kRoot) >> 12);
  }
  m.hart->set_state(s);
  m.hart->step(instructions);
  const jit::Lockstep* lockstep = m.hart->lockstep();
  INFO("seed " << seed << (paged ? " (Sv39)" : ""));
  CHECK_MESSAGE(lockstep->failure().empty(), lockstep->failure());
  CHECK(m.hart->state().instret == instructions);
  CHECK(m.hart->compiled_instructions() > instructions / 2);
  if (paged) CHECK(m.hart->state().satp != 0);
  MESSAGE("seed " << seed << (paged ? " (Sv39)" : "") << ": " << lockstep->compared() << " exits compared, "
                  << lockstep->device_exits() << " before a device access");
  return lockstep->compared();
}

}  // namespace

TEST_CASE("lockstep: random programs, no translation and Sv39, 0 divergences") {
  auto tier = llvm_tier();
  uint64_t compared = 0;
  for (uint32_t seed = 1; seed <= 12; ++seed) {
    const auto program = jit::testing::random_program(kBase, seed, seed % 2 ? 300 : 1500);
    compared += run_random(tier.get(), program, seed, false, 30000);
    compared += run_random(tier.get(), program, seed, true, 30000);
  }
  MESSAGE(compared << " region exits compared with the interpreter");
  CHECK(compared > 1000);
  CHECK(tier->stats().regions_failed == 0);
}
