#include "hw/virtio/transports.h"

#include <cstdio>
#include <string>

#include "graph/graph.h"
#include "hw/pci/models.h"
#include "hw/virtio/mmio.h"
#include "hw/virtio/pci.h"

namespace hw::virtio {

namespace {

TransportCore::Log log_for(const std::string& id) {
  return [id](std::string_view text) {
    std::fprintf(stderr, "vmlaunch: %s: %.*s\n", id.c_str(), int(text.size()), text.data());
  };
}

}  // namespace

base::ErrorOr<std::shared_ptr<Device>> on_mmio(DeviceEnv& env, std::shared_ptr<VirtioDevice> device) {
  return std::shared_ptr<Device>(std::make_shared<MmioTransport>(env.device.id, std::move(device), env.memory,
                                                                 env.irq, log_for(env.device.id)));
}

base::ErrorOr<std::shared_ptr<Device>> on_pci(DeviceEnv& env, std::shared_ptr<VirtioDevice> device) {
  auto function = std::make_shared<PciTransport>(env.device.id, std::move(device), env.memory,
                                                 log_for(env.device.id), env.msi);
  auto plugged = hw::pci::plug_function(env, function);
  if (!plugged.ok()) return base::fail(plugged.error());
  return std::shared_ptr<Device>();
}

}  // namespace hw::virtio
