// Address translation (Sv39/Sv48 walks with A/D updates), PMP, the TLBs and the slow paths of
// loads and stores, plus their C entry points for compiled code (jit/mmu.h).
#include "jit/mmu.h"

#include <cstring>

#include "jit/arch_bits.h"
#include "jit/hart.h"

namespace jit {

void Hart::bump_tlb(Access access) {
  m_tlb_gen[access] += 1ull << 52;
  if ((m_tlb_gen[access] >> 52) == 0xfff) {
    // Out of generations (0xfff would let a tag equal the all-ones "empty" marker): clear for real.
    for (auto& ctx : m_tlb)
      for (auto& e : ctx[access]) e = TlbEntry{};
    m_tlb_gen[access] = 0;
    // Jump cache keys hold the fetch generation: the old ones could match again.
    if (access == kFetch)
      for (JitJumpEntry& e : m_jump) e.key = ~0ull;
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
  // A debugger's watched pages stay out of the data TLBs: every access to them takes the slow path,
  // which checks the watches.
  if (access != kFetch && !m_watches.empty() && page_watched(va)) return;
  // The same for pages a load/store trigger covers.
  if (access != kFetch && m_trig_data && page_triggered(va)) return;
  // Lockstep: every store takes the slow path, which logs it (jit/lockstep.h).
  if (access == kWrite && __builtin_expect(m_lockstep != nullptr, 0)) return;
  // Cache only pages that PMP treats uniformly; others keep taking the checked slow path.
  if (m_pmp_active && !pmp_allows(pa & ~0xfffull, 4096, access, access == kFetch ? m_s.priv : data_priv()))
    return;
  TlbEntry& e = m_tlb[ctx][access][(va >> 12) & (kTlbSize - 1)];
  e.tag = (va >> 12) | m_tlb_gen[access];
  e.addend = reinterpret_cast<uintptr_t>(host_page) - (va & ~0xfffull);
  e.page = nullptr;
}

bool Hart::load_slow(uint64_t va, void* out, unsigned size) {
  if (!check_data_trigger(va, size, true, false)) return false;  // before the access (and its faults)
  if (!check_watch(va, size, false)) return false;
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
      } else if (lockstep_device_stop()) {
        return false;
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
  if (lockstep_device_stop()) return false;
  std::memset(out, 0, size);
  if (!m_platform.ops().mmio_read(pa, {bytes, size})) return raise(kLoadAccessFault, va);
  if (m_trace_mmio) trace_mmio("read", pa, bytes, size);
  return true;
}

bool Hart::store_slow(uint64_t va, const void* in, unsigned size) {
  if (!check_data_trigger(va, size, false, true)) return false;
  if (!check_watch(va, size, true)) return false;
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
        if (__builtin_expect(m_lockstep != nullptr, 0)) m_lockstep->note_store(pa, host, bytes + i, 1);
        *host = bytes[i];
      } else if (lockstep_device_stop()) {
        return false;
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
    if (__builtin_expect(m_lockstep != nullptr, 0)) m_lockstep->note_store(pa, page + (pa & 0xfff), in, size);
    std::memcpy(page + (pa & 0xfff), in, size);
    // Only pages without decoded code are cached for writes (see decoded_page()).
    if (!m_code.holds(pa >> 12)) tlb_insert(kWrite, va, pa, page);
    return true;
  }
  if (uint8_t* host = m_platform.ram(pa, size)) {
    note_store(pa, size);
    if (__builtin_expect(m_lockstep != nullptr, 0)) m_lockstep->note_store(pa, host, in, size);
    std::memcpy(host, in, size);
    return true;
  }
  if (lockstep_device_stop()) return false;
  if (m_trace_mmio) trace_mmio("write", pa, bytes, size);
  if (!m_platform.ops().mmio_write(pa, {bytes, size})) return raise(kStoreAccessFault, va);
  return true;
}

uint8_t* Hart::host_for_atomic(uint64_t va, Access access, unsigned size) {
  const bool is_lr = access == kRead;
  if (!check_watch(va, size, !is_lr)) return nullptr;
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
  if (access == kWrite && __builtin_expect(m_lockstep != nullptr, 0)) m_lockstep->note_atomic(pa, host, size);
  return host;
}

}  // namespace jit

