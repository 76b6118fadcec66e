// A virtio driver for tests: lays out split rings in a base::GuestMemory the way a guest would,
// offers chains (direct or indirect), and reads completions. Also able to write any raw value
// into the rings, so tests can play a hostile guest.
#pragma once

#include <cstring>
#include <string>
#include <vector>

#include "base/guest_memory.h"
#include "hw/virtio/virtqueue.h"

namespace hw::virtio::testing {

constexpr uint64_t kRamBase = 0x80000000;
constexpr uint64_t kRamSize = 16 << 20;

struct Buffer {
  uint64_t gpa;
  uint32_t len;
  bool writable;
};

class TestDriver {
 public:
  // Rings for queue `q` live at kRamBase + q * 64 KiB; data buffers are handed out from 1 MiB up.
  TestDriver(base::GuestMemory& memory, uint32_t size, uint32_t q = 0) : m_memory(memory), m_size(size) {
    m_desc = kRamBase + q * 0x10000;
    m_avail = m_desc + 16 * size;
    m_used = (m_avail + 6 + 2 * size + 4095) & ~4095ull;
  }
  Virtqueue::Layout layout() const { return {m_size, m_desc, m_avail, m_used}; }

  // A data area of `len` bytes in guest RAM (optionally filled).
  uint64_t alloc(uint32_t len, std::string_view fill = {}) {
    uint64_t gpa = m_next_data;
    m_next_data += (len + 15) & ~15u;
    if (!fill.empty()) m_memory.write(gpa, {reinterpret_cast<const uint8_t*>(fill.data()), fill.size()});
    return gpa;
  }
  std::string read_string(uint64_t gpa, uint32_t len) {
    std::string out(len, '\0');
    m_memory.read(gpa, {reinterpret_cast<uint8_t*>(out.data()), len});
    return out;
  }

  void write_desc(uint64_t table, uint32_t index, uint64_t addr, uint32_t len, uint16_t flags,
                  uint16_t next) {
    uint64_t at = table + 16 * uint64_t(index);
    m_memory.write_le<uint64_t>(at, addr);
    m_memory.write_le<uint32_t>(at + 8, len);
    m_memory.write_le<uint16_t>(at + 12, flags);
    m_memory.write_le<uint16_t>(at + 14, next);
  }
  // Offers `buffers` as one direct chain; returns the head.
  uint16_t offer(const std::vector<Buffer>& buffers) {
    uint16_t head = m_next_desc;
    for (size_t i = 0; i < buffers.size(); ++i) {
      uint16_t index = static_cast<uint16_t>((head + i) % m_size);
      bool last = i + 1 == buffers.size();
      write_desc(m_desc, index, buffers[i].gpa, buffers[i].len,
                 static_cast<uint16_t>((buffers[i].writable ? kDescWrite : 0) | (last ? 0 : kDescNext)),
                 static_cast<uint16_t>((index + 1) % m_size));
    }
    m_next_desc = static_cast<uint16_t>((head + buffers.size()) % m_size);
    publish(head);
    return head;
  }
  // Offers `buffers` through one indirect table.
  uint16_t offer_indirect(const std::vector<Buffer>& buffers) {
    uint64_t table = alloc(static_cast<uint32_t>(16 * buffers.size()));
    for (size_t i = 0; i < buffers.size(); ++i) {
      bool last = i + 1 == buffers.size();
      write_desc(table, static_cast<uint32_t>(i), buffers[i].gpa, buffers[i].len,
                 static_cast<uint16_t>((buffers[i].writable ? kDescWrite : 0) | (last ? 0 : kDescNext)),
                 static_cast<uint16_t>(i + 1));
    }
    uint16_t head = m_next_desc;
    write_desc(m_desc, head, table, static_cast<uint32_t>(16 * buffers.size()), kDescIndirect, 0);
    m_next_desc = static_cast<uint16_t>((head + 1) % m_size);
    publish(head);
    return head;
  }
  // Puts `head` in the avail ring and bumps avail idx.
  void publish(uint16_t head) {
    m_memory.write_le<uint16_t>(m_avail + 4 + 2 * (m_avail_idx % m_size), head);
    m_avail_idx++;
    m_memory.write_le<uint16_t>(m_avail + 2, m_avail_idx);
  }
  void set_avail_idx(uint16_t idx) {
    m_avail_idx = idx;
    m_memory.write_le<uint16_t>(m_avail + 2, idx);
  }
  void set_avail_flags(uint16_t flags) { m_memory.write_le<uint16_t>(m_avail, flags); }
  void set_used_event(uint16_t value) { m_memory.write_le<uint16_t>(m_avail + 4 + 2 * m_size, value); }

  uint16_t used_idx() { return *m_memory.read_le<uint16_t>(m_used + 2); }
  // The used element at position `n` (id, len).
  std::pair<uint32_t, uint32_t> used(uint16_t n) {
    uint64_t at = m_used + 4 + 8 * (n % m_size);
    return {*m_memory.read_le<uint32_t>(at), *m_memory.read_le<uint32_t>(at + 4)};
  }

  uint64_t desc_table() const { return m_desc; }

 private:
  base::GuestMemory& m_memory;
  uint32_t m_size;
  uint64_t m_desc, m_avail, m_used;
  uint64_t m_next_data = kRamBase + (1 << 20);
  uint16_t m_next_desc = 0;
  uint16_t m_avail_idx = 0;
};

}  // namespace hw::virtio::testing
