// What the host offers for passthrough, read from sysfs: PCI functions with their driver and IOMMU
// group, and USB devices by their bus-port path. `vmlaunch host devices` prints it so a user can
// write a `passthrough:` entry, and the preflight (passthrough/preflight.h) checks entries against
// it. Every reader takes the root directory the paths hang under ("" is the real host), so tests
// point it at a copy of the tree.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace passthrough {

struct PciDevice {
  std::string bdf;  // "0000:01:00.0"
  uint16_t vendor = 0;
  uint16_t device = 0;
  uint32_t class_code = 0;               // base class, subclass, prog-if: 0x020000 = Ethernet
  std::string driver;                    // the bound driver's name; empty when none is bound
  std::string driver_override;           // empty when unset
  std::optional<unsigned> iommu_group;   // absent without an IOMMU
  std::vector<std::string> group_peers;  // the group's other functions, sorted
  bool is_bridge() const { return (class_code >> 8) == 0x0604; }
};

struct UsbDevice {
  std::string path;  // bus-port path, stable across replugs: "1-2.3" (root hubs: "usb1")
  uint16_t vendor = 0;
  uint16_t product = 0;
  std::string serial;        // empty when the device reports none
  std::string product_name;  // the device's own string, when it has one
  unsigned bus = 0;
  unsigned devnum = 0;               // /dev/bus/usb/BUS/DEVNUM (changes on every replug)
  std::vector<std::string> drivers;  // drivers of its interfaces ("usb-storage", "hub"), sorted
  std::string speed;                 // Mb/s as sysfs says it: "1.5", "12", "480", "5000", "10000"
  bool is_root_hub() const { return path.rfind("usb", 0) == 0; }
  std::string node() const;  // "/dev/bus/usb/BBB/DDD"
};

// `root` + "/sys/bus/pci/devices", sorted by BDF; empty when the directory is missing.
std::vector<PciDevice> list_pci(const std::string& root = "");
std::optional<PciDevice> find_pci(const std::string& bdf, const std::string& root = "");
// `root` + "/sys/bus/usb/devices" (devices only, not their interfaces), sorted by path.
std::vector<UsbDevice> list_usb(const std::string& root = "");

// The devices a usb-host entry's `host` selects: a bus-port path ("1-2.3") names one place;
// "vendor:product" (hex) every such device, narrowed by `serial` when that is not empty. Root hubs
// are never selected.
std::vector<UsbDevice> match_usb(const std::string& host, const std::string& serial,
                                 const std::string& root = "");

// Whether the kernel runs an IOMMU: some group exists under /sys/kernel/iommu_groups.
bool iommu_active(const std::string& root = "");

// "8086:1533"; the class as "0200" (base class and subclass, as lspci -n prints it).
std::string vendor_device(uint16_t vendor, uint16_t device);
std::string class_name(uint32_t class_code);  // "Ethernet controller", or "class 0xffff00"

}  // namespace passthrough
