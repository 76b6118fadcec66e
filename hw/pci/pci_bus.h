// PCI buses, bridges and the host: the tree config accesses walk, and resource assignment.
//
// PciHost owns the root bus (number 0). A PciBridge (type 1 header, QEMU's pci-bridge ids 1b36:0001)
// owns a secondary bus; config cycles for bus N are routed as real bridges do, by the secondary and
// subordinate bus numbers currently in their registers, so a guest that renumbers buses sees the
// effect. assign_resources() plays the firmware: depth-first bus numbering, BARs from the host's
// windows (largest first), bridge windows around their children, decode enabled.
//
// Buses are also known by their graph names ("pci.0", "pcie.0", a bridge's id) so machine builders
// and device models can plug functions at the addresses `vmlaunch plan` printed.
#pragma once

#include <array>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "hw/pci/pci_function.h"

namespace hw::pci {

class PciBridge;

class PciBus {
 public:
  explicit PciBus(std::string name, PciBridge* bridge = nullptr)
      : m_name(std::move(name)), m_bridge(bridge) {}
  const std::string& name() const { return m_name; }
  PciBridge* bridge() const { return m_bridge; }  // null for the root bus

  // Fails when the slot is taken or out of range.
  base::Result<void, base::Error> plug(uint8_t device, uint8_t function, std::shared_ptr<PciFunction> fn);
  PciFunction* function(uint8_t device, uint8_t function) const;
  // Occupied (device, function) pairs in address order.
  std::vector<std::pair<uint8_t, uint8_t>> occupied() const;

 private:
  std::string m_name;
  PciBridge* m_bridge;
  std::array<std::shared_ptr<PciFunction>, 256> m_slots{};
};

class PciBridge final : public PciFunction {
 public:
  // chassis != 0 adds the Slot Numbering capability with that chassis number, as QEMU's pci-bridge
  // does for chassis_nr (guests name slots "chassis/slot" from it).
  explicit PciBridge(std::string name, uint8_t chassis = 0);
  PciBus& secondary() { return m_bus; }
  uint8_t secondary_number() { return static_cast<uint8_t>(config_read(0x19, 1)); }
  uint8_t subordinate_number() { return static_cast<uint8_t>(config_read(0x1a, 1)); }

 private:
  PciBus m_bus;
};

struct PciWindow {
  uint64_t base = 0;
  uint64_t size = 0;
};

class PciHost {
 public:
  // `root_name`: the graph's name of the root bus.
  PciHost(std::string root_name, PciResources resources);
  ~PciHost();

  PciBus& root() { return m_root; }
  const PciResources& resources() const { return m_resources; }
  PciBus* find_bus(const std::string& name);

  // Plugs `fn` at device.function of the named bus and attaches it to the host's address spaces.
  // A bridge's secondary bus becomes findable by `fn->name()`.
  base::Result<void, base::Error> plug(const std::string& bus, uint8_t device, uint8_t function,
                                       std::shared_ptr<PciFunction> fn);

  // Config cycle routing as the guest sees it; absent functions read all-ones.
  PciFunction* route(uint8_t bus, uint8_t device, uint8_t function);
  uint32_t config_read(uint8_t bus, uint8_t device, uint8_t function, uint16_t offset, unsigned size);
  void config_write(uint8_t bus, uint8_t device, uint8_t function, uint16_t offset, unsigned size,
                    uint32_t value);

  // Firmware's job: bus numbers, BARs, bridge windows, decode on. Fails when the windows are too small.
  base::Result<void, base::Error> assign_resources(PciWindow mmio, PciWindow io);

  // Every function with its BDF after bus numbering, depth first (what a guest's scan finds).
  std::vector<std::pair<Bdf, PciFunction*>> functions();

  // Snapshot (pci_state.cpp): every function's config space, by function name (the graph's device
  // id), so bus renumbering by the guest does not matter. The functions are found by the tree's
  // structure, not by bus numbers: a guest that left a bridge's secondary bus number unset (or set
  // it oddly) still has the functions behind it saved.
  void save_state(StateWriter& out);
  base::ErrorOr<void> load_state(StateReader& in);

 private:
  PciFunction* route_on(PciBus& bus, uint8_t number, uint8_t target, uint8_t device, uint8_t function);
  void collect(PciBus& bus, uint8_t number, std::vector<std::pair<Bdf, PciFunction*>>& out);
  static void collect_all(PciBus& bus, std::vector<PciFunction*>& out);
  std::vector<PciFunction*> all_functions();

  PciBus m_root;
  PciResources m_resources;
  std::map<std::string, PciBus*> m_buses;
  std::vector<std::shared_ptr<PciFunction>> m_functions;  // keeps everything plugged alive
};

// A PciHost's config mechanism #1 (ports 0xcf8 address, 0xcfc-0xcff data), mapped at 0xcf8 size 8.
class Cf8ConfigDevice final : public Device, public DeviceState {
 public:
  explicit Cf8ConfigDevice(std::shared_ptr<PciHost> host) : m_host(std::move(host)) {}
  std::string_view name() const override { return "pci-cf8"; }
  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  // Snapshot (pci_state.cpp): the address latch, then the host's functions.
  uint32_t state_version() const override { return 1; }
  void save_state(StateWriter& out) override;
  base::ErrorOr<void> load_state(StateReader& in, uint32_t version) override;

 private:
  std::shared_ptr<PciHost> m_host;
  std::mutex m_lock;
  uint32_t m_address = 0;
};

// PCIe ECAM: bus << 20 | device << 15 | function << 12 | register, mapped at the ECAM base.
class EcamDevice final : public Device, public DeviceState {
 public:
  explicit EcamDevice(std::shared_ptr<PciHost> host) : m_host(std::move(host)) {}
  std::string_view name() const override { return "pci-ecam"; }
  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  // Snapshot (pci_state.cpp): the host's functions.
  uint32_t state_version() const override { return 1; }
  void save_state(StateWriter& out) override { m_host->save_state(out); }
  base::ErrorOr<void> load_state(StateReader& in, uint32_t version) override {
    TRY(check_version(version, 1, "pci-ecam"));
    TRY(m_host->load_state(in));
    return in.finish("pci-ecam");
  }

 private:
  std::shared_ptr<PciHost> m_host;
};

}  // namespace hw::pci
