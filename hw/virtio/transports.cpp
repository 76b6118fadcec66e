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

// query-stats reads the transport's counters while the machine lives (weak: not after).
template <typename Transport>
void add_stats(DeviceEnv& env, const std::shared_ptr<Transport>& transport) {
  if (!env.stats) return;
  env.stats->add_device(env.device.id, [weak = std::weak_ptr<Transport>(transport)] {
    auto alive = weak.lock();
    return alive ? alive->core().counters() : StatsRegistry::Counters{};
  });
}

}  // namespace

base::ErrorOr<std::shared_ptr<Device>> on_mmio(DeviceEnv& env, std::shared_ptr<VirtioDevice> device) {
  auto transport = std::make_shared<MmioTransport>(env.device.id, std::move(device), env.memory, env.irq,
                                                   log_for(env.device.id));
  add_stats(env, transport);
  return std::shared_ptr<Device>(std::move(transport));
}

base::ErrorOr<std::shared_ptr<Device>> on_pci(DeviceEnv& env, std::shared_ptr<VirtioDevice> device) {
  auto function = std::make_shared<PciTransport>(env.device.id, std::move(device), env.memory,
                                                 log_for(env.device.id), env.msi);
  add_stats(env, function);
  auto plugged = hw::pci::plug_function(env, function);
  if (!plugged.ok()) return base::fail(plugged.error());
  // Not mapped by the machine (no slot resource): it carries the function's snapshot state.
  return std::shared_ptr<Device>(std::make_shared<PciTransportPart>(std::move(function)));
}

}  // namespace hw::virtio
