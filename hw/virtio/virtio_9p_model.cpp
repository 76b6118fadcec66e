// virtio-9p-pci and virtio-9p-mmio as device models: the graph's fsdev backend and mount_tag
// property, wired to the transports (registered here, beside the device, not in models.cpp).
#include <cstdio>

#include "base/field_use.h"
#include "graph/graph.h"
#include "hw/virtio/transports.h"
#include "hw/virtio/virtio_9p.h"

VML_CONSUMES("devices[].fsdev");
VML_CONSUMES("devices[].mount_tag");

namespace hw::virtio {

namespace {

base::ErrorOr<std::shared_ptr<VirtioDevice>> create_9p(DeviceEnv& env) {
  const graph::BackendRef* ref = env.device.backend("fsdev");
  if (!ref) return base::fail(base::Error(env.device.driver + " needs an fs backend (fsdev)"));
  auto fs = env.backends.fs(ref->name);
  if (!fs) return base::fail(base::Error("fs backend \"" + ref->name + "\" was not created"));
  if (fs->vhost_user())
    return base::fail(base::Error(env.device.driver + ": fs backend \"" + ref->name +
                                  "\" is served by virtiofsd: use a vhost-user-fs device"));
  std::string tag = env.device.string_property("mount_tag");
  if (tag.empty() || tag.size() > kMax9pTag)
    return base::fail(base::Error("mount_tag must be 1 to 255 bytes"));
  return std::shared_ptr<VirtioDevice>(std::make_shared<P9Device>(std::move(fs), std::move(tag)));
}

base::ErrorOr<std::shared_ptr<Device>> create_9p_mmio(DeviceEnv& env) {
  return on_mmio(env, TRY(create_9p(env)));
}

base::ErrorOr<std::shared_ptr<Device>> create_9p_pci(DeviceEnv& env) {
  return on_pci(env, TRY(create_9p(env)));
}

}  // namespace

HW_REGISTER_DEVICE_MODEL("virtio-9p-mmio", create_9p_mmio);
HW_REGISTER_DEVICE_MODEL("virtio-9p-pci", create_9p_pci);

}  // namespace hw::virtio
