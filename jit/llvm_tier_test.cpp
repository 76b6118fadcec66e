// The LLVM tier against the interpreter. libLLVM is mapped only once the tier is loaded; compiled
// regions give the interpreter's results on straight-line code called directly, and whole random
// programs (integer, M, C, loads/stores across a page boundary, faults, branches, JAL/JALR) run
// with every block compiled (tier llvm, threshold 1) end in exactly the interpreter's state.
#include <doctest/doctest.h>

#include <chrono>
#include <fstream>
#include <random>
#include <span>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "base/guest_memory.h"
#include "base/timebase.h"
#include "jit/hart.h"
#include "jit/random_program.h"
#include "jit/test_support.h"
#include "jit/tier_loader.h"
#include "jit/tier_manager.h"

namespace {

using jit::testing::kBase;
using jit::testing::NoDevices;
constexpr const char* kTierPath = "jit/libvmlaunch_jit_llvm.so";  // runfiles-relative (data dep)

bool llvm_mapped() {
  std::ifstream maps("/proc/self/maps");
  std::stringstream text;
  text << maps.rdbuf();
  return text.str().find("libLLVM") != std::string::npos;
}

int no_load(void*, uint64_t, void*, uint32_t) {
  return 0;
}
int no_store(void*, uint64_t, const void*, uint32_t) {
  return 0;
}
int no_exec(void*, uint64_t, uint64_t, uint64_t) {
  return 0;
}

// A machine with one hart and RAM only, optionally with the tier.
struct Machine {
  explicit Machine(jit::TierManager* tier) : platform(ops, timebase) {
    auto r = memory.add_region(kBase, jit::testing::RandomProgram::kRamSize);
    REQUIRE(r.ok());
    platform.add_ram(*r);
    hart = std::make_unique<jit::Hart>(platform, 0);
    hart->set_tier(tier);
  }
  void load(const jit::testing::RandomProgram& p) {
    REQUIRE(memory.write(kBase, p.code));
    REQUIRE(memory.write(kBase + p.kHandler, p.handler));
    REQUIRE(memory.write(kBase + p.kData, p.data));
    jit::CpuState s{};
    for (unsigned r = 0; r < 32; ++r) s.x[r] = p.regs[r];
    s.pc = kBase;
    s.priv = jit::Priv::kM;
    s.mstatus = 0xa00000000ull;  // UXL/SXL = 64
    hart->set_state(s);
  }
  base::GuestMemory memory;
  base::Timebase timebase;
  NoDevices ops;
  jit::Platform platform;
  std::unique_ptr<jit::Hart> hart;
};

// A view for calling a region directly: no TLB entries (every access takes the slow path) and an
// empty jump cache (every exit returns).
JitMemView unchained_view() {
  static JitJumpEntry empty[kJitJumpEntries];
  for (JitJumpEntry& e : empty) e = JitJumpEntry{~0ull, ~0ull, nullptr, 0};
  return JitMemView{nullptr, nullptr, 0, 0, empty, 0, 0, 0};
}

}  // namespace

