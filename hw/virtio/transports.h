// A transport-independent virtio device put on the transport its graph entry names, for every
// device model file (models.cpp, virtio_9p_model.cpp, vhost_user_fs_model.cpp):
//   on_mmio: the MmioTransport to map at the graph's slot window; its interrupt is env.irq.
//   on_pci:  plugs a PciTransport at the graph's PCI address (hw/pci) and returns null.
// Transport messages (a driver's protocol errors) go to stderr under the device's id.
#pragma once

#include <memory>

#include "base/result.h"
#include "hw/device_model.h"
#include "hw/virtio/virtio_device.h"

namespace hw::virtio {

base::ErrorOr<std::shared_ptr<Device>> on_mmio(DeviceEnv& env, std::shared_ptr<VirtioDevice> device);
base::ErrorOr<std::shared_ptr<Device>> on_pci(DeviceEnv& env, std::shared_ptr<VirtioDevice> device);

}  // namespace hw::virtio
