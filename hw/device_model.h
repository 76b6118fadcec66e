// Device models by catalogue driver name: the hook through which devices a machine does not build
// itself (virtio-*-mmio transports, the PCIe host and its functions) plug into every machine type.
//
// The owner of a model registers a factory from its own .cpp (library with alwayslink = True):
//   HW_REGISTER_DEVICE_MODEL("virtio-blk-mmio", make_virtio_blk_mmio);
// A machine builder, walking the graph, asks find_device_model(device.driver); when found it calls
// the factory with a DeviceEnv and maps the returned device at the graph's address for it
// (Address::resource for slotted buses such as virtio-mmio, Device::region for builtins), and the
// riscv virt machine adds the matching device-tree node (virtio_mmio@..., pci@...).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "base/guest_memory.h"
#include "base/result.h"
#include "hw/device.h"
#include "hw/machine.h"

namespace graph {
struct Device;
}

namespace hw {

struct DeviceEnv {
  const graph::Graph& graph;
  const graph::Device& device;
  const base::GuestMemory& memory;  // guest RAM for DMA (virtqueues); outlives the device
  Bus& bus;                         // for models that map more than one window (PCI host bridges)
  std::shared_ptr<IrqLine> irq;     // the graph's Device::irq wired to the root controller; may be null
  BackendSource& backends;          // the device's backends by name (Device::backends)
  PowerController& power;
  // MSI delivery for PCI function models; null on machines without an MSI controller (INTx only).
  std::shared_ptr<MsiSink> msi = nullptr;
  // Where a model may add its counters for query-stats (hw/stats.h); null when nobody asks.
  StatsRegistry* stats = nullptr;
  // Direct mappings of host memory (BARs of passed-through functions); null where unsupported.
  std::shared_ptr<DirectMapper> direct = nullptr;
};

// Returns the device to map at the graph's address, or null when the model mapped itself through
// env.bus. Errors name the device.
using DeviceModelFactory = std::function<base::ErrorOr<std::shared_ptr<Device>>(DeviceEnv& env)>;

bool register_device_model(std::string driver, DeviceModelFactory factory);
const DeviceModelFactory* find_device_model(std::string_view driver);

}  // namespace hw

#define HW_REGISTER_DEVICE_MODEL(driver, factory)                                               \
  [[maybe_unused]] static const bool HW_MACHINE_CONCAT(hw_device_model_registered_, __LINE__) = \
      ::hw::register_device_model((driver), (factory))
