// The x86 machine builders with a fake accelerator (no /dev/kvm needed): what gets mapped where, the
// boot state, the command line, the tables, and how guest power requests end Machine::run().
#include "hw/machine.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>

#include "graph/graph.h"
#include "hw/device_model.h"
#include "hw/testing/built_machine.h"
#include "hw/testing/recording_accel.h"
#include "hw/testing/recording_char.h"
#include "hw/x86/boot.h"

namespace {

constexpr uint64_t MiB = 1 << 20;

struct Backends : hw::BackendSource {
  std::shared_ptr<hw::testing::RecordingChar> console = std::make_shared<hw::testing::RecordingChar>();
  std::shared_ptr<backends::CharBackend> chardev(std::string_view name) override {
    return name == "con0" ? console : nullptr;
  }
};

// A fake virtio-mmio transport, to see the machine announce slots on the command line.
struct Window : hw::Device {
  std::string_view name() const override { return "window"; }
  void read(uint64_t, std::span<uint8_t> data) override { std::memset(data.data(), 0x77, data.size()); }
  void write(uint64_t, std::span<const uint8_t>) override {}
};
HW_REGISTER_DEVICE_MODEL("test-virtio-mmio",
                         [](hw::DeviceEnv&) -> base::ErrorOr<std::shared_ptr<hw::Device>> {
                           return std::shared_ptr<hw::Device>(std::make_shared<Window>());
                         });

// Records the MSI sink the machine hands to a device model (virtio-pci takes MSI-X from it).
struct MsiProbe {
  bool called = false;
  std::shared_ptr<hw::MsiSink> sink;
};
MsiProbe g_msi_probe;
HW_REGISTER_DEVICE_MODEL("test-msi-probe",
                         [](hw::DeviceEnv& env) -> base::ErrorOr<std::shared_ptr<hw::Device>> {
                           g_msi_probe.called = true;
                           g_msi_probe.sink = env.msi;
                           return std::shared_ptr<hw::Device>();
                         });

template <typename T>
void put(std::vector<uint8_t>& b, size_t at, T v) {
  std::memcpy(b.data() + at, &v, sizeof v);
}

// A minimal PVH ELF64 (entry 0x100000, one hlt) written to a temporary file.
std::string pvh_kernel() {
  std::vector<uint8_t> elf(0x200, 0);
  std::memcpy(elf.data(),
              "\x7f"
              "ELF",
              4);
  elf[4] = 2, elf[5] = 1, elf[6] = 1;
  put<uint16_t>(elf, 0x10, 2);
  put<uint16_t>(elf, 0x12, 62);
  put<uint32_t>(elf, 0x14, 1);
  put<uint64_t>(elf, 0x18, 0x100000);
  put<uint64_t>(elf, 0x20, 0x40);
  put<uint16_t>(elf, 0x34, 64);
  put<uint16_t>(elf, 0x36, 56);
  put<uint16_t>(elf, 0x38, 2);
  put<uint32_t>(elf, 0x40, 1);
  put<uint64_t>(elf, 0x48, 0x180);
  put<uint64_t>(elf, 0x50, 0x100000);
  put<uint64_t>(elf, 0x58, 0x100000);
  put<uint64_t>(elf, 0x60, 1);
  put<uint64_t>(elf, 0x68, 1);
  put<uint32_t>(elf, 0x78, 4);
  put<uint64_t>(elf, 0x80, 0x100);
  put<uint64_t>(elf, 0x98, 20);
  put<uint32_t>(elf, 0x100, 4);
  put<uint32_t>(elf, 0x104, 4);
  put<uint32_t>(elf, 0x108, 18);
  std::memcpy(elf.data() + 0x10c, "Xen", 4);
  put<uint32_t>(elf, 0x110, 0x100000);
  elf[0x180] = 0xf4;
  std::string path = (getenv("TEST_TMPDIR") ? getenv("TEST_TMPDIR") : "/tmp") + std::string("/pvh.elf");
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(elf.data()), elf.size());
  return path;
}

graph::Device builtin(std::string id, std::string driver, graph::SlotResource region) {
  graph::Device d;
  d.id = std::move(id);
  d.driver = std::move(driver);
  d.builtin = true;
  d.region = region;
  return d;
}

