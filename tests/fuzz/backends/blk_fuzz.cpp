// libFuzzer target: virtio-blk requests (hw/virtio/blk) as a hostile driver writes them. As in
// virtqueue_fuzz, the input is guest RAM from the descriptor table on (byte 0: queue size, byte 1:
// ring features, byte 2: a read-only disk or not); every chain the walker pops is run as a block
// request against a 1 MiB disk in memory. A request must never make the device write more than its
// chain's writable part, touch the disk outside it, or crash.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "backends/block.h"
#include "base/guest_memory.h"
#include "hw/virtio/blk.h"
#include "hw/virtio/virtqueue.h"
#include "tests/fuzz/backends/fuzz_ring.h"
#include "tests/fuzz/backends/memory_disk.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  static auto* rw = new hw::virtio::BlkDevice(std::make_shared<fuzzing::MemoryDisk>(false), {"FUZZDISK"});
  static auto* ro = new hw::virtio::BlkDevice(std::make_shared<fuzzing::MemoryDisk>(true), {"FUZZRO", true});
  base::GuestMemory& memory = fuzzing::fuzz_ram(data + 3, size - 3);
  uint32_t queue_size = 1u << (data[0] % 9);
  auto queue = fuzzing::ring_at(memory, fuzzing::kRamBase, queue_size, data[1]);
  if (!queue) return 0;
  hw::virtio::BlkDevice& device = (data[2] & 1) ? *ro : *rw;
  for (uint32_t i = 0; i < 2 * queue_size + 4; ++i) {
    auto popped = queue->pop();
    if (!popped || !popped->has_value()) break;
    const auto& chain = **popped;
    uint32_t written = device.execute(chain);
    if (written > chain.writable) std::abort();
    queue->push(chain.head, written);
  }
  return 0;
}
