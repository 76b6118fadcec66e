#include "jit/code_cache.h"

#include <algorithm>
#include <cstring>

namespace jit {

DecodedPage* CodeCache::acquire(uint64_t ppn, uint8_t* host, bool* created) {
  *created = false;
  auto it = m_pages.find(ppn);
  if (it != m_pages.end()) {
    DecodedPage* page = it->second;
    if (page->stale) {
      page->stale = false;
      if (page->host != host || std::memcmp(page->snapshot, host, 4096) != 0) {
        std::memset(static_cast<void*>(page->insns), 0, sizeof page->insns);
        std::memset(page->heat, 0, sizeof page->heat);
        page->generation = ++m_generation;
        std::memcpy(page->snapshot, host, 4096);
        page->host = host;
        page->decoded_lines = 0;
      }
    }
    return page;
  }
  DecodedPage* page;
  if (!m_free.empty()) {
    page = m_free.back();
    m_free.pop_back();
    std::memset(static_cast<void*>(page->insns), 0, sizeof page->insns);
  } else {
    m_pool.push_back(std::make_unique<DecodedPage>());
    page = m_pool.back().get();
  }
  std::memset(page->heat, 0, sizeof page->heat);
  page->generation = ++m_generation;
  page->host = host;
  page->ppn = ppn;
  page->decoded_lines = 0;
  page->stale = false;
  std::memcpy(page->snapshot, host, 4096);
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
  page->decoded_lines |= 1ull << (offset >> 6);
  page->decoded_lines |= 1ull << (std::min(offset + 3, 4095u) >> 6);
  // The snapshot holds exactly the bytes this slot was decoded from (mark_all_stale() users
  // compare it on the next fetch).
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