TEST_CASE("llvm tier: loaded on demand; a compiled straight-line region matches the interpreter") {
  CHECK_FALSE(llvm_mapped());  // nothing in this binary links libLLVM
  auto loaded = jit::load_tier(kTierPath);
  REQUIRE_MESSAGE(loaded.ok(), (loaded.ok() ? "" : loaded.error()));
  CHECK(llvm_mapped());
  const JitTierApi& api = (*loaded)->api();
  CHECK(std::string(api.describe()).find("LLVM 19.") == 0);
  char error[256] = {};
  const JitHelpers helpers{no_load, no_store, no_exec};
  void* tier = api.create(&helpers, kJitCompileOptimised, error, sizeof error);
  REQUIRE_MESSAGE(tier, error);

  Machine machine(nullptr);
  std::mt19937 rng(11);
  for (int round = 0; round < 20; ++round) {
    // Straight-line integer and M code (the generator's first kinds), ending in an exit.
    std::vector<uint32_t> words;
    for (int k = 0; k < 30; ++k) {
      const uint32_t rd = 1 + rng() % 27, rs1 = rng() % 32, rs2 = rng() % 32;
      words.push_back(jit::testing::encode::r(0x33, rng() % 8, rng() % 2 ? 1 : 0, rd, rs1, rs2));
    }
    std::vector<JitRegionInsn> insns;
    std::vector<uint8_t> bytes;
    for (size_t k = 0; k < words.size(); ++k) {
      insns.push_back({static_cast<uint32_t>(4 * k), 0, jit::decode(words[k])});
      for (unsigned b = 0; b < 4; ++b) bytes.push_back(static_cast<uint8_t>(words[k] >> (8 * b)));
    }
    REQUIRE(machine.memory.write(kBase, bytes));
    jit::CpuState start{};
    for (unsigned r = 1; r < 32; ++r) start.x[r] = static_cast<uint64_t>(rng()) << 32 | rng();
    start.x[5] = 0;
    start.x[6] = ~0ull;
    start.pc = kBase;
    start.priv = jit::Priv::kM;
    machine.hart->set_state(start);
    machine.hart->step(words.size());
    const jit::CpuState& interpreted = machine.hart->state();

    JitRegionFn fn = api.compile_region(tier, insns.data(), insns.size(), 0, error, sizeof error);
    REQUIRE_MESSAGE(static_cast<bool>(fn), error);
    jit::CpuState compiled = start;
    JitMemView view = unchained_view();
    const JitExit exit = fn(&compiled, nullptr, kBase, 1000, &view, 0);
    CHECK(exit.status == 0);
    CHECK(exit.retired == words.size());
    for (unsigned r = 0; r < 32; ++r) {
      INFO("round " << round << " x" << r);
      CHECK(compiled.x[r] == interpreted.x[r]);
    }
    CHECK(compiled.pc == interpreted.pc);
  }
  // Anything the tier does not translate is refused with a reason, not miscompiled.
  const JitRegionInsn csr{0, 0, jit::decode(0x30002573)};  // csrr a0, mstatus
  CHECK_FALSE(static_cast<bool>(api.compile_region(tier, &csr, 1, 0, error, sizeof error)));
  CHECK(std::string(error).find("csrrs") != std::string::npos);
  CHECK_FALSE(static_cast<bool>(api.compile_region(tier, nullptr, 0, 0, error, sizeof error)));
  api.destroy(tier);
}

TEST_CASE("llvm tier: random programs with every block compiled end in the interpreter's state") {
  jit::TierOptions options;
  options.mode = jit::TierOptions::Mode::kLlvm;
  options.library = kTierPath;
  auto tier = jit::TierManager::create(options);
  REQUIRE_MESSAGE(tier.ok(), (tier.ok() ? "" : tier.error()));
  REQUIRE((*tier)->active());
  uint64_t total = 0, compiled = 0, divergences = 0;
  for (uint32_t seed = 1; seed <= 12; ++seed) {
    const auto program = jit::testing::random_program(kBase, seed, seed % 2 ? 300 : 1500);
    Machine reference(nullptr), subject(tier->get());
    reference.load(program);
    subject.load(program);
    for (int round = 0; round < 10 && divergences == 0; ++round) {
      reference.hart->step(3000);
      subject.hart->step(3000);
      const jit::CpuState& a = reference.hart->state();
      const jit::CpuState& b = subject.hart->state();
      INFO("seed " << seed << " round " << round << " pc " << std::hex << a.pc << " vs " << b.pc);
      for (unsigned r = 1; r < 32; ++r) {
        INFO("x" << std::dec << r);
        CHECK(a.x[r] == b.x[r]);
        divergences += a.x[r] != b.x[r];
      }
      for (unsigned r = 0; r < 32; ++r) {
        INFO("f" << std::dec << r);
        CHECK(a.f[r] == b.f[r]);
        divergences += a.f[r] != b.f[r];
      }
      CHECK(a.fflags == b.fflags);
      CHECK(a.frm == b.frm);
      CHECK(a.mstatus == b.mstatus);
      CHECK(a.resv_valid == b.resv_valid);
      divergences += (a.fflags != b.fflags) + (a.mstatus != b.mstatus) + (a.resv_valid != b.resv_valid);
      CHECK(a.pc == b.pc);
      CHECK(a.instret == b.instret);
      CHECK(a.mcause == b.mcause);
      CHECK(a.mtval == b.mtval);
      CHECK(a.mepc == b.mepc);
      divergences += (a.pc != b.pc) + (a.instret != b.instret) + (a.mepc != b.mepc);
      std::vector<uint8_t> da(8192), db(8192);
      REQUIRE(reference.memory.read(kBase + program.kData, da));
      REQUIRE(subject.memory.read(kBase + program.kData, db));
      CHECK(da == db);
      divergences += da != db;
    }
    total += subject.hart->state().instret;
    compiled += subject.hart->compiled_instructions();
    MESSAGE("seed " << seed << ": " << subject.hart->compiled_instructions() << " of "
                    << subject.hart->state().instret << " in compiled code; pc " << std::hex
                    << subject.hart->state().pc << " mcause " << subject.hart->state().mcause << " mepc "
                    << subject.hart->state().mepc << std::dec);
  }
  CHECK(divergences == 0);
  MESSAGE(total << " instructions compared, " << compiled << " of them in compiled code; "
                << (*tier)->stats().regions_compiled << " regions compiled, "
                << (*tier)->stats().regions_failed << " refused (" << (*tier)->stats().last_failure << ")");
  CHECK(compiled > total / 2);  // the tier really ran most of it, not the interpreter
  // F/D and atomics are compiled (as helper calls), not refused, and regions chain to each other.
  CHECK((*tier)->stats().regions_failed == 0);
  CHECK((*tier)->stats().chains > 0);
}