graph::Graph microvm_graph(unsigned cpus = 2) {
  graph::Graph g;
  g.machine.arch = "x86_64";
  g.machine.type = "microvm";
  g.machine.ram_size = 16 * MiB;
  g.machine.cpu.count = cpus;
  g.machine.cpu.cores = cpus;
  g.machine.cpu.model = "host";
  g.boot.kernel = pvh_kernel();
  g.boot.cmdline = "console=ttyS0";
  g.devices.push_back(builtin("ioapic", "ioapic", {0xfec00000, 0x1000, std::nullopt, false}));
  g.devices.push_back(builtin("i8042", "i8042", {0x60, 5, std::nullopt, true}));
  graph::Device uart;
  uart.id = "serial0";
  uart.driver = "ns16550";
  uart.bus = "isa";
  uart.address.kind = graph::Address::Kind::Slot;
  uart.address.resource = graph::SlotResource{0x3f8, 8, 4, true};
  uart.irq = 4;
  graph::BackendRef ref;
  ref.property = "chardev";
  ref.name = "con0";
  uart.backends.push_back(ref);
  g.devices.push_back(uart);
  graph::Bus mmio;
  mmio.name = "virtio-mmio";
  mmio.kind = graph::BusKind::VirtioMmio;
  g.buses.push_back(mmio);
  graph::Device rng;
  rng.id = "rng0";
  rng.driver = "test-virtio-mmio";
  rng.bus = "virtio-mmio";
  rng.address.kind = graph::Address::Kind::Slot;
  rng.address.resource = graph::SlotResource{0xfeb00000, 0x200, 5};
  rng.irq = 5;
  g.devices.push_back(rng);
  return g;
}

using Built = hw::testing::BuiltMachine<Backends>;

}  // namespace

TEST_CASE("microvm: PVH boot state for the BSP only, COM1 on port 0x3f8, virtio-mmio in the DSDT") {
  Built built(microvm_graph());
  REQUIRE_MESSAGE(built.machine, built.error);
  auto& state = *built.accel.state;
  CHECK(state.vcpus == 2);
  REQUIRE(state.boot.count(0) == 1);
  CHECK(state.boot.count(1) == 0);  // the AP waits for INIT/SIPI
  const auto& bsp = std::get<accel::X86BootState>(state.boot.at(0));
  CHECK(bsp.mode == accel::X86BootState::Mode::Pvh32);
  CHECK(bsp.rip == 0x100000);
  CHECK(state.spec.topology.cores == 2);

  const uint8_t a = 'A';
  CHECK(state.ops->pio_write(0x3f8, {&a, 1}));
  CHECK(built.backends.console->output == "A");
  uint8_t window[4];
  CHECK(state.ops->mmio_read(0xfeb00000, window));
  CHECK(window[0] == 0x77);

  char cmdline[128] = {};
  REQUIRE(state.memory->read(hw::x86::kCmdlineAddress, {reinterpret_cast<uint8_t*>(cmdline), 127}));
  CHECK(std::string(cmdline) == "console=ttyS0");
  char mp[4];
  REQUIRE(state.memory->read(hw::x86::kEbdaStart, {reinterpret_cast<uint8_t*>(mp), 4}));
  CHECK(std::string(mp, 4) == "_MP_");
  char rsdp[8];
  REQUIRE(state.memory->read(hw::x86::kAcpiStart, {reinterpret_cast<uint8_t*>(rsdp), 8}));
  CHECK(std::string(rsdp, 8) == "RSD PTR ");
}

TEST_CASE("the debug exit port powers off with the guest's status; i8042 0xfe resets") {
  {
    Built built(microvm_graph(1));
    REQUIRE(built.machine);
    built.accel.state->on_run = [](accel::VmOps& ops, unsigned) {
      const uint8_t status = 7;
      ops.pio_write(0x501, {&status, 1});
    };
    hw::RunOutcome outcome = built.machine->run();
    CHECK(outcome.kind == hw::RunOutcome::Kind::PowerOff);
    CHECK(outcome.exit_code == 7);
  }
  {
    Built built(microvm_graph(1));
    REQUIRE(built.machine);
    built.accel.state->on_run = [](accel::VmOps& ops, unsigned) {
      const uint8_t reset = 0xfe;
      ops.pio_write(0x64, {&reset, 1});
    };
    CHECK(built.machine->run().kind == hw::RunOutcome::Kind::Reset);
  }
}

