// CSR access (Zicsr, Zicntr, the privileged CSRs, PMP configuration; the trigger CSRs are in
// trigger.cpp).
#include "jit/arch_bits.h"
#include "jit/csr_numbers.h"
#include "jit/hart.h"

namespace jit {

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
  if (csr >= csr::kTselect && csr <= csr::kTinfo) return trigger_csr_read(csr, v);
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
  if (csr >= csr::kTselect && csr <= csr::kTinfo) return trigger_csr_write(csr, v);
  return false;
}

}  // namespace jit
