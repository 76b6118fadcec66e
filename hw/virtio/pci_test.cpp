#include "hw/virtio/pci.h"

#include <doctest/doctest.h>

#include <map>

#include "hw/virtio/rng.h"
#include "hw/virtio/test_backends.h"
#include "hw/virtio/test_harness.h"

using namespace hw::virtio;
using namespace hw::virtio::testing;

namespace {

struct Level : hw::IrqLine {
  bool level = false;
  void set_level(bool asserted) override { level = asserted; }
};

struct PciFixture {
  base::GuestMemory memory;
  std::shared_ptr<PciTransport> fn;
  std::shared_ptr<Level> intx = std::make_shared<Level>();
  std::unique_ptr<TestDriver> driver;
  int logs = 0;

  PciFixture() {
    REQUIRE(memory.add_region(kRamBase, kRamSize).ok());
    auto device = std::make_shared<RngDevice>(std::make_shared<CountingRng>());
    fn = std::make_shared<PciTransport>("rng", device, memory, [this](std::string_view) { logs++; });
    fn->set_interrupt(1, 5);
    fn->set_irq_line(intx);
    driver = std::make_unique<TestDriver>(memory, 16);
  }
  uint32_t common(uint64_t offset, unsigned size) {
    uint32_t v = 0;
    fn->bar_read(offset, {reinterpret_cast<uint8_t*>(&v), size});
    return v;
  }
  void set(uint64_t offset, unsigned size, uint32_t v) {
    fn->bar_write(offset, {reinterpret_cast<uint8_t*>(&v), size});
  }
  // Walks the vendor capabilities: cfg_type -> (bar, offset, length).
  std::map<uint8_t, std::tuple<uint8_t, uint32_t, uint32_t>> capabilities() {
    std::map<uint8_t, std::tuple<uint8_t, uint32_t, uint32_t>> out;
    uint8_t at = static_cast<uint8_t>(fn->config_read(0x34, 1));
    for (int guard = 0; at && guard < 48; ++guard) {
      if (fn->config_read(at, 1) == 0x09)
        out[static_cast<uint8_t>(fn->config_read(at + 3, 1))] = {
            static_cast<uint8_t>(fn->config_read(at + 4, 1)), fn->config_read(at + 8, 4),
            fn->config_read(at + 12, 4)};
      at = static_cast<uint8_t>(fn->config_read(at + 1, 1));
    }
    return out;
  }
  void bring_up() {
    set(0x14, 1, 0);
    set(0x14, 1, kStatusAcknowledge | kStatusDriver);
    set(0x08, 4, 1);
    set(0x0c, 4, 1);  // VERSION_1
    set(0x14, 1, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk);
    REQUIRE((common(0x14, 1) & kStatusFeaturesOk) != 0);
    auto layout = driver->layout();
    set(0x16, 2, 0);
    set(0x18, 2, 16);
    set(0x20, 4, static_cast<uint32_t>(layout.desc));
    set(0x24, 4, static_cast<uint32_t>(layout.desc >> 32));
    set(0x28, 4, static_cast<uint32_t>(layout.avail));
    set(0x2c, 4, static_cast<uint32_t>(layout.avail >> 32));
    set(0x30, 4, static_cast<uint32_t>(layout.used));
    set(0x34, 4, static_cast<uint32_t>(layout.used >> 32));
    set(0x1c, 2, 1);
    set(0x14, 1, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk | kStatusDriverOk);
  }
};

}  // namespace

TEST_CASE("virtio-pci: modern ids and class") {
  PciFixture f;
  CHECK(f.fn->config_read(0x00, 2) == 0x1af4);
  CHECK(f.fn->config_read(0x02, 2) == 0x1040 + kIdRng);
  CHECK(f.fn->config_read(0x08, 1) == 1);  // revision 1: modern
  auto blk = virtio_pci_ids(kIdBlock);
  CHECK(blk.class_code == 0x010000);
}

TEST_CASE("virtio-pci: capabilities point into BAR 4") {
  PciFixture f;
  auto caps = f.capabilities();
  REQUIRE(caps.size() == 4);
  CHECK(caps[1] == std::tuple<uint8_t, uint32_t, uint32_t>{4, 0x0000, 0x38});
  CHECK(std::get<1>(caps[2]) == 0x3000);
  CHECK(std::get<1>(caps[3]) == 0x1000);
  CHECK(std::get<1>(caps[4]) == 0x2000);
  CHECK(f.fn->bars()[4].size == PciTransport::kBarSize);
}

TEST_CASE("virtio-pci: common config, a request, INTx and ISR read-to-ack") {
  PciFixture f;
  CHECK(f.common(0x12, 2) == 1);       // num_queues
  CHECK(f.common(0x18, 2) == 256);     // queue_size defaults to the maximum
  CHECK(f.common(0x10, 2) == 0xffff);  // no MSI-X
  f.bring_up();
  CHECK((f.common(0x14, 1) & kStatusNeedsReset) == 0);
  uint64_t buffer = f.driver->alloc(4);
  f.driver->offer({{buffer, 4, true}});
  f.set(PciTransport::kNotifyOffset + 0 * PciTransport::kNotifyMultiplier, 2, 0);
  CHECK(f.driver->used_idx() == 1);
  CHECK(f.intx->level);
  CHECK(f.common(PciTransport::kIsrOffset, 1) == 1);
  CHECK_FALSE(f.intx->level);
  CHECK(f.common(PciTransport::kIsrOffset, 1) == 0);
}

TEST_CASE("hostile virtio-pci: queue address rewritten after DRIVER_OK") {
  PciFixture f;
  f.bring_up();
  f.set(0x20, 4, 0x1000);
  CHECK((f.common(0x14, 1) & kStatusNeedsReset) != 0);
  CHECK(f.logs == 1);
  CHECK(f.intx->level);  // configuration change interrupt
  CHECK((f.common(PciTransport::kIsrOffset, 1) & 2) != 0);
}

TEST_CASE("hostile virtio-pci: odd-sized and out-of-window accesses are harmless") {
  PciFixture f;
  uint8_t big[8] = {};
  f.fn->bar_read(0, big);
  f.fn->bar_write(0, big);
  f.set(0x3ffc, 4, 1234);  // notify of a queue that does not exist, before DRIVER_OK
  f.set(0x18, 2, 100);     // not a power of two
  CHECK((f.common(0x14, 1) & kStatusNeedsReset) != 0);
}
