// Trap entry, interrupts, wfi and the privileged instructions (mret, sret, wfi, sfence.vma,
// fence.i, ecall, ebreak): helpers either execution tier calls with the hart's state in m_s.
#include <chrono>
#include <cstdio>

#include "jit/arch_bits.h"
#include "jit/csr_numbers.h"
#include "jit/hart.h"

namespace jit {

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
  // A bounded sleep that never spins: each round waits on the condition variable, which every wake
  // source signals under m_wait_mutex (set_irq from the CLINT's deadline thread, the PLIC and
  // MSIP; kick; park), and Sstc's stimecmp, the one timer inside the hart, sets the deadline. The
  // bound is only a safety net (wfi may return spuriously): an idle guest between timer events
  // costs no host CPU. It was 10 ms, which woke every idle hart 100 times a second for nothing
  // (bench/lifecycle: 1.2% of a core for an idle 2-hart Linux guest, QEMU 0.1%).
  const auto give_up = clock::now() + std::chrono::seconds(1);
  std::unique_lock<std::mutex> lock(m_wait_mutex);
  for (;;) {
    if (m_kick.load(std::memory_order_acquire) || m_park_requested.load(std::memory_order_acquire)) return;
    if (m_trace_state) dump_state("wfi");
    if (current_mip() & m_s.mie) return;
    auto deadline = give_up;
    // The Sstc deadline, when it falls inside the bound (time_of() of a far-future compare value
    // would overflow).
    const base::Timebase& tb = m_platform.timebase();
    if ((m_s.menvcfg & kMenvcfgSTCE) && (m_s.mie & kSTIP) && m_s.stimecmp - tb.now() < tb.frequency_hz())
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
  if (cause == kEnterDebug && !interrupt) return;  // a trigger stopped the hart for the debugger
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

}  // namespace jit