extern "C" {

int jit_mmu_load(jit::Hart* hart, uint64_t va, void* out, uint32_t size) {
  if (size != 1 && size != 2 && size != 4 && size != 8) return hart->raise_access_fault(va, false);
  return hart->load_slow(va, out, size) ? 1 : 0;
}

int jit_mmu_store(jit::Hart* hart, uint64_t va, const void* in, uint32_t size) {
  if (size != 1 && size != 2 && size != 4 && size != 8) return hart->raise_access_fault(va, true);
  return hart->store_slow(va, in, size) ? 1 : 0;
}

int jit_mmu_amo(jit::Hart* hart, uint32_t op, uint32_t rd, uint32_t rs1, uint32_t rs2) {
  jit::Insn in{};
  in.op = static_cast<jit::Op>(op);
  // Bounds: a corrupt call must not index outside x[33] or name a non-atomic op.
  if (op < static_cast<uint32_t>(jit::Op::kLrW) || op > static_cast<uint32_t>(jit::Op::kAmomaxuD) ||
      rd > jit::kZeroSink || rs1 > 31 || rs2 > 31)
    return hart->raise_illegal();
  in.rd = static_cast<uint8_t>(rd);
  in.rs1 = static_cast<uint8_t>(rs1);
  in.rs2 = static_cast<uint8_t>(rs2);
  return hart->exec_amo(in) ? 1 : 0;
}

int jit_tier_load(void* opaque, uint64_t va, void* out, uint32_t size) {
  return jit_mmu_load(static_cast<jit::Hart*>(opaque), va, out, size);
}

int jit_tier_store(void* opaque, uint64_t va, const void* in, uint32_t size) {
  auto* hart = static_cast<jit::Hart*>(opaque);
  const uint64_t epoch = hart->code_epoch();
  if (!jit_mmu_store(hart, va, in, size)) return 0;
  return hart->code_epoch() == epoch ? 1 : 2;
}

int jit_tier_exec(void* opaque, uint64_t pc, uint64_t insn_lo, uint64_t insn_hi) {
  auto* hart = static_cast<jit::Hart*>(opaque);
  jit::Insn in;
  static_assert(sizeof in == 2 * sizeof insn_lo);
  std::memcpy(reinterpret_cast<char*>(&in), &insn_lo, sizeof insn_lo);
  std::memcpy(reinterpret_cast<char*>(&in) + sizeof insn_lo, &insn_hi, sizeof insn_hi);
  // Only ops the tier calls out for (decode's own output, compiled into the region): anything else
  // would be a tier bug, answered as an illegal instruction rather than run.
  if (!jit::tier_calls_out(in.op)) return hart->raise_illegal();
  const uint64_t epoch = hart->code_epoch();
  if (!hart->exec_for_tier(in, pc)) return 0;
  return hart->code_epoch() == epoch ? 1 : 2;
}

void jit_take_pending_trap(jit::Hart* hart) {
  hart->take_pending_trap();
}

}  // extern "C"

namespace jit {

bool Hart::debug_translate(uint64_t va, uint64_t* pa) const {
  const Priv priv = data_priv();
  const uint64_t mode = m_s.satp >> 60;
  if (priv == Priv::kM || mode == 0) {
    *pa = va;
    return true;
  }
  const int levels = mode == 9 ? 4 : 3;
  const int va_bits = 12 + 9 * levels;
  if (static_cast<uint64_t>(static_cast<int64_t>(va << (64 - va_bits)) >> (64 - va_bits)) != va) return false;
  uint64_t table = (m_s.satp & kPpnMask) << 12;
  for (int level = levels - 1; level >= 0; --level) {
    const uint8_t* host = m_platform.ram(table + ((va >> (12 + 9 * level)) & 511) * 8, 8);
    if (!host) return false;
    // Safe: 8 aligned bytes inside RAM; atomic as in walk() (other harts update A/D bits).
    const uint64_t pte = __atomic_load_n(reinterpret_cast<const uint64_t*>(host), __ATOMIC_ACQUIRE);
    if (!(pte & kPteV) || (!(pte & kPteR) && (pte & kPteW))) return false;
    if (pte & (kPteR | kPteX)) {
      const uint64_t ppn = (pte >> 10) & kPpnMask;
      const uint64_t offset_bits = 12 + 9 * level;
      *pa = ((ppn >> (9 * level)) << offset_bits) | (va & ((1ull << offset_bits) - 1));
      return true;
    }
    table = ((pte >> 10) & kPpnMask) << 12;
  }
  return false;
}

}  // namespace jit
