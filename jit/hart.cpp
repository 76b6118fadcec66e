#include "jit/hart.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "jit/csr_numbers.h"
#include "jit/fpu.h"

namespace jit {

namespace {

constexpr uint64_t kSIE = 1ull << 1, kMIE = 1ull << 3, kSPIE = 1ull << 5, kMPIE = 1ull << 7, kSPP = 1ull << 8;
constexpr uint64_t kMPP = 3ull << 11, kFS = 3ull << 13, kMPRV = 1ull << 17, kSUM = 1ull << 18,
                   kMXR = 1ull << 19, kTVM = 1ull << 20, kTW = 1ull << 21, kTSR = 1ull << 22;
constexpr uint64_t kUXL_SXL = (2ull << 32) | (2ull << 34);
constexpr uint64_t kMstatusWritable =
    kSIE | kMIE | kSPIE | kMPIE | kSPP | kMPP | kFS | kMPRV | kSUM | kMXR | kTVM | kTW | kTSR;
constexpr uint64_t kSstatusMask = kSIE | kSPIE | kSPP | kFS | kSUM | kMXR | (3ull << 32) | (1ull << 63);
constexpr uint64_t kSInterrupts = kSSIP | kSTIP | kSEIP;
constexpr uint64_t kAllInterrupts = kSSIP | kMSIP | kSTIP | kMTIP | kSEIP | kMEIP;
constexpr uint64_t kMenvcfgSTCE = 1ull << 63;
// RV64 with I M A F D C S U.
constexpr uint64_t kMisa =
    (2ull << 62) | (1 << 0) | (1 << 2) | (1 << 3) | (1 << 5) | (1 << 8) | (1 << 12) | (1 << 18) | (1 << 20);
constexpr uint64_t kPteV = 1, kPteR = 2, kPteW = 4, kPteX = 8, kPteU = 16, kPteA = 64, kPteD = 128;
constexpr uint64_t kPpnMask = (1ull << 44) - 1;
constexpr int64_t kChunk = 1 << 13;        // instructions between interrupt / kick checks
constexpr size_t kMaxDecodedPages = 2048;  // 32 KiB each: at most 64 MiB of decoded code per hart

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
  reset(0, 0, 0, 0);
}

Hart::~Hart() = default;

void Hart::reset(uint64_t pc, uint64_t a0, uint64_t a1, uint64_t a2) {
  m_s = CpuState{};
  m_s.x[10] = a0;
  m_s.x[11] = a1;
  m_s.x[12] = a2;
  m_s.pc = pc;
  m_s.priv = Priv::kM;
  m_s.mstatus = kUXL_SXL;
  m_pmp_active = m_pmp_locked = false;
  flush_decoded();
  flush_tlb();
  update_contexts();
}

// ---------------------------------------------------------------------------------------------
// Run loop, interrupts, wfi.

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
  for (;;) {
    if (m_kick.exchange(false, std::memory_order_acq_rel)) return;
    if (m_trace_state) dump_state("run");
    check_interrupts();
    if (execute(kChunk) == ChunkEnd::kWfi) wait_for_interrupt();
  }
}

void Hart::step(uint64_t max_instructions) {
  while (max_instructions > 0) {
    check_interrupts();
    const int64_t budget = static_cast<int64_t>(std::min<uint64_t>(max_instructions, kChunk));
    const uint64_t before = m_s.instret;
    const ChunkEnd end = execute(budget);
    const uint64_t done = m_s.instret - before;
    max_instructions -= std::min<uint64_t>(max_instructions, done == 0 ? 1 : done);
    if (end == ChunkEnd::kWfi) return;
  }
}

uint64_t Hart::current_mip() const {
  uint64_t mip = m_mip_ext.load(std::memory_order_acquire) | m_s.mip_sw;
  if (m_s.menvcfg & kMenvcfgSTCE) {
    // Sstc: STIP is (time >= stimecmp), read-only.
    mip &= ~kSTIP;
    if (m_platform.timebase().now() >= m_s.stimecmp) mip |= kSTIP;
  }
  return mip;
}

bool Hart::check_interrupts() {
  const uint64_t pending = current_mip() & m_s.mie;
  if (!pending) return false;
  const bool m_enabled = m_s.priv != Priv::kM || (m_s.mstatus & kMIE);
  const bool s_enabled = m_s.priv == Priv::kU || (m_s.priv == Priv::kS && (m_s.mstatus & kSIE));
  uint64_t take = 0;
  if (m_enabled) take = pending & ~m_s.mideleg;
  if (!take && s_enabled) take = pending & m_s.mideleg;
  if (!take) return false;
  static constexpr uint64_t kOrder[] = {11, 3, 7, 9, 1, 5};  // MEI MSI MTI SEI SSI STI
  for (uint64_t cause : kOrder) {
    if (take & (1ull << cause)) {
      take_trap(cause, 0, true);
      return true;
    }
  }
  return false;
}

void Hart::wait_for_interrupt() {
  using clock = std::chrono::steady_clock;
  // A bounded sleep: wfi may return spuriously, and the bound keeps a machine whose timer device
  // raises MTIP late from stalling. It never spins: each round waits on the condition variable.
  const auto give_up = clock::now() + std::chrono::milliseconds(10);
  std::unique_lock<std::mutex> lock(m_wait_mutex);
  for (;;) {
    if (m_kick.load(std::memory_order_acquire)) return;
    if (m_trace_state) dump_state("wfi");
    if (current_mip() & m_s.mie) return;
    auto deadline = give_up;
    // The Sstc deadline, when it falls inside the bound (time_of() of a far-future compare value
    // would overflow).
    const base::Timebase& tb = m_platform.timebase();
    if ((m_s.menvcfg & kMenvcfgSTCE) && (m_s.mie & kSTIP) && m_s.stimecmp - tb.now() < tb.frequency_hz() / 50)
      deadline = std::min(deadline, tb.time_of(m_s.stimecmp));
    if (clock::now() >= give_up) return;
    m_wait_cv.wait_until(lock, deadline);
  }
}

