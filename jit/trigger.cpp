// Debug triggers (Sdtrig, RISC-V debug spec 1.0 chapter 5) as QEMU 7.2's virt machine has them:
// two triggers, each an mcontrol (type 2) or mcontrol6 (type 6) address match on instruction
// fetches, loads and stores, per privilege mode (M/S/U), firing before the instruction or access
// (timing "before"). Beyond QEMU 7.2: match modes napot (1), >= (2) and < (3) besides equal (0);
// action 1 (enter debug mode: the hart stops for the debugger, reported like a gdb breakpoint or
// watchpoint) on triggers a debugger set with dmode = 1 through set_state (guest writes never set
// dmode and cannot change a dmode trigger); writing a type other than 2 or 6 (0 included) disables
// the trigger as type 15, as the spec asks (QEMU 7.2 ignores such writes); tval is the pc or the
// first accessed byte the trigger covers (as newer QEMU; 7.2 writes 0). Not implemented (WARL,
// reading 0): chain, select (data-value match), timing "after", hit, tdata3's context match,
// tcontrol and mcontext (absent, like QEMU), the H extension's vs/vu bits.
#include <algorithm>

#include "jit/arch_bits.h"
#include "jit/csr_numbers.h"
#include "jit/hart.h"

namespace jit {

namespace {

constexpr uint64_t kLoad = 1, kStore = 2, kExec = 4, kU = 1 << 3, kS = 1 << 4, kM = 1 << 6;
constexpr uint64_t kDmode = 1ull << 59;
constexpr uint64_t kTypeDisabled = 15ull << 60;
constexpr uint64_t kMaskmax63 = 63ull << 53;  // mcontrol: napot ranges of any size

unsigned type_of(uint64_t tdata1) {
  return static_cast<unsigned>(tdata1 >> 60);
}
unsigned action_of(uint64_t tdata1) {
  return (tdata1 >> 12) & 15;
}
unsigned match_of(uint64_t tdata1) {
  return (tdata1 >> 7) & 15;
}

// The size field (0 = any, else the access size in the spec's encoding: 1 = 1 byte, 2 = 2, 3 = 4,
// 5 = 8 bytes). mcontrol splits it into sizelo (17..16) and sizehi (22..21).
unsigned size_code(uint64_t tdata1) {
  return type_of(tdata1) == 2 ? static_cast<unsigned>(((tdata1 >> 16) & 3) | (((tdata1 >> 21) & 3) << 2))
                              : static_cast<unsigned>((tdata1 >> 16) & 15);
}
uint64_t size_bytes(unsigned code) {
  switch (code) {
    case 1:
      return 1;
    case 2:
      return 2;
    case 3:
      return 4;
    case 5:
      return 8;
    default:
      return 1;  // any size: a match on the byte at tdata2
  }
}

bool enabled(uint64_t tdata1) {
  const unsigned type = type_of(tdata1);
  return (type == 2 || type == 6) && (tdata1 & (kM | kS | kU)) && (tdata1 & (kLoad | kStore | kExec));
}

// What a write leaves in tdata1. `debugger`: the write comes from debug mode (set_state), the only
// place dmode (and with it action 1) may be set.
uint64_t legal_tdata1(uint64_t v, bool debugger) {
  const unsigned type = type_of(v);
  if (type != 2 && type != 6) return kTypeDisabled;
  const bool dmode = debugger && (v & kDmode);
  uint64_t out = (static_cast<uint64_t>(type) << 60) | (dmode ? kDmode : 0);
  out |= v & (kM | kS | kU | kExec | kStore | kLoad);
  const unsigned match = match_of(v);
  if (match <= 3) out |= static_cast<uint64_t>(match) << 7;
  const unsigned action = action_of(v);
  if (action == 1 && dmode) out |= 1ull << 12;
  const unsigned size = size_code(v);
  if (size <= 3 || size == 5) {
    if (type == 2)
      out |= (static_cast<uint64_t>(size & 3) << 16) | (static_cast<uint64_t>(size >> 2) << 21) | kMaskmax63;
    else
      out |= static_cast<uint64_t>(size) << 16;
  } else if (type == 2) {
    out |= kMaskmax63;
  }
  return out;
}

// The addresses trigger (tdata1, tdata2) covers, [lo, hi] inclusive. Execute matches compare the
// pc alone (size does not apply to them).
void covered(uint64_t tdata1, uint64_t tdata2, bool exec, uint64_t* lo, uint64_t* hi) {
  switch (match_of(tdata1)) {
    case 1: {  // napot: the top XLEN-1-k bits, k the index of tdata2's lowest clear bit
      const unsigned k = static_cast<unsigned>(__builtin_ctzll(~tdata2 | (1ull << 63)));
      const uint64_t span = k >= 63 ? ~0ull : (2ull << k) - 1;
      *lo = tdata2 & ~span;
      *hi = *lo + span;
      return;
    }
    case 2:  // any compared address >= tdata2
      *lo = tdata2;
      *hi = ~0ull;
      return;
    case 3:  // any compared address < tdata2 (nothing when tdata2 is 0)
      *lo = tdata2 == 0 ? 1 : 0;
      *hi = tdata2 == 0 ? 0 : tdata2 - 1;
      return;
    default: {  // equal
      const uint64_t len = exec ? 1 : size_bytes(size_code(tdata1));
      *lo = tdata2;
      *hi = tdata2 + std::min<uint64_t>(len - 1, ~0ull - tdata2);
      return;
    }
  }
}

bool priv_matches(uint64_t tdata1, Priv priv) {
  return (tdata1 >> 3) & (1ull << static_cast<unsigned>(priv));
}

}  // namespace

uint64_t Hart::legal_trigger(uint64_t tdata1) {
  return legal_tdata1(tdata1, true);
}

void Hart::triggers_changed() {
  const bool had_data = m_trig_data;
  m_trig_armed = m_trig_exec = m_trig_data = m_trig_step = false;
  for (unsigned i = 0; i < kTriggerCount; ++i) {
    const uint64_t t = m_s.tdata1[i];
    if (!enabled(t)) continue;
    m_trig_armed = true;
    if (t & kExec) m_trig_exec = true;
    if (t & (kLoad | kStore)) {
      m_trig_data = true;
      if (action_of(t) == 1) m_trig_step = true;  // its stop must end the instruction at once
    }
  }
  m_trig_step = m_trig_step || m_trig_exec;
  // Pages a data trigger covers must leave the data TLBs (and may come back once it is gone).
  if (had_data || m_trig_data) {
    bump_tlb(kRead);
    bump_tlb(kWrite);
  }
  m_end_chunk = true;  // the run loop picks the stepping mode from here on
}

bool Hart::trigger_csr_read(uint16_t csr, uint64_t* v) const {
  const unsigned sel = static_cast<unsigned>(m_s.tselect);
  switch (csr) {
    case csr::kTselect:
      *v = m_s.tselect;
      return true;
    case csr::kTdata1:
      *v = m_s.tdata1[sel];
      return true;
    case csr::kTdata2:
      *v = m_s.tdata2[sel];
      return true;
    case csr::kTdata3:
      *v = 0;
      return true;
    case csr::kTinfo:
      *v = (1u << 2) | (1u << 6);  // types 2 and 6, as QEMU
      return true;
    default:
      return false;
  }
}

bool Hart::trigger_csr_write(uint16_t csr, uint64_t v) {
  const unsigned sel = static_cast<unsigned>(m_s.tselect);
  switch (csr) {
    case csr::kTselect:
      if (v < kTriggerCount) m_s.tselect = v;  // WARL: out of range keeps the old value (QEMU)
      return true;
    case csr::kTdata1:
      if (!(m_s.tdata1[sel] & kDmode)) {  // a debugger's trigger is not M-mode's to change
        m_s.tdata1[sel] = legal_tdata1(v, false);
        triggers_changed();
      }
      return true;
    case csr::kTdata2:
      if (!(m_s.tdata1[sel] & kDmode)) {
        m_s.tdata2[sel] = v;
        triggers_changed();
      }
      return true;
    case csr::kTdata3:
    case csr::kTinfo:
      return true;  // read-only zero / read-only
    default:
      return false;
  }
}

bool Hart::fire_exec_trigger() {
  const uint64_t pc = m_s.pc;
  for (unsigned i = 0; i < kTriggerCount; ++i) {
    const uint64_t t = m_s.tdata1[i];
    if (!(t & kExec) || !enabled(t) || !priv_matches(t, m_s.priv)) continue;
    const bool debugger = action_of(t) == 1;
    if (debugger && m_trig_quiet) continue;
    uint64_t lo, hi;
    covered(t, m_s.tdata2[i], true, &lo, &hi);
    if (pc < lo || pc > hi) continue;
    if (debugger) {
      m_debug_stop = DebugStop{DebugStop::Kind::kBreakpoint, pc, 0, false};
      m_trig_skip = true;
      m_trig_skip_pc = pc;
    } else {
      take_trap(kBreakpoint, pc, false);
    }
    return true;
  }
  return false;
}

bool Hart::data_trigger_passes(uint64_t va, unsigned size, bool load, bool store) {
  const uint64_t last = va + std::min<uint64_t>(size - 1, ~0ull - va);
  for (unsigned i = 0; i < kTriggerCount; ++i) {
    const uint64_t t = m_s.tdata1[i];
    if (!((load && (t & kLoad)) || (store && (t & kStore))) || !enabled(t) || !priv_matches(t, m_s.priv))
      continue;
    const bool debugger = action_of(t) == 1;
    if (debugger && m_trig_quiet) continue;
    uint64_t lo, hi;
    covered(t, m_s.tdata2[i], false, &lo, &hi);
    if (last < lo || va > hi) continue;
    const uint64_t hit = std::max(va, lo);  // the first accessed byte the trigger covers
    if (!debugger) return raise(kBreakpoint, hit);
    m_debug_stop = DebugStop{DebugStop::Kind::kWatch, 0, hit, store};  // pc: execute_one_checked
    m_trig_data_stop = true;
    return raise(kEnterDebug, hit);
  }
  return true;
}

bool Hart::page_triggered(uint64_t va) const {
  const uint64_t first = va & ~0xfffull, last = first + 0xfff;
  for (unsigned i = 0; i < kTriggerCount; ++i) {
    const uint64_t t = m_s.tdata1[i];
    if (!(t & (kLoad | kStore)) || !enabled(t)) continue;
    uint64_t lo, hi;
    covered(t, m_s.tdata2[i], false, &lo, &hi);
    // An access that starts on the page before and crosses into a covered byte takes the slow path
    // anyway (the TLB fast path never crosses a page).
    if (last >= lo && first <= hi) return true;
  }
  return false;
}

Hart::ChunkEnd Hart::execute_one_checked() {
  const bool resumed = m_trig_skip && m_s.pc == m_trig_skip_pc;
  m_trig_skip = false;
  m_trig_quiet = resumed;
  m_end_chunk = false;
  ChunkEnd end = ChunkEnd::kBudget;
  if (m_trig_exec && fire_exec_trigger()) {
    if (m_debug_stop) end = ChunkEnd::kStop;
  } else {
    const uint64_t instret = m_s.instret;
    end = execute(1);
    if (m_trig_data_stop) {
      // A load/store trigger with action 1: the access did not happen and the instruction did not
      // retire; the debugger sees the hart at it.
      m_trig_data_stop = false;
      m_s.instret = instret;
      m_debug_stop->pc = m_s.pc;
      m_trig_skip = true;
      m_trig_skip_pc = m_s.pc;
      end = ChunkEnd::kStop;
    }
  }
  m_trig_quiet = false;
  return end;
}

Hart::ChunkEnd Hart::trigger_chunk(int64_t budget) {
  for (int64_t i = 0; i < budget; ++i) {
    const ChunkEnd end = execute_one_checked();
    if (end != ChunkEnd::kBudget) return end;
    // A CSR write (interrupts enabled, triggers changed), a kick or a park ends the chunk early.
    if (m_end_chunk || !m_trig_step) return end;
    if (m_kick.load(std::memory_order_relaxed) || m_park_requested.load(std::memory_order_relaxed))
      return end;
  }
  return ChunkEnd::kBudget;
}

}  // namespace jit
