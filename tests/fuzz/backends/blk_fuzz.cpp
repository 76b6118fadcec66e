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

using hw::virtio::Virtqueue;

namespace {

class MemoryDisk : public backends::BlockBackend {
 public:
  explicit MemoryDisk(bool read_only) : m_data(1 << 20), m_read_only(read_only) {}
  uint64_t size() const override { return m_data.size(); }
  bool read_only() const override { return m_read_only; }
  base::ErrorOr<void> read(uint64_t offset, std::span<uint8_t> out) override {
    if (offset > m_data.size() || out.size() > m_data.size() - offset) std::abort();
    std::memcpy(out.data(), m_data.data() + offset, out.size());
    return {};
  }
  base::ErrorOr<void> write(uint64_t offset, std::span<const uint8_t> in) override {
    if (m_read_only || offset > m_data.size() || in.size() > m_data.size() - offset) std::abort();
    std::memcpy(m_data.data() + offset, in.data(), in.size());
    return {};
  }
  base::ErrorOr<void> flush() override { return {}; }
  base::ErrorOr<void> discard(uint64_t offset, uint64_t length) override {
    return write_zeroes(offset, length);
  }
  base::ErrorOr<void> write_zeroes(uint64_t offset, uint64_t length) override {
    if (m_read_only || offset > m_data.size() || length > m_data.size() - offset) std::abort();
    std::memset(m_data.data() + offset, 0, length);
    return {};
  }

 private:
  std::vector<uint8_t> m_data;
  bool m_read_only;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  static base::GuestMemory* memory = [] {
    auto* m = new base::GuestMemory();
    (void)m->add_region(0x10000, 1 << 20);
    return m;
  }();
  static auto* rw = new hw::virtio::BlkDevice(std::make_shared<MemoryDisk>(false), {"FUZZDISK"});
  static auto* ro = new hw::virtio::BlkDevice(std::make_shared<MemoryDisk>(true), {"FUZZRO", true});
  auto region = memory->regions()[0];
  std::memset(region.host, 0, region.size);
  std::memcpy(region.host, data + 3, std::min<size_t>(size - 3, region.size));

  uint32_t queue_size = 1u << (data[0] % 9);
  Virtqueue::Layout layout{queue_size, 0x10000, 0x10000 + 16ull * queue_size, 0};
  layout.used = (layout.avail + 6 + 2ull * queue_size + 3) & ~3ull;
  Virtqueue::Features features{(data[1] & 1) != 0, (data[1] & 2) != 0};
  auto queue = Virtqueue::create(*memory, layout, features);
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
