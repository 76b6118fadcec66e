#include "jit/code_cache.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <type_traits>

namespace jit {

// Pages are calloc'd and freed without constructors or destructors (CodeCache::acquire).
static_assert(std::is_aggregate_v<DecodedPage> && std::is_trivially_destructible_v<DecodedPage>);

namespace {
constexpr unsigned kLineSlots = 32;  // 2-byte slots per 64-byte line (DecodedPage::decoded_lines)

// Whether every decoded line of the page still holds the bytes it was decoded from.
bool decoded_bytes_match(const DecodedPage* page, const uint8_t* host) {
  for (uint64_t lines = page->decoded_lines; lines; lines &= lines - 1) {
    const unsigned line = static_cast<unsigned>(__builtin_ctzll(lines));
    if (std::memcmp(page->snapshot + line * 64, host + line * 64, 64) != 0) return false;
  }
  return true;
}
}  // namespace

// Resets the slots of the decoded lines only (the rest are Op::kUndecoded, all-zero, already): a
// page holds a few lines of code most of the time, and clearing all 32 KiB of slots per page was
// ~4% of a Linux boot on the interpreter (perf, 2026-12-07).
void CodeCache::clear_decoded(DecodedPage* page) {
  for (uint64_t lines = page->decoded_lines; lines; lines &= lines - 1) {
    const unsigned line = static_cast<unsigned>(__builtin_ctzll(lines));
    std::memset(static_cast<void*>(&page->insns[line * kLineSlots]), 0, sizeof(Insn) * kLineSlots);
  }
  page->decoded_lines = 0;
}

DecodedPage* CodeCache::acquire(uint64_t ppn, uint8_t* host, bool* created) {
  *created = false;
  auto it = m_pages.find(ppn);
  if (it != m_pages.end()) {
    DecodedPage* page = it->second;
    if (page->stale) {
      page->stale = false;
      if (page->host != host || !decoded_bytes_match(page, host)) {
        clear_decoded(page);
        std::memset(page->heat, 0, sizeof page->heat);
        page->generation = ++m_generation;
        page->host = host;
      }
    }
    return page;
  }
  DecodedPage* page;
  if (!m_free.empty()) {
    page = m_free.back();
    m_free.pop_back();
    clear_decoded(page);
    std::memset(page->heat, 0, sizeof page->heat);
  } else {
    // calloc, not new: value-initialising a page wrote all ~45 KiB of it, faulting in every host
    // page (~4% of a Linux boot on the interpreter, perf); calloc'd memory fresh from the system is
    // zero without being written, so only the lines the hart decodes are ever touched. All-zero
    // is a valid empty page (Op::kUndecoded slots, no heat); DecodedPage is an aggregate, so the
    // allocation holds one.
    void* memory = std::calloc(1, sizeof(DecodedPage));
    if (!memory) throw std::bad_alloc();
    m_pool.emplace_back(static_cast<DecodedPage*>(memory));
    page = m_pool.back().get();
  }
  page->generation = ++m_generation;
  page->host = host;
  page->ppn = ppn;
  page->stale = false;
  m_pages.emplace(ppn, page);
  *created = true;
  return page;
}

void CodeCache::decode_slot(DecodedPage* page, unsigned offset) {
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
  // The snapshot holds a decoded line's bytes as they were when the line was first decoded, and
  // exactly the bytes each slot was decoded from (mark_all_stale() users compare the decoded lines
  // on the next fetch; lines nothing was decoded from are neither copied nor compared).
  const uint64_t lines = (1ull << (offset >> 6)) | (1ull << (std::min(offset + 3, 4095u) >> 6));
  for (uint64_t fresh = lines & ~page->decoded_lines; fresh; fresh &= fresh - 1) {
    const unsigned line = static_cast<unsigned>(__builtin_ctzll(fresh));
    std::memcpy(page->snapshot + line * 64, page->host + line * 64, 64);
  }
  page->decoded_lines |= lines;
  std::memcpy(page->snapshot + offset, page->host + offset, std::min(4u, 4096 - offset));
}

bool CodeCache::store_hits_code(uint64_t pa, unsigned size) const {
  if (m_pages.empty() || size == 0) return false;
  auto it = m_pages.find(pa >> 12);
  if (it == m_pages.end()) return false;
  const unsigned first = pa & 0xfff, last = std::min<unsigned>(first + size - 1, 4095);
  const uint64_t lines = (~0ull >> (63 - (last >> 6))) & (~0ull << (first >> 6));
  return (it->second->decoded_lines & lines) != 0;
}

void CodeCache::drop(std::unordered_map<uint64_t, DecodedPage*>::iterator it) {
  m_free.push_back(it->second);
  m_pages.erase(it);
}

bool CodeCache::invalidate_range(uint64_t pa, uint64_t len) {
  if (len == 0 || m_pages.empty()) return false;
  // Saturate: a device may name a range up to the top of the address space.
  const uint64_t last = pa + (len - 1) < pa ? ~0ull : pa + (len - 1);
  const uint64_t first_ppn = pa >> 12, last_ppn = last >> 12;
  bool dropped = false;
  if (last_ppn - first_ppn < m_pages.size()) {
    for (uint64_t ppn = first_ppn;; ++ppn) {
      auto it = m_pages.find(ppn);
      if (it != m_pages.end()) {
        drop(it);
        dropped = true;
      }
      if (ppn == last_ppn) break;
    }
  } else {
    for (auto it = m_pages.begin(); it != m_pages.end();) {
      if (it->first >= first_ppn && it->first <= last_ppn) {
        m_free.push_back(it->second);
        it = m_pages.erase(it);
        dropped = true;
      } else {
        ++it;
      }
    }
  }
  return dropped;
}

void CodeCache::drop_all() {
  for (auto& [ppn, page] : m_pages) m_free.push_back(page);
  m_pages.clear();
}

void CodeCache::mark_all_stale() {
  for (auto& [ppn, page] : m_pages) page->stale = true;
}

void CodeCache::post_invalidate(uint64_t pa, uint64_t len) {
  std::lock_guard<std::mutex> lock(m_posted_mutex);
  // Bounded: a device that writes faster than the hart applies collapses into one full drop.
  if (m_posted.size() >= 256) {
    m_posted.assign(1, {0, ~0ull});
  } else {
    m_posted.emplace_back(pa, len);
  }
  m_has_posted.store(true, std::memory_order_release);
}

bool CodeCache::apply_posted() {
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  {
    std::lock_guard<std::mutex> lock(m_posted_mutex);
    ranges.swap(m_posted);
    m_has_posted.store(false, std::memory_order_release);
  }
  bool dropped = false;
  for (const auto& [pa, len] : ranges) dropped |= invalidate_range(pa, len);
  return dropped;
}

}  // namespace jit
