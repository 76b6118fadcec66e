// The front door: park/resume within bounded time with state intact, state get/set, DMA-style
// invalidation, halt, and index checks.
#include "jit/engine.h"

#include <doctest/doctest.h>

#include <chrono>
#include <optional>
#include <thread>

#include "jit/test_support.h"

namespace {

using jit::testing::kBase;
using jit::testing::NoDevices;
constexpr uint32_t kAddiT0T0One = 0x00128293;  // addi t0, t0, 1
constexpr uint32_t kJumpBack4 = 0xffdff06f;    // j -4

struct Machine {
  base::GuestMemory memory;
  base::Timebase timebase;
  NoDevices ops;
  std::unique_ptr<jit::Engine> engine;

  explicit Machine(std::initializer_list<uint32_t> code, unsigned harts = 1) {
    auto region = memory.add_region(kBase, 0x10000);
    REQUIRE(region.ok());
    uint64_t at = kBase;
    for (uint32_t word : code) {
      REQUIRE(memory.write_le<uint32_t>(at, word));
      at += 4;
    }
    engine = std::make_unique<jit::Engine>(ops, timebase, harts, jit::CpuConfig{});
    engine->add_ram(*region);
    for (unsigned i = 0; i < harts; ++i) REQUIRE(engine->reset(i, kBase, i, 0, 0));
  }
};

}  // namespace

TEST_CASE("engine: a hart in a tight loop parks within bounded time, keeps its state, and resumes") {
  Machine m({kAddiT0T0One, kJumpBack4});
  REQUIRE(m.engine->step(0, 1001));  // so the state has visibly moved even if the thread starts late
  std::thread vcpu([&] { m.engine->run(0); });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));

  const auto start = std::chrono::steady_clock::now();
  REQUIRE(m.engine->park(std::chrono::seconds(2)));
  const auto took = std::chrono::steady_clock::now() - start;
  // A chunk is 8192 instructions: microseconds. 500 ms leaves room for a loaded 2-core host.
  CHECK(took < std::chrono::milliseconds(500));

  const auto parked = m.engine->state(0);
  REQUIRE(parked);
  CHECK(parked->x[5] > 0);
  CHECK((parked->pc == kBase || parked->pc == kBase + 4));
  CHECK(parked->priv == jit::Priv::kM);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const auto still = m.engine->state(0);
  CHECK(still->x[5] == parked->x[5]);  // parked means no guest instruction runs
  CHECK(still->instret == parked->instret);

  // State written while parked is what the hart continues from.
  jit::CpuState edited = *still;
  edited.x[6] = 0x1234;
  REQUIRE(m.engine->set_state(0, edited));
  // On a loaded host the woken thread may not get a CPU before the next park: retry for a while.
  std::optional<jit::CpuState> later;
  for (int attempt = 0; attempt < 100; ++attempt) {
    m.engine->resume();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    REQUIRE(m.engine->park(std::chrono::seconds(2)));
    later = m.engine->state(0);
    if (later->instret > still->instret) break;
  }
  CHECK(later->x[5] > still->x[5]);
  CHECK(later->instret > still->instret);
  CHECK(later->x[6] == 0x1234);

  m.engine->resume();
  m.engine->halt();
  vcpu.join();
  CHECK(m.engine->halted());
}

TEST_CASE("engine: park covers harts not yet running; they park on entering run()") {
  Machine m({kAddiT0T0One, kJumpBack4}, 2);
  REQUIRE(m.engine->park(std::chrono::milliseconds(100)));  // nobody runs: parked at once
  std::thread vcpu([&] { m.engine->run(1); });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  CHECK(m.engine->state(1)->instret == 0);  // entered run() but parked before executing
  m.engine->resume();
  // Halt only once the released hart has run (it may wait for a CPU on a loaded host).
  std::optional<jit::CpuState> after;
  for (int attempt = 0; attempt < 100; ++attempt) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    REQUIRE(m.engine->park(std::chrono::seconds(2)));
    after = m.engine->state(1);
    if (after->instret > 0) break;
    m.engine->resume();
  }
  m.engine->halt();
  vcpu.join();
  CHECK(m.engine->state(1)->instret > 0);
  CHECK(m.engine->state(0)->instret == 0);
}