void Hart::set_priv(Priv p) {
  m_s.priv = p;
  update_contexts();
}

void Hart::update_contexts() {
  const uint64_t mode = m_s.satp >> 60;
  const Priv data_priv = (m_s.mstatus & kMPRV) ? static_cast<Priv>((m_s.mstatus >> 11) & 3) : m_s.priv;
  if (mode == 0 || data_priv == Priv::kM)
    m_data_ctx = kCtxBare;
  else if (data_priv == Priv::kU)
    m_data_ctx = kCtxU;
  else
    m_data_ctx = (m_s.mstatus & kSUM) ? kCtxSSum : kCtxS;
  if (mode == 0 || m_s.priv == Priv::kM)
    m_fetch_ctx = kCtxBare;
  else
    m_fetch_ctx = m_s.priv == Priv::kU ? kCtxU : kCtxS;
  m_fetch_vpn = ~0ull;
}

void Hart::take_trap(uint64_t cause, uint64_t tval, bool interrupt) {
  const uint64_t deleg = interrupt ? m_s.mideleg : m_s.medeleg;
  m_s.resv_valid = false;
  const uint64_t code = (interrupt ? 1ull << 63 : 0) | cause;
  if (m_trace_traps)
    std::fprintf(stderr, "jit: hart %u trap cause %#llx tval %#llx at pc %#llx priv %d\n", m_hart_id,
                 static_cast<unsigned long long>(code), static_cast<unsigned long long>(tval),
                 static_cast<unsigned long long>(m_s.pc), static_cast<int>(m_s.priv));
  if (m_s.priv != Priv::kM && ((deleg >> cause) & 1)) {
    m_s.scause = code;
    m_s.sepc = m_s.pc;
    m_s.stval = tval;
    uint64_t s = m_s.mstatus & ~(kSPP | kSPIE | kSIE);
    if (m_s.mstatus & kSIE) s |= kSPIE;
    if (m_s.priv == Priv::kS) s |= kSPP;
    m_s.mstatus = s;
    m_s.pc = (m_s.stvec & ~3ull) + ((interrupt && (m_s.stvec & 1)) ? 4 * cause : 0);
    set_priv(Priv::kS);
  } else {
    m_s.mcause = code;
    m_s.mepc = m_s.pc;
    m_s.mtval = tval;
    uint64_t s = m_s.mstatus & ~(kMPP | kMPIE | kMIE);
    if (m_s.mstatus & kMIE) s |= kMPIE;
    s |= static_cast<uint64_t>(m_s.priv) << 11;
    m_s.mstatus = s;
    m_s.pc = (m_s.mtvec & ~3ull) + ((interrupt && (m_s.mtvec & 1)) ? 4 * cause : 0);
    set_priv(Priv::kM);
  }
}

// ---------------------------------------------------------------------------------------------
// The interpreter loop.

Hart::ChunkEnd Hart::execute(int64_t budget) {
  uint64_t pc = m_s.pc;
  uint64_t* const x = m_s.x;
  int64_t left = budget;
  ChunkEnd end = ChunkEnd::kBudget;
  m_end_chunk = false;
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
          decode_slot(m_fetch_page, pc & 0xfff);
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
          continue;
        case Op::kJalr: {
          const uint64_t target = (x[in.rs1] + in.imm) & ~1ull;
          x[in.rd] = pc + in.len;
          pc = target;
          continue;
        }
        case Op::kBeq:
          pc += x[in.rs1] == x[in.rs2] ? in.imm : in.len;
          continue;
        case Op::kBne:
          pc += x[in.rs1] != x[in.rs2] ? in.imm : in.len;
          continue;
        case Op::kBlt:
          pc += static_cast<int64_t>(x[in.rs1]) < static_cast<int64_t>(x[in.rs2]) ? in.imm : in.len;
          continue;
        case Op::kBge:
          pc += static_cast<int64_t>(x[in.rs1]) >= static_cast<int64_t>(x[in.rs2]) ? in.imm : in.len;
          continue;
        case Op::kBltu:
          pc += x[in.rs1] < x[in.rs2] ? in.imm : in.len;
          continue;
        case Op::kBgeu:
          pc += x[in.rs1] >= x[in.rs2] ? in.imm : in.len;
          continue;

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
          continue;

        case Op::kFenceI:
        case Op::kEcall:
        case Op::kEbreak:
        case Op::kMret:
        case Op::kSret:
        case Op::kWfi:
        case Op::kSfenceVma: {
          m_s.pc = pc;
          if (!exec_system(in, &pc)) TRAP;
          SYNC_FETCH();
          if (in.op == Op::kWfi) {
            end = ChunkEnd::kWfi;
            goto out;
          }
          if (m_end_chunk) goto out;
          continue;
        }

        default:
          if (in.op >= Op::kLrW && in.op <= Op::kAmomaxuD) {
            m_s.pc = pc;
            if (!exec_amo(in)) TRAP;
            SYNC_FETCH();
            NEXT;
          }
          m_s.pc = pc;
          if (!exec_fp(in)) TRAP;
          SYNC_FETCH();
          NEXT;
      }
    }
  trap:
    m_s.pc = pc;
    take_trap(m_trap_cause, m_trap_tval, false);
    SYNC_FETCH();
    pc = m_s.pc;
    // A trap can enable interrupts (mret target, delegation) only through later instructions, so
    // carrying on in this chunk is fine.
  }
