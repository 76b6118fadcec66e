// Drives a device through a real MmioTransport the way Linux's virtio_mmio driver does, with the
// rings in a fake guest memory. Shared by the device tests.
#pragma once

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include "hw/virtio/mmio.h"
#include "hw/virtio/test_driver.h"

namespace hw::virtio::testing {

class TestIrq : public hw::IrqLine {
 public:
  void set_level(bool asserted) override {
    if (asserted && !m_level) m_raised++;
    m_level = asserted;
  }
  bool level() const { return m_level; }
  int raised() const { return m_raised; }

 private:
  std::atomic<bool> m_level{false};
  std::atomic<int> m_raised{0};
};

class Harness {
 public:
  // `shareable`: guest RAM in a memfd, as machines do for vhost-user devices.
  explicit Harness(std::shared_ptr<VirtioDevice> device, uint32_t queue_size = 16, bool shareable = false)
      : m_queue_size(queue_size) {
    memory.set_shareable(shareable);
    REQUIRE(memory.add_region(kRamBase, kRamSize).ok());
    transport = std::make_unique<MmioTransport>("test", device, memory, irq_ptr,
                                                [this](std::string_view) { logs++; });
    for (uint16_t q = 0; q < device->num_queues(); ++q)
      drivers.push_back(std::make_unique<TestDriver>(memory, queue_size, q));
  }
  ~Harness() { transport.reset(); }

  uint32_t read32(uint64_t offset) {
    uint32_t v = 0;
    transport->read(offset, {reinterpret_cast<uint8_t*>(&v), 4});
    return v;
  }
  void write32(uint64_t offset, uint32_t v) { transport->write(offset, {reinterpret_cast<uint8_t*>(&v), 4}); }

  // Reset, ACK, DRIVER, features (device's minus `drop`), FEATURES_OK, queues, DRIVER_OK.
  bool bring_up(uint64_t drop = 0) {
    write32(0x070, 0);
    write32(0x070, kStatusAcknowledge);
    write32(0x070, kStatusAcknowledge | kStatusDriver);
    write32(0x014, 0);
    uint64_t features = read32(0x010);
    write32(0x014, 1);
    features |= uint64_t(read32(0x010)) << 32;
    features &= ~drop;
    write32(0x024, 0);
    write32(0x020, static_cast<uint32_t>(features));
    write32(0x024, 1);
    write32(0x020, static_cast<uint32_t>(features >> 32));
    write32(0x070, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk);
    if (!(read32(0x070) & kStatusFeaturesOk)) return false;
    for (uint32_t q = 0; q < drivers.size(); ++q) setup_queue(q);
    write32(0x070, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk | kStatusDriverOk);
    return (read32(0x070) & kStatusNeedsReset) == 0;
  }
  void setup_queue(uint32_t q) {
    auto layout = drivers[q]->layout();
    write32(0x030, q);
    write32(0x038, m_queue_size);
    write32(0x080, static_cast<uint32_t>(layout.desc));
    write32(0x084, static_cast<uint32_t>(layout.desc >> 32));
    write32(0x090, static_cast<uint32_t>(layout.avail));
    write32(0x094, static_cast<uint32_t>(layout.avail >> 32));
    write32(0x0a0, static_cast<uint32_t>(layout.used));
    write32(0x0a4, static_cast<uint32_t>(layout.used >> 32));
    write32(0x044, 1);
  }
  void kick(uint32_t q) { write32(0x050, q); }
  // Waits (up to 5 s) until queue q's used index reaches `n`.
  bool wait_used(uint32_t q, uint16_t n) {
    for (int i = 0; i < 5000; ++i) {
      if (drivers[q]->used_idx() == n) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return false;
  }
  bool needs_reset() { return read32(0x070) & kStatusNeedsReset; }
  TestDriver& queue(uint32_t q) { return *drivers[q]; }

  base::GuestMemory memory;
  std::shared_ptr<TestIrq> irq_ptr = std::make_shared<TestIrq>();
  TestIrq& irq = *irq_ptr;
  std::atomic<int> logs{0};
  std::unique_ptr<MmioTransport> transport;
  std::vector<std::unique_ptr<TestDriver>> drivers;

 private:
  uint32_t m_queue_size;
};

}  // namespace hw::virtio::testing