TEST_CASE("engine: invalidate_range makes harts see code a device wrote") {
  Machine m({0x00100513, kJumpBack4});  // addi a0, zero, 1; j -4
  REQUIRE(m.engine->step(0, 100));
  CHECK(m.engine->state(0)->x[10] == 1);
  // A "DMA" write behind the hart's back: the decoded copy is still used (as the ISA allows
  // without fence.i) until the engine is told.
  REQUIRE(m.memory.write_le<uint32_t>(kBase, 0x00200513));  // addi a0, zero, 2
  REQUIRE(m.engine->step(0, 100));
  CHECK(m.engine->state(0)->x[10] == 1);
  m.engine->invalidate_range(kBase, 4);
  REQUIRE(m.engine->step(0, 100));
  CHECK(m.engine->state(0)->x[10] == 2);
  // Hostile lengths neither overflow nor hang.
  m.engine->invalidate_range(~0ull - 2, ~0ull);
  m.engine->invalidate_range(0, ~0ull);
  REQUIRE(m.engine->step(0, 100));
  CHECK(m.engine->state(0)->x[10] == 2);
}

TEST_CASE("engine: a hart sleeping in wfi parks at once and sleeps again after resume") {
  Machine m({0x10500073, kJumpBack4});  // wfi; j -4 (no interrupt enabled: sleeps in rounds)
  std::thread vcpu([&] { m.engine->run(0); });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const auto start = std::chrono::steady_clock::now();
  REQUIRE(m.engine->park(std::chrono::seconds(2)));
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::milliseconds(500));
  const auto parked = m.engine->state(0);
  CHECK((parked->pc == kBase || parked->pc == kBase + 4));
  m.engine->resume();
  m.engine->halt();
  vcpu.join();
}

TEST_CASE("engine: halt releases a parked hart without running it further") {
  Machine m({kAddiT0T0One, kJumpBack4});
  std::thread vcpu([&] { m.engine->run(0); });
  std::this_thread::sleep_for(std::chrono::milliseconds(10));
  REQUIRE(m.engine->park(std::chrono::seconds(2)));
  const uint64_t at_park = m.engine->state(0)->instret;
  m.engine->halt();
  vcpu.join();
  CHECK(m.engine->state(0)->instret == at_park);
}

TEST_CASE("engine: hart indexes are checked; halt makes run() return at once") {
  Machine m({kAddiT0T0One, kJumpBack4});
  CHECK_FALSE(m.engine->reset(1, kBase, 0, 0, 0));
  CHECK_FALSE(m.engine->run(7));
  CHECK_FALSE(m.engine->step(1, 10));
  CHECK_FALSE(m.engine->kick(1));
  CHECK_FALSE(m.engine->set_irq(1, 7, true));
  CHECK_FALSE(m.engine->set_irq(0, 64, true));
  CHECK_FALSE(m.engine->state(1).has_value());
  CHECK_FALSE(m.engine->set_state(1, jit::CpuState{}));
  m.engine->halt();
  CHECK(m.engine->run(0));  // returns: halted
  CHECK(m.engine->state(0)->instret == 0);
}