TEST_CASE("llvm tier: a missing library is an error value naming the path") {
  auto loaded = jit::load_tier("/nonexistent/libvmlaunch_jit_llvm.so");
  REQUIRE_FALSE(loaded.ok());
  CHECK(loaded.error().find("/nonexistent/libvmlaunch_jit_llvm.so") != std::string::npos);
  jit::TierOptions options;
  options.mode = jit::TierOptions::Mode::kLlvm;
  options.library = "/nonexistent/libvmlaunch_jit_llvm.so";
  CHECK_FALSE(jit::TierManager::create(options).ok());
  options.mode = jit::TierOptions::Mode::kAuto;  // auto carries on with the interpreter
  auto fallback = jit::TierManager::create(options);
  REQUIRE(fallback.ok());
  CHECK_FALSE((*fallback)->active());
  CHECK((*fallback)->note().find("/nonexistent") != std::string::npos);
}

TEST_CASE("llvm tier: breakpoints and single steps stop exactly where compiled code would have run") {
  jit::TierOptions options;
  options.mode = jit::TierOptions::Mode::kLlvm;
  options.library = kTierPath;
  auto tier = jit::TierManager::create(options);
  REQUIRE_MESSAGE(tier.ok(), (tier.ok() ? "" : tier.error()));
  Machine m(tier->get());
  // loop: addi t0, t0, 1; addi t1, t1, 2; j loop
  const uint32_t code[] = {0x00128293, 0x00230313, 0xff9ff06f};
  REQUIRE(m.memory.write(kBase, std::span(reinterpret_cast<const uint8_t*>(code), sizeof code)));
  jit::CpuState s{};
  s.pc = kBase;
  s.mstatus = 0xa00000000ull;
  m.hart->set_state(s);
  m.hart->step(30000);
  REQUIRE(m.hart->compiled_instructions() > 0);  // the loop now runs as a compiled region

  m.hart->set_debug(false, {kBase + 4});
  m.hart->run();  // returns at the breakpoint: it never enters the compiled region past it
  auto stop = m.hart->take_debug_stop();
  REQUIRE(stop);
  CHECK(stop->kind == jit::Hart::DebugStop::Kind::kBreakpoint);
  CHECK(stop->pc == kBase + 4);
  CHECK(m.hart->state().pc == kBase + 4);
  CHECK(m.hart->state().x[5] == m.hart->state().x[6] / 2 + 1);  // t0 incremented, t1 not yet

  const uint64_t t1 = m.hart->state().x[6];
  m.hart->set_debug(true, {kBase + 4});  // step off the breakpoint: it does not stop us again
  m.hart->run();
  stop = m.hart->take_debug_stop();
  REQUIRE(stop);
  CHECK(stop->kind == jit::Hart::DebugStop::Kind::kStep);
  CHECK(stop->pc == kBase + 8);
  CHECK(m.hart->state().x[6] == t1 + 2);

  m.hart->set_debug(false, {kBase + 4});  // continue: once around the loop to the breakpoint
  m.hart->run();
  stop = m.hart->take_debug_stop();
  REQUIRE(stop);
  CHECK(stop->pc == kBase + 4);
  CHECK(m.hart->state().x[6] == t1 + 2);

  m.hart->set_debug(false, {});  // debugging off: full speed in compiled code until a kick
  const uint64_t compiled = m.hart->compiled_instructions();
  std::thread kicker([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    m.hart->kick();
  });
  m.hart->run();
  kicker.join();
  CHECK_FALSE(m.hart->take_debug_stop());
  CHECK(m.hart->compiled_instructions() > compiled);
}