#undef NEXT
#undef TRAP
#undef SYNC_FETCH
out:
  m_s.pc = pc;
  m_s.instret += static_cast<uint64_t>(budget - left);
  return end;
}

// ---------------------------------------------------------------------------------------------
// Instruction fetch and the decoded-page cache.

bool Hart::refill_fetch(uint64_t pc) {
  TlbEntry& e = m_tlb[m_fetch_ctx][kFetch][(pc >> 12) & (kTlbSize - 1)];
  if (e.tag != ((pc >> 12) | m_tlb_gen[kFetch])) {
    uint64_t pa;
    if (!translate(pc, kFetch, &pa, 2)) return false;
    uint8_t* host = m_platform.ram(pa & ~0xfffull, 4096);
    if (!host) return raise(kInstAccessFault, pc);
    DecodedPage* page = decoded_page(pa >> 12, host);
    e.tag = (pc >> 12) | m_tlb_gen[kFetch];
    e.page = page;
  }
  m_fetch_vpn = pc >> 12;
  m_fetch_page = e.page;
  m_fetch_insns = e.page->insns;
  return true;
}

Hart::DecodedPage* Hart::decoded_page(uint64_t ppn, uint8_t* host) {
  auto it = m_pages.find(ppn);
  if (it != m_pages.end()) {
    DecodedPage* page = it->second;
    if (page->stale) {
      page->stale = false;
      if (page->host != host || std::memcmp(page->snapshot, host, 4096) != 0) {
        std::memset(static_cast<void*>(page->insns), 0, sizeof page->insns);
        std::memcpy(page->snapshot, host, 4096);
        page->host = host;
        page->decoded_lines = 0;
      }
    }
    return page;
  }
  if (m_pages.size() >= kMaxDecodedPages) flush_decoded();
  DecodedPage* page;
  if (!m_free_pages.empty()) {
    page = m_free_pages.back();
    m_free_pages.pop_back();
    std::memset(static_cast<void*>(page->insns), 0, sizeof page->insns);
  } else {
    m_page_pool.push_back(std::make_unique<DecodedPage>());
    page = m_page_pool.back().get();
  }
  page->host = host;
  page->ppn = ppn;
  page->decoded_lines = 0;
  page->stale = false;
  std::memcpy(page->snapshot, host, 4096);
  m_pages.emplace(ppn, page);
  // Stores into this page must now take the slow path, which notices they hit code.
  flush_write_tlb();
  return page;
}

void Hart::decode_slot(DecodedPage* page, unsigned offset) {
  uint16_t lo;
  std::memcpy(&lo, page->host + offset, 2);  // offset <= 4094: inside the 4 KiB host page
  Insn& slot = page->insns[offset >> 1];
  if ((lo & 3) != 3) {
    slot = decode(lo);
  } else if (offset == 4094) {
    slot = Insn{};
    slot.op = Op::kCrossPage;
    slot.len = 4;
  } else {
    uint32_t raw;
    std::memcpy(&raw, page->host + offset, 4);
    slot = decode(raw);
  }
  page->decoded_lines |= 1ull << (offset >> 6);
  page->decoded_lines |= 1ull << (std::min(offset + 3, 4095u) >> 6);
  // The snapshot holds exactly the bytes this slot was decoded from (fence_i() compares it).
  std::memcpy(page->snapshot + offset, page->host + offset, std::min(4u, 4096 - offset));
}

void Hart::fence_i() {
  for (auto& [ppn, page] : m_pages) page->stale = true;
  bump_tlb(kFetch);  // the next fetch from each page goes through decoded_page()
  m_fetch_vpn = ~0ull;
}

bool Hart::fetch_cross_page(uint64_t pc, Insn* out) {
  uint16_t lo, hi;
  std::memcpy(&lo, m_fetch_page->host + 4094, 2);
  uint64_t pa;
  if (!translate(pc + 2, kFetch, &pa)) return false;
  const uint8_t* host = m_platform.ram(pa, 2);
  if (!host) return raise(kInstAccessFault, pc + 2);
  std::memcpy(&hi, host, 2);
  *out = decode(static_cast<uint32_t>(lo) | (static_cast<uint32_t>(hi) << 16));
  return true;
}

void Hart::invalidate_page(uint64_t ppn) {
  auto it = m_pages.find(ppn);
  if (it == m_pages.end()) return;
  // The page memory stays valid (it goes to the free list) so the instruction being executed can
  // still read its own Insn after a store that invalidated its page.
  m_free_pages.push_back(it->second);
  m_pages.erase(it);
  bump_tlb(kFetch);
  m_fetch_vpn = ~0ull;
}

void Hart::flush_decoded() {
  for (auto& [ppn, page] : m_pages) m_free_pages.push_back(page);
  m_pages.clear();
  bump_tlb(kFetch);
  m_fetch_vpn = ~0ull;
}

void Hart::note_store(uint64_t pa, unsigned size) {
  if (m_pages.empty()) return;
  auto it = m_pages.find(pa >> 12);
  if (it == m_pages.end()) return;
  const unsigned first = pa & 0xfff, last = std::min<unsigned>(first + size - 1, 4095);
  const uint64_t lines = (~0ull >> (63 - (last >> 6))) & (~0ull << (first >> 6));
  if (it->second->decoded_lines & lines) invalidate_page(pa >> 12);
}

// ---------------------------------------------------------------------------------------------
// Address translation and memory access.

void Hart::bump_tlb(Access access) {
  m_tlb_gen[access] += 1ull << 52;
  if ((m_tlb_gen[access] >> 52) == 0xfff) {
    // Out of generations (0xfff would let a tag equal the all-ones "empty" marker): clear for real.
    for (auto& ctx : m_tlb)
      for (auto& e : ctx[access]) e = TlbEntry{};
    m_tlb_gen[access] = 0;
  }
}