TEST_CASE("engine: debug control stops run() at a breakpoint and after a step; translate walks Sv39") {
  constexpr uint32_t kAddiT1T1Two = 0x00230313;  // addi t1, t1, 2
  Machine m({kAddiT0T0One, kAddiT1T1Two, 0xff9ff06f /* j -8 */});
  REQUIRE(m.engine->set_debug(0, false, {kBase + 4}));
  REQUIRE(m.engine->run(0));
  auto stop = m.engine->debug_stop(0);
  REQUIRE(stop);
  CHECK(stop->kind == jit::Engine::DebugStop::Kind::kBreakpoint);
  CHECK(stop->pc == kBase + 4);
  CHECK(m.engine->state(0)->x[5] == 1);
  CHECK(m.engine->state(0)->x[6] == 0);
  CHECK_FALSE(m.engine->debug_stop(0));  // taken once

  REQUIRE(m.engine->set_debug(0, true, {}));
  REQUIRE(m.engine->run(0));
  stop = m.engine->debug_stop(0);
  REQUIRE(stop);
  CHECK(stop->kind == jit::Engine::DebugStop::Kind::kStep);
  CHECK(stop->pc == kBase + 8);
  CHECK(m.engine->state(0)->x[6] == 2);
  CHECK_FALSE(m.engine->set_debug(7, true, {}));

  // M-mode sees physical addresses; S-mode with satp = Sv39 walks the tables (here: one 1 GiB
  // page mapping the kernel-style address 0xffffffc000000000 onto RAM), without touching A/D.
  CHECK(m.engine->debug_translate(0, 0x1234) == 0x1234);
  const uint64_t root = kBase + 0x8000;
  const uint64_t pte = ((kBase >> 12) << 10) | 0xf;  // V R W X, A and D clear
  REQUIRE(m.memory.write_le<uint64_t>(root + 0x100 * 8, pte));
  jit::CpuState s = *m.engine->state(0);
  s.priv = jit::Priv::kS;
  s.satp = (8ull << 60) | (root >> 12);
  REQUIRE(m.engine->set_state(0, s));
  CHECK(m.engine->debug_translate(0, 0xffffffc000001234ull) == kBase + 0x1234);
  CHECK(m.memory.read_le<uint64_t>(root + 0x100 * 8) == pte);        // no A/D written
  CHECK_FALSE(m.engine->debug_translate(0, 0xffffffc040000000ull));  // the next gigabyte: unmapped
  CHECK_FALSE(m.engine->debug_translate(0, 0x0000800000000000ull));  // not canonical
}

TEST_CASE("engine: a watchpoint stops the hart before the store or load that touches it") {
  constexpr uint32_t kAuipcT1 = 0x00000317;  // auipc t1, 0
  constexpr uint32_t kSdT0 = 0x40533023;     // sd t0, 0x400(t1)
  constexpr uint32_t kLdT2 = 0x40033383;     // ld t2, 0x400(t1)
  Machine m({kAuipcT1, kAddiT0T0One, kSdT0, kLdT2, 0x0000006f /* j . */});
  REQUIRE(m.memory.write_le<uint64_t>(kBase + 0x400, 0));
  REQUIRE(m.engine->set_debug(0, false, {}, {{kBase + 0x404, 2, false, true}}));  // write, overlapping
  REQUIRE(m.engine->run(0));
  auto stop = m.engine->debug_stop(0);
  REQUIRE(stop);
  CHECK(stop->kind == jit::Engine::DebugStop::Kind::kWatch);
  CHECK(stop->write);
  CHECK(stop->data_addr == kBase + 0x404);
  CHECK(stop->pc == kBase + 8);                           // at the sd (gdb steps over it)
  CHECK(m.memory.read_le<uint64_t>(kBase + 0x400) == 0);  // the store has not happened
  CHECK(m.engine->state(0)->instret == 2);                // nor retired

  // Resuming with the watch still set: the instruction at the pc runs without it stopping it.
  REQUIRE(
      m.engine->set_debug(0, false, {}, {{kBase + 0x404, 2, false, true}, {kBase + 0x400, 8, true, false}}));
  REQUIRE(m.engine->run(0));
  stop = m.engine->debug_stop(0);
  REQUIRE(stop);
  CHECK(m.memory.read_le<uint64_t>(kBase + 0x400) == 1);  // the store happened
  CHECK(stop->kind == jit::Engine::DebugStop::Kind::kWatch);
  CHECK_FALSE(stop->write);
  CHECK(stop->data_addr == kBase + 0x400);
  CHECK(stop->pc == kBase + 12);
  CHECK(m.engine->state(0)->x[7] == 0);                                          // the load has not happened
  REQUIRE(m.engine->set_debug(0, true, {}, {{kBase + 0x400, 8, true, false}}));  // step over it
  REQUIRE(m.engine->run(0));
  stop = m.engine->debug_stop(0);
  REQUIRE(stop);
  CHECK(stop->kind == jit::Engine::DebugStop::Kind::kStep);
  CHECK(stop->pc == kBase + 16);
  CHECK(m.engine->state(0)->x[7] == 1);
}

