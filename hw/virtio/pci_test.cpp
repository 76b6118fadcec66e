#include "hw/virtio/pci.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <utility>
#include <vector>

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

// Records the MSI messages a function sends.
struct FakeMsiSink : hw::MsiSink {
  std::vector<std::pair<uint64_t, uint32_t>> messages;
  void signal(uint64_t address, uint32_t data) override { messages.push_back({address, data}); }
};

struct PciFixture {
  base::GuestMemory memory;
  std::shared_ptr<PciTransport> fn;
  std::shared_ptr<Level> intx = std::make_shared<Level>();
  std::unique_ptr<TestDriver> driver;
  int logs = 0;

  explicit PciFixture(std::shared_ptr<hw::MsiSink> msi = nullptr) {
    REQUIRE(memory.add_region(kRamBase, kRamSize).ok());
    auto device = std::make_shared<RngDevice>(std::make_shared<CountingRng>());
    fn = std::make_shared<PciTransport>(
        "rng", device, memory, [this](std::string_view) { logs++; }, msi);
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
  // Offset of the capability with `id` in config space, 0 when absent.
  uint8_t find_capability(uint8_t id) {
    uint8_t at = static_cast<uint8_t>(fn->config_read(0x34, 1));
    for (int guard = 0; at && guard < 48; ++guard) {
      if (fn->config_read(at, 1) == id) return at;
      at = static_cast<uint8_t>(fn->config_read(at + 1, 1));
    }
    return 0;
  }
  void request() {
    uint64_t buffer = driver->alloc(4);
    driver->offer({{buffer, 4, true}});
    set(PciTransport::kNotifyOffset, 2, 0);
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

namespace {

// A fixture whose function has MSI-X (rng: one queue, so vectors 0 and 1).
struct MsixFixture : PciFixture {
  std::shared_ptr<FakeMsiSink> sink;
  uint8_t cap = 0;
  MsixFixture() : MsixFixture(std::make_shared<FakeMsiSink>()) {}
  explicit MsixFixture(std::shared_ptr<FakeMsiSink> s) : PciFixture(s), sink(std::move(s)) {
    cap = find_capability(0x11);
    REQUIRE(cap != 0);
    fn->set_command(hw::pci::kCommandMemory | hw::pci::kCommandBusMaster);  // as the machine leaves it
  }
  uint32_t table(unsigned vector, unsigned field) {
    return common(PciTransport::kMsixTableOffset + 16 * vector + field, 4);
  }
  void set_table(unsigned vector, unsigned field, uint32_t v) {
    set(PciTransport::kMsixTableOffset + 16 * vector + field, 4, v);
  }
  void program(unsigned vector, uint64_t address, uint32_t data, bool masked) {
    set_table(vector, 0, static_cast<uint32_t>(address));
    set_table(vector, 4, static_cast<uint32_t>(address >> 32));
    set_table(vector, 8, data);
    set_table(vector, 12, masked ? 1 : 0);
  }
  uint64_t pba() {
    uint64_t v = 0;
    fn->bar_read(PciTransport::kMsixPbaOffset, {reinterpret_cast<uint8_t*>(&v), 8});
    return v;
  }
  void control(uint16_t bits) { fn->config_write(cap + 2, 2, bits); }
  // Queue 0 raises vector 1, programmed with this message; then MSI-X is switched on.
  void queue_vector_enabled(uint64_t address, uint32_t data, bool masked) {
    program(1, address, data, masked);
    set(0x16, 2, 0);
    set(0x1a, 2, 1);
    control(0x8000);
  }
};

}  // namespace

TEST_CASE("virtio-pci MSI-X: the capability exists only when the machine gives an MSI sink") {
  PciFixture intx_only;
  CHECK(intx_only.find_capability(0x11) == 0);
  CHECK(intx_only.fn->msix_vectors() == 0);
  CHECK(intx_only.fn->bars()[4].size == PciTransport::kBarSize);
  intx_only.set(0x10, 2, 0);  // msix_config cannot be set without MSI-X
  CHECK(intx_only.common(0x10, 2) == 0xffff);
  CHECK(intx_only.common(0x1a, 2) == 0xffff);

  MsixFixture f;
  CHECK(f.fn->msix_vectors() == 2);             // one queue + the config vector
  CHECK(f.fn->config_read(f.cap + 2, 2) == 1);  // table size - 1, disabled, unmasked
  CHECK(f.fn->config_read(f.cap + 4, 4) == (PciTransport::kMsixTableOffset | PciTransport::kBar));
  CHECK(f.fn->config_read(f.cap + 8, 4) == (PciTransport::kMsixPbaOffset | PciTransport::kBar));
  CHECK(f.fn->bars()[4].size == PciTransport::kMsixBarSize);
  // The virtio capabilities are unchanged.
  CHECK(f.capabilities().size() == 4);
  // Table size and offsets are read-only; only Enable and Function Mask are writable.
  f.fn->config_write(f.cap + 2, 2, 0xffff);
  CHECK(f.fn->config_read(f.cap + 2, 2) == 0xc001);
  f.fn->config_write(f.cap + 4, 4, 0);
  CHECK(f.fn->config_read(f.cap + 4, 4) == (PciTransport::kMsixTableOffset | PciTransport::kBar));
}

TEST_CASE("virtio-pci MSI-X: table and PBA reads and writes") {
  MsixFixture f;
  for (unsigned v = 0; v < 2; ++v) {
    CHECK(f.table(v, 0) == 0);
    CHECK(f.table(v, 12) == 1);  // every vector starts masked
  }
  f.program(1, 0x1'fee0'1000ull, 0x4041, true);
  CHECK(f.table(1, 0) == 0xfee01000);
  CHECK(f.table(1, 4) == 1);
  CHECK(f.table(1, 8) == 0x4041);
  CHECK(f.table(0, 8) == 0);  // the neighbour is untouched
  uint64_t whole = 0;         // an 8-byte access reads address low and high together
  f.fn->bar_read(PciTransport::kMsixTableOffset + 16, {reinterpret_cast<uint8_t*>(&whole), 8});
  CHECK(whole == 0x1'fee0'1000ull);
  f.set_table(1, 12, 0xfffffffe);  // reserved vector-control bits read as zero
  CHECK(f.table(1, 12) == 0);
  CHECK(f.pba() == 0);
  f.set(PciTransport::kMsixPbaOffset, 4, 0xffffffff);  // the PBA is read-only
  CHECK(f.pba() == 0);
}

TEST_CASE("virtio-pci MSI-X: enabled, a queue interrupt goes to the queue's programmed vector") {
  MsixFixture f;
  f.bring_up();
  f.program(0, 0xfee00000, 0x4031, false);  // config vector
  f.program(1, 0xfee01000, 0x4041, false);  // queue vector
  f.set(0x10, 2, 0);
  f.set(0x16, 2, 0);
  f.set(0x1a, 2, 1);
  CHECK(f.common(0x10, 2) == 0);
  CHECK(f.common(0x1a, 2) == 1);
  f.control(0x8000);
  f.request();
  CHECK(f.driver->used_idx() == 1);
  REQUIRE(f.sink->messages.size() == 1);
  CHECK(f.sink->messages[0] == std::pair<uint64_t, uint32_t>{0xfee01000, 0x4041});
  CHECK_FALSE(f.intx->level);                         // no INTx with MSI-X on
  CHECK(f.common(PciTransport::kIsrOffset, 1) == 0);  // and no ISR queue bit
  // A configuration change goes to msix_config's vector.
  f.set(0x20, 4, 0x1000);  // queue register rewritten after DRIVER_OK: needs reset, config change
  REQUIRE(f.sink->messages.size() == 2);
  CHECK(f.sink->messages[1] == std::pair<uint64_t, uint32_t>{0xfee00000, 0x4031});
  CHECK_FALSE(f.intx->level);
}

TEST_CASE("hostile virtio-pci MSI-X: no message while Bus Master Enable is clear") {
  MsixFixture f;
  f.bring_up();
  f.queue_vector_enabled(0xfee01000, 0x4041, false);
  f.fn->config_write(hw::pci::kCommand, 2, hw::pci::kCommandMemory);  // the guest clears bus mastering
  f.request();
  CHECK(f.driver->used_idx() == 1);
  CHECK(f.sink->messages.empty());
  CHECK(f.pba() == 0);  // dropped, as a write that never left the function
  CHECK_FALSE(f.intx->level);
  f.fn->config_write(hw::pci::kCommand, 2, hw::pci::kCommandMemory | hw::pci::kCommandBusMaster);
  f.request();
  REQUIRE(f.sink->messages.size() == 1);
  CHECK(f.sink->messages[0] == std::pair<uint64_t, uint32_t>{0xfee01000, 0x4041});
}

TEST_CASE("virtio-pci MSI-X: a masked vector sets its pending bit and fires on unmask") {
  MsixFixture f;
  f.bring_up();
  f.queue_vector_enabled(0xfee02000, 0x51, true);
  f.request();
  CHECK(f.sink->messages.empty());
  CHECK(f.pba() == 0b10);
  f.set_table(1, 12, 0);  // unmask
  REQUIRE(f.sink->messages.size() == 1);
  CHECK(f.sink->messages[0] == std::pair<uint64_t, uint32_t>{0xfee02000, 0x51});
  CHECK(f.pba() == 0);
  f.set_table(1, 12, 0);  // unmasking again sends nothing more
  CHECK(f.sink->messages.size() == 1);
}

TEST_CASE("virtio-pci MSI-X: the function mask holds every vector pending") {
  MsixFixture f;
  f.bring_up();
  f.program(1, 0xfee03000, 0x61, false);
  f.set(0x16, 2, 0);
  f.set(0x1a, 2, 1);
  f.control(0x8000 | 0x4000);  // enabled, function masked
  f.request();
  CHECK(f.sink->messages.empty());
  CHECK(f.pba() == 0b10);
  CHECK_FALSE(f.intx->level);
  f.control(0x8000);  // function mask cleared: the pending message goes out
  REQUIRE(f.sink->messages.size() == 1);
  CHECK(f.sink->messages[0] == std::pair<uint64_t, uint32_t>{0xfee03000, 0x61});
  CHECK(f.pba() == 0);
}

TEST_CASE("hostile virtio-pci MSI-X: vectors it cannot map read back NO_VECTOR") {
  MsixFixture f;
  f.set(0x10, 2, 2);  // only vectors 0 and 1 exist
  CHECK(f.common(0x10, 2) == 0xffff);
  f.set(0x10, 2, 1);
  CHECK(f.common(0x10, 2) == 1);
  f.set(0x16, 2, 0);
  f.set(0x1a, 2, 0x7fff);
  CHECK(f.common(0x1a, 2) == 0xffff);
  f.set(0x1a, 2, 0);
  CHECK(f.common(0x1a, 2) == 0);
  f.set(0x16, 2, 9);  // a queue that does not exist
  f.set(0x1a, 2, 1);
  CHECK(f.common(0x1a, 2) == 0xffff);
  f.set(0x14, 1, 0);  // device reset forgets the vectors
  f.set(0x16, 2, 0);
  CHECK(f.common(0x1a, 2) == 0xffff);
  CHECK(f.common(0x10, 2) == 0xffff);
  // With MSI-X on and the queue on NO_VECTOR, a used buffer raises nothing at all.
  f.bring_up();
  f.control(0x8000);
  f.request();
  CHECK(f.driver->used_idx() == 1);
  CHECK(f.sink->messages.empty());
  CHECK_FALSE(f.intx->level);
}

TEST_CASE("hostile virtio-pci MSI-X: table and PBA accesses out of range are harmless") {
  MsixFixture f;
  uint8_t big[64];
  std::fill(std::begin(big), std::end(big), 0xab);
  // Straddling the table's end, past it, far beyond the BAR and at the top of the address range.
  f.fn->bar_write(PciTransport::kMsixTableOffset + 16 * 2 - 8, big);
  f.fn->bar_write(PciTransport::kMsixTableOffset + 0x1ff0, big);
  f.fn->bar_write(PciTransport::kMsixPbaOffset + 0x1000, big);
  f.fn->bar_write(~uint64_t{0} - 4, big);
  f.fn->bar_read(~uint64_t{0} - 4, big);
  CHECK(f.table(1, 8) == 0xabababab);  // the in-range bytes of the straddling write landed
  CHECK(f.table(1, 12) == 1);          // vector control keeps only the mask bit
  std::fill(std::begin(big), std::end(big), 0xcd);
  f.fn->bar_read(PciTransport::kMsixPbaOffset + 8, big);  // past the one PBA qword
  CHECK(big[0] == 0);
  CHECK(big[63] == 0);
}

TEST_CASE("virtio-pci MSI-X: disabled, INTx and the ISR are used as before") {
  MsixFixture f;
  f.bring_up();
  f.program(1, 0xfee01000, 0x4041, false);
  f.set(0x16, 2, 0);
  f.set(0x1a, 2, 1);
  f.request();  // MSI-X Enable still clear
  CHECK(f.sink->messages.empty());
  CHECK(f.intx->level);
  CHECK(f.common(PciTransport::kIsrOffset, 1) == 1);
  CHECK_FALSE(f.intx->level);
  CHECK(f.pba() == 0);  // disabled is not masked: nothing pending
}

TEST_CASE("virtio-pci snapshot: a function saved and loaded into a fresh one goes on where it was") {
  MsixFixture f;
  f.bring_up();
  f.program(0, 0xfee00000, 0x4031, false);
  f.program(1, 0xfee01000, 0x4041, false);
  f.set(0x10, 2, 0);
  f.set(0x16, 2, 0);
  f.set(0x1a, 2, 1);
  f.control(0x8000);
  f.request();
  REQUIRE(f.driver->used_idx() == 1);
  REQUIRE(f.sink->messages.size() == 1);
  CHECK_FALSE(f.fn->cannot_save().has_value());
  f.fn->quiesce();
  hw::StateWriter config, state;
  f.fn->save_config(config);  // the PCI host's part
  f.fn->save_state(state);
  f.fn->unquiesce();

  // The fresh function of the restored machine: same RAM (restored before devices load).
  auto fresh = std::make_shared<PciTransport>(
      "rng", std::make_shared<RngDevice>(std::make_shared<CountingRng>()), f.memory, [](std::string_view) {},
      f.sink);
  hw::StateReader config_in(config.data()), state_in(state.data());
  REQUIRE(fresh->load_config(config_in).ok());
  auto loaded = fresh->load_state(state_in);
  REQUIRE_MESSAGE(loaded.ok(), (loaded.ok() ? "" : loaded.error().message));
  f.fn = fresh;
  CHECK((f.common(0x14, 1) & kStatusDriverOk) != 0);
  CHECK(f.common(0x10, 2) == 0);  // msix_config's vector
  f.set(0x16, 2, 0);
  CHECK(f.common(0x1a, 2) == 1);  // queue 0's vector
  CHECK(f.table(1, 8) == 0x4041);
  // The driver's next request is served from where the ring was, and signalled by MSI-X.
  f.request();
  CHECK(f.driver->used_idx() == 2);
  REQUIRE(f.sink->messages.size() == 2);
  CHECK(f.sink->messages[1] == std::pair<uint64_t, uint32_t>{0xfee01000, 0x4041});

  SUBCASE("short or hostile state is refused") {
    auto other = std::make_shared<PciTransport>(
        "rng", std::make_shared<RngDevice>(std::make_shared<CountingRng>()), f.memory,
        [](std::string_view) {}, f.sink);
    for (size_t n = 0; n < state.data().size(); n += 7) {
      hw::StateReader short_in(std::span<const uint8_t>(state.data()).first(n));
      CHECK_FALSE(other->load_state(short_in).ok());
    }
    auto without_msix =
        std::make_shared<PciTransport>("rng", std::make_shared<RngDevice>(std::make_shared<CountingRng>()),
                                       f.memory, [](std::string_view) {});
    hw::StateReader again(state.data());
    CHECK_FALSE(without_msix->load_state(again).ok());  // MSI-X on, but this machine offers none
  }
}
