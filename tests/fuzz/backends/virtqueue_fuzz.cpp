// libFuzzer target: the virtqueue walker against arbitrary guest memory.
// Input: byte 0 picks the queue size (1 << (b % 16)), byte 1 the ring features, the rest is the
// guest's RAM from the descriptor table on (so the fuzzer writes descriptors, avail ring and
// indirect tables). The walker must never crash, read outside RAM, or loop without bound.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "base/guest_memory.h"
#include "hw/virtio/virtqueue.h"

using hw::virtio::Virtqueue;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  static base::GuestMemory* memory = [] {
    auto* m = new base::GuestMemory();
    (void)m->add_region(0x10000, 1 << 20);
    return m;
  }();
  auto region = memory->regions()[0];
  std::memset(region.host, 0, region.size);
  std::memcpy(region.host, data + 2, std::min<size_t>(size - 2, region.size));

  uint32_t queue_size = 1u << (data[0] % 16);
  Virtqueue::Layout layout{queue_size, 0x10000, 0x10000 + 16ull * queue_size, 0};
  layout.used = (layout.avail + 6 + 2ull * queue_size + 3) & ~3ull;
  Virtqueue::Features features{(data[1] & 1) != 0, (data[1] & 2) != 0};
  auto queue = Virtqueue::create(*memory, layout, features);
  if (!queue) return 0;
  uint8_t scratch[64];
  for (uint32_t i = 0; i < 2 * queue_size + 4; ++i) {
    auto popped = queue->pop();
    if (!popped || !popped->has_value()) break;
    const auto& chain = **popped;
    chain.read(0, scratch);
    chain.read(chain.readable / 2, scratch);
    chain.write(0, scratch);
    queue->push(chain.head, static_cast<uint32_t>(chain.writable));
    (void)queue->should_notify();
  }
  return 0;
}
