// Device types. Property names follow QEMU's where QEMU has the same property, so people who know
// `-device virtio-blk-pci,drive=...,serial=...` recognise them.
#include <algorithm>

#include "hw/catalogue/catalogue.h"

namespace hw::catalogue {

using graph::BackendKind;
using graph::BusKind;

namespace {

PropertySpec bool_prop(std::string name, bool value, std::string help) {
  return {std::move(name), PropertyType::Bool, value, std::move(help)};
}
PropertySpec int_prop(std::string name, int64_t value, int64_t min, int64_t max, std::string help) {
  return {std::move(name), PropertyType::Int, value, std::move(help), min, max};
}
PropertySpec string_prop(std::string name, std::string value, std::string help) {
  return {std::move(name), PropertyType::String, std::move(value), std::move(help)};
}

PropertySpec queue_size() {
  return int_prop("queue-size", 256, 64, 1024, "virtqueue size (a power of two)");
}
PropertySpec bootindex() {
  return int_prop("bootindex", -1, -1, 65535, "firmware boot order; -1 = not a boot device");
}

PropertySpec multifunction() {
  return bool_prop("multifunction", false,
                   "allow devices at functions 1-7 of this slot (set on the function 0 device)");
}

BackendSpec drive() {
  return {"drive", BackendKind::Block, true, true, "block backend holding the disk's data", {}};
}
BackendSpec chardev(bool required) {
  return {"chardev",
          BackendKind::Chardev,
          required,
          true,
          "chardev backend the device's bytes go to and come from",
          {}};
}

// The same virtio device as a PCI function and as a virtio-mmio slot.
void add_virtio_pair(std::vector<DeviceType>& types, const std::string& base, const std::string& help,
                     std::vector<PropertySpec> properties, std::vector<BackendSpec> backends) {
  DeviceType pci{base + "-pci", help + " (virtio-pci)", {BusKind::Pci}, properties, backends, {}};
  pci.properties.insert(pci.properties.begin(), multifunction());
  DeviceType mmio{base + "-mmio",        help + " (virtio-mmio)", {BusKind::VirtioMmio},
                  std::move(properties), std::move(backends),     {}};
  types.push_back(std::move(pci));
  types.push_back(std::move(mmio));
}

std::vector<DeviceType> build_device_types() {
  std::vector<DeviceType> types;

  types.push_back({"ns16550",
                   "16550A UART (the riscv virt UART, x86 COM ports)",
                   {BusKind::System, BusKind::Isa},
                   {},
                   {chardev(false)},
                   {}});

  types.push_back({"pci-bridge",
                   "PCI-to-PCI bridge; provides a PCI bus named after its id (32 slots)",
                   {BusKind::Pci},
                   {multifunction(),
                    int_prop("chassis", 0, 0, 255, "chassis number of the slot id capability; 0 = none")},
                   {},
                   {{"", BusKind::Pci, 0, 31, {}}}});

  add_virtio_pair(types, "virtio-blk", "virtio block device",
                  {string_prop("serial", "", "disk serial number the guest sees (up to 20 bytes)"),
                   int_prop("num-queues", 1, 1, 64, "number of request queues"), queue_size(), bootindex()},
                  {drive()});
  add_virtio_pair(
      types, "virtio-net", "virtio network card",
      {{"mac", PropertyType::Mac, std::string(), "MAC address; empty = stable per machine name and id"},
       queue_size(),
       bootindex()},
      {{"netdev", BackendKind::Net, true, true, "net backend the frames go to", {}}});
  add_virtio_pair(
      types, "virtio-rng", "virtio entropy source", {},
      {{"rng", BackendKind::Rng, false, false, "rng backend; without one, the host's /dev/urandom", {}}});
  add_virtio_pair(types, "virtio-console", "virtio console (one port, hvc0 in the guest)", {},
                  {chardev(true)});
  // QEMU's names: -device virtio-9p-pci,fsdev=ID,mount_tag=TAG.
  add_virtio_pair(
      types, "virtio-9p", "virtio 9P shared folder (9P2000.L, served by vmlaunch itself)",
      {string_prop("mount_tag", "", "the tag the guest mounts (mount -t 9p -o trans=virtio TAG DIR)")},
      {{"fsdev", BackendKind::Fs, true, true, "fs backend: the host directory to share", {}}});
  // QEMU's vhost-user-fs-pci,chardev=ID,tag=TAG; here the fs backend (driver virtiofsd) starts the
  // daemon and holds the socket.
  add_virtio_pair(
      types, "vhost-user-fs", "virtio-fs shared folder served by virtiofsd over vhost-user",
      {string_prop("tag", "", "the tag the guest mounts (mount -t virtiofs TAG DIR; at most 36 bytes)")},
      {{"fsdev",
        BackendKind::Fs,
        true,
        true,
        "fs backend (driver virtiofsd): the host directory to share",
        {}}});

  types.push_back({"virtio-scsi-pci",
                   "virtio SCSI host adapter; provides SCSI bus <id>.0 (targets 0-255, LUNs 0-255 each)",
                   {BusKind::Pci},
                   {multifunction(), int_prop("num-queues", 1, 1, 64, "number of request queues")},
                   {},
                   {{".0", BusKind::Scsi, 0, 255, {}}}});
  types.push_back({"scsi-hd",
                   "SCSI disk; its address is the target id on the SCSI bus, or \"target.lun\" (\"1.2\")",
                   {BusKind::Scsi},
                   {string_prop("serial", "", "disk serial number the guest sees"), bootindex()},
                   {drive()},
                   {}});
  types.push_back({"scsi-cd",
                   "SCSI CD/DVD-ROM drive (read-only, 2048-byte blocks); its address is the target id, or "
                   "\"target.lun\"",
                   {BusKind::Scsi},
                   {string_prop("serial", "", "drive serial number the guest sees"), bootindex()},
                   {drive()},
                   {}});
  types.push_back(
      {"virtio-serial-pci",
       "virtio serial controller; provides virtio-serial bus <id>.0 (ports 0-30, 0 is the console port)",
       {BusKind::Pci},
       {multifunction()},
       {},
       {{".0", BusKind::VirtioSerial, 0, 30, {0}}}});
  types.push_back({"virtconsole",
                   "console port on a virtio-serial bus (hvcN in the guest)",
                   {BusKind::VirtioSerial},
                   {string_prop("name", "", "port name the guest sees in /sys/class/virtio-ports/*/name")},
                   {chardev(true)},
                   {}});
  types.push_back({"virtserialport",
                   "data port on a virtio-serial bus (/dev/vportNpM in the guest)",
                   {BusKind::VirtioSerial},
                   {string_prop("name", "",
                                "port name the guest sees in /sys/class/virtio-ports/*/name (and, with udev, "
                                "/dev/virtio-ports/)")},
                   {chardev(true)},
                   {}});
  types.push_back({"vfio-pci",
                   "host PCI device passed through with VFIO",
                   {BusKind::Pci},
                   {multifunction()},
                   {{"passthrough",
                     BackendKind::Passthrough,
                     true,
                     true,
                     "passthrough entry naming the host device",
                     {"host"}}},
                   {}});

  // QEMU's names: -device qemu-xhci,id=usb0 -device usb-host,bus=usb0.0,port=1.
  types.push_back({"qemu-xhci",
                   "xHCI USB host controller (QEMU's qemu-xhci); provides USB bus <id>.0 (ports 1-4, each "
                   "USB 2 and USB 3)",
                   {BusKind::Pci},
                   {multifunction()},
                   {},
                   {{".0", BusKind::Usb, 1, 4, {}}}});
  types.push_back({"usb-host",
                   "host USB device forwarded through libusb (control, bulk and interrupt transfers)",
                   {BusKind::Usb},
                   {},
                   {{"passthrough",
                     BackendKind::Passthrough,
                     true,
                     true,
                     "passthrough entry (driver usb-host) naming the host device",
                     {"host"}}},
                   {}});

  // Microsoft's Virtual Machine Generation ID, as QEMU's `-device vmgenid`: 16 bytes in reserved
  // guest RAM that change whenever the machine is restored from a snapshot (hw/x86/vmgenid.h).
  types.push_back(
      {"vmgenid",
       "VM generation ID (ACPI VMGENCTR): a new one and a notification after every `up --restore`, "
       "so a guest (Linux: CONFIG_VMGENID) reseeds its random number generator in each copy",
       {BusKind::Acpi},
       {},
       {{"rng",
         BackendKind::Rng,
         false,
         false,
         "rng backend the IDs are drawn from; without one, the host kernel's (getrandom)",
         {}}},
       {}});

  std::sort(types.begin(), types.end(),
            [](const DeviceType& a, const DeviceType& b) { return a.name < b.name; });
  return types;
}

}  // namespace

std::string_view device_not_yet(std::string_view type) {
  (void)type;  // every device type can run
  return {};
}

std::string_view property_not_yet(std::string_view type, std::string_view property) {
  (void)type;
  // OpenSBI and a direct kernel boot read no boot order, and U-Boot's is not wired to it yet; SeaBIOS
  // on x86_64/pc does (graph/buildable.cpp lets it through there).
  if (property == "bootindex")
    return "only x86_64/pc with boot.firmware \"seabios\" reads a boot order (a kernel loaded directly and "
           "OpenSBI do not; U-Boot scans its own order); remove bootindex";
  return {};
}

std::string_view property_type_name(PropertyType type) {
  switch (type) {
    case PropertyType::Bool:
      return "bool";
    case PropertyType::Int:
      return "int";
    case PropertyType::Size:
      return "size";
    case PropertyType::String:
      return "string";
    case PropertyType::Mac:
      return "mac";
  }
  return "?";
}

const PropertySpec* DeviceType::find_property(std::string_view name) const {
  for (const PropertySpec& p : properties)
    if (p.name == name) return &p;
  return nullptr;
}

const BackendSpec* DeviceType::find_backend(std::string_view property) const {
  for (const BackendSpec& b : backends) {
    if (b.property == property) return &b;
    for (const std::string& alias : b.aliases)
      if (alias == property) return &b;
  }
  return nullptr;
}

const std::vector<DeviceType>& device_types() {
  static const std::vector<DeviceType> types = build_device_types();
  return types;
}

const DeviceType* find_device_type(std::string_view name) {
  const auto& types = device_types();
  auto it = std::lower_bound(types.begin(), types.end(), name,
                             [](const DeviceType& t, std::string_view n) { return t.name < n; });
  return it != types.end() && it->name == name ? &*it : nullptr;
}

std::vector<std::string> device_type_names() {
  std::vector<std::string> names;
  for (const DeviceType& t : device_types()) names.push_back(t.name);
  return names;
}

}  // namespace hw::catalogue
