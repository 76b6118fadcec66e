// libFuzzer target: the virtqueue walker against arbitrary guest memory.
// Input: byte 0 picks the queue size (1 << (b % 16)), byte 1 the ring features, the rest is the
// guest's RAM from the descriptor table on (so the fuzzer writes descriptors, avail ring and
// indirect tables). The walker must never crash, read outside RAM, or loop without bound.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "base/guest_memory.h"
#include "hw/virtio/virtqueue.h"
#include "tests/fuzz/backends/fuzz_ring.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  base::GuestMemory& memory = fuzzing::fuzz_ram(data + 2, size - 2);
  const uint32_t queue_size = 1u << (data[0] % 16);
  auto queue = fuzzing::ring_at(memory, fuzzing::kRamBase, queue_size, data[1]);
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
