#include "jit/hart.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "jit/arch_bits.h"
#include "jit/csr_numbers.h"
#include "jit/fpu.h"
#include "jit/tier_manager.h"

namespace jit {

namespace {

constexpr int64_t kChunk = 1 << 13;  // instructions between interrupt / kick checks

inline int64_t sext32(uint64_t v) {
  return static_cast<int32_t>(v);
}

inline uint64_t mulhu(uint64_t a, uint64_t b) {
  return static_cast<uint64_t>((static_cast<unsigned __int128>(a) * b) >> 64);
}
inline uint64_t mulh(int64_t a, int64_t b) {
  return static_cast<uint64_t>((static_cast<__int128>(a) * b) >> 64);
}
inline uint64_t mulhsu(int64_t a, uint64_t b) {
  return static_cast<uint64_t>((static_cast<__int128>(a) * static_cast<__int128>(b)) >> 64);
}

}  // namespace

void Platform::add_ram(const base::GuestMemory::Region& region) {
  for (const auto& r : m_ram)
    if (r.guest_base == region.guest_base && r.size == region.size) return;
  m_ram.push_back(region);
}

Hart::Hart(Platform& platform, unsigned hart_id) : m_platform(platform), m_hart_id(hart_id) {
  // Debugging aid for guest bring-up: VMLAUNCH_JIT_TRACE=traps logs every trap to stderr.
  const char* trace = std::getenv("VMLAUNCH_JIT_TRACE");
  m_trace_traps = trace && std::strstr(trace, "traps");
  m_trace_state = trace && std::strstr(trace, "state");
  m_trace_mmio = trace && std::strstr(trace, "mmio");
  for (JitJumpEntry& e : m_jump) e = JitJumpEntry{~0ull, ~0ull, nullptr, 0};  // matches no key
  reset(0, 0, 0, 0);
}

Hart::~Hart() {
  if (m_tier) m_tier->detach(&m_running_epoch);
}

void Hart::reset(uint64_t pc, uint64_t a0, uint64_t a1, uint64_t a2) {
  m_s = CpuState{};
  m_s.x[10] = a0;
  m_s.x[11] = a1;
  m_s.x[12] = a2;
  m_s.pc = pc;
  m_s.priv = Priv::kM;
  m_s.mstatus = kUXL_SXL;
  m_pmp_active = m_pmp_locked = false;
  m_trig_skip = false;
  triggers_changed();
  flush_decoded();
  flush_tlb();
  update_contexts();
}

void Hart::kick() {
  m_kick.store(true, std::memory_order_release);
  { std::lock_guard<std::mutex> lock(m_wait_mutex); }
  m_wait_cv.notify_all();
}

void Hart::set_irq(unsigned bit, bool level) {
  if (bit >= 64) return;
  {
    // Under the mutex so a hart between "nothing pending" and sleeping cannot miss the edge.
    std::lock_guard<std::mutex> lock(m_wait_mutex);
    if (level)
      m_mip_ext.fetch_or(1ull << bit, std::memory_order_acq_rel);
    else
      m_mip_ext.fetch_and(~(1ull << bit), std::memory_order_acq_rel);
  }
  m_wait_cv.notify_all();
}

void Hart::dump_state(const char* where) {
  const auto now = std::chrono::steady_clock::now();
  if (now < m_next_dump) return;
  m_next_dump = now + std::chrono::seconds(1);
  std::fprintf(
      stderr,
      "jit: hart %u %s pc %#llx priv %d mstatus %#llx mie %#llx mip %#llx mideleg %#llx stimecmp %#llx "
      "time %#llx instret %llu\n",
      m_hart_id, where, static_cast<unsigned long long>(m_s.pc), static_cast<int>(m_s.priv),
      static_cast<unsigned long long>(m_s.mstatus), static_cast<unsigned long long>(m_s.mie),
      static_cast<unsigned long long>(current_mip()), static_cast<unsigned long long>(m_s.mideleg),
      static_cast<unsigned long long>(m_s.stimecmp),
      static_cast<unsigned long long>(m_platform.timebase().now()),
      static_cast<unsigned long long>(m_s.instret));
}

void Hart::trace_mmio(const char* what, uint64_t pa, const uint8_t* bytes, unsigned size) const {
  uint64_t v = 0;
  for (unsigned i = 0; i < size && i < 8; ++i) v |= static_cast<uint64_t>(bytes[i]) << (8 * i);
  std::fprintf(stderr, "jit: hart %u mmio %s %#llx/%u = %#llx\n", m_hart_id, what,
               static_cast<unsigned long long>(pa), size, static_cast<unsigned long long>(v));
}

void Hart::run() {
  {
    std::lock_guard<std::mutex> lock(m_wait_mutex);
    m_in_run = true;
  }
  run_until_kicked();
  {
    std::lock_guard<std::mutex> lock(m_wait_mutex);
    m_in_run = false;
  }
  m_wait_cv.notify_all();  // a park waiting for this hart: it no longer runs guest code
}

void Hart::run_until_kicked() {
  for (;;) {
    if (m_kick.exchange(false, std::memory_order_acq_rel)) return;
    if (m_park_requested.load(std::memory_order_acquire)) {
      park_here();
      continue;  // a kick or halt that came while parked is seen before any guest instruction
    }
    if (m_code.has_posted()) apply_posted_invalidations();
    if (m_has_ready.load(std::memory_order_acquire)) install_ready();
    if (m_trace_state) dump_state("run");
    if (m_debug_active) {
      if (debug_chunk()) return;
      continue;
    }
    check_interrupts();
    // Armed execute triggers (rare): one instruction at a time, each tested first.
    ChunkEnd end = __builtin_expect(m_lockstep != nullptr, 0) ? lockstep_chunk(kChunk)
                   : __builtin_expect(m_trig_step, 0)         ? trigger_chunk(kChunk)
                                                              : execute(kChunk);
    m_published_instret.store(m_s.instret, std::memory_order_relaxed);
    if (__builtin_expect(lockstep_failed(), 0)) return;  // a divergence stops the hart
    if (end == ChunkEnd::kWfi) wait_for_interrupt();
    if (end == ChunkEnd::kStop) return;  // a debugger's trigger fired: run() reports the stop
  }
}

void Hart::step(uint64_t max_instructions) {
  while (max_instructions > 0) {
    if (m_code.has_posted()) apply_posted_invalidations();
    if (m_has_ready.load(std::memory_order_acquire)) install_ready();
    check_interrupts();
    const int64_t budget = static_cast<int64_t>(std::min<uint64_t>(max_instructions, kChunk));
    const uint64_t before = m_s.instret;
    const ChunkEnd end = m_lockstep    ? lockstep_chunk(budget)
                         : m_trig_step ? trigger_chunk(budget)
                                       : execute(budget);
    const uint64_t done = m_s.instret - before;
    max_instructions -= std::min<uint64_t>(max_instructions, done == 0 ? 1 : done);
    if (end == ChunkEnd::kWfi || end == ChunkEnd::kStop || lockstep_failed()) return;
  }
}

void Hart::request_park() {
  m_park_requested.store(true, std::memory_order_release);
  { std::lock_guard<std::mutex> lock(m_wait_mutex); }  // a hart about to sleep in wfi sees it
  m_wait_cv.notify_all();
}

bool Hart::wait_parked(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(m_wait_mutex);
  // A hart outside run() executes nothing, so it counts as parked; if run() starts later it parks
  // before its first instruction (the request is sticky until resume()).
  return m_wait_cv.wait_for(lock, timeout,
                            [&] { return m_parked.load(std::memory_order_acquire) || !m_in_run; });
}

void Hart::resume() {
  {
    std::lock_guard<std::mutex> lock(m_wait_mutex);
    m_park_requested.store(false, std::memory_order_release);
  }
  m_wait_cv.notify_all();
}

void Hart::park_here() {
  std::unique_lock<std::mutex> lock(m_wait_mutex);
  m_parked.store(true, std::memory_order_release);
  m_wait_cv.notify_all();
  // A kick while parked is kept for run() (the vCPU thread may want to leave after resuming).
  m_wait_cv.wait(lock, [&] { return !m_park_requested.load(std::memory_order_acquire); });
  m_parked.store(false, std::memory_order_release);
}

void Hart::set_state(const CpuState& state) {
  m_s = state;
  m_s.x[0] = 0;  // x0 reads zero whatever the caller put there
  m_s.resv_valid = 0;
  // Trigger state from a debugger or a snapshot: legal values only (dmode and action 1 are the
  // debugger's to set, so they are kept), the selection in range.
  if (m_s.tselect >= kTriggerCount) m_s.tselect = 0;
  for (unsigned i = 0; i < kTriggerCount; ++i) m_s.tdata1[i] = legal_trigger(m_s.tdata1[i]);
  m_trig_skip = false;
  triggers_changed();
  pmp_changed();
  flush_decoded();
  flush_tlb();
  update_contexts();
}

void Hart::set_debug(bool single_step, std::vector<uint64_t> breakpoints, std::vector<Watch> watches) {
  std::sort(breakpoints.begin(), breakpoints.end());
  breakpoints.erase(std::unique(breakpoints.begin(), breakpoints.end()), breakpoints.end());
  m_breakpoints = std::move(breakpoints);
  m_debug_step = single_step;
  const bool had_watches = !m_watches.empty();
  m_watches = std::move(watches);
  std::erase_if(m_watches, [](const Watch& w) { return w.len == 0 || (!w.read && !w.write); });
  if (had_watches || !m_watches.empty()) flush_tlb();  // watched pages must leave the data TLBs
  m_debug_active = single_step || !m_breakpoints.empty() || !m_watches.empty();
  m_debug_skip = true;
  m_debug_skip_pc = m_s.pc;
  m_trig_skip = true;  // and its access runs without its watch (or a debugger's trigger) stopping it
  m_trig_skip_pc = m_s.pc;
  m_debug_stop.reset();
}

// One instruction per execute(1), the breakpoint test before each: exact whichever tier would run
// the code (a compiled region's head is interpreted when the budget is too small for the region).
// Stepping keeps interrupts out, as QEMU's gdbstub does by default, so `stepi` lands on the next
// instruction rather than in a timer handler.
bool Hart::debug_chunk() {
  for (int i = 0; i < 256; ++i) {
    if (!m_debug_step) check_interrupts();
    const bool skip = m_debug_skip && m_s.pc == m_debug_skip_pc;
    m_debug_skip = false;
    if (!skip && std::binary_search(m_breakpoints.begin(), m_breakpoints.end(), m_s.pc)) {
      m_debug_stop = DebugStop{DebugStop::Kind::kBreakpoint, m_s.pc, 0, false};
      m_debug_skip = true;  // continuing from here runs this instruction
      m_debug_skip_pc = m_s.pc;
      return true;
    }
    // The guest's execute triggers apply here too; a watch or a debugger's trigger stops the hart
    // before the access (kStop, the pc at the instruction).
    const ChunkEnd end = execute_one_checked();
    if (end == ChunkEnd::kStop) {
      m_debug_skip = true;
      m_debug_skip_pc = m_s.pc;
      return true;
    }
    if (m_debug_step) {
      m_debug_stop = DebugStop{DebugStop::Kind::kStep, m_s.pc, 0, false};
      m_debug_skip = true;
      m_debug_skip_pc = m_s.pc;
      return true;
    }
    if (end == ChunkEnd::kWfi) {
      wait_for_interrupt();
      return false;
    }
    if (m_kick.load(std::memory_order_relaxed) || m_park_requested.load(std::memory_order_relaxed))
      return false;
  }
  return false;
}

Hart::ChunkEnd Hart::execute(int64_t budget) {
  if (m_tier) enter_code_epoch();
  uint64_t pc = m_s.pc;
  uint64_t* const x = m_s.x;
  int64_t left = budget;
  ChunkEnd end = ChunkEnd::kBudget;
  m_end_chunk = false;
  // Debug mode and armed triggers interpret (their checks live in the interpreter's paths).
  const bool tier_on = m_tier_on && !m_debug_active && !m_trig_armed;
  uint64_t compiled = 0;  // instructions run in compiled regions this chunk
  // Local copies of the fetch state: members would be reloaded after every register write (the
  // compiler cannot prove x[] does not alias them). Re-read after anything that may change them.
  uint64_t fetch_vpn = m_fetch_vpn;
  Insn* fetch_insns = m_fetch_insns;
#define SYNC_FETCH()             \
  do {                           \
    fetch_vpn = m_fetch_vpn;     \
    fetch_insns = m_fetch_insns; \
  } while (0)

#define NEXT    \
  pc += in.len; \
  continue
#define TRAP goto trap
// After a jump: with the tier on, the target is a block head (counted, maybe compiled).
#define JUMPED                                 \
  if (__builtin_expect(tier_on, 0)) goto head; \
  continue

  if (tier_on) goto head;
  while (left > 0) {
    --left;
    if (__builtin_expect((pc >> 12) != fetch_vpn, 0)) {
      if (!refill_fetch(pc)) TRAP;
      SYNC_FETCH();
    }
    {
      const Insn* ip = &fetch_insns[(pc >> 1) & 2047];
    dispatch:
      const Insn& in = *ip;
      switch (in.op) {
        case Op::kUndecoded:
          CodeCache::decode_slot(m_fetch_page, pc & 0xfff);
          goto dispatch;
        case Op::kCrossPage:
          if (!fetch_cross_page(pc, &m_cross_insn)) TRAP;
          ip = &m_cross_insn;
          goto dispatch;
        case Op::kIllegal:
          raise(kIllegalInstruction, static_cast<uint64_t>(in.imm));
          TRAP;

        case Op::kLui:
          x[in.rd] = static_cast<uint64_t>(in.imm);
          NEXT;
        case Op::kAuipc:
          x[in.rd] = pc + in.imm;
          NEXT;
        case Op::kJal:
          x[in.rd] = pc + in.len;
          pc += in.imm;
          JUMPED;
        case Op::kJalr: {
          const uint64_t target = (x[in.rs1] + in.imm) & ~1ull;
          x[in.rd] = pc + in.len;
          pc = target;
          JUMPED;
        }
        case Op::kBeq:
          pc += x[in.rs1] == x[in.rs2] ? in.imm : in.len;
          JUMPED;
        case Op::kBne:
          pc += x[in.rs1] != x[in.rs2] ? in.imm : in.len;
          JUMPED;
        case Op::kBlt:
          pc += static_cast<int64_t>(x[in.rs1]) < static_cast<int64_t>(x[in.rs2]) ? in.imm : in.len;
          JUMPED;
        case Op::kBge:
          pc += static_cast<int64_t>(x[in.rs1]) >= static_cast<int64_t>(x[in.rs2]) ? in.imm : in.len;
          JUMPED;
        case Op::kBltu:
          pc += x[in.rs1] < x[in.rs2] ? in.imm : in.len;
          JUMPED;
        case Op::kBgeu:
          pc += x[in.rs1] >= x[in.rs2] ? in.imm : in.len;
          JUMPED;

#define LOAD(T)                                 \
  {                                             \
    T v;                                        \
    if (!load<T>(x[in.rs1] + in.imm, &v)) TRAP; \
    x[in.rd] = static_cast<uint64_t>(v);        \
    NEXT;                                       \
  }
        case Op::kLb:
          LOAD(int8_t)
        case Op::kLh:
          LOAD(int16_t)
        case Op::kLw:
          LOAD(int32_t)
        case Op::kLd:
          LOAD(uint64_t)
        case Op::kLbu:
          LOAD(uint8_t)
        case Op::kLhu:
          LOAD(uint16_t)
        case Op::kLwu:
          LOAD(uint32_t)
#undef LOAD
#define STORE(T)                                                        \
  {                                                                     \
    if (!store<T>(x[in.rs1] + in.imm, static_cast<T>(x[in.rs2]))) TRAP; \
    SYNC_FETCH(); /* a store may have dropped the decoded page */       \
    NEXT;                                                               \
  }
        case Op::kSb:
          STORE(uint8_t)
        case Op::kSh:
          STORE(uint16_t)
        case Op::kSw:
          STORE(uint32_t)
        case Op::kSd:
          STORE(uint64_t)
#undef STORE

        case Op::kAddi:
          x[in.rd] = x[in.rs1] + in.imm;
          NEXT;
        case Op::kSlti:
          x[in.rd] = static_cast<int64_t>(x[in.rs1]) < in.imm;
          NEXT;
        case Op::kSltiu:
          x[in.rd] = x[in.rs1] < static_cast<uint64_t>(in.imm);
          NEXT;
        case Op::kXori:
          x[in.rd] = x[in.rs1] ^ in.imm;
          NEXT;
        case Op::kOri:
          x[in.rd] = x[in.rs1] | in.imm;
          NEXT;
        case Op::kAndi:
          x[in.rd] = x[in.rs1] & in.imm;
          NEXT;
        case Op::kSlli:
          x[in.rd] = x[in.rs1] << in.imm;
          NEXT;
        case Op::kSrli:
          x[in.rd] = x[in.rs1] >> in.imm;
          NEXT;
        case Op::kSrai:
          x[in.rd] = static_cast<int64_t>(x[in.rs1]) >> in.imm;
          NEXT;
        case Op::kAdd:
          x[in.rd] = x[in.rs1] + x[in.rs2];
          NEXT;
        case Op::kSub:
          x[in.rd] = x[in.rs1] - x[in.rs2];
          NEXT;
        case Op::kSll:
          x[in.rd] = x[in.rs1] << (x[in.rs2] & 63);
          NEXT;
        case Op::kSlt:
          x[in.rd] = static_cast<int64_t>(x[in.rs1]) < static_cast<int64_t>(x[in.rs2]);
          NEXT;
        case Op::kSltu:
          x[in.rd] = x[in.rs1] < x[in.rs2];
          NEXT;
        case Op::kXor:
          x[in.rd] = x[in.rs1] ^ x[in.rs2];
          NEXT;
        case Op::kSrl:
          x[in.rd] = x[in.rs1] >> (x[in.rs2] & 63);
          NEXT;
        case Op::kSra:
          x[in.rd] = static_cast<int64_t>(x[in.rs1]) >> (x[in.rs2] & 63);
          NEXT;
        case Op::kOr:
          x[in.rd] = x[in.rs1] | x[in.rs2];
          NEXT;
        case Op::kAnd:
          x[in.rd] = x[in.rs1] & x[in.rs2];
          NEXT;
        case Op::kAddiw:
          x[in.rd] = sext32(x[in.rs1] + in.imm);
          NEXT;
        case Op::kSlliw:
          x[in.rd] = sext32(x[in.rs1] << in.imm);
          NEXT;
        case Op::kSrliw:
          x[in.rd] = sext32(static_cast<uint32_t>(x[in.rs1]) >> in.imm);
          NEXT;
        case Op::kSraiw:
          x[in.rd] = static_cast<int32_t>(x[in.rs1]) >> in.imm;
          NEXT;
        case Op::kAddw:
          x[in.rd] = sext32(x[in.rs1] + x[in.rs2]);
          NEXT;
        case Op::kSubw:
          x[in.rd] = sext32(x[in.rs1] - x[in.rs2]);
          NEXT;
        case Op::kSllw:
          x[in.rd] = sext32(x[in.rs1] << (x[in.rs2] & 31));
          NEXT;
        case Op::kSrlw:
          x[in.rd] = sext32(static_cast<uint32_t>(x[in.rs1]) >> (x[in.rs2] & 31));
          NEXT;
        case Op::kSraw:
          x[in.rd] = static_cast<int32_t>(x[in.rs1]) >> (x[in.rs2] & 31);
          NEXT;

        case Op::kMul:
          x[in.rd] = x[in.rs1] * x[in.rs2];
          NEXT;
        case Op::kMulh:
          x[in.rd] = mulh(x[in.rs1], x[in.rs2]);
          NEXT;
        case Op::kMulhsu:
          x[in.rd] = mulhsu(x[in.rs1], x[in.rs2]);
          NEXT;
        case Op::kMulhu:
          x[in.rd] = mulhu(x[in.rs1], x[in.rs2]);
          NEXT;
        case Op::kDiv: {
          const int64_t a = x[in.rs1], b = x[in.rs2];
          x[in.rd] = b == 0 ? ~0ull : (a == INT64_MIN && b == -1) ? a : a / b;
          NEXT;
        }
        case Op::kDivu: {
          const uint64_t a = x[in.rs1], b = x[in.rs2];
          x[in.rd] = b == 0 ? ~0ull : a / b;
          NEXT;
        }
        case Op::kRem: {
          const int64_t a = x[in.rs1], b = x[in.rs2];
          x[in.rd] = b == 0 ? a : (a == INT64_MIN && b == -1) ? 0 : a % b;
          NEXT;
        }
        case Op::kRemu: {
          const uint64_t a = x[in.rs1], b = x[in.rs2];
          x[in.rd] = b == 0 ? a : a % b;
          NEXT;
        }
        case Op::kMulw:
          x[in.rd] = sext32(x[in.rs1] * x[in.rs2]);
          NEXT;
        case Op::kDivw: {
          const int32_t a = x[in.rs1], b = x[in.rs2];
          x[in.rd] = b == 0 ? ~0ull : (a == INT32_MIN && b == -1) ? a : a / b;
          NEXT;
        }
        case Op::kDivuw: {
          const uint32_t a = x[in.rs1], b = x[in.rs2];
          x[in.rd] = b == 0 ? ~0ull : sext32(a / b);
          NEXT;
        }
        case Op::kRemw: {
          const int32_t a = x[in.rs1], b = x[in.rs2];
          x[in.rd] = b == 0 ? a : (a == INT32_MIN && b == -1) ? 0 : a % b;
          NEXT;
        }
        case Op::kRemuw: {
          const uint32_t a = x[in.rs1], b = x[in.rs2];
          x[in.rd] = sext32(b == 0 ? a : a % b);
          NEXT;
        }

        case Op::kFence:
          // The host (x86-64, TSO) already keeps every order but store -> later load; a fence
          // ordering earlier writes before later reads needs a real barrier (Dekker-style code).
          if ((in.imm & 0x50) && (in.imm & 0x0a)) std::atomic_thread_fence(std::memory_order_seq_cst);
          NEXT;

        case Op::kCsrrw:
        case Op::kCsrrs:
        case Op::kCsrrc:
        case Op::kCsrrwi:
        case Op::kCsrrsi:
        case Op::kCsrrci:
          m_chunk_retired = budget - left - 1;
          if (!exec_csr(in)) TRAP;
          SYNC_FETCH();
          pc += in.len;
          if (m_end_chunk) goto out;
          JUMPED;

        case Op::kFenceI:
        case Op::kEcall:
        case Op::kEbreak:
        case Op::kMret:
        case Op::kSret:
        case Op::kWfi:
        case Op::kSfenceVma: {
          m_s.pc = pc;
          // Through a copy: exec_system lives in trap.cpp, and passing &pc itself would make pc
          // address-taken across an opaque call, so the compiler keeps it on the stack in every
          // handler (measured: ~5% fewer MIPS on bench/interp_loop).
          uint64_t next_pc = pc;
          if (!exec_system(in, &next_pc)) TRAP;
          pc = next_pc;
          SYNC_FETCH();
          if (in.op == Op::kWfi) {
            end = ChunkEnd::kWfi;
            goto out;
          }
          if (m_end_chunk) goto out;
          JUMPED;
        }

        case Op::kCompiled: {
          CompiledRegion& region = m_regions[static_cast<size_t>(in.imm)];
          // Too little budget left, or triggers armed / debug mode (tier_on off): interpret it.
          if (left + 1 < kJitMaxRegionInsns || !tier_on) {
            ip = &region.original;
            goto dispatch;
          }
          // Lockstep (jit/lockstep.cpp): the region is also run on the interpreter and compared.
          if (__builtin_expect(m_lockstep != nullptr, 0)) {
            const uint64_t retired = lockstep_region(region.fn, region.entry, pc, left + 1);
            left -= static_cast<int64_t>(retired) - 1;
            compiled += retired;
            pc = m_s.pc;
            SYNC_FETCH();
            if (lockstep_failed()) goto out;
            goto head;
          }
          // Later exits of compiled code to this pc may chain straight here (JitMemView::jump).
          const uint64_t jump_key = m_tlb_gen[kFetch] | static_cast<uint64_t>(m_fetch_ctx);
          m_jump[(pc >> 1) & (kJitJumpEntries - 1)] = JitJumpEntry{pc, jump_key, region.fn, region.entry};
          JitMemView view{m_tlb[m_data_ctx][kRead],
                          m_tlb[m_data_ctx][kWrite],
                          m_tlb_gen[kRead],
                          m_tlb_gen[kWrite],
                          m_jump,
                          jump_key,
                          0,
                          0};
          const JitExit exit = region.fn(&m_s, this, pc & ~0xfffull, left + 1, &view, region.entry);
          const uint64_t retired = exit.retired + view.chained_retired;
          if (__builtin_expect((region.retired += retired) >= m_tier_up_retired, 0) && m_reask &&
              !region.tier_up_asked)
            ask_tier_up(region);
          left -= static_cast<int64_t>(retired) - 1;  // the loop counted one already
          compiled += retired;
          m_region_chains += view.chains;
          ++m_region_exits[exit.status < kJitExitReasons ? exit.status : kJitExitBranch];
          pc = m_s.pc;
          SYNC_FETCH();
          if (exit.status == kJitExitTrap) TRAP;
          goto head;
        }

        default:
          if (in.op >= Op::kLrW && in.op <= Op::kAmomaxuD) {
            m_s.pc = pc;
            if (!exec_amo(in)) TRAP;
            SYNC_FETCH();
            pc += in.len;
            JUMPED;
          }
          m_s.pc = pc;
          if (!exec_fp(in)) TRAP;
          SYNC_FETCH();
          pc += in.len;
          JUMPED;
      }
    }
  trap:
    m_s.pc = pc;
    take_trap(m_trap_cause, m_trap_tval, false);
    SYNC_FETCH();
    pc = m_s.pc;
    // A trap can enable interrupts (mret target, delegation) only through later instructions, so
    // carrying on in this chunk is fine.
    if (!tier_on) continue;
  head:
    // A block head (jump target, trap entry, after an instruction the tier leaves to the
    // interpreter, after a region): count it, and promote it once hot.
    if (__builtin_expect((pc >> 12) != fetch_vpn, 0)) {
      if (!refill_fetch(pc)) continue;  // the loop's own fetch raises the fault again
      SYNC_FETCH();
    }
    {
      const unsigned slot = (pc >> 1) & 2047;
      const Op op = fetch_insns[slot].op;
      if (op != Op::kCompiled && op != Op::kCrossPage) {
        // Promoted at the threshold; in the background (auto) asked again each time the count
        // doubles while the request waits, so the compile threads see which code is still hot.
        const uint16_t heat = ++m_fetch_page->heat[slot];
        if (heat >= m_hot_threshold && (heat == m_hot_threshold || (m_reask && (heat & (heat - 1)) == 0))) {
          promote(pc, heat);
          SYNC_FETCH();
        }
      }
    }
  }
#undef JUMPED
#undef NEXT
#undef TRAP
#undef SYNC_FETCH
out:
  m_s.pc = pc;
  m_s.instret += static_cast<uint64_t>(budget - left);
  if (m_tier) {
    m_running_epoch.store(TierManager::kIdle, std::memory_order_seq_cst);  // no compiled code runs now
    m_compiled_retired += compiled;
    m_tier->count_instructions(static_cast<uint64_t>(budget - left), compiled);
    if (compiled) m_tier->count_exits(m_region_exits, &m_region_chains);
  }
  return end;
}

void Hart::set_tier(TierManager* tier) {
  // Compiled entries and pending results belong to the previous tier's code: forget them.
  flush_decoded();
  {
    std::lock_guard<std::mutex> lock(m_ready_mutex);
    m_ready.clear();
    m_upgrades.clear();
    m_has_ready.store(false, std::memory_order_release);
  }
  if (m_tier) m_tier->detach(&m_running_epoch);
  m_tier = tier;
  if (m_tier) {
    m_tier->attach(&m_running_epoch);
    m_epoch_seen = m_tier->epoch();
  }
  m_tier_on = tier && tier->active();
  m_hot_threshold = tier ? static_cast<uint16_t>(std::clamp<uint32_t>(tier->hot_threshold(), 1, 65535)) : 1;
  m_reask = tier && !tier->synchronous();
  m_tier_up_retired = tier ? tier->tier_up_retired() : ~0ull;
}

bool Hart::form_region(DecodedPage* page, uint32_t entry, std::vector<JitRegionInsn>* out) {
  // Breadth first from the entry over what the tier compiles, following fall-through and direct
  // branch targets inside the page; anything else is where the region exits.
  bool seen[2048] = {};
  uint32_t queue[kJitMaxRegionInsns * 2];
  size_t head = 0, tail = 0;
  queue[tail++] = entry;
  while (head < tail && out->size() < kRegionFormCap) {
    const uint32_t offset = queue[head++];
    if (offset >= 4096 || seen[offset >> 1]) continue;
    seen[offset >> 1] = true;
    if (page->insns[offset >> 1].op == Op::kUndecoded) {
      // Background compiles (auto) take only code that has run (slots are decoded when first
      // fetched): the cold paths a region would otherwise drag in (error handling after a branch)
      // cost compile time and never run; reaching one leaves the region. Tier llvm compiles a
      // block before it first runs, so it decodes ahead.
      if (m_reask && offset != entry) continue;
      CodeCache::decode_slot(page, offset);
    }
    Insn in = page->insns[offset >> 1];
    if (in.op == Op::kCompiled) in = m_regions[static_cast<size_t>(in.imm)].original;
    if (!tier_compiles(in.op) || offset + in.len > 4096) continue;
    out->push_back(JitRegionInsn{offset, 0, in});
    auto push = [&](int64_t target) {
      if (target >= 0 && target < 4096 && tail < sizeof queue / sizeof queue[0])
        queue[tail++] = static_cast<uint32_t>(target);
    };
    if (in.op == Op::kJalr) continue;
    if (in.op == Op::kJal) {
      push(static_cast<int64_t>(offset) + in.imm);
      continue;
    }
    push(offset + in.len);
    if (tier_ends_block(in.op)) push(static_cast<int64_t>(offset) + in.imm);
  }
  std::sort(out->begin(), out->end(),
            [](const JitRegionInsn& a, const JitRegionInsn& b) { return a.offset < b.offset; });
  return !out->empty() && (*out)[0].offset <= entry && seen[entry >> 1] &&
         std::any_of(out->begin(), out->end(), [&](const JitRegionInsn& r) { return r.offset == entry; });
}

void Hart::promote(uint64_t pc, uint32_t heat) {
  if (m_regions.size() >= kMaxRegions) return;
  DecodedPage* page = m_fetch_page;
  const uint32_t offset = pc & 0xfff;
  std::vector<JitRegionInsn> insns;
  if (!form_region(page, offset, &insns)) return;
  if (m_tier->synchronous()) {
    if (RegionEntry code = m_tier->compile_now(insns, offset)) install(page, offset, code);
    return;
  }
  CompileJob job;
  job.insns = std::move(insns);
  job.entry_offset = offset;
  job.ppn = page->ppn;
  job.generation = page->generation;
  job.source = this;
  job.heat = heat;
  job.asked = std::chrono::steady_clock::now();
  job.done = [this](const CompileJob& done, RegionEntry fn) {
    if (!fn) return;
    {
      std::lock_guard<std::mutex> lock(m_ready_mutex);
      m_ready.push_back({done.ppn, done.generation, done.entry_offset, fn});
    }
    m_has_ready.store(true, std::memory_order_release);
  };
  m_tier->enqueue(std::move(job));
}

void Hart::enter_code_epoch() {
  for (;;) {
    const uint64_t epoch = m_tier->epoch();
    if (epoch != m_epoch_seen) {
      // The code cache was flushed: every region of the old code goes (with the decoded pages
      // that hold their markers), and so do results not yet installed.
      flush_decoded();
      std::lock_guard<std::mutex> lock(m_ready_mutex);
      m_ready.clear();
      m_upgrades.clear();
      m_has_ready.store(false, std::memory_order_release);
      m_epoch_seen = epoch;
    }
    m_running_epoch.store(epoch, std::memory_order_seq_cst);
    // A flush between the load and the store above: look again (TierManager frees old code only
    // once no hart publishes an older epoch).
    if (m_tier->epoch() == epoch) return;
  }
}

void Hart::install(DecodedPage* page, uint32_t offset, RegionEntry code) {
  if (code.epoch != m_epoch_seen) return;  // compiled before a flush this hart has seen
  Insn& slot = page->insns[offset >> 1];
  if (slot.op == Op::kCompiled || slot.op == Op::kUndecoded || !tier_compiles(slot.op)) return;
  if (m_regions.size() >= kMaxRegions) return;
  m_regions.push_back({code.fn, code.index, slot});
  m_tier->note_installed();
  slot.op = Op::kCompiled;
  slot.imm = static_cast<int64_t>(m_regions.size() - 1);
}

void Hart::ask_tier_up(CompiledRegion& region) {
  region.tier_up_asked = true;
  m_tier->request_tier_up(region.fn, m_epoch_seen, [this](JitRegionFn old, RegionEntry fresh) {
    {
      std::lock_guard<std::mutex> lock(m_ready_mutex);
      m_upgrades.emplace_back(old, fresh);
    }
    m_has_ready.store(true, std::memory_order_release);
  });
}

void Hart::install_ready() {
  std::vector<ReadyRegion> ready;
  std::vector<std::pair<JitRegionFn, RegionEntry>> upgrades;
  {
    std::lock_guard<std::mutex> lock(m_ready_mutex);
    ready.swap(m_ready);
    upgrades.swap(m_upgrades);
    m_has_ready.store(false, std::memory_order_release);
  }
  // Tier-ups: every entry into the old code moves to the new (same entry indices), and chains
  // through the jump cache stop reaching the old code (the old code stays valid until a flush).
  for (const auto& [old, fresh] : upgrades) {
    if (fresh.epoch != m_epoch_seen) continue;
    for (CompiledRegion& region : m_regions)
      if (region.fn == old) region.fn = fresh.fn;
    for (JitJumpEntry& e : m_jump) e.key = ~0ull;
  }
  for (const ReadyRegion& r : ready) {
    // Only into the page contents it was formed from (a dropped or re-decoded page has moved on).
    DecodedPage* page = m_code.find(r.ppn);
    if (page && page->generation == r.generation && !page->stale) install(page, r.offset, r.code);
  }
}

bool Hart::exec_amo(const Insn& in) {
  const bool dword = in.op >= Op::kLrD;
  const unsigned size = dword ? 8 : 4;
  const Op op = dword ? static_cast<Op>(static_cast<int>(in.op) - 11) : in.op;  // fold D onto W names
  const uint64_t va = m_s.x[in.rs1];
  // Triggers first (an AMO is a load and a store), before the alignment check, as the spec orders.
  if (!check_data_trigger(va, size, op != Op::kScW, op != Op::kLrW)) return false;
  if (op == Op::kLrW) {
    uint8_t* host = host_for_atomic(va, kRead, size);
    if (!host) return false;
    // Safe: naturally aligned, inside RAM (host_for_atomic checked both).
    const uint64_t value = dword ? __atomic_load_n(reinterpret_cast<uint64_t*>(host), __ATOMIC_ACQUIRE)
                                 : __atomic_load_n(reinterpret_cast<uint32_t*>(host), __ATOMIC_ACQUIRE);
    m_s.resv_valid = true;
    m_s.resv_host = reinterpret_cast<uintptr_t>(host);  // one host mapping per RAM byte: identifies it
    m_s.resv_value = value;
    m_s.x[in.rd] = dword ? value : static_cast<uint64_t>(sext32(value));
    return true;
  }
  uint8_t* host = host_for_atomic(va, kWrite, size);
  if (!host) return false;
  const uint64_t src = m_s.x[in.rs2];
  if (op == Op::kScW) {
    bool ok = false;
    if (m_s.resv_valid && m_s.resv_host == reinterpret_cast<uintptr_t>(host)) {
      if (dword) {
        uint64_t expected = m_s.resv_value;
        ok = __atomic_compare_exchange_n(reinterpret_cast<uint64_t*>(host), &expected, src, false,
                                         __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
      } else {
        uint32_t expected = static_cast<uint32_t>(m_s.resv_value);
        ok = __atomic_compare_exchange_n(reinterpret_cast<uint32_t*>(host), &expected,
                                         static_cast<uint32_t>(src), false, __ATOMIC_SEQ_CST,
                                         __ATOMIC_SEQ_CST);
      }
    }
    m_s.resv_valid = false;
    m_s.x[in.rd] = ok ? 0 : 1;
    return true;
  }
  auto apply = [&](auto* p, auto s) -> uint64_t {
    using T = std::remove_pointer_t<decltype(p)>;
    using S = std::make_signed_t<T>;
    switch (op) {
      case Op::kAmoswapW:
        return __atomic_exchange_n(p, s, __ATOMIC_SEQ_CST);
      case Op::kAmoaddW:
        return __atomic_fetch_add(p, s, __ATOMIC_SEQ_CST);
      case Op::kAmoxorW:
        return __atomic_fetch_xor(p, s, __ATOMIC_SEQ_CST);
      case Op::kAmoandW:
        return __atomic_fetch_and(p, s, __ATOMIC_SEQ_CST);
      case Op::kAmoorW:
        return __atomic_fetch_or(p, s, __ATOMIC_SEQ_CST);
      default:
        break;
    }
    T old = __atomic_load_n(p, __ATOMIC_RELAXED);
    for (;;) {
      T desired;
      switch (op) {
        case Op::kAmominW:
          desired = static_cast<S>(old) < static_cast<S>(s) ? old : s;
          break;
        case Op::kAmomaxW:
          desired = static_cast<S>(old) > static_cast<S>(s) ? old : s;
          break;
        case Op::kAmominuW:
          desired = old < s ? old : s;
          break;
        default:
          desired = old > s ? old : s;
          break;
      }
      if (__atomic_compare_exchange_n(p, &old, desired, false, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED))
        return old;
    }
  };
  // Safe: naturally aligned, inside RAM (host_for_atomic checked both).
  if (dword) {
    m_s.x[in.rd] = apply(reinterpret_cast<uint64_t*>(host), static_cast<uint64_t>(src));
  } else {
    m_s.x[in.rd] =
        static_cast<uint64_t>(sext32(apply(reinterpret_cast<uint32_t*>(host), static_cast<uint32_t>(src))));
  }
  return true;
}

uint32_t Hart::f32(unsigned r) const {
  const uint64_t v = m_s.f[r];
  return (v >> 32) == 0xffffffffu ? static_cast<uint32_t>(v) : fpu::kCanonicalNan32;  // NaN boxing
}

void Hart::set_f32(unsigned r, uint32_t v) {
  m_s.f[r] = 0xffffffff00000000ull | v;
  fp_dirty();
}

void Hart::set_f64(unsigned r, uint64_t v) {
  m_s.f[r] = v;
  fp_dirty();
}

void Hart::accrue(uint32_t flags) {
  if (flags) {
    m_s.fflags |= flags;
    fp_dirty();
  }
}

bool Hart::exec_fp(const Insn& in) {
  if (!fp_enabled()) return raise(kIllegalInstruction, 0);
  using fpu::Arith;
  using fpu::IntKind;
  const int rm = in.rm == 7 ? static_cast<int>(m_s.frm) : in.rm;
  auto rm_ok = [&] { return rm <= 4; };
  uint32_t fl = 0;
  uint64_t* const x = m_s.x;
  switch (in.op) {
    case Op::kFlw: {
      uint32_t v;
      if (!load<uint32_t>(x[in.rs1] + in.imm, &v)) return false;
      set_f32(in.rd, v);
      return true;
    }
    case Op::kFld: {
      uint64_t v;
      if (!load<uint64_t>(x[in.rs1] + in.imm, &v)) return false;
      set_f64(in.rd, v);
      return true;
    }
    case Op::kFsw:
      return store<uint32_t>(x[in.rs1] + in.imm, static_cast<uint32_t>(m_s.f[in.rs2]));
    case Op::kFsd:
      return store<uint64_t>(x[in.rs1] + in.imm, m_s.f[in.rs2]);
    case Op::kFmvXW:
      x[in.rd] = static_cast<uint64_t>(sext32(m_s.f[in.rs1]));
      return true;
    case Op::kFmvXD:
      x[in.rd] = m_s.f[in.rs1];
      return true;
    case Op::kFmvWX:
      set_f32(in.rd, static_cast<uint32_t>(x[in.rs1]));
      return true;
    case Op::kFmvDX:
      set_f64(in.rd, x[in.rs1]);
      return true;
    case Op::kFsgnjS:
    case Op::kFsgnjnS:
    case Op::kFsgnjxS: {
      const uint32_t a = f32(in.rs1), b = f32(in.rs2);
      uint32_t sign = b & 0x80000000u;
      if (in.op == Op::kFsgnjnS) sign ^= 0x80000000u;
      if (in.op == Op::kFsgnjxS) sign = (a ^ b) & 0x80000000u;
      set_f32(in.rd, (a & 0x7fffffffu) | sign);
      return true;
    }
    case Op::kFsgnjD:
    case Op::kFsgnjnD:
    case Op::kFsgnjxD: {
      const uint64_t a = m_s.f[in.rs1], b = m_s.f[in.rs2], s = 1ull << 63;
      uint64_t sign = b & s;
      if (in.op == Op::kFsgnjnD) sign ^= s;
      if (in.op == Op::kFsgnjxD) sign = (a ^ b) & s;
      set_f64(in.rd, (a & ~s) | sign);
      return true;
    }
    case Op::kFminS:
    case Op::kFmaxS:
      set_f32(in.rd, fpu::f32_minmax(f32(in.rs1), f32(in.rs2), in.op == Op::kFmaxS, &fl));
      accrue(fl);
      return true;
    case Op::kFminD:
    case Op::kFmaxD:
      set_f64(in.rd, fpu::f64_minmax(m_s.f[in.rs1], m_s.f[in.rs2], in.op == Op::kFmaxD, &fl));
      accrue(fl);
      return true;
    case Op::kFeqS:
      x[in.rd] = fpu::f32_eq(f32(in.rs1), f32(in.rs2), &fl);
      accrue(fl);
      return true;
    case Op::kFltS:
      x[in.rd] = fpu::f32_lt(f32(in.rs1), f32(in.rs2), &fl);
      accrue(fl);
      return true;
    case Op::kFleS:
      x[in.rd] = fpu::f32_le(f32(in.rs1), f32(in.rs2), &fl);
      accrue(fl);
      return true;
    case Op::kFeqD:
      x[in.rd] = fpu::f64_eq(m_s.f[in.rs1], m_s.f[in.rs2], &fl);
      accrue(fl);
      return true;
    case Op::kFltD:
      x[in.rd] = fpu::f64_lt(m_s.f[in.rs1], m_s.f[in.rs2], &fl);
      accrue(fl);
      return true;
    case Op::kFleD:
      x[in.rd] = fpu::f64_le(m_s.f[in.rs1], m_s.f[in.rs2], &fl);
      accrue(fl);
      return true;
    case Op::kFclassS:
      x[in.rd] = fpu::f32_classify(f32(in.rs1));
      return true;
    case Op::kFclassD:
      x[in.rd] = fpu::f64_classify(m_s.f[in.rs1]);
      return true;
    default:
      break;
  }
  // Everything below has a rounding-mode field.
  if (!rm_ok()) return raise(kIllegalInstruction, 0);
  static constexpr IntKind kKinds[4] = {IntKind::kW, IntKind::kWu, IntKind::kL, IntKind::kLu};
  switch (in.op) {
    case Op::kFaddS:
    case Op::kFsubS:
    case Op::kFmulS:
    case Op::kFdivS: {
      static constexpr Arith ops[4] = {Arith::kAdd, Arith::kSub, Arith::kMul, Arith::kDiv};
      const int k = static_cast<int>(in.op) - static_cast<int>(Op::kFaddS);
      set_f32(in.rd, fpu::f32_arith(ops[k], f32(in.rs1), f32(in.rs2), rm, &fl));
      break;
    }
    case Op::kFaddD:
    case Op::kFsubD:
    case Op::kFmulD:
    case Op::kFdivD: {
      static constexpr Arith ops[4] = {Arith::kAdd, Arith::kSub, Arith::kMul, Arith::kDiv};
      const int k = static_cast<int>(in.op) - static_cast<int>(Op::kFaddD);
      set_f64(in.rd, fpu::f64_arith(ops[k], m_s.f[in.rs1], m_s.f[in.rs2], rm, &fl));
      break;
    }
    case Op::kFsqrtS:
      set_f32(in.rd, fpu::f32_sqrt(f32(in.rs1), rm, &fl));
      break;
    case Op::kFsqrtD:
      set_f64(in.rd, fpu::f64_sqrt(m_s.f[in.rs1], rm, &fl));
      break;
    case Op::kFmaddS:
    case Op::kFmsubS:
    case Op::kFnmsubS:
    case Op::kFnmaddS: {
      const int k = static_cast<int>(in.op) - static_cast<int>(Op::kFmaddS);
      // fmadd: a*b+c, fmsub: a*b-c, fnmsub: -(a*b)+c, fnmadd: -(a*b)-c
      set_f32(in.rd, fpu::f32_fma(f32(in.rs1), f32(in.rs2), f32(in.rs3), k >= 2, k == 1 || k == 3, rm, &fl));
      break;
    }
    case Op::kFmaddD:
    case Op::kFmsubD:
    case Op::kFnmsubD:
    case Op::kFnmaddD: {
      const int k = static_cast<int>(in.op) - static_cast<int>(Op::kFmaddD);
      set_f64(in.rd,
              fpu::f64_fma(m_s.f[in.rs1], m_s.f[in.rs2], m_s.f[in.rs3], k >= 2, k == 1 || k == 3, rm, &fl));
      break;
    }
    case Op::kFcvtSD:
      set_f32(in.rd, fpu::f64_to_f32(m_s.f[in.rs1], rm, &fl));
      break;
    case Op::kFcvtDS:
      set_f64(in.rd, fpu::f32_to_f64(f32(in.rs1), &fl));
      break;
    case Op::kFcvtWS:
    case Op::kFcvtWuS:
    case Op::kFcvtLS:
    case Op::kFcvtLuS:
      x[in.rd] = fpu::f32_to_int(f32(in.rs1), kKinds[static_cast<int>(in.op) - static_cast<int>(Op::kFcvtWS)],
                                 rm, &fl);
      break;
    case Op::kFcvtWD:
    case Op::kFcvtWuD:
    case Op::kFcvtLD:
    case Op::kFcvtLuD:
      x[in.rd] = fpu::f64_to_int(m_s.f[in.rs1],
                                 kKinds[static_cast<int>(in.op) - static_cast<int>(Op::kFcvtWD)], rm, &fl);
      break;
    case Op::kFcvtSW:
    case Op::kFcvtSWu:
    case Op::kFcvtSL:
    case Op::kFcvtSLu:
      set_f32(in.rd,
              fpu::int_to_f32(x[in.rs1], kKinds[static_cast<int>(in.op) - static_cast<int>(Op::kFcvtSW)], rm,
                              &fl));
      break;
    case Op::kFcvtDW:
    case Op::kFcvtDWu:
    case Op::kFcvtDL:
    case Op::kFcvtDLu:
      set_f64(in.rd,
              fpu::int_to_f64(x[in.rs1], kKinds[static_cast<int>(in.op) - static_cast<int>(Op::kFcvtDW)], rm,
                              &fl));
      break;
    default:
      return raise(kIllegalInstruction, 0);
  }
  accrue(fl);
  return true;
}

}  // namespace jit
