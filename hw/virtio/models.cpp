#include "hw/virtio/models.h"

#include <sys/random.h>

#include <cerrno>
#include <cstring>

#include "base/field_use.h"
#include "graph/graph.h"
#include "hw/pci/models.h"
#include "hw/virtio/blk.h"
#include "hw/virtio/console.h"
#include "hw/virtio/mmio.h"
#include "hw/virtio/net.h"
#include "hw/virtio/pci.h"
#include "hw/virtio/rng.h"

// Properties and backends of the virtio device types, honoured by the models below.
VML_CONSUMES("devices[].queue-size");
VML_CONSUMES("devices[].num-queues");
VML_CONSUMES("devices[].serial");
VML_CONSUMES("devices[].mac");
VML_CONSUMES("devices[].drive");
VML_CONSUMES("devices[].netdev");
VML_CONSUMES("devices[].rng");
VML_CONSUMES("devices[].chardev");

namespace hw::virtio {

namespace {

// virtio-rng without an rng backend: the catalogue promises the host's entropy. getrandom(2) is
// the kernel's /dev/urandom without a file to open (no concrete backend needed in hw/).
class KernelEntropy : public backends::RngBackend {
 public:
  base::ErrorOr<void> fill(std::span<uint8_t> out) override {
    size_t done = 0;
    while (done < out.size()) {
      ssize_t n = getrandom(out.data() + done, out.size() - done, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return base::fail(base::Error(std::string("getrandom: ") + std::strerror(errno)));
      done += static_cast<size_t>(n);
    }
    return {};
  }
};

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

TransportCore::Log log_for(DeviceEnv& env) {
  std::string id = env.device.id;
  return [id](std::string_view text) {
    std::fprintf(stderr, "vmlaunch: %s: %.*s\n", id.c_str(), int(text.size()), text.data());
  };
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
      rng = std::make_shared<KernelEntropy>();
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
  return base::fail(base::Error("no virtio device model for driver " + device.driver));
}

base::ErrorOr<std::shared_ptr<Device>> create_virtio_mmio(DeviceEnv& env) {
  auto device = TRY(create_virtio_device(env));
  return std::shared_ptr<Device>(
      std::make_shared<MmioTransport>(env.device.id, std::move(device), env.memory, env.irq, log_for(env)));
}

base::ErrorOr<std::shared_ptr<Device>> create_virtio_pci(DeviceEnv& env) {
  auto device = TRY(create_virtio_device(env));
  auto function =
      std::make_shared<PciTransport>(env.device.id, std::move(device), env.memory, log_for(env), env.msi);
  auto plugged = hw::pci::plug_function(env, function);
  if (!plugged.ok()) return base::fail(plugged.error());
  return std::shared_ptr<Device>();
}

HW_REGISTER_DEVICE_MODEL("virtio-blk-mmio", create_virtio_mmio);
HW_REGISTER_DEVICE_MODEL("virtio-net-mmio", create_virtio_mmio);
HW_REGISTER_DEVICE_MODEL("virtio-rng-mmio", create_virtio_mmio);
HW_REGISTER_DEVICE_MODEL("virtio-console-mmio", create_virtio_mmio);
HW_REGISTER_DEVICE_MODEL("virtio-blk-pci", create_virtio_pci);
HW_REGISTER_DEVICE_MODEL("virtio-net-pci", create_virtio_pci);
HW_REGISTER_DEVICE_MODEL("virtio-rng-pci", create_virtio_pci);
HW_REGISTER_DEVICE_MODEL("virtio-console-pci", create_virtio_pci);

}  // namespace hw::virtio
