// `vmlaunch host devices`: the host's PCI functions and USB devices, with what a `passthrough:`
// entry needs to know (address, ids, bound driver, IOMMU group and who shares it). `--json` for
// tools.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "config/diagnostic.h"
#include "launcher/command.h"
#include "passthrough/host_inventory.h"

namespace launcher {
namespace {

std::string hex4(uint16_t v) {
  char text[8];
  std::snprintf(text, sizeof text, "%04x", v);
  return text;
}

std::string group_text(const passthrough::PciDevice& d) {
  if (!d.iommu_group) return "-";
  std::string text = std::to_string(*d.iommu_group);
  if (d.group_peers.empty()) return text + " (alone)";
  text += " (with";
  for (const std::string& peer : d.group_peers) text += " " + peer;
  return text + ")";
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& i : items) out += (out.empty() ? "" : ",") + i;
  return out;
}

int host_devices(bool as_json) {
  std::vector<passthrough::PciDevice> pci = passthrough::list_pci();
  std::vector<passthrough::UsbDevice> usb = passthrough::list_usb();
  bool iommu = passthrough::iommu_active();
  if (as_json) {
    nlohmann::json p = nlohmann::json::array(), u = nlohmann::json::array();
    for (const auto& d : pci) {
      char cls[16];
      std::snprintf(cls, sizeof cls, "%06x", d.class_code);
      p.push_back({{"bdf", d.bdf},
                   {"vendor", hex4(d.vendor)},
                   {"device", hex4(d.device)},
                   {"class", cls},
                   {"class_name", passthrough::class_name(d.class_code)},
                   {"driver", d.driver.empty() ? nlohmann::json(nullptr) : nlohmann::json(d.driver)},
                   {"iommu_group", d.iommu_group ? nlohmann::json(*d.iommu_group) : nlohmann::json(nullptr)},
                   {"iommu_group_peers", d.group_peers}});
    }
    for (const auto& d : usb)
      u.push_back({{"path", d.path},
                   {"vendor", hex4(d.vendor)},
                   {"product", hex4(d.product)},
                   {"serial", d.serial.empty() ? nlohmann::json(nullptr) : nlohmann::json(d.serial)},
                   {"name", d.product_name},
                   {"bus", d.bus},
                   {"devnum", d.devnum},
                   {"drivers", d.drivers}});
    nlohmann::json out = {{"iommu", iommu}, {"pci", p}, {"usb", u}};
    // sysfs strings (USB product names, serials) are the device's: replace bytes that are not UTF-8.
    std::printf("%s\n", out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return kExitOk;
  }
  std::printf("PCI (IOMMU %s)\n", iommu ? "on" : "off: no device can be passed through");
  std::printf("  %-13s %-10s %-31s %-14s %s\n", "ADDRESS", "ID", "CLASS", "DRIVER", "IOMMU GROUP");
  for (const auto& d : pci)
    std::printf("  %-13s %-10s %-31s %-14s %s\n", d.bdf.c_str(),
                passthrough::vendor_device(d.vendor, d.device).c_str(),
                passthrough::class_name(d.class_code).c_str(), d.driver.empty() ? "-" : d.driver.c_str(),
                group_text(d).c_str());
  std::printf("USB\n");
  if (usb.empty()) {
    std::printf("  (none)\n");
    return kExitOk;
  }
  std::printf("  %-13s %-10s %-20s %-14s %s\n", "PATH", "ID", "SERIAL", "DRIVERS", "NAME");
  for (const auto& d : usb)
    std::printf("  %-13s %-10s %-20s %-14s %s\n", d.path.c_str(),
                passthrough::vendor_device(d.vendor, d.product).c_str(),
                config::escape_control(d.serial.empty() ? "-" : d.serial).c_str(),
                d.drivers.empty() ? "-" : join(d.drivers).c_str(),
                config::escape_control(d.product_name).c_str());
  return kExitOk;
}

}  // namespace

void register_host(CLI::App& app, Action& action) {
  CLI::App* host = app.add_subcommand("host", "What this host offers to machines");
  host->require_subcommand(1);
  CLI::App* devices = host->add_subcommand(
      "devices",
      "List the host's PCI functions (address, vendor:device, class, bound driver, IOMMU group and its other "
      "members) and USB devices (bus-port path, vendor:product, serial, interface drivers), to write "
      "passthrough: entries from");
  auto as_json = std::make_shared<bool>(false);
  devices->add_flag("--json", *as_json, "Print JSON: {iommu, pci: [...], usb: [...]}");
  devices->callback([&action, as_json] { action = [as_json] { return host_devices(*as_json); }; });
}

}  // namespace launcher
