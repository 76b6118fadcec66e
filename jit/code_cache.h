// Decoded guest code, keyed by guest-physical page, and the one place that forgets it:
// invalidate_range(pa, len) is what stores to code pages, fence.i and device DMA writes use, so a
// translator's regions (physically indexed too) can hang off the same calls later.
//
// One CodeCache per hart, used from that hart's thread, except post_invalidate(), which any
// thread may call (device DMA): the hart applies posted ranges at its next chunk boundary, before
// it looks at interrupts, so a guest that learns of a DMA completion by interrupt runs fresh code.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include "jit/decode.h"

namespace jit {

struct DecodedPage {
  Insn insns[2048];  // one slot per 2 bytes, Op::kUndecoded until first executed
  uint8_t* host = nullptr;
  uint64_t ppn = 0;
  // bit i: some slot in bytes [64i, 64i+64) was decoded. Every slot outside these lines is
  // Op::kUndecoded, and only these lines' bytes are in `snapshot`.
  uint64_t decoded_lines = 0;
  // fence.i does not drop pages: it marks them stale, and the next fetch keeps the decoded page
  // if the bytes its slots were decoded from are unchanged (Linux issues a fence.i, through SBI
  // on every hart, for each newly mapped executable page).
  bool stale = false;
  uint8_t snapshot[4096];  // the decoded lines' bytes as decoded (see CodeCache::decode_slot)
  // Translator tier: entries counted per slot (block heads: branch targets, trap entries, code
  // after instructions the tier leaves to the interpreter), and a generation that changes whenever
  // insns[] is reset, so a region compiled in the background is installed only into the page
  // contents it was formed from.
  uint16_t heat[2048];
  uint64_t generation = 0;
};

class CodeCache {
 public:
  static constexpr size_t kMaxPages = 2048;  // 32 KiB each: at most 64 MiB of decoded code per hart

  bool empty() const { return m_pages.empty(); }
  bool full() const { return m_pages.size() >= kMaxPages; }
  bool holds(uint64_t ppn) const { return m_pages.count(ppn) != 0; }
  // The decoded page for ppn if there is one (not re-checked if stale).
  DecodedPage* find(uint64_t ppn) const {
    auto it = m_pages.find(ppn);
    return it == m_pages.end() ? nullptr : it->second;
  }

  // The decoded page for ppn whose bytes are at `host` (4 KiB of RAM), creating it if needed
  // (*created tells). A stale page is re-checked against its bytes first. Call only when !full().
  DecodedPage* acquire(uint64_t ppn, uint8_t* host, bool* created);
  // Fills one 2-byte slot from the page's bytes (offset < 4096, even).
  static void decode_slot(DecodedPage* page, unsigned offset);

  // Whether a store of `size` bytes at pa overlaps bytes that have been decoded.
  bool store_hits_code(uint64_t pa, unsigned size) const;
  // Drops every page that overlaps [pa, pa + len); true when one was dropped. Dropped pages'
  // memory stays valid until reused, so the instruction being executed can still read its Insn.
  bool invalidate_range(uint64_t pa, uint64_t len);
  void drop_all();
  void mark_all_stale();  // fence.i

  // Any thread. The owning hart calls apply_posted() between chunks.
  void post_invalidate(uint64_t pa, uint64_t len);
  bool has_posted() const { return m_has_posted.load(std::memory_order_acquire); }
  // Applies and clears the posted ranges; true when a page was dropped.
  bool apply_posted();

 private:
  void drop(std::unordered_map<uint64_t, DecodedPage*>::iterator it);
  static void clear_decoded(DecodedPage* page);  // every slot back to Op::kUndecoded

  std::unordered_map<uint64_t, DecodedPage*> m_pages;
  struct FreePage {
    void operator()(DecodedPage* page) const { std::free(page); }
  };
  std::vector<std::unique_ptr<DecodedPage, FreePage>> m_pool;  // owns every page (calloc'd)
  std::vector<DecodedPage*> m_free;
  uint64_t m_generation = 0;  // source of DecodedPage::generation

  std::atomic<bool> m_has_posted{false};
  std::mutex m_posted_mutex;
  std::vector<std::pair<uint64_t, uint64_t>> m_posted;  // (pa, len)
};

}  // namespace jit
