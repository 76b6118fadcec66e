// The hart's side of the decoded-code cache: fetch, fence.i, and keeping the fetch and write
// TLBs consistent with what the CodeCache holds.
#include <cstring>

#include "jit/hart.h"

namespace jit {

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

DecodedPage* Hart::decoded_page(uint64_t ppn, uint8_t* host) {
  if (m_code.full()) flush_decoded();
  bool created = false;
  DecodedPage* page = m_code.acquire(ppn, host, &created);
  // Stores into a new code page must now take the slow path, which notices they hit code.
  if (created) flush_write_tlb();
  return page;
}

void Hart::fence_i() {
  m_code.mark_all_stale();
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

void Hart::invalidate_code(uint64_t pa, uint64_t len) {
  if (!m_code.invalidate_range(pa, len)) return;
  ++m_code_epoch;
  bump_tlb(kFetch);
  m_fetch_vpn = ~0ull;
}

void Hart::apply_posted_invalidations() {
  if (!m_code.apply_posted()) return;
  bump_tlb(kFetch);
  m_fetch_vpn = ~0ull;
}

void Hart::invalidate_range(uint64_t pa, uint64_t len) {
  m_code.post_invalidate(pa, len);
}

void Hart::flush_decoded() {
  m_code.drop_all();
  m_regions.clear();  // no page holds a marker for them any more
  bump_tlb(kFetch);
  m_fetch_vpn = ~0ull;
}

void Hart::note_store(uint64_t pa, unsigned size) {
  if (m_code.store_hits_code(pa, size)) invalidate_code(pa, size);
}

}  // namespace jit
