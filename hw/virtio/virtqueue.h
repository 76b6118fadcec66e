// Split virtqueue (virtio 1.2 section 2.7), the device side, shared by every virtio device and
// both transports. Everything read from the rings is guest input and is validated here:
//   - queue size a power of two in [1, 32768], rings aligned and wholly inside guest RAM;
//   - avail index moving more than `size` past what we consumed;
//   - head or next index out of the table, chains longer than the table (loops included);
//   - INDIRECT together with NEXT, an indirect table inside an indirect table, indirect tables of
//     a bad length or not negotiated;
//   - buffers whose address + length overflows or leaves guest RAM;
//   - a device-readable descriptor after a device-writable one.
// A violation returns a QueueFault and breaks the queue for good (every later pop() fails too); the
// device then sets DEVICE_NEEDS_RESET. Nothing here allocates in proportion to guest input beyond
// one chain's segment list, which is bounded by the table sizes.
//
// Threading: a Virtqueue is not thread-safe; its device serialises pop()/push() per queue.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/guest_memory.h"
#include "base/result.h"

namespace hw::virtio {

constexpr uint32_t kMaxQueueSize = 32768;
// Largest indirect table we follow (QEMU's VIRTQUEUE_MAX_SIZE): bounds per-chain work and memory.
constexpr uint32_t kMaxIndirectEntries = 1024;

constexpr uint16_t kDescNext = 1;
constexpr uint16_t kDescWrite = 2;
constexpr uint16_t kDescIndirect = 4;
constexpr uint16_t kAvailNoInterrupt = 1;

struct QueueFault {
  std::string message;
};

// One buffer of a chain, already checked to lie inside guest RAM.
struct Segment {
  uint64_t gpa = 0;
  uint32_t len = 0;
  bool device_writable = false;
  // Host view of [gpa, gpa+len). Guest RAM regions live as long as the machine, so this stays valid
  // while the device holds the chain; the guest may still change the bytes concurrently, which
  // only ever corrupts its own data.
  std::span<uint8_t> host;
};

struct Chain {
  uint16_t head = 0;
  std::vector<Segment> segments;  // device-readable segments first, then device-writable
  uint64_t readable = 0;          // total bytes of device-readable segments
  uint64_t writable = 0;          // total bytes of device-writable segments

  // Copy out of the readable part / into the writable part, starting `offset` bytes into that
  // part. Return the bytes copied (short at the end of the part).
  size_t read(uint64_t offset, std::span<uint8_t> out) const;
  size_t write(uint64_t offset, std::span<const uint8_t> in) const;
};

class Virtqueue {
 public:
  struct Layout {
    uint32_t size = 0;
    uint64_t desc = 0;
    uint64_t avail = 0;
    uint64_t used = 0;
  };
  struct Features {
    bool indirect = false;   // VIRTIO_F_RING_INDIRECT_DESC negotiated
    bool event_idx = false;  // VIRTIO_F_RING_EVENT_IDX negotiated
  };

  // Checks the layout (size, alignment, rings in RAM) and maps the rings.
  static base::Result<Virtqueue, QueueFault> create(const base::GuestMemory& memory, Layout layout,
                                                    Features features);
  // Checks only the size rule (used when the driver writes QueueNum).
  static std::optional<QueueFault> check_size(uint32_t size);

  // The next available chain, nullopt when the driver has offered nothing new.
  base::Result<std::optional<Chain>, QueueFault> pop();
  // Hands a chain back with `written` bytes of its writable part filled.
  void push(uint16_t head, uint32_t written);
  // Whether the driver wants an interrupt for what was pushed since the last call that said yes
  // (VIRTQ_AVAIL_F_NO_INTERRUPT, or used_event with EVENT_IDX).
  bool should_notify();
  // Whether the driver has offered chains we have not popped (net RX: wait for buffers).
  bool has_available();

  uint32_t size() const { return m_layout.size; }
  const Layout& layout() const { return m_layout; }
  bool broken() const { return m_broken; }
  uint16_t last_avail() const { return m_last_avail; }
  // Gives back the chain the last pop() returned, not pushed: the next pop() returns it again. For a
  // device that holds one popped buffer (console RX) when it quiesces for a snapshot: the buffer
  // stays the guest's instead of being lost with the device's in-memory state.
  void unpop() { --m_last_avail; }

  // Snapshot: the device-side indices (the rings themselves are guest RAM). Saved only when no
  // chain is in flight (the device is quiesced), so last_avail == used_idx then.
  struct Indices {
    uint16_t last_avail = 0, used_idx = 0, signalled_used = 0;
    bool broken = false;
  };
  Indices indices() const { return {m_last_avail, m_used_idx, m_signalled_used, m_broken}; }
  void set_indices(const Indices& indices) {
    m_last_avail = indices.last_avail;
    m_used_idx = indices.used_idx;
    m_signalled_used = indices.signalled_used;
    if (indices.broken && !m_broken) (void)fail("broken when the snapshot was taken");
  }

 private:
  Virtqueue(const base::GuestMemory& memory, Layout layout, Features features)
      : m_memory(&memory), m_layout(layout), m_features(features) {}
  QueueFault fail(std::string message);
  base::Result<Chain, QueueFault> walk(uint16_t head);
  uint16_t avail_idx() const;

  const base::GuestMemory* m_memory;
  Layout m_layout;
  Features m_features;
  // Host views of the three rings (checked at create).
  uint8_t* m_desc = nullptr;
  uint8_t* m_avail = nullptr;
  uint8_t* m_used = nullptr;
  uint16_t m_last_avail = 0;
  uint16_t m_used_idx = 0;
  uint16_t m_signalled_used = 0;  // used idx at the last interrupt decision
  // A flag and a message rather than std::optional<QueueFault>: GCC 12 warns (falsely) that the
  // optional's string may be used uninitialized when create() returns the queue by value.
  bool m_broken = false;
  std::string m_broken_message;
};

}  // namespace hw::virtio
