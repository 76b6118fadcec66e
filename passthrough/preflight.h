// Whether this host can hand a `passthrough:` entry's device to a guest, checked before anything
// starts (`vmlaunch up`, `vmlaunch validate --host`): every problem found, each with the fix (the
// exact commands where there are some). Pure over HostFacts, so tests give it a copy of sysfs and
// any limits.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace passthrough {

struct HostFacts {
  std::string root;  // sysfs and /dev are read under it; "" is the real host
  // RLIMIT_MEMLOCK's soft limit in bytes; nullopt when unlimited. VFIO type1 pins all guest RAM
  // and counts it against this limit unless the process has CAP_IPC_LOCK.
  std::optional<uint64_t> memlock_limit;
  bool cap_ipc_lock = false;
  // 0 when the process may open `path` read-write, else the errno (EACCES, ENOENT).
  std::function<int(const std::string& path)> open_error;

  static HostFacts of_this_process();  // the real host: limits and capabilities of this process
};

struct Problem {
  std::string message;
  std::string fix;
};

// Problems with passing the PCI function `bdf` ("0000:01:00.0") to a guest with `guest_ram` bytes.
std::vector<Problem> check_vfio_pci(const std::string& bdf, uint64_t guest_ram, const HostFacts& host);

// A host PCI function that a running machine holds (its VMM's state directory says so: machine.json).
struct HeldDevice {
  std::string machine;  // the machine's name, as `vmlaunch ps` shows it
  long pid = 0;         // its VMM
  std::string entry;    // the machine's passthrough entry
  std::string bdf;      // the function, as that machine's file spelled it
};

// Problems with `bdf` while the machines in `held` run: one of them has the function itself, or
// another function of its IOMMU group (VFIO gives a whole group to one process). The groups are
// read from sysfs under `root`.
std::vector<Problem> check_not_held(const std::string& bdf, const std::vector<HeldDevice>& held,
                                    const std::string& root = "");

// Problems with passing the USB device a usb-host entry selects (`selector`: vendor:product, with
// `serial` when not empty, or a bus-port path): none there, several there, no permission on its usbfs
// node /dev/bus/usb/BBB/DDD (libusb opens it read-write).
std::vector<Problem> check_usb_host(const std::string& selector, const std::string& serial,
                                    const HostFacts& host);

// The bus-port path the selector finds now, when exactly one device matches (the machine record
// keeps it, so another machine's entry for the same device is recognised whatever it wrote).
std::optional<std::string> usb_path(const std::string& selector, const std::string& serial,
                                    const std::string& root = "");

// Problems with the USB device at bus-port `path` while the machines in `held` run.
std::vector<Problem> check_usb_not_held(const std::string& path, const std::vector<HeldDevice>& held);

// The commands that bind `bdf` to vfio-pci (driver_override, unbind from `current_driver`, probe).
std::string bind_commands(const std::string& bdf, const std::string& current_driver);

}  // namespace passthrough