TEST_CASE("errors name the problem: no kernel, unknown device, missing backend") {
  graph::Graph g = microvm_graph();
  g.boot.kernel.clear();
  CHECK(Built(g).error.find("boot.kernel is required") != std::string::npos);

  g = microvm_graph();
  graph::Device odd;
  odd.id = "odd0";
  odd.driver = "no-such-device";
  g.devices.push_back(odd);
  CHECK(Built(g).error.find("device odd0 (no-such-device)") != std::string::npos);

  g = microvm_graph();
  g.devices[2].backends[0].name = "missing";
  CHECK(Built(g).error.find("chardev backend \"missing\"") != std::string::npos);

  g = microvm_graph();
  g.boot.kernel = "/nonexistent/kernel";
  CHECK(Built(g).error.find("/nonexistent/kernel") != std::string::npos);
}

TEST_CASE("pc: the CF8/CFC host bridge answers at 00.0 and PCI devices sit at their graph address") {
  graph::Graph g = microvm_graph(1);
  g.machine.type = "pc";
  g.buses.clear();
  g.devices.pop_back();  // no virtio-mmio on pc
  graph::Bus pci;
  pci.name = "pci.0";
  pci.kind = graph::BusKind::Pci;
  g.buses.push_back(pci);
  graph::Device host = builtin("pci-host", "pci-host-bridge", {0xcf8, 8, std::nullopt, true});
  host.bus = "pci.0";
  host.address.kind = graph::Address::Kind::Pci;
  host.provides = {};
  g.devices.insert(g.devices.begin(), host);
  graph::Device bridge;
  bridge.id = "br1";
  bridge.driver = "pci-bridge";
  bridge.bus = "pci.0";
  bridge.address.kind = graph::Address::Kind::Pci;
  bridge.address.slot = 4;
  bridge.irq = 11;
  g.devices.push_back(bridge);
  g.memory_map.push_back(
      {"pci-mmio32", 0xc0000000, 0x3ec00000, graph::MemoryRegion::Kind::PciWindow, "pci-host"});
  Built built(g);
  REQUIRE_MESSAGE(built.machine, built.error);
  auto& ops = *built.accel.state->ops;
  auto config_read = [&](uint32_t address) {
    uint8_t a[4];
    std::memcpy(a, &address, 4);
    ops.pio_write(0xcf8, a);
    uint8_t d[4];
    ops.pio_read(0xcfc, d);
    uint32_t v;
    std::memcpy(&v, d, 4);
    return v;
  };
  CHECK(config_read(0x80000000u) == 0x12378086u);
  CHECK(config_read(0x80000000u | 4 << 11) == 0x00011b36u);
  CHECK(((config_read(0x80000000u | 4 << 11 | 0x3c) >> 8) & 0xff) == 0x01u);  // INTA#
  CHECK((config_read(0x80000000u | 4 << 11 | 0x3c) & 0xff) == 11);
  CHECK(config_read(0x80000000u | 5 << 11) == 0xffffffffu);
}

TEST_CASE("pc hands PCI device models an MSI sink reaching Vm::signal_msi; microvm hands none") {
  graph::Graph g = microvm_graph(1);
  g.devices.back().driver = "test-msi-probe";
  {
    g_msi_probe = {};
    Built built(g);
    REQUIRE_MESSAGE(built.machine, built.error);
    CHECK(g_msi_probe.called);
    CHECK_FALSE(g_msi_probe.sink);
  }
  g.machine.type = "pc";
  g_msi_probe = {};
  std::shared_ptr<hw::testing::RecordingAccel::State> state;
  {
    Built built(g);
    REQUIRE_MESSAGE(built.machine, built.error);
    state = built.accel.state;
    REQUIRE(g_msi_probe.sink);
    g_msi_probe.sink->signal(0xfee00000, 0x4041);
    REQUIRE(state->msis.size() == 1);
    CHECK(state->msis[0] == std::pair<uint64_t, uint32_t>{0xfee00000, 0x4041});
  }
  // A device (or backend thread) still holding the sink after the machine is gone: a no-op.
  g_msi_probe.sink->signal(0xfee00000, 0x4042);
  CHECK(state->msis.size() == 1);
  g_msi_probe = {};
}

