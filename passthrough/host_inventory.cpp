#include "passthrough/host_inventory.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <system_error>

namespace passthrough {
namespace {

namespace fs = std::filesystem;

// One sysfs attribute, trailing newline dropped; empty when it is missing or unreadable.
std::string read_attr(const fs::path& path) {
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) return {};
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r' || line.back() == ' ')) line.pop_back();
  return line;
}

uint64_t read_number(const fs::path& path, int base) {
  std::string text = read_attr(path);
  if (text.empty()) return 0;
  try {
    return std::stoull(text, nullptr, base);
  } catch (...) {  // a malformed attribute reads as 0, never an exception out of the module
    return 0;
  }
}

// The name a symlink points at ("driver" -> ../../bus/pci/drivers/vfio-pci gives "vfio-pci").
std::string link_name(const fs::path& link) {
  std::error_code ec;
  fs::path target = fs::read_symlink(link, ec);
  return ec ? std::string() : target.filename().string();
}

std::vector<std::string> sorted_entries(const fs::path& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    names.push_back(it->path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

PciDevice read_pci(const std::string& root, const std::string& bdf) {
  fs::path dir = fs::path(root + "/sys/bus/pci/devices") / bdf;
  PciDevice d;
  d.bdf = bdf;
  d.vendor = static_cast<uint16_t>(read_number(dir / "vendor", 16));
  d.device = static_cast<uint16_t>(read_number(dir / "device", 16));
  d.class_code = static_cast<uint32_t>(read_number(dir / "class", 16));
  d.driver = link_name(dir / "driver");
  d.driver_override = read_attr(dir / "driver_override");
  if (d.driver_override == "(null)") d.driver_override.clear();
  std::string group = link_name(dir / "iommu_group");
  if (!group.empty() && std::all_of(group.begin(), group.end(), ::isdigit)) {
    d.iommu_group = static_cast<unsigned>(std::stoul(group));
    for (const std::string& peer : sorted_entries(root + "/sys/kernel/iommu_groups/" + group + "/devices"))
      if (peer != bdf) d.group_peers.push_back(peer);
  }
  return d;
}

// A USB device's sysfs name: "usbN" (root hub) or "B-P[.P...]"; "B-P:C.I" are its interfaces.
bool is_usb_device_name(const std::string& name) {
  if (name.find(':') != std::string::npos) return false;
  return name.rfind("usb", 0) == 0 || (!name.empty() && std::isdigit(static_cast<unsigned char>(name[0])));
}

}  // namespace

std::vector<PciDevice> list_pci(const std::string& root) {
  std::vector<PciDevice> out;
  for (const std::string& bdf : sorted_entries(root + "/sys/bus/pci/devices"))
    out.push_back(read_pci(root, bdf));
  return out;
}

std::optional<PciDevice> find_pci(const std::string& bdf, const std::string& root) {
  std::error_code ec;
  // sysfs spells addresses in lower case; the file may not.
  std::string lower = bdf;
  std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
  if (lower.find('/') != std::string::npos ||
      !fs::exists(fs::path(root + "/sys/bus/pci/devices") / lower, ec))
    return std::nullopt;
  return read_pci(root, lower);
}

std::vector<UsbDevice> list_usb(const std::string& root) {
  std::vector<UsbDevice> out;
  const fs::path base = root + "/sys/bus/usb/devices";
  std::vector<std::string> names = sorted_entries(base);
  for (const std::string& name : names) {
    if (!is_usb_device_name(name)) continue;
    fs::path dir = base / name;
    UsbDevice d;
    d.path = name;
    d.vendor = static_cast<uint16_t>(read_number(dir / "idVendor", 16));
    d.product = static_cast<uint16_t>(read_number(dir / "idProduct", 16));
    d.serial = read_attr(dir / "serial");
    d.product_name = read_attr(dir / "product");
    d.bus = static_cast<unsigned>(read_number(dir / "busnum", 10));
    d.devnum = static_cast<unsigned>(read_number(dir / "devnum", 10));
    d.speed = read_attr(dir / "speed");
    // Interfaces are "<device>:<config>.<interface>" (root hubs: "<bus>-0:1.0").
    std::string prefix = name.rfind("usb", 0) == 0 ? name.substr(3) + "-0:" : name + ":";
    for (const std::string& other : names) {
      if (other.rfind(prefix, 0) != 0) continue;
      std::string driver = link_name(base / other / "driver");
      if (!driver.empty() && std::find(d.drivers.begin(), d.drivers.end(), driver) == d.drivers.end())
        d.drivers.push_back(driver);
    }
    std::sort(d.drivers.begin(), d.drivers.end());
    out.push_back(std::move(d));
  }
  return out;
}

std::string UsbDevice::node() const {
  char text[32];
  std::snprintf(text, sizeof text, "/dev/bus/usb/%03u/%03u", bus, devnum);
  return text;
}

std::vector<UsbDevice> match_usb(const std::string& host, const std::string& serial,
                                 const std::string& root) {
  std::vector<UsbDevice> out;
  const bool by_ids = host.size() == 9 && host[4] == ':';
  for (UsbDevice& d : list_usb(root)) {
    if (d.is_root_hub()) continue;
    if (by_ids) {
      std::string wanted = host;
      std::transform(wanted.begin(), wanted.end(), wanted.begin(), ::tolower);
      if (vendor_device(d.vendor, d.product) != wanted) continue;
      if (!serial.empty() && d.serial != serial) continue;
    } else if (d.path != host) {
      continue;
    }
    out.push_back(std::move(d));
  }
  return out;
}

bool iommu_active(const std::string& root) {
  return !sorted_entries(root + "/sys/kernel/iommu_groups").empty();
}

std::string vendor_device(uint16_t vendor, uint16_t device) {
  char text[16];
  std::snprintf(text, sizeof text, "%04x:%04x", vendor, device);
  return text;
}

std::string class_name(uint32_t class_code) {
  struct Known {
    uint32_t code;  // base class << 8 | subclass
    const char* name;
  };
  static constexpr Known kKnown[] = {
      {0x0100, "SCSI storage controller"},
      {0x0101, "IDE interface"},
      {0x0106, "SATA controller"},
      {0x0108, "Non-Volatile memory controller"},
      {0x0180, "Mass storage controller"},
      {0x0200, "Ethernet controller"},
      {0x0280, "Network controller"},
      {0x0300, "VGA compatible controller"},
      {0x0302, "3D controller"},
      {0x0380, "Display controller"},
      {0x0403, "Audio device"},
      {0x0600, "Host bridge"},
      {0x0601, "ISA bridge"},
      {0x0604, "PCI bridge"},
      {0x0780, "Communication controller"},
      {0x0c03, "USB controller"},
      {0x0c05, "SMBus"},
      {0x00ff, "Unclassified device"},
  };
  uint32_t code = class_code >> 8;
  for (const Known& k : kKnown)
    if (k.code == code) return k.name;
  char text[32];
  std::snprintf(text, sizeof text, "class 0x%06x", class_code);
  return text;
}

}  // namespace passthrough
