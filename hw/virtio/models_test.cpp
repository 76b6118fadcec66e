#include "hw/virtio/models.h"

#include <doctest/doctest.h>

#include <map>

#include "graph/graph.h"
#include "hw/virtio/mmio.h"
#include "hw/virtio/net.h"
#include "hw/virtio/test_backends.h"
#include "hw/virtio/test_harness.h"

using namespace hw::virtio;
using namespace hw::virtio::testing;

namespace {

struct Source : hw::BackendSource {
  std::map<std::string, std::shared_ptr<backends::CharBackend>> chardevs;
  std::map<std::string, std::shared_ptr<backends::BlockBackend>> blocks;
  std::shared_ptr<backends::CharBackend> chardev(std::string_view name) override {
    auto it = chardevs.find(std::string(name));
    return it == chardevs.end() ? nullptr : it->second;
  }
  std::shared_ptr<backends::BlockBackend> block(std::string_view name) override {
    auto it = blocks.find(std::string(name));
    return it == blocks.end() ? nullptr : it->second;
  }
};

struct ModelFixture {
  graph::Graph graph;
  graph::Device device;
  base::GuestMemory memory;
  hw::Bus bus;
  hw::PowerController power;
  Source source;
  std::shared_ptr<TestIrq> irq = std::make_shared<TestIrq>();

  explicit ModelFixture(std::string driver) {
    graph.machine.name = "testvm";
    device.id = "dev0";
    device.driver = std::move(driver);
    REQUIRE(memory.add_region(kRamBase, kRamSize).ok());
  }
  void backend(std::string property, graph::BackendKind kind, std::string name) {
    graph::BackendRef ref;
    ref.property = std::move(property);
    ref.kind = kind;
    ref.name = std::move(name);
    device.backends.push_back(ref);
  }
  base::ErrorOr<std::shared_ptr<hw::Device>> build() {
    const hw::DeviceModelFactory* factory = hw::find_device_model(device.driver);
    REQUIRE(factory != nullptr);
    hw::DeviceEnv env{graph, device, memory, bus, irq, source, power};
    return (*factory)(env);
  }
  uint32_t read32(hw::Device& d, uint64_t offset) {
    uint32_t v = 0;
    d.read(offset, {reinterpret_cast<uint8_t*>(&v), 4});
    return v;
  }
};

}  // namespace

TEST_CASE("models: every virtio driver of the catalogue is registered") {
  for (const char* driver : {"virtio-blk-mmio", "virtio-net-mmio", "virtio-rng-mmio", "virtio-console-mmio",
                             "virtio-blk-pci", "virtio-net-pci", "virtio-rng-pci", "virtio-console-pci"})
    CHECK_MESSAGE(hw::find_device_model(driver) != nullptr, driver);
}

TEST_CASE("models: virtio-blk-mmio from a graph entry and its drive backend") {
  ModelFixture f("virtio-blk-mmio");
  f.backend("drive", graph::BackendKind::Block, "disk0");
  f.source.blocks["disk0"] = std::make_shared<MemoryDisk>(1 << 20);
  f.device.properties.push_back({"serial", std::string("SERIAL-1"), false, {}});
  auto model = f.build();
  REQUIRE(model.ok());
  REQUIRE(*model != nullptr);
  CHECK(f.read32(**model, 0x000) == 0x74726976);
  CHECK(f.read32(**model, 0x008) == kIdBlock);
  CHECK(f.read32(**model, 0x100) == (1 << 20) / 512);
}

TEST_CASE("models: a missing backend is an error naming it") {
  ModelFixture f("virtio-blk-mmio");
  f.backend("drive", graph::BackendKind::Block, "nowhere");
  auto model = f.build();
  REQUIRE_FALSE(model.ok());
  CHECK(model.error().message.find("\"nowhere\"") != std::string::npos);
}

TEST_CASE("models: virtio-rng without a backend uses the kernel's entropy") {
  ModelFixture f("virtio-rng-mmio");
  auto model = f.build();
  REQUIRE(model.ok());
  CHECK(f.read32(**model, 0x008) == kIdRng);
}

TEST_CASE("models: virtio-console-mmio attaches to its chardev") {
  ModelFixture f("virtio-console-mmio");
  auto chardev = std::make_shared<RecordingChardev>();
  f.source.chardevs["hvc"] = chardev;
  f.backend("chardev", graph::BackendKind::Chardev, "hvc");
  auto model = f.build();
  REQUIRE(model.ok());
  CHECK(chardev->receiver != nullptr);
}

TEST_CASE("models: virtio-pci on a machine without a PCI host is a clear error") {
  ModelFixture f("virtio-rng-pci");
  auto model = f.build();
  REQUIRE_FALSE(model.ok());
  CHECK(model.error().message.find("no PCI host bridge") != std::string::npos);
}

TEST_CASE("stable MACs: same key same MAC, locally administered prefix, parse round trip") {
  auto a = stable_mac("vm1/net0"), b = stable_mac("vm1/net0"), c = stable_mac("vm2/net0");
  CHECK(a == b);
  CHECK(a != c);
  CHECK(a[0] == 0x52);
  auto parsed = parse_mac("52:54:00:AB:cd:01");
  REQUIRE(parsed.has_value());
  CHECK((*parsed)[3] == 0xab);
  CHECK_FALSE(parse_mac("52:54:00:ab:cd").has_value());
  CHECK_FALSE(parse_mac("52-54-00-ab-cd-01").has_value());
  CHECK_FALSE(parse_mac("52:54:00:ab:cd:0g").has_value());
}
