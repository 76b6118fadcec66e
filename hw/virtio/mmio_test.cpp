#include "hw/virtio/mmio.h"

#include <doctest/doctest.h>

#include "hw/virtio/rng.h"
#include "hw/virtio/test_backends.h"
#include "hw/virtio/test_harness.h"

using namespace hw::virtio;
using namespace hw::virtio::testing;

namespace {
std::shared_ptr<RngDevice> rng() {
  return std::make_shared<RngDevice>(std::make_shared<CountingRng>());
}
}  // namespace

TEST_CASE("mmio: identification registers") {
  Harness h(rng());
  CHECK(h.read32(0x000) == 0x74726976);
  CHECK(h.read32(0x004) == 2);
  CHECK(h.read32(0x008) == kIdRng);
  CHECK(h.read32(0x00c) == MmioTransport::kVendor);
}

TEST_CASE("mmio: registers need 32-bit aligned accesses; others read zero") {
  Harness h(rng());
  uint8_t byte = 0xff;
  h.transport->read(0x000, {&byte, 1});
  CHECK(byte == 0);
  uint32_t v = 0xffffffff;
  h.transport->read(0x002, {reinterpret_cast<uint8_t*>(&v), 4});
  CHECK(v == 0);
}

TEST_CASE("mmio: FEATURES_OK is refused without VERSION_1") {
  Harness h(rng());
  CHECK_FALSE(h.bring_up(kFeatureVersion1));
  CHECK((h.read32(0x070) & kStatusFeaturesOk) == 0);
}

TEST_CASE("mmio: FEATURES_OK is refused for features the device did not offer") {
  Harness h(rng());
  h.write32(0x070, kStatusAcknowledge | kStatusDriver);
  h.write32(0x024, 1);
  h.write32(0x020, 1 | (1u << 20));  // VERSION_1 plus an unoffered bit
  h.write32(0x070, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk);
  CHECK((h.read32(0x070) & kStatusFeaturesOk) == 0);
}

TEST_CASE("mmio: rng request is filled, interrupts, and ACK lowers the line") {
  Harness h(rng());
  REQUIRE(h.bring_up());
  uint64_t buffer = h.queue(0).alloc(8);
  h.queue(0).offer({{buffer, 8, true}});
  h.kick(0);
  REQUIRE(h.wait_used(0, 1));
  CHECK(h.queue(0).used(0).second == 8);
  CHECK(h.queue(0).read_string(buffer, 8) == std::string("\x01\x02\x03\x04\x05\x06\x07\x08", 8));
  CHECK(h.irq.level());
  CHECK((h.read32(0x060) & MmioTransport::kIsrUsed) != 0);
  h.write32(0x064, MmioTransport::kIsrUsed);
  CHECK_FALSE(h.irq.level());
  CHECK(h.read32(0x060) == 0);
}

TEST_CASE("mmio: queue max size, and a queue that does not exist") {
  Harness h(rng());
  h.write32(0x030, 0);
  CHECK(h.read32(0x034) == 256);
  h.write32(0x030, 5);
  CHECK(h.read32(0x034) == 0);
  h.write32(0x038, 8);  // ignored, no crash
  CHECK_FALSE(h.needs_reset());
}

TEST_CASE("hostile mmio: queue size not a power of two sets NEEDS_RESET") {
  Harness h(rng());
  h.write32(0x070, kStatusAcknowledge | kStatusDriver);
  h.write32(0x030, 0);
  h.write32(0x038, 12);
  CHECK(h.needs_reset());
  CHECK(h.logs == 1);
}

TEST_CASE("hostile mmio: queue size above the maximum sets NEEDS_RESET") {
  Harness h(rng());
  h.write32(0x030, 0);
  h.write32(0x038, 65536);
  CHECK(h.needs_reset());
}

TEST_CASE("hostile mmio: queue registers rewritten after DRIVER_OK") {
  Harness h(rng());
  REQUIRE(h.bring_up());
  h.write32(0x030, 0);
  h.write32(0x080, 0x1234000);
  CHECK(h.needs_reset());
  // Spec 2.1.2: the driver learns through a configuration change interrupt.
  CHECK((h.read32(0x060) & MmioTransport::kIsrConfig) != 0);
  CHECK(h.irq.level());
}

TEST_CASE("hostile mmio: rings outside RAM at DRIVER_OK") {
  Harness h(rng());
  h.write32(0x070, kStatusAcknowledge | kStatusDriver);
  h.write32(0x024, 1);
  h.write32(0x020, 1);
  h.write32(0x070, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk);
  h.write32(0x030, 0);
  h.write32(0x038, 16);
  h.write32(0x080, 0x1000);  // no RAM at 0x1000
  h.write32(0x044, 1);
  h.write32(0x070, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk | kStatusDriverOk);
  CHECK(h.needs_reset());
}

TEST_CASE("hostile mmio: bad descriptor breaks the device once; reset recovers") {
  Harness h(rng());
  REQUIRE(h.bring_up());
  h.queue(0).publish(99);  // head outside the table
  h.kick(0);
  CHECK(h.needs_reset());
  h.kick(0);
  h.queue(0).publish(98);
  h.kick(0);
  CHECK(h.logs == 1);  // logged once, not per kick
  CHECK(h.transport->core().faults() >= 1);
  // The driver resets and starts over: the device works again.
  h.drivers[0] = std::make_unique<TestDriver>(h.memory, 16, 0);
  h.memory.write_le<uint16_t>(h.queue(0).layout().used + 2, 0);
  h.memory.write_le<uint16_t>(h.queue(0).layout().avail + 2, 0);
  REQUIRE(h.bring_up());
  CHECK_FALSE(h.needs_reset());
  uint64_t buffer = h.queue(0).alloc(4);
  h.queue(0).offer({{buffer, 4, true}});
  h.kick(0);
  CHECK(h.wait_used(0, 1));
}

TEST_CASE("mmio: NEEDS_RESET cannot be cleared by the driver except by reset") {
  Harness h(rng());
  h.write32(0x038, 3);
  REQUIRE(h.needs_reset());
  h.write32(0x070, kStatusAcknowledge);
  CHECK(h.needs_reset());
  h.write32(0x070, 0);
  CHECK_FALSE(h.needs_reset());
}

TEST_CASE("mmio: kicks before DRIVER_OK are ignored") {
  Harness h(rng());
  h.kick(0);
  h.kick(7);
  CHECK_FALSE(h.needs_reset());
}