TEST_CASE("llvm tier: a batch of regions in one module, a region entered at any of its entries") {
  auto loaded = jit::load_tier(kTierPath);
  REQUIRE_MESSAGE(loaded.ok(), (loaded.ok() ? "" : loaded.error()));
  const JitTierApi& api = (*loaded)->api();
  char error[256] = {};
  const JitHelpers helpers{no_load, no_store, no_exec};
  for (const int quality : {kJitCompileFast, kJitCompileOptimised, kJitCompileHot}) {
    void* tier = api.create(&helpers, quality, error, sizeof error);
    REQUIRE_MESSAGE(tier, error);
    std::mt19937 rng(static_cast<uint32_t>(29 + quality));
    // Two straight-line integer regions of 30 instructions each; the first entered at 3 places.
    std::vector<uint32_t> words[2];
    std::vector<JitRegionInsn> insns[2];
    for (auto& w : words)
      for (int k = 0; k < 30; ++k) {
        const uint32_t rd = 1 + rng() % 27, rs1 = rng() % 32, rs2 = rng() % 32;
        w.push_back(jit::testing::encode::r(0x33, rng() % 8, rng() % 2 ? 1 : 0, rd, rs1, rs2));
      }
    for (int i = 0; i < 2; ++i)
      for (size_t k = 0; k < words[i].size(); ++k)
        insns[i].push_back({static_cast<uint32_t>(4 * k), 0, jit::decode(words[i][k])});
    const uint32_t entries0[] = {0, 40, 100}, entries1[] = {8};
    JitRegionSpec specs[3] = {
        {insns[0].data(), insns[0].size(), entries0, 3, nullptr},
        {insns[1].data(), insns[1].size(), entries1, 1, nullptr},
        {insns[1].data(), insns[1].size(), entries1, 0, nullptr},  // no entry: refused, the rest compiled
    };
    CHECK(api.compile_regions(tier, specs, 3, error, sizeof error) == 2);
    CHECK(std::string(error).find("empty") != std::string::npos);
    const bool built[3] = {specs[0].fn != nullptr, specs[1].fn != nullptr, specs[2].fn != nullptr};
    REQUIRE(built[0]);
    REQUIRE(built[1]);
    CHECK_FALSE(built[2]);
    struct Case {
      int region;
      uint32_t entry_index, offset;
    };
    for (const Case c : {Case{0, 0, 0}, Case{0, 1, 40}, Case{0, 2, 100}, Case{1, 0, 8}}) {
      INFO("quality " << quality << " region " << c.region << " entry " << c.offset);
      Machine machine(nullptr);
      std::vector<uint8_t> bytes;
      for (uint32_t w : words[c.region])
        for (unsigned b = 0; b < 4; ++b) bytes.push_back(static_cast<uint8_t>(w >> (8 * b)));
      REQUIRE(machine.memory.write(kBase, bytes));
      jit::CpuState start{};
      for (unsigned r = 1; r < 32; ++r) start.x[r] = static_cast<uint64_t>(rng()) << 32 | rng();
      start.pc = kBase + c.offset;
      start.priv = jit::Priv::kM;
      machine.hart->set_state(start);
      const uint64_t count = words[c.region].size() - c.offset / 4;
      machine.hart->step(count);
      const jit::CpuState& interpreted = machine.hart->state();
      jit::CpuState compiled = start;
      JitMemView view = unchained_view();
      const JitExit exit = specs[c.region].fn(&compiled, nullptr, kBase, 1000, &view, c.entry_index);
      CHECK(exit.status == kJitExitBranch);
      CHECK(exit.retired == count);
      for (unsigned r = 0; r < 32; ++r) {
        INFO("x" << r);
        CHECK(compiled.x[r] == interpreted.x[r]);
      }
      CHECK(compiled.pc == interpreted.pc);
    }
    api.destroy(tier);
  }
}