void Hart::flush_tlb() {
  bump_tlb(kRead);
  bump_tlb(kWrite);
  bump_tlb(kFetch);
  m_fetch_vpn = ~0ull;
}

void Hart::flush_write_tlb() {
  bump_tlb(kWrite);
}

bool Hart::fault(Access access, uint64_t va, bool page_fault) {
  static constexpr uint64_t kPage[3] = {kLoadPageFault, kStorePageFault, kInstPageFault};
  static constexpr uint64_t kAccessFault[3] = {kLoadAccessFault, kStoreAccessFault, kInstAccessFault};
  return raise(page_fault ? kPage[access] : kAccessFault[access], va);
}

bool Hart::translate(uint64_t va, Access access, uint64_t* pa, unsigned size) {
  const int ctx = access == kFetch ? m_fetch_ctx : m_data_ctx;
  if (ctx == kCtxBare) {
    *pa = va;
  } else if (!walk(va, access, ctx == kCtxU, ctx == kCtxSSum, pa)) {
    return false;
  }
  if (m_pmp_active && !pmp_allows(*pa, size, access, access == kFetch ? m_s.priv : data_priv()))
    return fault(access, va, false);
  return true;
}

bool Hart::pmp_allows(uint64_t pa, uint64_t size, Access access, Priv priv) const {
  if (!m_pmp_active) return true;
  if (priv == Priv::kM && !m_pmp_locked) return true;
  const uint64_t end = pa + size;  // exclusive; guest addresses are < 2^56, no overflow
  for (unsigned i = 0; i < 16; ++i) {
    const uint8_t cfg = m_s.pmpcfg[i];
    const unsigned mode = (cfg >> 3) & 3;
    if (mode == 0) continue;
    uint64_t lo, hi;  // [lo, hi)
    if (mode == 1) {  // TOR
      lo = i == 0 ? 0 : m_s.pmpaddr[i - 1] << 2;
      hi = m_s.pmpaddr[i] << 2;
    } else if (mode == 2) {  // NA4
      lo = m_s.pmpaddr[i] << 2;
      hi = lo + 4;
    } else {  // NAPOT: trailing ones of pmpaddr encode the size
      const uint64_t a = m_s.pmpaddr[i];
      const int ones = __builtin_ctzll(~a);  // a is < 2^54, so ~a != 0
      if (ones >= 54) {
        lo = 0;
        hi = ~0ull;
      } else {
        const uint64_t bytes = 1ull << (ones + 3);
        lo = (a << 2) & ~(bytes - 1);
        hi = lo + bytes;
      }
    }
    const bool any = pa < hi && end > lo;
    if (!any) continue;
    if (pa < lo || end > hi) return false;  // partially covered: fails (spec)
    if (priv == Priv::kM && !(cfg & 0x80)) return true;
    const uint8_t need = access == kRead ? 1 : access == kWrite ? 2 : 4;
    return (cfg & need) != 0;
  }
  return priv == Priv::kM;
}

void Hart::pmp_changed() {
  m_pmp_active = m_pmp_locked = false;
  for (uint8_t cfg : m_s.pmpcfg) {
    if ((cfg >> 3) & 3) m_pmp_active = true;
    if (cfg & 0x80) m_pmp_locked = true;
  }
  flush_tlb();
}

