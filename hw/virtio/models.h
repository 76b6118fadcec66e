// The integration hook machine builders use: virtio devices by catalogue driver name
// ("virtio-blk-mmio", "virtio-net-pci", ...), registered with HW_REGISTER_DEVICE_MODEL so any machine
// that links //hw/virtio:models gets them. Backends come from the graph's references through
// hw::BackendSource; device properties (serial, mac, queue-size, num-queues) from the graph.
//
//   *-mmio: returns the MmioTransport to map at the graph's slot window; its interrupt is env.irq.
//   *-pci:  plugs a PciTransport at the graph's PCI address (hw/pci) and returns null.
#pragma once

#include <memory>

#include "base/result.h"
#include "hw/device_model.h"
#include "hw/virtio/virtio_device.h"

namespace hw::virtio {

// The transport-independent device for a graph entry ("virtio-blk-pci" and "-mmio" alike).
base::ErrorOr<std::shared_ptr<VirtioDevice>> create_virtio_device(DeviceEnv& env);

// Both transports, for machines that want to call them directly instead of through the registry.
base::ErrorOr<std::shared_ptr<Device>> create_virtio_mmio(DeviceEnv& env);
base::ErrorOr<std::shared_ptr<Device>> create_virtio_pci(DeviceEnv& env);

}  // namespace hw::virtio
