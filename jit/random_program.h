// A generator of random riscv64 machine code for differential tests of the translator tier against
// the interpreter: integer ALU, M, compressed forms, loads and stores around a page boundary
// (misaligned ones included), access faults skipped by a trap handler, forward branches, JAL and
// JALR, F and D (arithmetic, FMA, conversions, compares, moves, loads/stores; every static rounding
// mode, the dynamic one with a random frm, and the reserved ones, which trap), LR/SC and AMOs
// (W and D, aligned, misaligned and outside RAM), and a jump back to the start (a loop inside one
// page when the program is short). The program loops
// forever; a test runs both tiers for the same number of instructions and compares everything.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace jit::testing {

// Layout (offsets from the RAM base): code at 0, the trap handler at kHandler, data at kData
// (two pages; x30 points at the boundary between them), x29 holds an address outside RAM.
struct RandomProgram {
  static constexpr uint64_t kHandler = 0x8000, kData = 0x10000, kRamSize = 0x20000;
  std::vector<uint8_t> code;     // at offset 0
  std::vector<uint8_t> handler;  // at kHandler
  std::vector<uint8_t> data;     // at kData, 8 KiB
  uint64_t regs[32] = {};        // initial x registers
};

namespace encode {
inline uint32_t r(uint32_t op, uint32_t f3, uint32_t f7, uint32_t rd, uint32_t rs1, uint32_t rs2) {
  return (f7 << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op;
}
inline uint32_t i(uint32_t op, uint32_t f3, int32_t imm, uint32_t rd, uint32_t rs1) {
  return ((static_cast<uint32_t>(imm) & 0xfff) << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op;
}
inline uint32_t s(uint32_t f3, int32_t imm, uint32_t rs1, uint32_t rs2) {
  const uint32_t u = static_cast<uint32_t>(imm) & 0xfff;
  return ((u >> 5) << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | ((u & 31) << 7) | 0x23;
}
inline uint32_t b(uint32_t f3, int32_t imm, uint32_t rs1, uint32_t rs2) {
  const uint32_t u = static_cast<uint32_t>(imm) & 0x1fff;
  return (((u >> 12) & 1) << 31) | (((u >> 5) & 63) << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) |
         (((u >> 1) & 15) << 8) | (((u >> 11) & 1) << 7) | 0x63;
}
inline uint32_t j(int32_t imm, uint32_t rd) {
  const uint32_t u = static_cast<uint32_t>(imm) & 0x1fffff;
  return (((u >> 20) & 1) << 31) | (((u >> 1) & 0x3ff) << 21) | (((u >> 11) & 1) << 20) |
         (((u >> 12) & 0xff) << 12) | (rd << 7) | 0x6f;
}
}  // namespace encode

// A random F/D instruction: f registers anywhere, x sources random, x destinations below x28,
// loads and stores near the data page boundary (x30); rounding mode 0..4, dynamic (7) or reserved.
inline uint32_t random_fp(std::mt19937& rng) {
  using namespace encode;
  const uint32_t fd = rng() % 32, fs1 = rng() % 32, fs2 = rng() % 32, fs3 = rng() % 32;
  const uint32_t xd = 1 + rng() % 27, xs = rng() % 32, fmt = rng() % 2;
  static constexpr uint32_t kRm[] = {0, 1, 2, 3, 4, 7, 7, 7, 0, 5};
  const uint32_t rm = kRm[rng() % 10];
  switch (rng() % 13) {
    case 0: {  // fadd, fsub, fmul, fdiv
      static constexpr uint32_t kF7[] = {0x00, 0x04, 0x08, 0x0c};
      return r(0x53, rm, kF7[rng() % 4] | fmt, fd, fs1, fs2);
    }
    case 1:  // fsqrt
      return r(0x53, rm, 0x2c | fmt, fd, fs1, 0);
    case 2: {  // fmadd, fmsub, fnmsub, fnmadd
      static constexpr uint32_t kOp[] = {0x43, 0x47, 0x4b, 0x4f};
      return (fs3 << 27) | (fmt << 25) | (fs2 << 20) | (fs1 << 15) | (rm << 12) | (fd << 7) | kOp[rng() % 4];
    }
    case 3:  // fmin, fmax
      return r(0x53, rng() % 2, 0x14 | fmt, fd, fs1, fs2);
    case 4:  // fsgnj, fsgnjn, fsgnjx
      return r(0x53, rng() % 3, 0x10 | fmt, fd, fs1, fs2);
    case 5:  // fcvt.{w,wu,l,lu}.{s,d}
      return r(0x53, rm, 0x60 | fmt, xd, fs1, rng() % 4);
    case 6:  // fcvt.{s,d}.{w,wu,l,lu}
      return r(0x53, rm, 0x68 | fmt, fd, xs, rng() % 4);
    case 7:  // fcvt.s.d, fcvt.d.s
      return fmt ? r(0x53, rm, 0x21, fd, fs1, 0) : r(0x53, rm, 0x20, fd, fs1, 1);
    case 8: {  // feq, flt, fle
      return r(0x53, rng() % 3, 0x50 | fmt, xd, fs1, fs2);
    }
    case 9:  // fclass, fmv.x.{w,d}
      return r(0x53, rng() % 2, 0x70 | fmt, xd, fs1, 0);
    case 10:  // fmv.{w,d}.x: random bits (NaN-boxed or not, NaNs, denormals) into f registers
      return r(0x53, 0, 0x78 | fmt, fd, xs, 0);
    case 11:  // flw, fld
      return i(0x07, 2 + fmt, static_cast<int32_t>(rng() % 64) - 32, fd, rng() % 40 == 0 ? 29 : 30);
    default: {  // fsw, fsd
      const uint32_t u = static_cast<uint32_t>(static_cast<int32_t>(rng() % 64) - 32) & 0xfff;
      return ((u >> 5) << 25) | (fs2 << 20) | ((rng() % 40 == 0 ? 29u : 30u) << 15) | ((2 + fmt) << 12) |
             ((u & 31) << 7) | 0x27;
    }
  }
}

// A random LR/SC/AMO on x31, which an addi before it points near the data page boundary
// (mostly aligned; sometimes misaligned, which traps) or outside RAM (x29). Not x28: a branch may
// land on a JALR past the AUIPC that sets x28 up, and must then still jump into the program.
template <typename Items>
uint32_t random_atomic(std::mt19937& rng, Items* items) {
  using namespace encode;
  const uint32_t dword = rng() % 2;
  int32_t offset = (static_cast<int32_t>(rng() % 16) - 8) * 8;
  if (rng() % 10 == 0) offset += 2;
  items->push_back({i(0x13, 0, offset, 31, rng() % 40 == 0 ? 29 : 30)});  // addi x31, x30, offset
  static constexpr uint32_t kF5[] = {0x02, 0x03, 0x03, 0x01, 0x00, 0x04, 0x0c, 0x08, 0x10, 0x14, 0x18, 0x1c};
  const uint32_t f5 = kF5[rng() % 12];
  const uint32_t rs2 = f5 == 0x02 ? 0 : rng() % 32;
  return r(0x2f, 2 + dword, (f5 << 2) | (rng() % 4), 1 + rng() % 27, 31, rs2);
}

inline RandomProgram random_program(uint64_t ram_base, uint32_t seed, size_t length) {
  using namespace encode;
  std::mt19937 rng(seed);
  RandomProgram p;
  struct Item {
    uint32_t bits = 0;
    unsigned len = 4;
    int kind = 0;  // 0 plain, 1 branch to target, 2 jal to target, 3 jalr via x28 (auipc before it)
    uint32_t f3 = 0, rs1 = 0, rs2 = 0, rd = 0;
    size_t target = 0;
  };
  std::vector<Item> items;
  auto dst = [&] { return 1 + rng() % 27; };  // x28..x31 are the program's own
  auto src = [&] { return rng() % 32; };
  // Prologue: mtvec = handler; x30 = data page boundary; x29 = an address outside RAM.
  auto li32 = [&](uint32_t rd, uint64_t value) {                         // value < 2^32, low 12 bits zero
    items.push_back({static_cast<uint32_t>(value) | (rd << 7) | 0x37});  // lui sign-extends:
    items.push_back({i(0x13, 1, 32, rd, rd)});                           // slli rd, rd, 32
    items.push_back({i(0x13, 5, 32, rd, rd)});                           // srli rd, rd, 32
  };
  li32(31, ram_base + RandomProgram::kHandler);
  items.push_back({i(0x73, 1, 0x305, 0, 31)});  // csrw mtvec, x31
  li32(31, 0x6000);
  items.push_back({i(0x73, 2, 0x300, 0, 31)});                                // csrs mstatus, x31 (FS)
  items.push_back({i(0x73, 5, 0x002, 0, static_cast<uint32_t>(rng() % 5))});  // csrwi frm, 0..4
  const size_t body = items.size();
  for (size_t n = 0; n < length; ++n) {
    Item it;
    const unsigned pick = rng() % 114;
    if (pick >= 100) {  // F/D (100..109) and atomics (110..113)
      it.bits = pick < 110 ? random_fp(rng) : random_atomic(rng, &items);
      items.push_back(it);
      continue;
    }
    if (pick < 25) {  // OP / OP-IMM / W forms
      static constexpr uint32_t kOp[][2] = {{0, 0}, {0, 0x20}, {1, 0},    {2, 0}, {3, 0},
                                            {4, 0}, {5, 0},    {5, 0x20}, {6, 0}, {7, 0}};
      const auto& f = kOp[rng() % 10];
      switch (rng() % 5) {
        case 0:
          it.bits = r(0x33, f[0], f[1], dst(), src(), src());
          break;
        case 1:
          it.bits = r(0x3b, rng() % 2 ? 0 : (rng() % 2 ? 1 : 5), rng() % 2 ? 0 : 0x20, dst(), src(), src());
          if (((it.bits >> 12) & 7) == 1) it.bits &= ~(0x20u << 25);  // sllw has no f7 variant
          break;
        case 2: {
          static constexpr uint32_t kImm[] = {0, 2, 3, 4, 6, 7};
          it.bits = i(0x13, kImm[rng() % 6], static_cast<int32_t>(rng() % 4096) - 2048, dst(), src());
          break;
        }
        case 3: {
          static constexpr uint32_t kSh[][2] = {{1, 0}, {5, 0}, {5, 0x400}};
          const auto& sh = kSh[rng() % 3];
          it.bits = i(0x13, sh[0], static_cast<int32_t>(sh[1] | (rng() % 64)), dst(), src());
          break;
        }
        default:
          it.bits = rng() % 2 ? i(0x1b, 0, static_cast<int32_t>(rng() % 4096) - 2048, dst(), src())
                              : i(0x1b, rng() % 2 ? 1 : 5,
                                  static_cast<int32_t>((rng() % 2 ? 0x400 : 0) | (rng() % 32)), dst(), src());
          if (((it.bits >> 12) & 7) == 1) it.bits &= ~(0x400u << 20);
      }
    } else if (pick < 37) {  // M
      if (rng() % 2) {
        it.bits = r(0x33, rng() % 8, 1, dst(), src(), src());
      } else {
        static constexpr uint32_t kW[] = {0, 4, 5, 6, 7};
        it.bits = r(0x3b, kW[rng() % 5], 1, dst(), src(), src());
      }
    } else if (pick < 52) {  // compressed
      const uint32_t rd = dst(), rs = 1 + rng() % 31;
      switch (rng() % 5) {
        case 0: {
          const uint32_t imm = 1 + rng() % 31;
          it.bits = ((rng() % 2) << 12) | (rd << 7) | (imm << 2) | 1;  // c.addi
          break;
        }
        case 1:
          it.bits = (4u << 13) | (rd << 7) | (rs << 2) | 2;  // c.mv
          break;
        case 2:
          it.bits = (4u << 13) | (1u << 12) | (rd << 7) | (rs << 2) | 2;  // c.add
          break;
        case 3: {
          const uint32_t sh = 1 + rng() % 63;
          it.bits = ((sh >> 5) << 12) | (rd << 7) | ((sh & 31) << 2) | 2;  // c.slli
          break;
        }
        default:
          it.bits = (4u << 13) | (3u << 10) | ((rng() % 8) << 7) | ((rng() % 4) << 5) | ((rng() % 8) << 2) |
                    1;  // c.sub/xor/or/and
      }
      it.len = 2;
    } else if (pick < 64) {  // loads: around the data page boundary, sometimes outside RAM
      static constexpr uint32_t kF3[] = {0, 1, 2, 3, 4, 5, 6};
      const uint32_t base = rng() % 40 == 0 ? 29 : 30;
      it.bits = i(0x03, kF3[rng() % 7], static_cast<int32_t>(rng() % 64) - 32 + (rng() % 4 == 0 ? -2000 : 0),
                  dst(), base);
    } else if (pick < 74) {  // stores
      const uint32_t base = rng() % 40 == 0 ? 29 : 30;
      it.bits =
          s(rng() % 4, static_cast<int32_t>(rng() % 64) - 32 + (rng() % 4 == 0 ? 2000 : 0), base, src());
    } else if (pick < 80) {  // lui / auipc
      it.bits = (rng() & 0xfffff000u) | (dst() << 7) | (rng() % 2 ? 0x37 : 0x17);
    } else if (pick < 93) {  // conditional branch, mostly forward
      static constexpr uint32_t kF3[] = {0, 1, 4, 5, 6, 7};
      it.kind = 1;
      it.f3 = kF3[rng() % 6];
      it.rs1 = src();
      it.rs2 = src();
      const size_t here = items.size();
      it.target = here + 1 + rng() % 6;  // forward only: a random backward branch tends to spin forever
    } else if (pick < 97) {
      it.kind = 2;
      it.rd = rng() % 2 ? 1 : 0;
      it.target = items.size() + 1 + rng() % 6;
    } else {
      items.push_back({0x17 | (28u << 7)});  // auipc x28, 0
      it.kind = 3;
      it.rd = rng() % 2 ? 1 : 0;
      it.target = items.size() + 1 + rng() % 6;
    }
    items.push_back(it);
  }
  const size_t end = items.size();
  Item back;
  back.kind = 2;
  back.target = body;
  items.push_back(back);
  // Lay out, then fill in the offsets of control transfers (targets past the end go to `back`).
  std::vector<uint32_t> at(items.size() + 1, 0);
  for (size_t k = 0; k < items.size(); ++k) at[k + 1] = at[k] + items[k].len;
  for (size_t k = 0; k < items.size(); ++k) {
    Item& it = items[k];
    const size_t target = it.target > end ? end : it.target;
    const int32_t delta = static_cast<int32_t>(at[target]) - static_cast<int32_t>(at[k]);
    if (it.kind == 1) it.bits = b(it.f3, delta, it.rs1, it.rs2);
    if (it.kind == 2) it.bits = j(delta, it.rd);
    if (it.kind == 3) it.bits = i(0x67, 0, delta + 4, it.rd, 28);  // relative to the auipc before it
  }
  for (const Item& it : items)
    for (unsigned k = 0; k < it.len; ++k) p.code.push_back(static_cast<uint8_t>(it.bits >> (8 * k)));
  // Handler: skip the faulting (4-byte) instruction.
  for (uint32_t w : {i(0x73, 2, 0x341, 31, 0), i(0x13, 0, 4, 31, 31), i(0x73, 1, 0x341, 0, 31), 0x30200073u})
    for (unsigned k = 0; k < 4; ++k) p.handler.push_back(static_cast<uint8_t>(w >> (8 * k)));
  p.data.resize(8192);
  for (auto& byte : p.data) byte = static_cast<uint8_t>(rng());
  for (unsigned reg = 1; reg < 28; ++reg) {
    const uint64_t picks[] = {static_cast<uint64_t>(rng()) << 32 | rng(),
                              rng() % 70,
                              0x7fffffff,
                              0xffffffff80000000ull,
                              ~0ull,
                              0x8000000000000000ull};
    p.regs[reg] = picks[rng() % 6];
  }
  p.regs[29] = 0x1000;
  p.regs[30] = ram_base + RandomProgram::kData + 4096;
  return p;
}

}  // namespace jit::testing
