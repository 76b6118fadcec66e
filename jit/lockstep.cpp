// Lockstep mode (jit/lockstep.h): each compiled region checked against the interpreter at its exit.
#include "jit/lockstep.h"

#include <cinttypes>
#include <cstddef>
#include <cstdio>

#include "jit/hart.h"
#include "jit/tier_manager.h"

namespace jit {

namespace {

// An empty jump cache: no exit finds a region to chain to, so every exit returns and is compared.
const JitJumpEntry* no_jumps() {
  static const struct Table {
    JitJumpEntry entries[kJitJumpEntries];
    Table() {
      for (JitJumpEntry& e : entries) e = JitJumpEntry{~0ull, ~0ull, nullptr, 0};
    }
  } table;
  return table.entries;
}

// The fields compared, in the order a difference is reported. Every field of CpuState is here but
// x[32] (the x0 write sink) and the padding: the size check below fails when CpuState grows, so a
// new field cannot be left out unnoticed.
struct Field {
  const char* name;
  size_t offset, size, count;
};
#define FIELD(f) \
  { #f, offsetof(CpuState, f), sizeof(CpuState::f), 1 }
#define ARRAY(f, n) \
  { #f, offsetof(CpuState, f), sizeof(CpuState::f) / (n), n }
constexpr Field kFields[] = {
    {"pc", offsetof(CpuState, pc), 8, 1},
    {"x", offsetof(CpuState, x), 8, 32},
    {"f", offsetof(CpuState, f), 8, 32},
    FIELD(fflags),
    FIELD(frm),
    FIELD(priv),
    FIELD(instret),
    FIELD(mstatus),
    FIELD(medeleg),
    FIELD(mideleg),
    FIELD(mie),
    FIELD(mip_sw),
    FIELD(mtvec),
    FIELD(stvec),
    FIELD(mepc),
    FIELD(sepc),
    FIELD(mcause),
    FIELD(scause),
    FIELD(mtval),
    FIELD(stval),
    FIELD(mscratch),
    FIELD(sscratch),
    FIELD(satp),
    FIELD(mcounteren),
    FIELD(scounteren),
    FIELD(mcountinhibit),
    FIELD(menvcfg),
    FIELD(senvcfg),
    FIELD(stimecmp),
    FIELD(cycle_offset),
    ARRAY(pmpcfg, 16),
    ARRAY(pmpaddr, 16),
    FIELD(resv_valid),
    FIELD(resv_host),
    FIELD(resv_value),
    FIELD(tselect),
    ARRAY(tdata1, kTriggerCount),
    ARRAY(tdata2, kTriggerCount),
};
#undef FIELD
#undef ARRAY
static_assert(sizeof(CpuState) == 936, "CpuState changed: compare the new fields in lockstep's kFields");

const char* const kAbi[32] = {"zero", "ra", "sp", "gp", "tp",  "t0",  "t1", "t2", "s0", "s1", "a0",
                              "a1",   "a2", "a3", "a4", "a5",  "a6",  "a7", "s2", "s3", "s4", "s5",
                              "s6",   "s7", "s8", "s9", "s10", "s11", "t3", "t4", "t5", "t6"};

uint64_t value_at(const CpuState& s, size_t offset, size_t size) {
  uint64_t v = 0;
  std::memcpy(&v, reinterpret_cast<const char*>(&s) + offset, size);  // little-endian host
  return v;
}

// Where two states first differ: offset and size of the element, and its name; false when equal.
bool first_difference(const CpuState& a, const CpuState& b, size_t* offset, size_t* size, std::string* name) {
  for (const Field& f : kFields) {
    for (size_t i = 0; i < f.count; ++i) {
      const size_t at = f.offset + i * f.size;
      if (value_at(a, at, f.size) == value_at(b, at, f.size)) continue;
      *offset = at;
      *size = f.size;
      if (f.count == 1) {
        *name = f.name;
      } else if (f.name[0] == 'x' && f.name[1] == 0) {
        *name = "x" + std::to_string(i) + " (" + kAbi[i] + ")";
      } else {
        *name = std::string(f.name) + (f.name[1] ? "[" + std::to_string(i) + "]" : std::to_string(i));
      }
      return true;
    }
  }
  return false;
}

std::string hex(uint64_t v) {
  char text[24];
  std::snprintf(text, sizeof text, "%#" PRIx64, v);
  return text;
}

std::string bytes_text(const Lockstep::Store& s) {
  uint64_t v = 0;
  std::memcpy(&v, s.after, s.size);
  return std::to_string(s.size) + " bytes at pa " + hex(s.pa) + " = " + hex(v);
}

}  // namespace

struct Hart::LockstepStep {
  CpuState before;    // the state the instruction started from
  size_t stores = 0;  // stores logged before it
  std::string insn;   // its address, bits and name
};

void Hart::set_lockstep(bool on) {
  m_lockstep = on ? std::make_unique<Lockstep>() : nullptr;
  flush_write_tlb();  // from now on every store takes the logging slow path
}

Hart::ChunkEnd Hart::lockstep_chunk(int64_t budget) {
  LockstepTurns& turns = m_platform.lockstep_turns();
  turns.acquire();
  const ChunkEnd end = m_trig_step ? trigger_chunk(budget) : execute(budget);
  turns.release();
  return end;
}

std::string Hart::describe_insn(uint64_t pc) {
  uint64_t pa = 0;
  const uint8_t* lo = nullptr;
  if (debug_translate(pc, &pa)) lo = m_platform.ram(pa, 2);
  if (!lo) return hex(pc) + " (not readable)";
  uint32_t bits = static_cast<uint32_t>(lo[0]) | static_cast<uint32_t>(lo[1]) << 8;
  if ((bits & 3) == 3) {
    const uint8_t* hi = debug_translate(pc + 2, &pa) ? m_platform.ram(pa, 2) : nullptr;
    if (!hi) return hex(pc) + " (not readable)";
    bits |= (static_cast<uint32_t>(hi[0]) | static_cast<uint32_t>(hi[1]) << 8) << 16;
  }
  char text[64];
  std::snprintf(text, sizeof text, (bits & 3) == 3 ? "%#" PRIx64 ": %08x" : "%#" PRIx64 ": %04x", pc, bits);
  return std::string(text) + " (" + op_name(decode(bits).op) + ")";
}

void Hart::lockstep_replay(const CpuState& from, uint64_t count, std::vector<LockstepStep>* trace) {
  m_s = from;
  update_contexts();  // the region's trap may have changed the privilege
  m_lockstep->begin(false);
  lockstep_interpret(count, trace);
  m_lockstep->end();
}

void Hart::lockstep_interpret(uint64_t count, std::vector<LockstepStep>* trace) {
  // The interpreter alone: no compiled region is entered, nothing is promoted or counted.
  TierManager* const tier = m_tier;
  const bool tier_on = m_tier_on;
  m_tier = nullptr;
  m_tier_on = false;
  for (uint64_t i = 0; i < count; ++i) {
    if (trace) trace->push_back({m_s, m_lockstep->m_log.size(), describe_insn(m_s.pc)});
    execute(1);
  }
  m_tier = tier;
  m_tier_on = tier_on;
  m_s.instret -= count;  // the caller's chunk counts the region's instructions
}

uint64_t Hart::lockstep_region(JitRegionFn fn, uint32_t entry, uint64_t pc, int64_t budget) {
  Lockstep& ls = *m_lockstep;
  m_s.pc = pc;
  const CpuState before = m_s;
  ls.begin(true);
  JitMemView view{m_tlb[m_data_ctx][kRead],
                  m_tlb[m_data_ctx][kWrite],
                  m_tlb_gen[kRead],
                  m_tlb_gen[kWrite],
                  no_jumps(),
                  ~0ull,
                  0,
                  0};
  const JitExit exit = fn(&m_s, this, pc & ~0xfffull, budget, &view, entry);
  const uint64_t retired = exit.retired + view.chained_retired;
  ++m_region_exits[exit.status < kJitExitReasons ? exit.status : kJitExitBranch];
  // Stopped before a device access: the region ran the instructions before that one (its exit
  // counts the stopped instruction, as a fault would); those are compared, then the interpreter
  // runs it.
  const bool device_stop = ls.m_device_stop && exit.status == kJitExitTrap;
  const uint64_t checked = device_stop && retired > 0 ? retired - 1 : retired;
  if (exit.status == kJitExitTrap && !device_stop) take_trap(m_trap_cause, m_trap_tval, false);
  ls.end();
  std::vector<Lockstep::Store> compiled_stores = std::move(ls.m_log);
  if (ls.corrupt_for_test) ls.corrupt_for_test(&m_s, &compiled_stores, pc);
  const CpuState compiled = m_s;
  Lockstep::undo(compiled_stores);
  lockstep_replay(before, checked, nullptr);

  size_t offset = 0, size = 0;
  std::string name;
  bool same =
      !first_difference(compiled, m_s, &offset, &size, &name) && compiled_stores.size() == ls.m_log.size();
  for (size_t i = 0; same && i < compiled_stores.size(); ++i) {
    const Lockstep::Store &a = compiled_stores[i], &b = ls.m_log[i];
    same = a.pa == b.pa && a.size == b.size && std::memcmp(a.after, b.after, a.size) == 0;
  }
  if (same) {
    ls.m_compared.fetch_add(1, std::memory_order_relaxed);
    if (device_stop) {
      ls.m_device_exits.fetch_add(1, std::memory_order_relaxed);
      lockstep_interpret(retired - checked, nullptr);  // the device access, made once
    }
    return retired;
  }
  if (!ls.m_failure.empty()) return retired;  // already stopped; the first report stands
  ls.m_failure = lockstep_report(compiled, compiled_stores, before, checked, exit.status, pc);
  std::fprintf(stderr, "%s\n", ls.m_failure.c_str());
  m_kick.store(true, std::memory_order_release);  // run() returns; the caller reports the failure
  return checked;
}

std::string Hart::lockstep_report(const CpuState& compiled,
                                  const std::vector<Lockstep::Store>& compiled_stores, const CpuState& before,
                                  uint64_t retired, uint64_t status, uint64_t entry_pc) {
  // Again, instruction by instruction, to find where the two part.
  Lockstep::undo(m_lockstep->m_log);
  std::vector<LockstepStep> trace;
  lockstep_replay(before, retired, &trace);
  const CpuState& interp = m_s;
  std::string text = "jit lockstep: hart " + std::to_string(m_hart_id) +
                     ": the compiled region entered at pc " + hex(entry_pc) + " (exit " +
                     exit_reason_name(static_cast<unsigned>(status)) + " after " + std::to_string(retired) +
                     " instructions) differs from the interpreter: ";
  auto state_after = [&](size_t i) -> const CpuState& {
    return i + 1 < trace.size() ? trace[i + 1].before : interp;
  };
  size_t offset = 0, size = 0;
  std::string name;
  if (first_difference(compiled, interp, &offset, &size, &name)) {
    text += name + " compiled " + hex(value_at(compiled, offset, size)) + ", interpreter " +
            hex(value_at(interp, offset, size));
    if (offset == offsetof(CpuState, pc) && !trace.empty()) {
      text += "; the last instruction: " + trace.back().insn;
      return text;
    }
    for (size_t i = trace.size(); i-- > 0;) {
      if (value_at(trace[i].before, offset, size) != value_at(state_after(i), offset, size)) {
        text += "; the instruction that set it: " + trace[i].insn;
        return text;
      }
    }
    return text + "; no interpreted instruction changed it (the compiled region did)";
  }
  const auto& interp_stores = m_lockstep->m_log;
  size_t k = 0;
  while (k < compiled_stores.size() && k < interp_stores.size() &&
         compiled_stores[k].pa == interp_stores[k].pa && compiled_stores[k].size == interp_stores[k].size &&
         std::memcmp(compiled_stores[k].after, interp_stores[k].after, compiled_stores[k].size) == 0)
    ++k;
  text += "store " + std::to_string(k + 1) + ": compiled " +
          (k < compiled_stores.size() ? bytes_text(compiled_stores[k]) : std::string("none")) +
          ", interpreter " + (k < interp_stores.size() ? bytes_text(interp_stores[k]) : std::string("none"));
  for (size_t i = trace.size(); i-- > 0;) {
    if (trace[i].stores <= k) {
      text += "; the instruction: " + trace[i].insn;
      break;
    }
  }
  return text;
}

}  // namespace jit
