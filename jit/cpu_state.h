// The architectural state of one riscv64 hart, as one plain struct: the interpreter works on it,
// a translator's generated code addresses its fields with offsetof, and the engine copies it out
// and back in (park, snapshot, gdb). Derived caches (TLBs, decoded pages, PMP summary bits) are
// not part of it; whoever writes a CpuState into a hart rebuilds them (Hart::set_state).
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace jit {

enum class Priv : uint8_t { kU = 0, kS = 1, kM = 3 };

// Optional parts of the hart that a machine may leave out (VmSpec::cpu_features "-sstc", "-sv48"),
// so the CPU matches the ISA string its device tree advertises.
struct CpuConfig {
  bool sstc = true;  // stimecmp and menvcfg.STCE
  bool sv48 = true;  // satp mode 9 (Sv39 is always there)
};

// Debug triggers (Sdtrig): as many as QEMU's virt machine has. tdata1 layouts (RV64, debug spec
// 1.0): type in bits 63..60 (2 = mcontrol, 6 = mcontrol6, 15 = exists but disabled), dmode bit 59
// (the trigger belongs to the debugger), action 15..12, match 10..7, m 6, s 4, u 3, execute 2,
// store 1, load 0; sizelo 17..16 and sizehi 22..21 (mcontrol), size 19..16 (mcontrol6).
inline constexpr unsigned kTriggerCount = 2;
// Reset: mcontrol with nothing enabled (QEMU's value) and maskmax 63 (napot ranges of any size).
inline constexpr uint64_t kTdata1Reset = (2ull << 60) | (63ull << 53);

struct CpuState {
  uint64_t x[33] = {};  // x[32] absorbs writes to x0 (the decoder maps rd == 0 to it)
  uint64_t f[32] = {};  // NaN-boxed single values live in the low half
  uint64_t pc = 0;
  uint64_t instret = 0;
  Priv priv = Priv::kM;
  uint8_t reserved0[3] = {};
  uint32_t fflags = 0, frm = 0;

  uint64_t mstatus = 0, medeleg = 0, mideleg = 0, mie = 0;
  uint64_t mip_sw = 0;  // the software-writable mip bits; device lines are outside (Hart::set_irq)
  uint64_t mtvec = 0, stvec = 0, mepc = 0, sepc = 0, mcause = 0, scause = 0;
  uint64_t mtval = 0, stval = 0, mscratch = 0, sscratch = 0, satp = 0;
  uint32_t mcounteren = 0, scounteren = 0, mcountinhibit = 0, reserved1 = 0;
  uint64_t menvcfg = 0, senvcfg = 0, stimecmp = ~0ull;
  uint64_t cycle_offset = 0;  // mcycle writes: cycle = instret + cycle_offset
  uint8_t pmpcfg[16] = {};
  uint64_t pmpaddr[16] = {};

  // LR/SC reservation: the reserved word's host address and the value LR saw (SC compares and
  // swaps it, so a store by another hart in between makes the SC fail). Host addresses do not
  // survive a restore into another process; set_state of a snapshot clears resv_valid.
  uint64_t resv_valid = 0;
  uint64_t resv_host = 0;
  uint64_t resv_value = 0;

  // Sdtrig (jit/trigger.cpp): the selected trigger and each trigger's tdata1/tdata2 (tdata3, the
  // textra context match, is not implemented and reads zero).
  uint64_t tselect = 0;
  uint64_t tdata1[kTriggerCount] = {kTdata1Reset, kTdata1Reset};
  uint64_t tdata2[kTriggerCount] = {};
};

// Generated code computes field addresses as state + offsetof(CpuState, field).
static_assert(std::is_standard_layout_v<CpuState>);
static_assert(offsetof(CpuState, x) == 0);
static_assert(offsetof(CpuState, pc) == 65 * 8);

}  // namespace jit
