// vhost-user-fs-pci and vhost-user-fs-mmio as device models: the graph's fsdev backend (driver
// virtiofsd, which started the daemon and holds the connected socket) and tag property.
#include <cstdio>

#include "base/field_use.h"
#include "graph/graph.h"
#include "hw/virtio/transports.h"
#include "hw/virtio/vhost_user_fs.h"

VML_CONSUMES("devices[].tag");

namespace hw::virtio {

namespace {

base::ErrorOr<std::shared_ptr<VirtioDevice>> create_fs(DeviceEnv& env) {
  const graph::BackendRef* ref = env.device.backend("fsdev");
  if (!ref) return base::fail(base::Error(env.device.driver + " needs an fs backend (fsdev)"));
  auto fs = env.backends.fs(ref->name);
  if (!fs) return base::fail(base::Error("fs backend \"" + ref->name + "\" was not created"));
  if (!fs->vhost_user())
    return base::fail(
        base::Error(env.device.driver + ": fs backend \"" + ref->name +
                    "\" is not served by virtiofsd (use driver: virtiofsd, or a virtio-9p device)"));
  if (!env.memory.shareable())
    return base::fail(
        base::Error(env.device.driver + ": this machine's RAM is not shareable with virtiofsd"));
  std::string tag = env.device.string_property("tag");
  if (tag.empty() || tag.size() > kFsTagSize) return base::fail(base::Error("tag must be 1 to 36 bytes"));
  int socket = fs->take_vhost_user_socket();
  if (socket < 0)
    return base::fail(base::Error("fs backend \"" + ref->name + "\" is already used by another device"));
  auto device = VhostUserFsDevice::connect(socket, std::move(tag));
  if (!device) return base::fail(device.error().with_context(env.device.id));
  return std::shared_ptr<VirtioDevice>(std::move(device).value());
}

base::ErrorOr<std::shared_ptr<Device>> create_fs_mmio(DeviceEnv& env) {
  return on_mmio(env, TRY(create_fs(env)));
}

base::ErrorOr<std::shared_ptr<Device>> create_fs_pci(DeviceEnv& env) {
  return on_pci(env, TRY(create_fs(env)));
}

}  // namespace

HW_REGISTER_DEVICE_MODEL("vhost-user-fs-mmio", create_fs_mmio);
HW_REGISTER_DEVICE_MODEL("vhost-user-fs-pci", create_fs_pci);

}  // namespace hw::virtio
