#include "passthrough/preflight.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "passthrough/host_inventory.h"

namespace passthrough {
namespace {

std::string mib(uint64_t bytes) {
  return std::to_string(bytes >> 20) + " MiB";
}

// Drivers a group peer may have for the group to be usable by VFIO: the kernel refuses a group
// whose other members a host driver owns (it could DMA into the guest's memory). Unbound functions,
// pci-stub (owns nothing) and PCIe port drivers on bridges (they do no DMA) are allowed.
bool peer_is_harmless(const PciDevice& peer) {
  if (peer.driver.empty() || peer.driver == "vfio-pci" || peer.driver == "pci-stub") return true;
  return peer.is_bridge() && peer.driver == "pcieport";
}

bool has_cap_ipc_lock() {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  // capget has no glibc wrapper; header and data are the kernel's own layout.
  if (::syscall(SYS_capget, &header, data) != 0) return false;
  return (data[CAP_IPC_LOCK / 32].effective >> (CAP_IPC_LOCK % 32)) & 1;
}

bool same_function(std::string a, std::string b) {
  // sysfs spells addresses in lower case; a file may not.
  std::transform(a.begin(), a.end(), a.begin(), ::tolower);
  std::transform(b.begin(), b.end(), b.begin(), ::tolower);
  return a == b;
}

}  // namespace

HostFacts HostFacts::of_this_process() {
  HostFacts facts;
  struct rlimit limit {};
  if (::getrlimit(RLIMIT_MEMLOCK, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY)
    facts.memlock_limit = static_cast<uint64_t>(limit.rlim_cur);
  facts.cap_ipc_lock = has_cap_ipc_lock();
  facts.open_error = [](const std::string& path) {
    // Opening a VFIO group claims it; access() asks the same question without side effects.
    return ::access(path.c_str(), R_OK | W_OK) == 0 ? 0 : errno;
  };
  return facts;
}

std::string bind_commands(const std::string& bdf, const std::string& current_driver) {
  const std::string dev = "/sys/bus/pci/devices/" + bdf;
  std::string out = "as root: modprobe vfio-pci; echo vfio-pci > " + dev + "/driver_override; ";
  if (!current_driver.empty()) out += "echo " + bdf + " > " + dev + "/driver/unbind; ";
  out += "echo " + bdf + " > /sys/bus/pci/drivers_probe";
  return out;
}

std::vector<Problem> check_vfio_pci(const std::string& bdf, uint64_t guest_ram, const HostFacts& host) {
  std::vector<Problem> out;
  std::optional<PciDevice> device = find_pci(bdf, host.root);
  if (!device) {
    out.push_back({"no PCI device " + bdf + " on this host",
                   "`vmlaunch host devices` lists this host's PCI devices; write one of their addresses"});
  } else {
    const std::string what = bdf + " (" + vendor_device(device->vendor, device->device) + ")";
    if (device->driver != "vfio-pci")
      out.push_back(
          {what + " is " +
               (device->driver.empty() ? std::string("bound to no driver") : "bound to " + device->driver) +
               ", not vfio-pci",
           bind_commands(device->bdf, device->driver)});
    if (!device->iommu_group) {
      out.push_back({"no IOMMU: " + bdf + " is in no IOMMU group, and VFIO needs one",
                     "enable VT-d or AMD-Vi in the firmware and add intel_iommu=on (Intel) or amd_iommu=on "
                     "(AMD) to the kernel command line, then reboot"});
    } else {
      std::vector<std::string> owned;
      for (const std::string& peer_bdf : device->group_peers) {
        std::optional<PciDevice> peer = find_pci(peer_bdf, host.root);
        if (peer && !peer_is_harmless(*peer)) owned.push_back(peer_bdf + " (" + peer->driver + ")");
      }
      if (!owned.empty()) {
        std::string list, commands;
        for (const std::string& o : owned) list += (list.empty() ? "" : ", ") + o;
        for (const std::string& peer_bdf : device->group_peers) {
          std::optional<PciDevice> peer = find_pci(peer_bdf, host.root);
          if (peer && !peer_is_harmless(*peer))
            commands += (commands.empty() ? "" : "; then ") + bind_commands(peer->bdf, peer->driver);
        }
        out.push_back(
            {"IOMMU group " + std::to_string(*device->iommu_group) + " of " + bdf + " also holds " + list +
                 ", bound to a host driver; VFIO needs the whole group",
             "bind each of them to vfio-pci or pci-stub, or move the card to another slot: " + commands});
      }
      const std::string node = "/dev/vfio/" + std::to_string(*device->iommu_group);
      for (const std::string& path : {std::string("/dev/vfio/vfio"), node}) {
        int error = host.open_error ? host.open_error(host.root + path) : 0;
        if (error == ENOENT)
          out.push_back(
              {path + " does not exist", path == node ? "bind " + bdf + " to vfio-pci (it makes " + path + ")"
                                                      : "as root: modprobe vfio-pci"});
        else if (error != 0)
          out.push_back({"cannot open " + path + ": " + std::strerror(error),
                         "as root: chown $USER " + path + " (or run vmlaunch as a user who may)"});
      }
    }
  }
  if (host.memlock_limit && !host.cap_ipc_lock && *host.memlock_limit < guest_ram)
    out.push_back({"RLIMIT_MEMLOCK is " + mib(*host.memlock_limit) + ", below the guest's " + mib(guest_ram) +
                       " of RAM, which VFIO pins for the device's DMA",
                   "raise it: ulimit -l " + std::to_string((guest_ram + 1023) / 1024) +
                       " (as root), or a memlock line in /etc/security/limits.conf, or LimitMEMLOCK= for a "
                       "systemd unit"});
  return out;
}

std::vector<Problem> check_usb_host(const std::string& selector, const std::string& serial,
                                    const HostFacts& host) {
  std::vector<Problem> out;
  std::vector<UsbDevice> found = match_usb(selector, serial, host.root);
  const std::string what = selector + (serial.empty() ? "" : " with serial " + serial);
  if (found.empty()) {
    std::string fix = "plug it in, or pick one `vmlaunch host devices` lists";
    // The same kind with another serial: say which serials there are.
    if (!serial.empty()) {
      std::string serials;
      for (const UsbDevice& d : match_usb(selector, "", host.root))
        serials += (serials.empty() ? "" : ", ") + (d.serial.empty() ? "(none) at " + d.path : d.serial);
      if (!serials.empty()) fix = "the " + selector + " devices plugged in have serial " + serials;
    }
    out.push_back({"no USB device " + what + " on this host", fix});
    return out;
  }
  if (found.size() > 1) {
    std::string where;
    for (const UsbDevice& d : found)
      where += (where.empty() ? "" : ", ") + d.path + (d.serial.empty() ? "" : " (serial " + d.serial + ")");
    out.push_back({std::to_string(found.size()) + " USB devices are " + what + ": " + where,
                   "add serial: to the entry, or write the bus-port path as host"});
    return out;
  }
  const std::string node = found.front().node();
  const int error = host.open_error ? host.open_error(host.root + node) : 0;
  if (error == ENOENT)
    out.push_back({node + " (USB device " + found.front().path + ") does not exist",
                   "mount devtmpfs on /dev, or check that the device is still there"});
  else if (error != 0)
    out.push_back(
        {"cannot open " + node + " (USB device " + found.front().path + "): " + std::strerror(error),
         "as root: chown $USER " + node + ", or a udev rule: SUBSYSTEM==\"usb\", ATTR{idVendor}==\"" +
             vendor_device(found.front().vendor, found.front().product).substr(0, 4) +
             "\", ATTR{idProduct}==\"" +
             vendor_device(found.front().vendor, found.front().product).substr(5) +
             "\", MODE=\"0660\", GROUP=\"plugdev\""});
  return out;
}

std::optional<std::string> usb_path(const std::string& selector, const std::string& serial,
                                    const std::string& root) {
  std::vector<UsbDevice> found = match_usb(selector, serial, root);
  if (found.size() != 1) return std::nullopt;
  return found.front().path;
}

std::vector<Problem> check_usb_not_held(const std::string& path, const std::vector<HeldDevice>& held) {
  std::vector<Problem> out;
  for (const HeldDevice& h : held)
    if (h.bdf == path)
      out.push_back({"USB device " + path + " is in use by machine " + h.machine + " (pid " +
                         std::to_string(h.pid) + "), as its passthrough entry " + h.entry,
                     "stop it first (vmlaunch down " + h.machine + "), or pass another device"});
  return out;
}

std::vector<Problem> check_not_held(const std::string& bdf, const std::vector<HeldDevice>& held,
                                    const std::string& root) {
  std::vector<Problem> out;
  std::optional<PciDevice> device;
  bool looked_up = false;
  for (const HeldDevice& h : held) {
    const std::string who = "machine " + h.machine + " (pid " + std::to_string(h.pid) + ")";
    const std::string fix = "stop it first (vmlaunch down " + h.machine + "), or pass another device";
    if (same_function(h.bdf, bdf)) {
      out.push_back({bdf + " is in use by " + who + ", as its passthrough entry " + h.entry, fix});
      continue;
    }
    if (!looked_up) {
      device = find_pci(bdf, root);
      looked_up = true;
    }
    if (!device || !device->iommu_group) continue;
    std::optional<PciDevice> other = find_pci(h.bdf, root);
    if (other && other->iommu_group == device->iommu_group)
      out.push_back({"IOMMU group " + std::to_string(*device->iommu_group) + " of " + bdf + " is in use by " +
                         who + ", which has " + other->bdf + " of the same group as its passthrough entry " +
                         h.entry + "; VFIO gives a group to one machine",
                     fix});
  }
  return out;
}

}  // namespace passthrough
