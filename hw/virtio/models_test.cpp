#include "hw/virtio/models.h"

#include <doctest/doctest.h>

#include <map>
#include <tuple>

#include "backends/rng/random.h"
#include "graph/graph.h"
#include "hw/device_state.h"
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
  std::shared_ptr<backends::RngBackend> entropy;
  std::shared_ptr<backends::RngBackend> host_entropy() override { return entropy; }
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
  for (const char* driver :
       {"virtio-blk-mmio", "virtio-net-mmio", "virtio-rng-mmio", "virtio-console-mmio", "virtio-blk-pci",
        "virtio-net-pci", "virtio-rng-pci", "virtio-console-pci", "virtio-scsi-pci", "virtio-serial-pci",
        "scsi-hd", "scsi-cd", "virtconsole", "virtserialport"})
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

TEST_CASE("models: virtio-rng without a backend draws from the host entropy the launcher gives") {
  ModelFixture f("virtio-rng-mmio");
  f.source.entropy = std::make_shared<backends::rng::GetrandomRng>();
  auto model = f.build();
  REQUIRE(model.ok());
  CHECK(f.read32(**model, 0x008) == kIdRng);
}

TEST_CASE("models: virtio-rng without a backend or host entropy is a clear error") {
  ModelFixture f("virtio-rng-mmio");
  auto model = f.build();
  REQUIRE_FALSE(model.ok());
  CHECK(model.error().message.find("needs the host's entropy") != std::string::npos);
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
  f.source.entropy = std::make_shared<backends::rng::GetrandomRng>();
  auto model = f.build();
  REQUIRE_FALSE(model.ok());
  CHECK(model.error().message.find("no PCI host bridge") != std::string::npos);
}

namespace {
// A controller `ctl` providing bus "ctl.0" with `children` (driver, backend name, address) on it.
void add_bus(ModelFixture& f, graph::BusKind kind, std::string property, graph::BackendKind backend_kind,
             std::vector<std::tuple<std::string, std::string, uint32_t>> children) {
  f.device.id = "ctl";
  f.device.provides = {"ctl.0"};
  graph::Bus bus;
  bus.name = "ctl.0";
  bus.kind = kind;
  for (auto& [driver, backend, slot] : children) {
    graph::Device child;
    child.id = driver + std::to_string(slot);
    child.driver = driver;
    child.bus = "ctl.0";
    child.address.kind = graph::Address::Kind::Slot;
    child.address.slot = slot;
    graph::BackendRef ref;
    ref.property = property;
    ref.kind = backend_kind;
    ref.name = backend;
    child.backends.push_back(ref);
    child.properties.push_back({"name", std::string("port-") + std::to_string(slot), false, {}});
    bus.devices.push_back(f.graph.devices.size());
    f.graph.devices.push_back(child);
  }
  f.graph.buses.push_back(bus);
}
}  // namespace

TEST_CASE("models: virtio-scsi gathers the disks on its bus, target id = address") {
  ModelFixture f("virtio-scsi-pci");
  add_bus(f, graph::BusKind::Scsi, "drive", graph::BackendKind::Block,
          {{"scsi-hd", "d0", 0}, {"scsi-cd", "c0", 5}});
  f.source.blocks["d0"] = std::make_shared<MemoryDisk>(1 << 20);
  f.source.blocks["c0"] = std::make_shared<MemoryDisk>(1 << 20);
  hw::DeviceEnv env{f.graph, f.device, f.memory, f.bus, f.irq, f.source, f.power};
  auto device = create_virtio_device(env);
  REQUIRE(device.ok());
  CHECK((*device)->device_id() == kIdScsi);
  uint8_t max_target[2] = {};
  (*device)->read_config(30, max_target);
  CHECK(max_target[0] == 5);
  // The children's own models leave the building to the controller: what the machine holds of
  // them is a snapshot part without state of its own (the controller's carries it).
  hw::DeviceEnv child_env{f.graph, f.graph.devices[0], f.memory, f.bus, f.irq, f.source, f.power};
  auto child = (*hw::find_device_model("scsi-hd"))(child_env);
  REQUIRE(child.ok());
  auto* part = dynamic_cast<hw::DeviceState*>(child->get());
  REQUIRE(part != nullptr);
  hw::StateWriter out;
  part->save_state(out);
  CHECK(out.data().empty());
  CHECK_FALSE(part->cannot_save().has_value());

  f.source.blocks.erase("c0");
  auto broken = create_virtio_device(env);
  REQUIRE_FALSE(broken.ok());
  CHECK(broken.error().message.find("scsi-cd5") != std::string::npos);
}

TEST_CASE("models: virtio-serial gathers the ports on its bus, port number = address") {
  ModelFixture f("virtio-serial-pci");
  add_bus(f, graph::BusKind::VirtioSerial, "chardev", graph::BackendKind::Chardev,
          {{"virtconsole", "a", 0}, {"virtserialport", "b", 3}});
  auto a = std::make_shared<RecordingChardev>(), b = std::make_shared<RecordingChardev>();
  f.source.chardevs["a"] = a;
  f.source.chardevs["b"] = b;
  hw::DeviceEnv env{f.graph, f.device, f.memory, f.bus, f.irq, f.source, f.power};
  auto device = create_virtio_device(env);
  REQUIRE(device.ok());
  CHECK((*device)->num_queues() == 2 * (4 + 1));  // ports up to 3
  CHECK(a->receiver != nullptr);
  CHECK(b->receiver != nullptr);
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