bool Hart::walk(uint64_t va, Access access, bool user, bool sum, uint64_t* pa) {
  const int levels = (m_s.satp >> 60) == 9 ? 4 : 3;
  const int va_bits = 12 + 9 * levels;
  const uint64_t canonical =
      static_cast<uint64_t>(static_cast<int64_t>(va << (64 - va_bits)) >> (64 - va_bits));
  if (canonical != va) return fault(access, va, true);
  uint64_t table = (m_s.satp & kPpnMask) << 12;
  for (int level = levels - 1; level >= 0; --level) {
    const uint64_t pte_pa = table + ((va >> (12 + 9 * level)) & 511) * 8;
    uint8_t* host = m_platform.ram(pte_pa, 8);
    if (!host || (m_pmp_active && !pmp_allows(pte_pa, 8, kRead, Priv::kS))) return fault(access, va, false);
    // Safe: 8 bytes inside RAM, 8-aligned (table is page aligned); atomic because other harts
    // update A/D bits of shared page tables concurrently.
    auto* slot = reinterpret_cast<uint64_t*>(host);
    uint64_t pte = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
    for (;;) {
      if (!(pte & kPteV) || (!(pte & kPteR) && (pte & kPteW)) || (pte >> 54) != 0)
        return fault(access, va, true);
      if (!(pte & (kPteR | kPteX))) break;  // pointer to the next level
      if (pte & kPteU) {
        if (!user && (access == kFetch || !sum)) return fault(access, va, true);
      } else if (user) {
        return fault(access, va, true);
      }
      bool allowed;
      switch (access) {
        case kFetch:
          allowed = pte & kPteX;
          break;
        case kRead:
          allowed = (pte & kPteR) || ((m_s.mstatus & kMXR) && (pte & kPteX));
          break;
        default:
          allowed = pte & kPteW;
          break;
      }
      if (!allowed) return fault(access, va, true);
      const uint64_t ppn = (pte >> 10) & kPpnMask;
      if (level > 0 && (ppn & ((1ull << (9 * level)) - 1)))
        return fault(access, va, true);  // misaligned superpage
      const uint64_t need = kPteA | (access == kWrite ? kPteD : 0);
      if ((pte & need) != need) {
        if (!__atomic_compare_exchange_n(slot, &pte, pte | need, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
          continue;  // PTE changed under us: check the new value
      }
      const uint64_t offset_bits = 12 + 9 * level;
      *pa = ((ppn >> (9 * level)) << offset_bits) | (va & ((1ull << offset_bits) - 1));
      return true;
    }
    table = ((pte >> 10) & kPpnMask) << 12;
  }
  return fault(access, va, true);
}

void Hart::tlb_insert(Access access, uint64_t va, uint64_t pa, uint8_t* host_page) {
  const int ctx = access == kFetch ? m_fetch_ctx : m_data_ctx;
  // Cache only pages that PMP treats uniformly; others keep taking the checked slow path.
  if (m_pmp_active && !pmp_allows(pa & ~0xfffull, 4096, access, access == kFetch ? m_s.priv : data_priv()))
    return;
  TlbEntry& e = m_tlb[ctx][access][(va >> 12) & (kTlbSize - 1)];
  e.tag = (va >> 12) | m_tlb_gen[access];
  e.addend = reinterpret_cast<uintptr_t>(host_page) - (va & ~0xfffull);
  e.page = nullptr;
}

bool Hart::load_slow(uint64_t va, void* out, unsigned size) {
  auto* bytes = static_cast<uint8_t*>(out);
  if ((va & 0xfff) + size > 4096) {
    // Misaligned across pages: translate both first so a fault leaves nothing half done.
    uint64_t pa0, pa1;
    if (!translate(va, kRead, &pa0)) return false;
    const uint64_t va1 = (va | 0xfff) + 1;
    if (!translate(va1, kRead, &pa1)) return false;
    const unsigned n0 = static_cast<unsigned>(va1 - va);
    for (unsigned i = 0; i < size; ++i) {
      const uint64_t pa = i < n0 ? pa0 + i : pa1 + (i - n0);
      if (const uint8_t* host = m_platform.ram(pa, 1)) {
        bytes[i] = *host;
      } else if (!m_platform.ops().mmio_read(pa, {bytes + i, 1})) {
        return raise(kLoadAccessFault, va);
      }
    }
    return true;
  }
  uint64_t pa;
  if (!translate(va, kRead, &pa, size)) return false;
  if (uint8_t* page = m_platform.ram(pa & ~0xfffull, 4096)) {
    std::memcpy(out, page + (pa & 0xfff), size);
    tlb_insert(kRead, va, pa, page);
    return true;
  }
  if (const uint8_t* host = m_platform.ram(pa, size)) {  // RAM region smaller than a page
    std::memcpy(out, host, size);
    return true;
  }
  std::memset(out, 0, size);
  if (!m_platform.ops().mmio_read(pa, {bytes, size})) return raise(kLoadAccessFault, va);
  if (m_trace_mmio) trace_mmio("read", pa, bytes, size);
  return true;
}

bool Hart::store_slow(uint64_t va, const void* in, unsigned size) {
  const auto* bytes = static_cast<const uint8_t*>(in);
  if ((va & 0xfff) + size > 4096) {
    uint64_t pa0, pa1;
    if (!translate(va, kWrite, &pa0)) return false;
    const uint64_t va1 = (va | 0xfff) + 1;
    if (!translate(va1, kWrite, &pa1)) return false;
    const unsigned n0 = static_cast<unsigned>(va1 - va);
    for (unsigned i = 0; i < size; ++i) {
      const uint64_t pa = i < n0 ? pa0 + i : pa1 + (i - n0);
      if (uint8_t* host = m_platform.ram(pa, 1)) {
        note_store(pa, 1);
        *host = bytes[i];
      } else if (!m_platform.ops().mmio_write(pa, {bytes + i, 1})) {
        return raise(kStoreAccessFault, va);
      }
    }
    return true;
  }
  uint64_t pa;
  if (!translate(va, kWrite, &pa, size)) return false;
  if (uint8_t* page = m_platform.ram(pa & ~0xfffull, 4096)) {
    note_store(pa, size);
    std::memcpy(page + (pa & 0xfff), in, size);
    // Only pages without decoded code are cached for writes (see decoded_page()).
    if (m_pages.find(pa >> 12) == m_pages.end()) tlb_insert(kWrite, va, pa, page);
    return true;
  }
  if (uint8_t* host = m_platform.ram(pa, size)) {
    note_store(pa, size);
    std::memcpy(host, in, size);
    return true;
  }
  if (m_trace_mmio) trace_mmio("write", pa, bytes, size);
  if (!m_platform.ops().mmio_write(pa, {bytes, size})) return raise(kStoreAccessFault, va);
  return true;
}

uint8_t* Hart::host_for_atomic(uint64_t va, Access access, unsigned size) {
  const bool is_lr = access == kRead;
  if (va & (size - 1)) {
    raise(is_lr ? kLoadMisaligned : kStoreMisaligned, va);
    return nullptr;
  }
  const TlbEntry& e = m_tlb[m_data_ctx][access][(va >> 12) & (kTlbSize - 1)];
  if (e.tag == ((va >> 12) | m_tlb_gen[access])) return reinterpret_cast<uint8_t*>(e.addend + va);
  uint64_t pa;
  if (!translate(va, access, &pa, size)) return nullptr;
  uint8_t* host = m_platform.ram(pa, size);
  if (!host) {
    raise(is_lr ? kLoadAccessFault : kStoreAccessFault, va);
    return nullptr;
  }
  if (access == kWrite) note_store(pa, size);
  return host;
}

// ---------------------------------------------------------------------------------------------
// System instructions.

bool Hart::exec_system(const Insn& in, uint64_t* pc) {
  switch (in.op) {
    case Op::kFenceI:
      fence_i();
      flush_write_tlb();
      *pc += in.len;
      m_end_chunk = true;
      return true;
    case Op::kEcall:
      return raise(kEcallU + static_cast<uint64_t>(m_s.priv), 0);
    case Op::kEbreak:
      return raise(kBreakpoint, *pc);
    case Op::kMret: {
      if (m_s.priv != Priv::kM) return raise(kIllegalInstruction, csr::kMretBits);
      const Priv prev = static_cast<Priv>((m_s.mstatus >> 11) & 3);
      uint64_t s = m_s.mstatus & ~(kMPP | kMIE | kMPIE);
      if (m_s.mstatus & kMPIE) s |= kMIE;
      s |= kMPIE;
      if (prev != Priv::kM) s &= ~kMPRV;
      m_s.mstatus = s;
      *pc = m_s.mepc;
      set_priv(prev);
      m_end_chunk = true;
      return true;
    }
    case Op::kSret: {
      if (m_s.priv == Priv::kU || (m_s.priv == Priv::kS && (m_s.mstatus & kTSR)))
        return raise(kIllegalInstruction, csr::kSretBits);
      const Priv prev = (m_s.mstatus & kSPP) ? Priv::kS : Priv::kU;
      uint64_t s = m_s.mstatus & ~(kSPP | kSIE | kSPIE | kMPRV);
      if (m_s.mstatus & kSPIE) s |= kSIE;
      s |= kSPIE;
      m_s.mstatus = s;
      *pc = m_s.sepc;
      set_priv(prev);
      m_end_chunk = true;
      return true;
    }
    case Op::kWfi:
      if (m_s.priv == Priv::kU || (m_s.priv == Priv::kS && (m_s.mstatus & kTW)))
        return raise(kIllegalInstruction, csr::kWfiBits);
      *pc += in.len;
      return true;
    case Op::kSfenceVma:
      if (m_s.priv == Priv::kU || (m_s.priv == Priv::kS && (m_s.mstatus & kTVM)))
        return raise(kIllegalInstruction, csr::kSfenceVmaBits | (in.rs1 << 15) | (in.rs2 << 20));
      flush_tlb();
      *pc += in.len;
      return true;
    default:
      return raise(kIllegalInstruction, 0);
  }
}

bool Hart::exec_csr(const Insn& in) {
  const uint16_t csr = static_cast<uint16_t>(in.imm);
  const bool imm_form = in.op >= Op::kCsrrwi;
  const uint64_t src = imm_form ? in.rs1 : m_s.x[in.rs1];
  const Op base = imm_form ? static_cast<Op>(static_cast<int>(in.op) - 3) : in.op;
  const bool write = base == Op::kCsrrw || in.rs1 != 0;
  // Raw bits for mtval on illegal-instruction (OpenSBI decodes them to emulate CSRs).
  static constexpr uint32_t kF3[6] = {1, 2, 3, 5, 6, 7};
  const uint32_t raw = (static_cast<uint32_t>(csr) << 20) | (static_cast<uint32_t>(in.rs1) << 15) |
                       (kF3[static_cast<int>(in.op) - static_cast<int>(Op::kCsrrw)] << 12) |
                       ((in.rd == kZeroSink ? 0u : in.rd) << 7) | 0x73;
  const unsigned min_priv = (csr >> 8) & 3;
  if (min_priv > static_cast<unsigned>(m_s.priv)) return raise(kIllegalInstruction, raw);
  if (write && (csr >> 10) == 3) return raise(kIllegalInstruction, raw);
  uint64_t old = 0;
  if (!csr_read(csr, &old)) return raise(kIllegalInstruction, raw);
  if (write) {
    // Priv spec 3.1.9: only the software-writable SEIP bit takes part in a CSRRS/CSRRC of mip. Using
    // the read value (which ORs in the PLIC's line) would latch a passing external interrupt into
    // the software bit for good: OpenSBI's `csrs mip, SSIP` IPI injection does exactly that.
    const uint64_t rmw = csr == csr::kMip ? (old & ~kSEIP) | (m_s.mip_sw & kSEIP) : old;
    uint64_t value = base == Op::kCsrrw ? src : base == Op::kCsrrs ? (rmw | src) : (rmw & ~src);
    if (!csr_write(csr, value)) return raise(kIllegalInstruction, raw);
  }
  m_s.x[in.rd] = old;
  return true;
}

bool Hart::counter_allowed(uint16_t csr) const {
  const unsigned bit = csr & 31;
  if (m_s.priv == Priv::kM) return true;
  if (!((m_s.mcounteren >> bit) & 1)) return false;
  if (m_s.priv == Priv::kU && !((m_s.scounteren >> bit) & 1)) return false;
  return true;
}

bool Hart::read_csr(uint16_t csr, uint64_t* value) {
  const Priv saved = m_s.priv;
  m_s.priv = Priv::kM;
  m_chunk_retired = 0;
  const bool ok = csr_read(csr, value);
  m_s.priv = saved;
  return ok;
}

bool Hart::csr_read(uint16_t csr, uint64_t* v) {
  const uint64_t retired = m_s.instret + static_cast<uint64_t>(m_chunk_retired);
  switch (csr) {
    case csr::kFflags:
      if (!fp_enabled()) return false;
      *v = m_s.fflags;
      return true;
    case csr::kFrm:
      if (!fp_enabled()) return false;
      *v = m_s.frm;
      return true;
    case csr::kFcsr:
      if (!fp_enabled()) return false;
      *v = (m_s.frm << 5) | m_s.fflags;
      return true;
    case csr::kCycle:
      if (!counter_allowed(csr)) return false;
      *v = retired + m_s.cycle_offset;
      return true;
    case csr::kTime:
      if (!counter_allowed(csr)) return false;
      *v = m_platform.timebase().now();
      return true;
    case csr::kInstret:
      if (!counter_allowed(csr)) return false;
      *v = retired;
      return true;
    case csr::kSstatus: {
      const uint64_t s = m_s.mstatus | kUXL_SXL;
      *v = (s & kSstatusMask) | (((s & kFS) == kFS) ? 1ull << 63 : 0);
      return true;
    }
    case csr::kSie:
      *v = m_s.mie & m_s.mideleg;
      return true;
    case csr::kStvec:
      *v = m_s.stvec;
      return true;
    case csr::kScounteren:
      *v = m_s.scounteren;
      return true;
    case csr::kSenvcfg:
      *v = m_s.senvcfg;
      return true;
    case csr::kSscratch:
      *v = m_s.sscratch;
      return true;
    case csr::kSepc:
      *v = m_s.sepc;
      return true;
    case csr::kScause:
      *v = m_s.scause;
      return true;
    case csr::kStval:
      *v = m_s.stval;
      return true;
    case csr::kSip:
      *v = current_mip() & m_s.mideleg;
      return true;
    case csr::kStimecmp:
      if (!m_platform.config().sstc) return false;
      if (m_s.priv == Priv::kS && (!(m_s.menvcfg & kMenvcfgSTCE) || !(m_s.mcounteren & 2))) return false;
      *v = m_s.stimecmp;
      return true;
    case csr::kSatp:
      if (m_s.priv == Priv::kS && (m_s.mstatus & kTVM)) return false;
      *v = m_s.satp;
      return true;
    case csr::kMvendorid:
    case csr::kMarchid:
    case csr::kMimpid:
    case csr::kMconfigptr:
      *v = 0;
      return true;
    case csr::kMhartid:
      *v = m_hart_id;
      return true;
    case csr::kMstatus:
      *v = m_s.mstatus | kUXL_SXL | (((m_s.mstatus & kFS) == kFS) ? 1ull << 63 : 0);
      return true;
    case csr::kMisa:
      *v = kMisa;
      return true;
    case csr::kMedeleg:
      *v = m_s.medeleg;
      return true;
    case csr::kMideleg:
      *v = m_s.mideleg;
      return true;
    case csr::kMie:
      *v = m_s.mie;
      return true;
    case csr::kMtvec:
      *v = m_s.mtvec;
      return true;
    case csr::kMcounteren:
      *v = m_s.mcounteren;
      return true;
    case csr::kMenvcfg:
      *v = m_s.menvcfg;
      return true;
    case csr::kMcountinhibit:
      *v = m_s.mcountinhibit;
      return true;
    case csr::kMscratch:
      *v = m_s.mscratch;
      return true;
    case csr::kMepc:
      *v = m_s.mepc;
      return true;
    case csr::kMcause:
      *v = m_s.mcause;
      return true;
    case csr::kMtval:
      *v = m_s.mtval;
      return true;
    case csr::kMip:
      *v = current_mip();
      return true;
    case csr::kMcycle:
      *v = retired + m_s.cycle_offset;
      return true;
    case csr::kMinstret:
      *v = retired;
      return true;
  }
  if (csr >= csr::kHpmcounter3 && csr <= csr::kHpmcounter31) {  // hpmcounter3..31: present, always zero
    if (!counter_allowed(csr)) return false;
    *v = 0;
    return true;
  }
  if ((csr >= csr::kMhpmcounter3 && csr <= csr::kMhpmcounter31) ||
      (csr >= csr::kMhpmevent3 && csr <= csr::kMhpmevent31)) {  // mhpmcounter/mhpmevent
    *v = 0;
    return true;
  }
  if (csr >= csr::kPmpcfg0 && csr <= csr::kPmpcfg15) {  // pmpcfg: RV64 has only the even ones
    if (csr & 1) return false;
    const unsigned first = (csr - csr::kPmpcfg0) * 4;
    uint64_t value = 0;
    for (unsigned i = 0; i < 8; ++i)
      if (first + i < 16) value |= static_cast<uint64_t>(m_s.pmpcfg[first + i]) << (8 * i);
    *v = value;
    return true;
  }
  if (csr >= csr::kPmpaddr0 && csr <= csr::kPmpaddr63) {
    const unsigned i = csr - csr::kPmpaddr0;
    *v = i < 16 ? m_s.pmpaddr[i] : 0;
    return true;
  }
  return false;
}

bool Hart::csr_write(uint16_t csr, uint64_t v) {
  switch (csr) {
    case csr::kFflags:
      m_s.fflags = v & 31;
      fp_dirty();
      return true;
    case csr::kFrm:
      m_s.frm = v & 7;
      fp_dirty();
      return true;
    case csr::kFcsr:
      m_s.fflags = v & 31;
      m_s.frm = (v >> 5) & 7;
      fp_dirty();
      return true;
    case csr::kSstatus: {
      const uint64_t mask = kSstatusMask & kMstatusWritable;
      const uint64_t old = m_s.mstatus;
      m_s.mstatus = (m_s.mstatus & ~mask) | (v & mask);
      if ((old ^ m_s.mstatus) & kMXR) flush_tlb();
      update_contexts();
      m_end_chunk = true;
      return true;
    }
    case csr::kSie:
      m_s.mie = (m_s.mie & ~m_s.mideleg) | (v & m_s.mideleg & kSInterrupts);
      m_end_chunk = true;
      return true;
    case csr::kStvec:
      m_s.stvec = v & ~2ull;
      return true;
    case csr::kScounteren:
      m_s.scounteren = static_cast<uint32_t>(v);
      return true;
    case csr::kSenvcfg:
      m_s.senvcfg = v & 1;
      return true;
    case csr::kSscratch:
      m_s.sscratch = v;
      return true;
    case csr::kSepc:
      m_s.sepc = v & ~1ull;
      return true;
    case csr::kScause:
      m_s.scause = v;
      return true;
    case csr::kStval:
      m_s.stval = v;
      return true;
    case csr::kSip:
      if (m_s.mideleg & kSSIP) m_s.mip_sw = (m_s.mip_sw & ~kSSIP) | (v & kSSIP);
      m_end_chunk = true;
      return true;
    case csr::kStimecmp:
      if (!m_platform.config().sstc) return false;
      if (m_s.priv == Priv::kS && (!(m_s.menvcfg & kMenvcfgSTCE) || !(m_s.mcounteren & 2))) return false;
      m_s.stimecmp = v;
      m_end_chunk = true;
      return true;
    case csr::kSatp: {
      if (m_s.priv == Priv::kS && (m_s.mstatus & kTVM)) return false;
      const uint64_t mode = v >> 60;
      if (mode != 0 && mode != 8 && !(mode == 9 && m_platform.config().sv48))
        return true;                             // unsupported mode: write ignored (WARL)
      m_s.satp = (mode << 60) | (v & kPpnMask);  // no ASID bits implemented
      flush_tlb();
      update_contexts();
      m_end_chunk = true;
      return true;
    }
    case csr::kMstatus: {
      const uint64_t old = m_s.mstatus;
      uint64_t s = (m_s.mstatus & ~kMstatusWritable) | (v & kMstatusWritable);
      if (((s >> 11) & 3) == 2) s = (s & ~kMPP) | (old & kMPP);  // MPP=2 is reserved: keep old
      m_s.mstatus = s;
      if ((old ^ m_s.mstatus) & kMXR) flush_tlb();
      update_contexts();
      m_end_chunk = true;
      return true;
    }
    case csr::kMisa:
      return true;  // misa is read-only here (WARL)
    case csr::kMedeleg:
      m_s.medeleg = v & 0xb3ff;
      return true;  // not ecall-from-M (11), no reserved 10/14
    case csr::kMideleg:
      m_s.mideleg = v & kSInterrupts;
      m_end_chunk = true;
      return true;
    case csr::kMie:
      m_s.mie = v & kAllInterrupts;
      m_end_chunk = true;
      return true;
    case csr::kMtvec:
      m_s.mtvec = (v & 3) >= 2 ? (v & ~3ull) : v;
      return true;
    case csr::kMcounteren:
      m_s.mcounteren = static_cast<uint32_t>(v);
      return true;
    case csr::kMenvcfg:
      m_s.menvcfg = v & ((m_platform.config().sstc ? kMenvcfgSTCE : 0) | 1);
      m_end_chunk = true;
      return true;
    case csr::kMcountinhibit:
      m_s.mcountinhibit = static_cast<uint32_t>(v) & ~2u;
      return true;
    case csr::kMscratch:
      m_s.mscratch = v;
      return true;
    case csr::kMepc:
      m_s.mepc = v & ~1ull;
      return true;
    case csr::kMcause:
      m_s.mcause = v;
      return true;
    case csr::kMtval:
      m_s.mtval = v;
      return true;
    case csr::kMip: {
      uint64_t mask = kSSIP | kSEIP | ((m_s.menvcfg & kMenvcfgSTCE) ? 0 : kSTIP);
      m_s.mip_sw = (m_s.mip_sw & ~mask) | (v & mask);
      m_end_chunk = true;
      return true;
    }
    case csr::kMcycle:
      m_s.cycle_offset = v - (m_s.instret + m_chunk_retired);
      return true;
    case csr::kMinstret:
      m_s.instret = v - m_chunk_retired - 1;
      return true;  // the write's own retirement follows
  }
  if ((csr >= csr::kMhpmcounter3 && csr <= csr::kMhpmcounter31) ||
      (csr >= csr::kMhpmevent3 && csr <= csr::kMhpmevent31))
    return true;  // hardwired zero
  if (csr >= csr::kPmpcfg0 && csr <= csr::kPmpcfg15) {
    if (csr & 1) return false;
    const unsigned first = (csr - csr::kPmpcfg0) * 4;
    for (unsigned i = 0; i < 8 && first + i < 16; ++i) {
      if (m_s.pmpcfg[first + i] & 0x80) continue;  // locked
      uint8_t cfg = static_cast<uint8_t>(v >> (8 * i)) & 0x9f;
      if ((cfg & 3) == 2) cfg &= ~3;  // W without R is reserved
      m_s.pmpcfg[first + i] = cfg;
    }
    pmp_changed();
    return true;
  }
  if (csr >= csr::kPmpaddr0 && csr <= csr::kPmpaddr63) {
    const unsigned i = csr - csr::kPmpaddr0;
    if (i >= 16) return true;
    const bool locked = (m_s.pmpcfg[i] & 0x80) ||
                        (i + 1 < 16 && (m_s.pmpcfg[i + 1] & 0x80) && ((m_s.pmpcfg[i + 1] >> 3) & 3) == 1);
    if (!locked) m_s.pmpaddr[i] = v & ((1ull << 54) - 1);
    pmp_changed();
    return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// A extension.

bool Hart::exec_amo(const Insn& in) {
  const bool dword = in.op >= Op::kLrD;
  const unsigned size = dword ? 8 : 4;
  const Op op = dword ? static_cast<Op>(static_cast<int>(in.op) - 11) : in.op;  // fold D onto W names
  const uint64_t va = m_s.x[in.rs1];
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

// ---------------------------------------------------------------------------------------------
// F and D.

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