namespace {
uint32_t mmio32(accel::VmOps& ops, uint64_t addr) {
  uint8_t d[4] = {};
  ops.mmio_read(addr, d);
  uint32_t v;
  std::memcpy(&v, d, 4);
  return v;
}
void set_mmio32(accel::VmOps& ops, uint64_t addr, uint32_t v) {
  uint8_t d[4];
  std::memcpy(d, &v, 4);
  ops.mmio_write(addr, d);
}
void outb(accel::VmOps& ops, uint16_t port, uint8_t v) {
  ops.pio_write(port, {&v, 1});
}
}  // namespace

TEST_CASE("microvm: split irqchip; COM1's level interrupt goes through the userspace IOAPIC as an MSI") {
  Built built(microvm_graph(2));
  REQUIRE_MESSAGE(built.machine, built.error);
  auto& state = *built.accel.state;
  accel::VmOps& ops = *state.ops;
  CHECK(state.spec.x86_irqchip == accel::VmSpec::X86Irqchip::Split);
  // The IOAPIC answers at 0xfec00000 with the id the tables give it (one above APIC ids 0 and 1).
  set_mmio32(ops, 0xfec00000, 0x01);
  CHECK(mmio32(ops, 0xfec00010) == ((23u << 16) | 0x20));
  set_mmio32(ops, 0xfec00000, 0x00);
  CHECK(mmio32(ops, 0xfec00010) == 2u << 24);

  // Pin 4 level triggered, vector 0x24, to APIC 1; COM1 interrupts on received data.
  set_mmio32(ops, 0xfec00000, 0x19);
  set_mmio32(ops, 0xfec00010, 1u << 24);
  set_mmio32(ops, 0xfec00000, 0x18);
  set_mmio32(ops, 0xfec00010, 0x24 | (1u << 15));
  REQUIRE(state.route_sets.size() == 1);
  CHECK(state.route_sets[0].size() == 1);
  outb(ops, 0x3fc, 0x08);
  outb(ops, 0x3f9, 0x01);
  CHECK(state.msis.empty());
  REQUIRE(built.backends.console->receiver);
  const uint8_t byte = 'k';
  built.backends.console->receiver->receive({&byte, 1});
  REQUIRE(state.msis.size() == 1);
  CHECK(state.msis[0] == std::pair<uint64_t, uint32_t>{0xfee01000, 0x8024});
  ops.ioapic_eoi(0x24);  // the byte is still unread: the line is still up, so it comes again
  CHECK(state.msis.size() == 2);
  uint8_t got = 0;
  ops.pio_read(0x3f8, {&got, 1});
  CHECK(got == 'k');
  ops.ioapic_eoi(0x24);
  CHECK(state.msis.size() == 2);
}

TEST_CASE("pc: the full in-kernel irqchip; nothing of the IOAPIC is emulated here") {
  graph::Graph g = microvm_graph(1);
  g.machine.type = "pc";
  g.devices.pop_back();  // no virtio-mmio on pc
  Built built(g);
  REQUIRE_MESSAGE(built.machine, built.error);
  CHECK(built.accel.state->spec.x86_irqchip == accel::VmSpec::X86Irqchip::Full);
  uint8_t d[4];
  CHECK_FALSE(built.accel.state->ops->mmio_read(0xfec00000, d));
}

TEST_CASE("microvm with machine.pit: the full in-kernel irqchip, and the tables announce the PIC") {
  graph::Graph g = microvm_graph(1);
  g.machine.pit = true;
  Built built(g);
  REQUIRE_MESSAGE(built.machine, built.error);
  auto& state = *built.accel.state;
  CHECK(state.spec.x86_irqchip == accel::VmSpec::X86Irqchip::Full);
  uint8_t d[4];
  CHECK_FALSE(state.ops->mmio_read(0xfec00000, d));  // KVM's IOAPIC, not ours
  // The MADT (found through the RSDP's XSDT) carries PCAT_COMPAT: a PIC pair is there.
  auto read32 = [&](uint64_t at) {
    uint32_t v = 0;
    REQUIRE(state.memory->read(at, {reinterpret_cast<uint8_t*>(&v), 4}));
    return v;
  };
  auto read64 = [&](uint64_t at) { return read32(at) | (uint64_t{read32(at + 4)} << 32); };
  const uint64_t xsdt = read64(hw::x86::kAcpiStart + 24);
  const uint32_t xsdt_length = read32(xsdt + 4);
  bool found = false;
  for (uint64_t entry = xsdt + 36; entry + 8 <= xsdt + xsdt_length; entry += 8) {
    const uint64_t table = read64(entry);
    if (read32(table) != 0x43495041) continue;  // "APIC"
    found = true;
    CHECK(read32(table + 40) == 1u);  // flags: PCAT_COMPAT
  }
  CHECK(found);
}

