// The LLVM tier skeleton in lockstep with the interpreter: random straight-line integer blocks are
// run by both from the same state; every register, pc and instret must agree. Also: libLLVM is
// mapped only once the tier is loaded.
#include <doctest/doctest.h>

#include <chrono>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "jit/hart.h"
#include "jit/test_support.h"
#include "jit/tier_loader.h"

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

uint32_t r_type(uint32_t opcode, uint32_t f3, uint32_t f7, uint32_t rd, uint32_t rs1, uint32_t rs2) {
  return (f7 << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | opcode;
}
uint32_t i_type(uint32_t opcode, uint32_t f3, uint32_t imm12, uint32_t rd, uint32_t rs1) {
  return ((imm12 & 0xfff) << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | opcode;
}

// One random instruction of the skeleton's subset (rd may be x0).
uint32_t random_integer_op(std::mt19937& rng) {
  auto reg = [&] { return static_cast<uint32_t>(rng() % 32); };
  const uint32_t rd = reg(), rs1 = reg(), rs2 = reg();
  const uint32_t imm = rng() & 0xfff, shamt6 = rng() % 64, shamt5 = rng() % 32;
  switch (rng() % 8) {
    case 0: {  // OP: add sub sll slt sltu xor srl sra or and mul
      static constexpr uint32_t kF3F7[][2] = {{0, 0}, {0, 0x20}, {1, 0}, {2, 0}, {3, 0}, {4, 0},
                                              {5, 0}, {5, 0x20}, {6, 0}, {7, 0}, {0, 1}};
      const auto& f = kF3F7[rng() % 11];
      return r_type(0x33, f[0], f[1], rd, rs1, rs2);
    }
    case 1: {  // OP-IMM without shifts: addi slti sltiu xori ori andi
      static constexpr uint32_t kF3[] = {0, 2, 3, 4, 6, 7};
      return i_type(0x13, kF3[rng() % 6], imm, rd, rs1);
    }
    case 2: {  // slli srli srai
      static constexpr uint32_t kForms[][2] = {{1, 0}, {5, 0}, {5, 0x400}};
      const auto& f = kForms[rng() % 3];
      return i_type(0x13, f[0], f[1] | shamt6, rd, rs1);
    }
    case 3:  // addiw
      return i_type(0x1b, 0, imm, rd, rs1);
    case 4: {  // slliw srliw sraiw
      static constexpr uint32_t kForms[][2] = {{1, 0}, {5, 0}, {5, 0x400}};
      const auto& f = kForms[rng() % 3];
      return i_type(0x1b, f[0], f[1] | shamt5, rd, rs1);
    }
    case 5: {  // OP-32: addw subw sllw srlw sraw mulw
      static constexpr uint32_t kF3F7[][2] = {{0, 0}, {0, 0x20}, {1, 0}, {5, 0}, {5, 0x20}, {0, 1}};
      const auto& f = kF3F7[rng() % 6];
      return r_type(0x3b, f[0], f[1], rd, rs1, rs2);
    }
    case 6:  // lui
      return (rng() & 0xfffff000u) | (rd << 7) | 0x37;
    default:  // auipc
      return (rng() & 0xfffff000u) | (rd << 7) | 0x17;
  }
}

}  // namespace

TEST_CASE("llvm tier: loaded on demand; compiled blocks match the interpreter in lockstep") {
  CHECK_FALSE(llvm_mapped());  // nothing in this binary links libLLVM
  auto loaded = jit::load_tier(kTierPath);
  REQUIRE_MESSAGE(loaded.ok(), (loaded.ok() ? "" : loaded.error()));
  CHECK(llvm_mapped());
  const JitTierApi& api = (*loaded)->api();
  CHECK(std::string(api.describe()).find("LLVM 19.") == 0);
  char error[256] = {};
  void* tier = api.create(error, sizeof error);
  REQUIRE_MESSAGE(tier, error);

  base::GuestMemory memory;
  auto region = memory.add_region(kBase, 0x10000);
  REQUIRE(region.ok());
  base::Timebase timebase;
  NoDevices ops;
  jit::Platform platform(ops, timebase);
  platform.add_ram(*region);
  jit::Hart hart(platform, 0);

  std::mt19937 rng(11);
  int blocks = 0, instructions = 0;
  std::chrono::steady_clock::duration compile_time{};
  for (int round = 0; round < 60; ++round) {
    const size_t count = 1 + rng() % 40;
    std::vector<uint32_t> words;
    std::vector<jit::Insn> insns;
    for (size_t i = 0; i < count; ++i) {
      words.push_back(random_integer_op(rng));
      insns.push_back(jit::decode(words.back()));
      REQUIRE(memory.write_le<uint32_t>(kBase + 4 * i, words.back()));
    }
    jit::CpuState start{};
    for (unsigned r = 1; r < 32; ++r) {
      // Mix small, sign-boundary and random values: shifts, compares and W ops differ there.
      const uint64_t picks[] = {static_cast<uint64_t>(rng()) << 32 | rng(), rng() % 70, 0x7fffffff,
                                0xffffffff80000000ull, ~0ull};
      start.x[r] = picks[rng() % 5];
    }
    start.pc = kBase;
    start.instret = 1000;
    start.priv = jit::Priv::kM;

    hart.set_state(start);  // also drops the previous round's decoded code
    hart.step(count);
    const jit::CpuState& interpreted = hart.state();

    const auto compile_start = std::chrono::steady_clock::now();
    JitBlockFn block = api.compile_block(tier, insns.data(), insns.size(), kBase, error, sizeof error);
    compile_time += std::chrono::steady_clock::now() - compile_start;
    REQUIRE_MESSAGE(static_cast<bool>(block), error);
    jit::CpuState compiled = start;
    block(&compiled);

    for (unsigned r = 0; r < 32; ++r) {
      INFO("round " << round << " x" << r << " after " << count << " instructions");
      CHECK(compiled.x[r] == interpreted.x[r]);
    }
    CHECK(compiled.pc == interpreted.pc);
    CHECK(compiled.pc == kBase + 4 * count);
    CHECK(compiled.instret == interpreted.instret);
    ++blocks;
    instructions += static_cast<int>(count);
  }
  MESSAGE(blocks << " blocks, " << instructions << " instructions compared; compile "
                 << std::chrono::duration<double, std::milli>(compile_time).count() / blocks
                 << " ms per block (one module each, LLJIT defaults)");

  // Anything outside the subset is refused with a reason, not miscompiled.
  const jit::Insn load = jit::decode(0x0002b283);  // ld t0, 0(t0)
  CHECK_FALSE(static_cast<bool>(api.compile_block(tier, &load, 1, kBase, error, sizeof error)));
  CHECK(std::string(error).find("not a straight-line integer op") != std::string::npos);
  CHECK_FALSE(static_cast<bool>(api.compile_block(tier, nullptr, 0, kBase, error, sizeof error)));
  api.destroy(tier);
}

TEST_CASE("llvm tier: a missing library is an error value naming the path") {
  auto loaded = jit::load_tier("/nonexistent/libvmlaunch_jit_llvm.so");
  REQUIRE_FALSE(loaded.ok());
  CHECK(loaded.error().find("/nonexistent/libvmlaunch_jit_llvm.so") != std::string::npos);
}
