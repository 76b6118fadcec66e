#include "hw/pci/models.h"

#include <map>
#include <mutex>

#include "base/field_use.h"
#include "graph/graph.h"
#include "hw/state_held_elsewhere.h"

VML_CONSUMES("devices[].chassis");  // the bridge's Slot Numbering capability

namespace hw::pci {
namespace {

std::mutex g_hosts_lock;
std::map<const Bus*, std::weak_ptr<PciHost>>& hosts() {
  static std::map<const Bus*, std::weak_ptr<PciHost>> map;
  return map;
}

void remember(const Bus& bus, const std::shared_ptr<PciHost>& host) {
  std::lock_guard guard(g_hosts_lock);
  auto& map = hosts();
  // Drop hosts of machines that are gone (their Bus address may be reused by a new machine).
  for (auto it = map.begin(); it != map.end();) it = it->second.expired() ? map.erase(it) : std::next(it);
  map[&bus] = host;
}

std::string root_bus_name(const graph::Device& device, const char* fallback) {
  return device.provides.empty() ? fallback : device.provides.front();
}

base::ErrorOr<std::shared_ptr<Device>> make_cf8_host(DeviceEnv& env) {
  PciResources resources{&env.bus.mmio(), &env.bus.pio(), std::nullopt};
  auto host = std::make_shared<PciHost>(root_bus_name(env.device, "pci.0"), resources);
  // i440FX ids: what Linux and SeaBIOS expect of a PC's host bridge.
  TRY(host->plug(host->root().name(), 0, 0,
                 std::make_shared<PciFunction>(env.device.id,
                                               FunctionIds{0x8086, 0x1237, 0x060000, 0x02, 0x1af4, 0x1100})));
  remember(env.bus, host);
  return std::shared_ptr<Device>(std::make_shared<Cf8ConfigDevice>(host));
}

base::ErrorOr<std::shared_ptr<Device>> make_ecam_host(DeviceEnv& env) {
  PciResources resources{&env.bus.mmio(), &env.bus.pio(), std::nullopt};
  // Port I/O of a riscv PCIe host is an MMIO window (QEMU virt: 0x3000000).
  for (const graph::MemoryRegion& r : env.graph.memory_map)
    if (r.device == env.device.id && r.kind == graph::MemoryRegion::Kind::PciWindow && r.base < 0x10000000)
      resources.io_in_mmio = r.base;
  auto host = std::make_shared<PciHost>(root_bus_name(env.device, "pcie.0"), resources);
  TRY(host->plug(host->root().name(), 0, 0,
                 std::make_shared<PciFunction>(env.device.id,
                                               FunctionIds{0x1b36, 0x0008, 0x060000, 0, 0x1af4, 0x1100})));
  remember(env.bus, host);
  return std::shared_ptr<Device>(std::make_shared<EcamDevice>(host));
}

// A bridge's whole state is its config space, which the PCI host saves with every function's.
base::ErrorOr<std::shared_ptr<Device>> make_bridge(DeviceEnv& env) {
  const auto chassis = static_cast<uint8_t>(env.device.int_property("chassis", 0));  // 0-255 by the catalogue
  TRY(plug_function(env, std::make_shared<PciBridge>(env.device.id, chassis)));
  return std::shared_ptr<Device>(std::make_shared<StateHeldElsewhere>(env.device.id));
}

}  // namespace

std::shared_ptr<PciHost> host_for(const Bus& bus) {
  std::lock_guard guard(g_hosts_lock);
  auto it = hosts().find(&bus);
  return it == hosts().end() ? nullptr : it->second.lock();
}

base::Result<void, base::Error> plug_function(DeviceEnv& env, std::shared_ptr<PciFunction> fn) {
  std::shared_ptr<PciHost> host = host_for(env.bus);
  if (!host) return base::fail(base::Error("this machine has no PCI host bridge"));
  if (env.device.address.kind != graph::Address::Kind::Pci)
    return base::fail(base::Error("has no PCI address"));
  if (env.device.irq) {
    fn->set_interrupt(1, static_cast<uint8_t>(*env.device.irq));
    fn->set_irq_line(env.irq);
  }
  return host->plug(env.device.bus, static_cast<uint8_t>(env.device.address.slot),
                    static_cast<uint8_t>(env.device.address.function), std::move(fn));
}

base::Result<void, base::Error> finish(Bus& bus, const graph::Graph& graph) {
  std::shared_ptr<PciHost> host = host_for(bus);
  if (!host) return {};
  PciWindow mmio, io;
  for (const graph::Device& device : graph.devices) {
    if (!device.builtin || (device.driver != "pci-host-bridge" && device.driver != "gpex-pcihost")) continue;
    for (const graph::MemoryRegion& r : graph.memory_map) {
      if (r.device != device.id || r.kind != graph::MemoryRegion::Kind::PciWindow) continue;
      if (host->resources().io_in_mmio && r.base == *host->resources().io_in_mmio)
        io = {0x1000, r.size > 0x1000 ? r.size - 0x1000 : 0};  // port 0 stays unassigned
      else if (r.size > mmio.size)
        mmio = {r.base, r.size};
    }
    if (device.driver == "pci-host-bridge") io = {0xc000, 0x4000};  // the PC's usual PCI I/O range
  }
  auto assigned = host->assign_resources(mmio, io);
  if (!assigned.ok()) return base::fail(assigned.error().with_context("assigning PCI resources"));
  return {};
}

HW_REGISTER_DEVICE_MODEL("pci-host-bridge", make_cf8_host);
HW_REGISTER_DEVICE_MODEL("gpex-pcihost", make_ecam_host);
HW_REGISTER_DEVICE_MODEL("pci-bridge", make_bridge);

}  // namespace hw::pci