TEST_CASE("microvm without an ioapic device in its graph is an error, not a machine without interrupts") {
  graph::Graph g = microvm_graph(1);
  g.devices.erase(g.devices.begin());
  Built built(g);
  CHECK_FALSE(built.machine);
  CHECK(built.error.find("ioapic") != std::string::npos);
}

namespace {
std::string guest_cmdline(Built& built) {
  char text[256] = {};
  if (!built.accel.state->memory->read(hw::x86::kCmdlineAddress, {reinterpret_cast<uint8_t*>(text), 255}))
    return "<unreadable>";
  return text;
}
// How many LNRO0005 (virtio-mmio) devices the ACPI tables area declares.
int dsdt_virtio_mmio(Built& built) {
  std::vector<uint8_t> area(hw::x86::kHighMemory - hw::x86::kAcpiStart);
  if (!built.accel.state->memory->read(hw::x86::kAcpiStart, area)) return -1;
  std::string text(area.begin(), area.end());
  int count = 0;
  for (size_t at = text.find("LNRO0005"); at != std::string::npos; at = text.find("LNRO0005", at + 1))
    ++count;
  return count;
}
}  // namespace

// Linux registers a transport from the DSDT and again from virtio_mmio.device= when it sees both
// (virtio_mmio built in, or loaded by modprobe): the second probe fails with EBUSY. One place each.
TEST_CASE("microvm: each virtio-mmio transport is announced once: the DSDT, else the command line") {
  {
    Built built(microvm_graph(1));
    REQUIRE_MESSAGE(built.machine, built.error);
    CHECK(dsdt_virtio_mmio(built) == 1);
    CHECK(guest_cmdline(built) == "console=ttyS0");
  }
  {
    // IRQ 20: the DSDT's IRQNoFlags descriptor cannot say it; the command line does.
    auto g = microvm_graph(1);
    g.devices.back().irq = 20;
    g.devices.back().address.resource->irq = 20;
    Built built(g);
    REQUIRE_MESSAGE(built.machine, built.error);
    CHECK(dsdt_virtio_mmio(built) == 0);
    CHECK(guest_cmdline(built) == "console=ttyS0 virtio_mmio.device=512@0xfeb00000:20");
  }
  {
    // acpi=off: the guest reads no DSDT, so the command line names the transport.
    auto g = microvm_graph(1);
    g.boot.cmdline = "console=ttyS0 acpi=off";
    Built built(g);
    REQUIRE_MESSAGE(built.machine, built.error);
    CHECK(guest_cmdline(built) == "console=ttyS0 acpi=off virtio_mmio.device=512@0xfeb00000:5");
  }
  {
    // Only the whole word: acpi=offline is not acpi=off.
    auto g = microvm_graph(1);
    g.boot.cmdline = "console=ttyS0 acpi=offline";
    Built built(g);
    REQUIRE_MESSAGE(built.machine, built.error);
    CHECK(guest_cmdline(built) == "console=ttyS0 acpi=offline");
  }
}