TEST_CASE(
    "llvm tier auto: hot regions recompiled with -O1 codegen (tier-up) keep the interpreter's "
    "results") {
  jit::TierOptions options;
  options.mode = jit::TierOptions::Mode::kAuto;
  options.hot_threshold = 2;
  options.tier_up_retired = 3000;  // every region that runs a little is recompiled
  options.library = kTierPath;
  uint64_t divergences = 0, optimised = 0, compiled = 0;
  for (uint32_t seed = 41; seed <= 46; ++seed) {
    auto tier = jit::TierManager::create(options);
    REQUIRE_MESSAGE(tier.ok(), (tier.ok() ? "" : tier.error()));
    const auto program = jit::testing::random_program(kBase, seed, seed % 2 ? 300 : 1500);
    Machine reference(nullptr), subject(tier->get());
    reference.load(program);
    subject.load(program);
    for (int round = 0; round < 60 && divergences == 0; ++round) {
      reference.hart->step(2000);
      subject.hart->step(2000);
      // Let the compile thread catch up: first the fast code, then its tier-ups.
      if (round < 30 && (*tier)->stats().regions_optimised == 0)
        std::this_thread::sleep_for(std::chrono::milliseconds(30));
      const jit::CpuState& a = reference.hart->state();
      const jit::CpuState& b = subject.hart->state();
      INFO("seed " << seed << " round " << round);
      for (unsigned r = 1; r < 32; ++r) divergences += a.x[r] != b.x[r];
      for (unsigned r = 0; r < 32; ++r) divergences += a.f[r] != b.f[r];
      divergences += (a.fflags != b.fflags) + (a.frm != b.frm) + (a.mstatus != b.mstatus) +
                     (a.resv_valid != b.resv_valid);
      divergences += (a.pc != b.pc) + (a.instret != b.instret) + (a.mepc != b.mepc) + (a.mcause != b.mcause) +
                     (a.mtval != b.mtval);
      std::vector<uint8_t> da(8192), db(8192);
      REQUIRE(reference.memory.read(kBase + program.kData, da));
      REQUIRE(subject.memory.read(kBase + program.kData, db));
      divergences += da != db;
      CHECK(divergences == 0);
    }
    compiled += subject.hart->compiled_instructions();
    (*tier)->stop();  // before the hart its results go to goes away
    const jit::TierStats stats = (*tier)->stats();
    MESSAGE("seed " << seed << ": " << subject.hart->compiled_instructions() << " of "
                    << subject.hart->state().instret << " instructions in compiled code; "
                    << stats.regions_compiled << " regions, " << stats.regions_optimised << " optimised");
    optimised += stats.regions_optimised;
    CHECK(stats.regions_failed == 0);
  }
  CHECK(divergences == 0);
  CHECK(compiled > 0);
  CHECK(optimised > 0);  // regions were recompiled and swapped in while the programs ran
}