TEST_CASE("engine: a debugger's triggers (dmode, action 1) stop the hart before the instruction or access") {
  constexpr uint32_t kAuipcT1 = 0x00000317;          // auipc t1, 0
  constexpr uint32_t kSdT0 = 0x40533023;             // sd t0, 0x400(t1)
  constexpr uint32_t kLdT2 = 0x40033383;             // ld t2, 0x400(t1)
  constexpr uint32_t kCsrwTselectZero = 0x7a001073;  // csrw tselect, zero
  constexpr uint32_t kCsrwTdata1Zero = 0x7a101073;   // csrw tdata1, zero
  constexpr uint32_t kCsrrT3Tdata1 = 0x7a102e73;     // csrr t3, tdata1
  Machine m({kAuipcT1, kAddiT0T0One, kSdT0, kLdT2, kCsrwTselectZero, kCsrwTdata1Zero, kCsrrT3Tdata1,
             0x0000006f /* j . */});
  REQUIRE(m.memory.write_le<uint64_t>(kBase + 0x400, 0));
  constexpr uint64_t kDmode = 1ull << 59, kAction1 = 1ull << 12, kM = 1 << 6;
  const uint64_t exec = (2ull << 60) | kDmode | kAction1 | kM | 4;  // mcontrol, execute
  const uint64_t load = (6ull << 60) | kDmode | kAction1 | kM | 1;  // mcontrol6, load
  jit::CpuState s = *m.engine->state(0);
  s.tdata1[0] = exec;
  s.tdata2[0] = kBase + 8;
  s.tdata1[1] = load;
  s.tdata2[1] = kBase + 0x400;
  REQUIRE(m.engine->set_state(0, s));
  CHECK(m.engine->state(0)->tdata1[1] == load);  // a debugger may set dmode and action 1
  const uint64_t exec_read = m.engine->state(0)->tdata1[0];
  CHECK((exec_read & ~(63ull << 53)) == exec);  // (plus maskmax, read-only)

  REQUIRE(m.engine->run(0));
  auto stop = m.engine->debug_stop(0);
  REQUIRE(stop);
  CHECK(stop->kind == jit::Engine::DebugStop::Kind::kBreakpoint);
  CHECK(stop->pc == kBase + 8);
  CHECK(m.engine->state(0)->pc == kBase + 8);
  CHECK(m.engine->state(0)->instret == 2);  // the sd did not run
  CHECK(m.engine->state(0)->mcause == 0);   // no trap: the debugger's stop
  CHECK(m.memory.read_le<uint64_t>(kBase + 0x400) == 0);

  REQUIRE(m.engine->run(0));  // from the stop, the sd runs; the load trigger stops before the ld
  stop = m.engine->debug_stop(0);
  REQUIRE(stop);
  CHECK(stop->kind == jit::Engine::DebugStop::Kind::kWatch);
  CHECK_FALSE(stop->write);
  CHECK(stop->data_addr == kBase + 0x400);
  CHECK(stop->pc == kBase + 12);
  CHECK(m.memory.read_le<uint64_t>(kBase + 0x400) == 1);
  CHECK(m.engine->state(0)->x[7] == 0);  // the load did not happen
  CHECK(m.engine->state(0)->instret == 3);

  // On: the ld, then M-mode's write of 0 to the debugger's trigger, which is ignored.
  REQUIRE(m.engine->step(0, 4));
  CHECK(m.engine->state(0)->x[7] == 1);
  CHECK(m.engine->state(0)->x[28] == exec_read);
  CHECK(m.engine->state(0)->tdata1[0] == exec_read);

  // What set_state legalises: type 0 disables (type 15), action 1 needs dmode, tselect in range.
  s = *m.engine->state(0);
  s.tdata1[0] = 0;
  s.tdata1[1] = (6ull << 60) | kAction1 | kM | 4;
  s.tselect = 9;
  REQUIRE(m.engine->set_state(0, s));
  CHECK(m.engine->state(0)->tdata1[0] == 15ull << 60);
  CHECK(m.engine->state(0)->tdata1[1] == ((6ull << 60) | kM | 4));
  CHECK(m.engine->state(0)->tselect == 0);
}
