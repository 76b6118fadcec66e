#include "hw/virtio/models.h"


#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>

#include "base/field_use.h"
#include "graph/graph.h"
#include "hw/device_state.h"
#include "hw/state_held_elsewhere.h"
#include "hw/virtio/blk.h"
#include "hw/virtio/console.h"
#include "hw/virtio/net.h"
#include "hw/virtio/rng.h"
#include "hw/virtio/scsi.h"
#include "hw/virtio/scsi_disk.h"
#include "hw/virtio/serial.h"
#include "hw/virtio/transports.h"

// Properties and backends of the virtio device types, honoured by the models below.
VML_CONSUMES("devices[].queue-size");
VML_CONSUMES("devices[].num-queues");
VML_CONSUMES("devices[].serial");
VML_CONSUMES("devices[].mac");
VML_CONSUMES("devices[].drive");
VML_CONSUMES("devices[].netdev");
VML_CONSUMES("devices[].rng");
VML_CONSUMES("devices[].chardev");
VML_CONSUMES("devices[].name");  // virtconsole, virtserialport: PORT_NAME

namespace hw::virtio {

namespace {

std::string_view base_driver(std::string_view driver) {
  for (std::string_view suffix : {"-mmio", "-pci"})
    if (driver.size() > suffix.size() && driver.substr(driver.size() - suffix.size()) == suffix)
      return driver.substr(0, driver.size() - suffix.size());
  return driver;
}

base::Error missing(const graph::BackendRef& ref, const char* kind) {
  return base::Error(std::string(kind) + " backend \"" + ref.name + "\" was not created");
}

uint32_t queue_size(const graph::Device& device) {
  int64_t size = device.int_property("queue-size", 256);
  // The graph already checked the range; a power of two is what the transport will demand.
  if (size < 2 || size > 32768 || (size & (size - 1))) size = 256;
  return static_cast<uint32_t>(size);
}

// The devices on the bus a controller provides ("scsi0.0"), by address.
std::vector<const graph::Device*> children(DeviceEnv& env) {
  std::vector<const graph::Device*> out;
  for (const std::string& bus : env.device.provides)
    for (const graph::Device* child : env.graph.devices_on(bus)) out.push_back(child);
  return out;
}

// virtio-scsi-pci with the scsi-hd/scsi-cd on its bus: target id = the child's address, LUN 0.
base::ErrorOr<std::shared_ptr<VirtioDevice>> create_scsi(DeviceEnv& env) {
  std::map<uint16_t, ScsiDevice::Target> targets;
  for (const graph::Device* child : children(env)) {
    const graph::BackendRef* ref = child->backend("drive");
    if (!ref) return base::fail(base::Error(child->id + ": " + child->driver + " needs a drive backend"));
    auto disk = env.backends.block(ref->name);
    if (!disk) return base::fail(missing(*ref, "block").with_context(child->id));
    if (child->address.kind != graph::Address::Kind::Slot || child->address.slot > 255 ||
        child->address.function > 255)
      return base::fail(base::Error(child->id + ": has no SCSI target id and LUN"));
    hw::scsi::Disk::Options options;
    options.kind = child->driver == "scsi-cd" ? hw::scsi::Disk::Kind::Cd : hw::scsi::Disk::Kind::Hd;
    options.serial = child->string_property("serial");
    options.device_id = child->id;
    // The graph's address is "target.lun" (function = the LUN).
    targets[static_cast<uint16_t>(child->address.slot)][static_cast<uint16_t>(child->address.function)] =
        std::make_shared<hw::scsi::Disk>(std::move(disk), options);
  }
  ScsiDevice::Options options;
  options.request_queues =
      static_cast<uint16_t>(std::max<int64_t>(1, env.device.int_property("num-queues", 1)));
  options.queue_size = queue_size(env.device);
  return std::shared_ptr<VirtioDevice>(std::make_shared<ScsiDevice>(std::move(targets), options));
}

// virtio-serial-pci with the virtconsole/virtserialport on its bus: port number = the child's address.
base::ErrorOr<std::shared_ptr<VirtioDevice>> create_serial(DeviceEnv& env) {
  std::vector<SerialDevice::PortSpec> ports;
  for (const graph::Device* child : children(env)) {
    const graph::BackendRef* ref = child->backend("chardev");
    if (!ref) return base::fail(base::Error(child->id + ": " + child->driver + " needs a chardev backend"));
    auto chardev = env.backends.chardev(ref->name);
    if (!chardev) return base::fail(missing(*ref, "chardev").with_context(child->id));
    if (child->address.kind != graph::Address::Kind::Slot || child->address.slot >= SerialDevice::kMaxPorts)
      return base::fail(base::Error(child->id + ": has no virtio-serial port number"));
    SerialDevice::PortSpec port;
    port.id = child->address.slot;
    port.name = child->string_property("name");
    port.console = child->driver == "virtconsole";
    port.backend = std::move(chardev);
    ports.push_back(std::move(port));
  }
  return std::shared_ptr<VirtioDevice>(std::make_shared<SerialDevice>(std::move(ports)));
}

// Devices on a controller's bus: the controller's factory builds them (above); the machine builder
// finds this model and has nothing more to do.
base::ErrorOr<std::shared_ptr<Device>> built_by_controller(DeviceEnv& env) {
  return std::shared_ptr<Device>(std::make_shared<StateHeldElsewhere>(env.device.id));
}

}  // namespace

base::ErrorOr<std::shared_ptr<VirtioDevice>> create_virtio_device(DeviceEnv& env) {
  const graph::Device& device = env.device;
  std::string_view kind = base_driver(device.driver);
  if (kind == "virtio-blk") {
    const graph::BackendRef* ref = device.backend("drive");
    if (!ref) return base::fail(base::Error("virtio-blk needs a drive backend"));
    auto disk = env.backends.block(ref->name);
    if (!disk) return base::fail(missing(*ref, "block"));
    BlkDevice::Options options;
    options.serial = device.string_property("serial");
    options.queue_size = queue_size(device);
    options.num_queues = static_cast<uint16_t>(std::max<int64_t>(1, device.int_property("num-queues", 1)));
    return std::shared_ptr<VirtioDevice>(std::make_shared<BlkDevice>(std::move(disk), options));
  }
  if (kind == "virtio-net") {
    const graph::BackendRef* ref = device.backend("netdev");
    if (!ref) return base::fail(base::Error("virtio-net needs a netdev backend"));
    auto net = env.backends.net(ref->name);
    if (!net) return base::fail(missing(*ref, "net"));
    std::string text = device.string_property("mac");
    MacAddress mac = stable_mac(env.graph.machine.name + "/" + device.id);
    if (!text.empty()) {
      auto parsed = parse_mac(text);
      if (!parsed)
        return base::fail(base::Error("mac \"" + text + "\" is not of the form 52:54:00:12:34:56"));
      mac = *parsed;
    }
    return std::shared_ptr<VirtioDevice>(
        std::make_shared<NetDevice>(std::move(net), mac, queue_size(device)));
  }
  if (kind == "virtio-rng") {
    std::shared_ptr<backends::RngBackend> rng;
    if (const graph::BackendRef* ref = device.backend("rng")) {
      rng = env.backends.rng(ref->name);
      if (!rng) return base::fail(missing(*ref, "rng"));
    } else {
      // Without an rng backend the catalogue promises the host kernel's entropy, which the
      // launcher supplies (hw/ opens nothing and calls no getrandom itself).
      rng = env.backends.host_entropy();
      if (!rng)
        return base::fail(
            base::Error("virtio-rng without an rng backend needs the host's entropy, which this machine "
                        "builder was not given"));
    }
    return std::shared_ptr<VirtioDevice>(std::make_shared<RngDevice>(std::move(rng)));
  }
  if (kind == "virtio-console") {
    const graph::BackendRef* ref = device.backend("chardev");
    if (!ref) return base::fail(base::Error("virtio-console needs a chardev backend"));
    auto chardev = env.backends.chardev(ref->name);
    if (!chardev) return base::fail(missing(*ref, "chardev"));
    return std::shared_ptr<VirtioDevice>(std::make_shared<ConsoleDevice>(std::move(chardev)));
  }
  if (kind == "virtio-scsi") return create_scsi(env);
  if (kind == "virtio-serial") return create_serial(env);
  return base::fail(base::Error("no virtio device model for driver " + device.driver));
}

base::ErrorOr<std::shared_ptr<Device>> create_virtio_mmio(DeviceEnv& env) {
  return on_mmio(env, TRY(create_virtio_device(env)));
}

base::ErrorOr<std::shared_ptr<Device>> create_virtio_pci(DeviceEnv& env) {
  return on_pci(env, TRY(create_virtio_device(env)));
}

HW_REGISTER_DEVICE_MODEL("virtio-blk-mmio", create_virtio_mmio);
HW_REGISTER_DEVICE_MODEL("virtio-net-mmio", create_virtio_mmio);
HW_REGISTER_DEVICE_MODEL("virtio-rng-mmio", create_virtio_mmio);
HW_REGISTER_DEVICE_MODEL("virtio-console-mmio", create_virtio_mmio);
HW_REGISTER_DEVICE_MODEL("virtio-blk-pci", create_virtio_pci);
HW_REGISTER_DEVICE_MODEL("virtio-net-pci", create_virtio_pci);
HW_REGISTER_DEVICE_MODEL("virtio-rng-pci", create_virtio_pci);
HW_REGISTER_DEVICE_MODEL("virtio-console-pci", create_virtio_pci);
HW_REGISTER_DEVICE_MODEL("virtio-scsi-pci", create_virtio_pci);
HW_REGISTER_DEVICE_MODEL("virtio-serial-pci", create_virtio_pci);
HW_REGISTER_DEVICE_MODEL("scsi-hd", built_by_controller);
HW_REGISTER_DEVICE_MODEL("scsi-cd", built_by_controller);
HW_REGISTER_DEVICE_MODEL("virtconsole", built_by_controller);
HW_REGISTER_DEVICE_MODEL("virtserialport", built_by_controller);

}  // namespace hw::virtio