TEST_CASE(
    "llvm tier auto: background batches (a page's hot heads as one region) keep the interpreter's results") {
  jit::TierOptions options;
  options.mode = jit::TierOptions::Mode::kAuto;
  options.hot_threshold = 2;
  options.library = kTierPath;
  uint64_t divergences = 0, compiled = 0, regions = 0, installed = 0;
  for (uint32_t seed = 21; seed <= 26; ++seed) {
    auto tier = jit::TierManager::create(options);
    REQUIRE_MESSAGE(tier.ok(), (tier.ok() ? "" : tier.error()));
    REQUIRE((*tier)->active());
    const auto program = jit::testing::random_program(kBase, seed, 1500);
    Machine reference(nullptr), subject(tier->get());
    reference.load(program);
    subject.load(program);
    for (int round = 0; round < 40 && divergences == 0; ++round) {
      reference.hart->step(2000);
      subject.hart->step(2000);
      if (round < 20 && subject.hart->compiled_instructions() == 0)  // let the compile thread catch up
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      const jit::CpuState& a = reference.hart->state();
      const jit::CpuState& b = subject.hart->state();
      INFO("seed " << seed << " round " << round);
      for (unsigned r = 1; r < 32; ++r) divergences += a.x[r] != b.x[r];
      divergences += (a.pc != b.pc) + (a.instret != b.instret) + (a.mepc != b.mepc) + (a.mcause != b.mcause);
      std::vector<uint8_t> da(8192), db(8192);
      REQUIRE(reference.memory.read(kBase + program.kData, da));
      REQUIRE(subject.memory.read(kBase + program.kData, db));
      divergences += da != db;
      CHECK(divergences == 0);
    }
    compiled += subject.hart->compiled_instructions();
    (*tier)->stop();  // before the hart its results go to goes away
    const jit::TierStats stats = (*tier)->stats();
    MESSAGE("seed " << seed << ": " << subject.hart->compiled_instructions()
                    << " instructions in compiled code; " << stats.regions_compiled << " regions in "
                    << stats.batches << " modules, " << stats.regions_installed << " entries installed, "
                    << stats.regions_dropped << " requests dropped");
    regions += stats.regions_compiled;
    installed += stats.regions_installed;
  }
  CHECK(divergences == 0);
  CHECK(compiled > 0);
  CHECK(installed > regions);  // regions entered at several block heads
}

TEST_CASE(
    "llvm tier: a code cache far too small for the program flushes and still gives the interpreter's "
    "results") {
  for (const auto mode : {jit::TierOptions::Mode::kLlvm, jit::TierOptions::Mode::kAuto}) {
    jit::TierOptions options;
    options.mode = mode;
    options.hot_threshold = mode == jit::TierOptions::Mode::kAuto ? 2 : 0;
    // A few modules' worth (regions with F/D and AMO calls are larger): tier llvm compiles every
    // block; auto only a handful of hot regions.
    const uint64_t limit = mode == jit::TierOptions::Mode::kAuto ? 512 : 256 << 10;
    options.code_cache_bytes = limit;
    options.library = kTierPath;
    uint64_t divergences = 0, compiled = 0, flushes = 0;
    // Seed 31 under tier llvm compiles ~5800 regions through ~90 flushes (~40 s of CPU): auto only.
    const uint32_t first_seed = mode == jit::TierOptions::Mode::kAuto ? 31 : 32;
    for (uint32_t seed = first_seed; seed <= 34; ++seed) {
      auto tier = jit::TierManager::create(options);
      REQUIRE_MESSAGE(tier.ok(), (tier.ok() ? "" : tier.error()));
      const auto program = jit::testing::random_program(kBase, seed, 1500);
      Machine reference(nullptr), subject(tier->get());
      reference.load(program);
      subject.load(program);
      for (int round = 0; round < 30 && divergences == 0; ++round) {
        reference.hart->step(2000);
        subject.hart->step(2000);
        if (mode == jit::TierOptions::Mode::kAuto && round < 20)  // let background compiles land
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
        const jit::CpuState& a = reference.hart->state();
        const jit::CpuState& b = subject.hart->state();
        INFO("mode " << std::string(jit::mode_name(mode)) << " seed " << seed << " round " << round);
        for (unsigned r = 1; r < 32; ++r) divergences += a.x[r] != b.x[r];
        divergences += (a.pc != b.pc) + (a.instret != b.instret) + (a.mepc != b.mepc);
        std::vector<uint8_t> da(8192), db(8192);
        REQUIRE(reference.memory.read(kBase + program.kData, da));
        REQUIRE(subject.memory.read(kBase + program.kData, db));
        divergences += da != db;
        CHECK(divergences == 0);
      }
      compiled += subject.hart->compiled_instructions();
      (*tier)->stop();
      const jit::TierStats stats = (*tier)->stats();
      flushes += stats.code_cache_flushes;
      CHECK(stats.code_cache_limit == limit);
      MESSAGE(std::string(jit::mode_name(mode))
              << " seed " << seed << ": " << subject.hart->compiled_instructions()
              << " instructions compiled, " << stats.regions_compiled << " regions, "
              << stats.code_cache_flushes << " flushes, " << stats.code_bytes << " bytes of code live");
    }
    CHECK(divergences == 0);
    CHECK(compiled > 0);
    CHECK(flushes > 0);
  }
}
