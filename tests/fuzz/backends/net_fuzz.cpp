// libFuzzer target: virtio-net (hw/virtio/net) against a hostile driver's rings. Guest RAM comes
// from the input (byte 0: queue size, byte 1: ring features, byte 2: frames to deliver): the
// receive queue's rings sit at 0x10000, the transmit queue's at 0x18000. The device is activated
// on both, transmit is kicked (every chain becomes a frame for the backend), then frames of
// input-chosen sizes arrive for the guest. Frames handed to the backend stay within the maximum
// size; nothing crashes or writes outside guest RAM (ASan); a broken ring asks for a device reset.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "backends/net.h"
#include "base/guest_memory.h"
#include "hw/virtio/net.h"
#include "hw/virtio/virtqueue.h"
#include "tests/fuzz/backends/fuzz_ring.h"

namespace {

class Host : public hw::virtio::DeviceHost {
 public:
  explicit Host(const base::GuestMemory& memory) : m_memory(memory) {}
  const base::GuestMemory& memory() const override { return m_memory; }
  void interrupt_queue(uint16_t) override {}
  void interrupt_config() override {}
  void needs_reset(std::string_view why) override {
    if (why.empty()) std::abort();  // a reset always says why
  }

 private:
  const base::GuestMemory& m_memory;
};

class Backend : public backends::NetBackend {
 public:
  void send_frame(std::span<const uint8_t> frame) override {
    if (frame.size() > 65536 + 64) std::abort();  // the device bounds what it forwards
    sent++;
  }
  void attach(backends::NetReceiver*) override {}
  size_t sent = 0;
};

std::unique_ptr<hw::virtio::Queue> queue_at(base::GuestMemory& memory, uint64_t base, uint32_t size,
                                            uint8_t features) {
  auto ring = fuzzing::ring_at(memory, base, size, features);
  return ring ? std::make_unique<hw::virtio::Queue>(std::move(*ring)) : nullptr;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  base::GuestMemory& memory = fuzzing::fuzz_ram(data + 3, size - 3);
  uint32_t queue_size = 1u << (data[0] % 9);
  auto rx = queue_at(memory, fuzzing::kRamBase, queue_size, data[1]);
  auto tx = queue_at(memory, fuzzing::kRamBase + 0x8000, queue_size, data[1]);
  if (!rx || !tx) return 0;
  auto backend = std::make_shared<Backend>();
  Host host(memory);
  hw::virtio::NetDevice device(backend, {0x52, 0x54, 0, 0x12, 0x34, 0x56}, queue_size);
  device.activate(host, 0, {rx.get(), tx.get()});
  device.notify(1);  // transmit: every chain the guest queued
  std::vector<uint8_t> frame;
  for (unsigned i = 0; i < data[2] % 8; ++i) {
    frame.assign(64 + (size_t{data[(3 + i) % size]} << 4), static_cast<uint8_t>(i));
    device.receive_frame(frame);
  }
  device.reset();
  return 0;
}