namespace {

// Counts the draws, each a different 16-byte block (the first byte is the draw's number).
struct CountingEntropy final : backends::RngBackend {
  int draws = 0;
  base::ErrorOr<void> fill(std::span<uint8_t> out) override {
    ++draws;
    for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<uint8_t>(i == 0 ? draws : 0xa0 + i);
    return {};
  }
};

struct EntropyBackends : Backends {
  std::shared_ptr<CountingEntropy> entropy = std::make_shared<CountingEntropy>();
  std::shared_ptr<backends::RngBackend> host_entropy() override { return entropy; }
};

graph::Graph pc_with_vmgenid() {
  graph::Graph g = microvm_graph(1);
  g.machine.type = "pc";
  g.devices.pop_back();  // no virtio-mmio on pc
  graph::Device genid;
  genid.id = "genid0";
  genid.driver = "vmgenid";
  genid.bus = "acpi";
  genid.address.kind = graph::Address::Kind::Slot;
  genid.address.resource = graph::SlotResource{0, 0, 16, false};
  genid.irq = 16;
  g.devices.push_back(genid);
  return g;
}

std::vector<uint8_t> genid_in_ram(const base::GuestMemory& memory) {
  std::vector<uint8_t> id(16);
  REQUIRE(memory.read(0xff000, id));
  return id;
}

}  // namespace

TEST_CASE(
    "pc with vmgenid: the ID in reserved RAM, VGEN in the DSDT, a new ID and a GSI 16 edge on restore") {
  hw::testing::BuiltMachine<EntropyBackends> built(pc_with_vmgenid());
  REQUIRE_MESSAGE(built.machine, built.error);
  auto& state = *built.accel.state;
  const std::vector<uint8_t> first = genid_in_ram(*state.memory);
  CHECK(first[0] == 1);
  CHECK(first[1] == 0xa1);
  CHECK(state.rises[16] == 0);
  // The e820 map keeps the page from the guest's allocator.
  bool reserved = false;
  for (const auto& e : hw::x86::e820_map(*state.memory))
    reserved = reserved || (e.type == 2 && e.address <= 0xff000 && e.address + e.size >= 0xff010);
  CHECK(reserved);
  // The DSDT (whole low MiB searched) names VGEN and its ADDR.
  std::vector<uint8_t> low(1 << 20);
  REQUIRE(state.memory->read(0, low));
  const std::vector<uint8_t> vgen = {'V', 'G', 'E', 'N', 0x08, '_', 'H', 'I', 'D', 0x0d, 'V', 'M', 'G', 'E'};
  CHECK(std::search(low.begin(), low.end(), vgen.begin(), vgen.end()) != low.end());

  auto access = built.machine->snapshot_access();
  REQUIRE(access);
  hw::DeviceState* part = nullptr;
  for (const auto& p : access->parts)
    if (p.id == "genid0" && p.driver == "vmgenid") part = p.state;
  REQUIRE(part);
  hw::StateWriter out;
  part->save_state(out);
  const std::vector<uint8_t> saved = out.take();

  // Two restores of that state into machines built afresh: each its own ID, each one edge.
  std::vector<std::vector<uint8_t>> copies;
  for (int copy = 0; copy < 2; ++copy) {
    hw::testing::BuiltMachine<EntropyBackends> restored(pc_with_vmgenid());
    REQUIRE_MESSAGE(restored.machine, restored.error);
    restored.backends.entropy->draws = 10 * (copy + 1);
    auto parts = restored.machine->snapshot_access()->parts;
    auto it = std::find_if(parts.begin(), parts.end(), [](const auto& p) { return p.id == "genid0"; });
    REQUIRE(it != parts.end());
    hw::StateReader in(saved);
    REQUIRE(it->state->load_state(in, it->state->state_version()).ok());
    copies.push_back(genid_in_ram(*restored.accel.state->memory));
    CHECK(restored.accel.state->rises[16] == 1);
    CHECK_FALSE(restored.accel.state->irq[16]);
  }
  CHECK(copies[0] != first);
  CHECK(copies[1] != first);
  CHECK(copies[0] != copies[1]);
}

TEST_CASE("vmgenid is refused with SeaBIOS (its own DSDT) and without any entropy source") {
  graph::Graph g = pc_with_vmgenid();
  Built no_entropy(g);  // Backends gives no host entropy
  CHECK_FALSE(no_entropy.machine);
  CHECK(no_entropy.error.find("no rng backend and no host entropy") != std::string::npos);
  g.boot.kernel.clear();
  g.boot.firmware = "seabios";
  hw::testing::BuiltMachine<EntropyBackends> seabios(g);
  CHECK_FALSE(seabios.machine);
  // Either SeaBIOS is missing on this host, or vmgenid is refused: never a machine without VGEN.
  if (seabios.error.find("vmgenid") != std::string::npos)
    CHECK(seabios.error.find("seabios") != std::string::npos);
}
