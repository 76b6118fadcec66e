#include "hw/virtio/virtqueue.h"

#include <atomic>
#include <cstring>

namespace hw::virtio {

namespace {

struct Desc {
  uint64_t addr;
  uint32_t len;
  uint16_t flags;
  uint16_t next;
};
static_assert(sizeof(Desc) == 16);

// Ring fields are read and written while the driver runs on another thread. The rings are
// naturally aligned (checked at create) inside host mappings, so the __atomic builtins on them are
// well defined; acquire/release order them against the descriptor and buffer accesses.
uint16_t load_u16(const uint8_t* p) {
  return __atomic_load_n(reinterpret_cast<const uint16_t*>(p), __ATOMIC_ACQUIRE);
}
void store_u16(uint8_t* p, uint16_t v) {
  __atomic_store_n(reinterpret_cast<uint16_t*>(p), v, __ATOMIC_RELEASE);
}

Desc read_desc(const uint8_t* table, uint32_t index) {
  Desc d;
  // One copy, then only the copy is used: the guest changing the descriptor under us cannot make
  // a checked value differ from a used one.
  std::memcpy(&d, table + size_t(index) * sizeof(Desc), sizeof(Desc));
  return d;
}

}  // namespace

size_t Chain::read(uint64_t offset, std::span<uint8_t> out) const {
  size_t done = 0;
  for (const Segment& s : segments) {
    if (s.device_writable || done == out.size()) break;
    if (offset >= s.len) {
      offset -= s.len;
      continue;
    }
    size_t n = std::min<uint64_t>(s.len - offset, out.size() - done);
    std::memcpy(out.data() + done, s.host.data() + offset, n);
    done += n;
    offset = 0;
  }
  return done;
}

size_t Chain::write(uint64_t offset, std::span<const uint8_t> in) const {
  size_t done = 0;
  for (const Segment& s : segments) {
    if (!s.device_writable) continue;
    if (done == in.size()) break;
    if (offset >= s.len) {
      offset -= s.len;
      continue;
    }
    size_t n = std::min<uint64_t>(s.len - offset, in.size() - done);
    std::memcpy(s.host.data() + offset, in.data() + done, n);
    done += n;
    offset = 0;
  }
  return done;
}

std::optional<QueueFault> Virtqueue::check_size(uint32_t size) {
  if (size == 0 || size > kMaxQueueSize || (size & (size - 1)) != 0)
    return QueueFault{"queue size " + std::to_string(size) + " is not a power of two in [1, 32768]"};
  return std::nullopt;
}

base::Result<Virtqueue, QueueFault> Virtqueue::create(const base::GuestMemory& memory, Layout layout,
                                                      Features features) {
  if (auto bad = check_size(layout.size)) return base::fail(*bad);
  // Spec 2.7: descriptor table 16-aligned, available ring 2-aligned, used ring 4-aligned.
  if (layout.desc % 16 || layout.avail % 2 || layout.used % 4)
    return base::fail(QueueFault{"misaligned ring address"});
  uint64_t n = layout.size;
  // With EVENT_IDX the rings have one more u16 (used_event / avail_event); reserve it always.
  auto desc = memory.slice(layout.desc, 16 * n);
  auto avail = memory.slice(layout.avail, 6 + 2 * n);
  auto used = memory.slice(layout.used, 6 + 8 * n);
  if (!desc || !avail || !used) return base::fail(QueueFault{"ring outside guest RAM"});
  Virtqueue queue(memory, layout, features);
  queue.m_desc = desc->data();
  queue.m_avail = avail->data();
  queue.m_used = used->data();
  // Continue from wherever the used ring is (a freshly reset driver zeroes it).
  queue.m_used_idx = load_u16(queue.m_used + 2);
  queue.m_last_avail = queue.m_used_idx;
  queue.m_signalled_used = queue.m_used_idx;
  return queue;
}

QueueFault Virtqueue::fail(std::string message) {
  if (!m_broken) {
    m_broken = true;
    m_broken_message = std::move(message);
  }
  return QueueFault{m_broken_message};
}

uint16_t Virtqueue::avail_idx() const {
  return load_u16(m_avail + 2);
}

bool Virtqueue::has_available() {
  if (m_broken) return false;
  return avail_idx() != m_last_avail;
}

base::Result<std::optional<Chain>, QueueFault> Virtqueue::pop() {
  if (m_broken) return base::fail(QueueFault{m_broken_message});
  uint16_t avail = avail_idx();
  uint16_t pending = static_cast<uint16_t>(avail - m_last_avail);
  if (pending > m_layout.size)
    return base::fail(fail("avail index " + std::to_string(avail) + " is " + std::to_string(pending) +
                           " ahead of " + std::to_string(m_last_avail) + " (queue size " +
                           std::to_string(m_layout.size) + ")"));
  if (pending == 0) return std::optional<Chain>();
  uint16_t head = load_u16(m_avail + 4 + 2 * (m_last_avail % m_layout.size));
  m_last_avail++;
  if (m_features.event_idx) {
    // avail_event: ask for a kick as soon as anything beyond what we consumed arrives.
    store_u16(m_used + 4 + 8 * m_layout.size, m_last_avail);
    std::atomic_thread_fence(std::memory_order_seq_cst);
  }
  auto chain = walk(head);
  if (!chain) return base::fail(chain.error());
  return std::optional<Chain>(std::move(chain).value());
}

base::Result<Chain, QueueFault> Virtqueue::walk(uint16_t head) {
  if (head >= m_layout.size)
    return base::fail(fail("head index " + std::to_string(head) + " outside the descriptor table"));
  Chain chain;
  chain.head = head;
  const uint8_t* table = m_desc;
  uint32_t table_size = m_layout.size;
  uint32_t index = head;
  uint32_t seen = 0;
  bool indirect = false;
  while (true) {
    // Every table visit is bounded by the table's size: a chain visiting more entries than the
    // table has must revisit one, i.e. it loops.
    if (++seen > table_size)
      return base::fail(fail(std::string(indirect ? "indirect " : "") +
                             "descriptor chain longer than its table (" + std::to_string(table_size) +
                             "): a loop"));
    Desc d = read_desc(table, index);
    if (d.flags & kDescIndirect) {
      if (indirect) return base::fail(fail("indirect descriptor inside an indirect table"));
      if (d.flags & kDescNext) return base::fail(fail("descriptor has both INDIRECT and NEXT"));
      if (!m_features.indirect)
        return base::fail(fail("indirect descriptor without VIRTIO_F_RING_INDIRECT_DESC"));
      if (d.len == 0 || d.len % 16 != 0 || d.len / 16 > kMaxIndirectEntries)
        return base::fail(fail("indirect table length " + std::to_string(d.len) +
                               " is not a multiple of 16 in [16, " +
                               std::to_string(16 * kMaxIndirectEntries) + "]"));
      if (d.addr % 16 != 0) return base::fail(fail("misaligned indirect table"));
      auto host = m_memory->slice(d.addr, d.len);
      if (!host) return base::fail(fail("indirect table outside guest RAM"));
      table = host->data();
      table_size = d.len / 16;
      index = 0;
      seen = 0;
      indirect = true;
      continue;
    }
    bool writable = (d.flags & kDescWrite) != 0;
    if (!writable && chain.writable > 0)
      return base::fail(fail("device-readable descriptor after a device-writable one"));
    Segment segment{d.addr, d.len, writable, {}};
    if (d.len > 0) {
      if (d.addr + d.len < d.addr) return base::fail(fail("descriptor address + length overflows"));
      auto host = m_memory->slice(d.addr, d.len);
      if (!host) return base::fail(fail("descriptor buffer outside guest RAM"));
      segment.host = *host;
    }
    (writable ? chain.writable : chain.readable) += d.len;
    chain.segments.push_back(segment);
    if (!(d.flags & kDescNext)) break;
    index = d.next;
    if (index >= table_size)
      return base::fail(fail("next index " + std::to_string(index) + " outside the descriptor table"));
  }
  return chain;
}

void Virtqueue::push(uint16_t head, uint32_t written) {
  if (m_broken) return;
  uint8_t* element = m_used + 4 + 8 * (m_used_idx % m_layout.size);
  uint32_t id = head;
  std::memcpy(element, &id, 4);
  std::memcpy(element + 4, &written, 4);
  m_used_idx++;
  // Release: the element (and the buffer contents before it) are visible before the new index.
  store_u16(m_used + 2, m_used_idx);
}

bool Virtqueue::should_notify() {
  if (m_broken) return false;
  std::atomic_thread_fence(std::memory_order_seq_cst);
  uint16_t old = m_signalled_used;
  uint16_t now = m_used_idx;
  if (old == now) return false;
  bool notify;
  if (m_features.event_idx) {
    uint16_t used_event = load_u16(m_avail + 4 + 2 * m_layout.size);
    // vring_need_event: the driver asked to be woken once used idx passes used_event.
    notify = static_cast<uint16_t>(now - used_event - 1) < static_cast<uint16_t>(now - old);
  } else {
    notify = !(load_u16(m_avail) & kAvailNoInterrupt);
  }
  m_signalled_used = now;
  return notify;
}

}  // namespace hw::virtio
