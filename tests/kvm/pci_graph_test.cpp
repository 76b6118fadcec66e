// Graph -> x86 pc machine -> CF8/CFC: a firmware-style scan through the machine's port I/O finds
// exactly the PCI functions the resolved graph places (bridges, virtio-pci functions behind them),
// with bus numbers assigned depth first. Runs without /dev/kvm: the accelerator is a fake.
#include <doctest/doctest.h>

#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <set>

#include "config/machine.h"
#include "graph/graph.h"
#include "graph/resolve.h"
#include "hw/machine.h"
#include "hw/testing/recording_accel.h"

namespace {

struct ZeroRng : backends::RngBackend {
  base::ErrorOr<void> fill(std::span<uint8_t> out) override {
    std::memset(out.data(), 0, out.size());
    return {};
  }
};

struct FakeBackends : hw::BackendSource {
  std::shared_ptr<backends::CharBackend> chardev(std::string_view) override { return nullptr; }
  std::shared_ptr<backends::RngBackend> rng(std::string_view) override { return std::make_shared<ZeroRng>(); }
};

std::string write_file(const std::string& name, const std::string& text) {
  std::string path = (getenv("TEST_TMPDIR") ? getenv("TEST_TMPDIR") : "/tmp") + std::string("/") + name;
  std::ofstream(path) << text;
  return path;
}

}  // namespace

TEST_CASE("a CF8/CFC scan of the pc machine finds exactly the graph's PCI functions") {
  std::string kernel = write_file("kernel.elf", "");
  {
    // The machine only needs a loadable kernel: a hand-written ELF64 (entry 0x100000, one byte).
    std::vector<uint8_t> elf(0x200, 0);
    auto put32 = [&](size_t at, uint32_t v) { std::memcpy(elf.data() + at, &v, 4); };
    auto put64 = [&](size_t at, uint64_t v) { std::memcpy(elf.data() + at, &v, 8); };
    std::memcpy(elf.data(),
                "\x7f"
                "ELF\x02\x01\x01",
                7);
    elf[0x10] = 2, elf[0x12] = 62, elf[0x14] = 1;
    put64(0x18, 0x100000);
    put64(0x20, 0x40);
    elf[0x34] = 64, elf[0x36] = 56, elf[0x38] = 1;
    put32(0x40, 1);
    put64(0x48, 0x100);
    put64(0x50, 0x100000);
    put64(0x58, 0x100000);
    put64(0x60, 1);
    put64(0x68, 1);
    std::ofstream(kernel, std::ios::binary).write(reinterpret_cast<const char*>(elf.data()), elf.size());
  }
  std::string file = write_file("pci.yaml", R"(name: pci-graph
machine: {arch: x86_64, type: pc, memory: 16MiB}
cpu: {model: host, count: 1}
boot: {kernel: ")" + kernel + R"("}
backends:
  rng: {r0: {driver: random}, r1: {driver: random}, r2: {driver: random}}
devices:
  - {driver: pci-bridge, id: br1, addr: 7}
  - {driver: pci-bridge, id: br2, bus: br1, addr: 4}
  - {driver: virtio-rng-pci, id: a, rng: r0, bus: br2}
  - {driver: virtio-rng-pci, id: b, rng: r1}
  - {driver: pci-bridge, id: br3}
  - {driver: virtio-rng-pci, id: c, rng: r2, bus: br1, addr: 1}
)");
  config::LoadResult loaded = config::load_machine(file, config::Environment());
  for (const auto& d : loaded.diagnostics) MESSAGE(d.to_string());
  REQUIRE(loaded.ok());
  graph::ResolveResult resolved = graph::resolve(loaded.document);
  for (const auto& d : resolved.diagnostics) MESSAGE(d.to_string());
  REQUIRE(resolved.ok());
  const graph::Graph& g = resolved.graph;

  // What the graph says, numbered as firmware numbers buses: depth first, in address order.
  std::vector<std::string> expected;
  uint32_t next_bus = 1;
  std::function<void(const std::string&, uint32_t)> walk = [&](const std::string& bus, uint32_t number) {
    for (const graph::Device* d : g.devices_on(bus)) {
      char text[16];
      std::snprintf(text, sizeof text, "%02x:%02x.%x", number, d->address.slot, d->address.function);
      expected.push_back(text);
      if (d->driver == "pci-bridge") walk(d->id, next_bus++);
    }
  };
  walk("pci.0", 0);
  REQUIRE(expected.size() == 7);  // host bridge + 3 bridges + 3 functions

  hw::testing::RecordingAccel accel("x86_64");
  FakeBackends backends;
  hw::MachineContext context;
  context.accelerator = &accel;
  context.backends = &backends;
  auto machine = hw::build_machine(g, context);
  REQUIRE_MESSAGE(machine.ok(), (machine.ok() ? std::string() : machine.error().message));
  auto config_read = [&](uint32_t bus, uint32_t dev, uint32_t fn, uint32_t reg) {
    uint32_t address = 0x80000000u | bus << 16 | dev << 11 | fn << 8 | reg;
    uint8_t a[4], d[4];
    std::memcpy(a, &address, 4);
    accel.state->ops->pio_write(0xcf8, a);
    accel.state->ops->pio_read(0xcfc, d);
    uint32_t v;
    std::memcpy(&v, d, 4);
    return v;
  };
  std::vector<std::string> seen;
  std::function<void(uint32_t)> scan = [&](uint32_t bus) {
    for (uint32_t dev = 0; dev < 32; ++dev) {
      for (uint32_t fn = 0; fn < 8; ++fn) {
        if ((config_read(bus, dev, fn, 0) & 0xffff) == 0xffff) {
          if (fn == 0) break;
          continue;
        }
        char text[16];
        std::snprintf(text, sizeof text, "%02x:%02x.%x", bus, dev, fn);
        seen.push_back(text);
        uint32_t header = (config_read(bus, dev, fn, 0x0c) >> 16) & 0xff;
        if ((header & 0x7f) == 1) scan((config_read(bus, dev, fn, 0x18) >> 8) & 0xff);
        if (fn == 0 && !(header & 0x80)) break;
      }
    }
  };
  scan(0);
  CHECK(seen == expected);
}
