// The preflight's messages, each provoked on a copy of sysfs (the texts `up` and `validate --host`
// print after the entry's file:line:col).
#include "passthrough/preflight.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <cerrno>

#include "passthrough/fake_sysfs.h"

using passthrough::testing::FakeSysfs;

namespace {

passthrough::HostFacts facts(const FakeSysfs& sys) {
  passthrough::HostFacts host;
  host.root = sys.root();
  host.open_error = [](const std::string& path) { return ::access(path.c_str(), F_OK) == 0 ? 0 : ENOENT; };
  return host;
}

std::string all(const std::vector<passthrough::Problem>& problems) {
  std::string text;
  for (const auto& p : problems) text += p.message + " (" + p.fix + ")\n";
  return text;
}

constexpr uint64_t kMiB = 1 << 20;

}  // namespace

TEST_CASE("a device bound to vfio-pci, alone in its group, with its nodes: no problem") {
  FakeSysfs sys;
  sys.pci("0000:00:04.0", "0x1234", "0x11e8", "0x00ff00", "vfio-pci", 5);
  sys.pci("0000:00:00.0", "0x8086", "0x29c0", "0x060000", "", 0);
  sys.dev_node("/dev/vfio/vfio");
  sys.dev_node("/dev/vfio/5");
  CHECK(all(passthrough::check_vfio_pci("0000:00:04.0", 64 * kMiB, facts(sys))) == "");
}

TEST_CASE("absent device") {
  FakeSysfs sys;
  sys.pci("0000:00:04.0", "0x1234", "0x11e8", "0x00ff00", "vfio-pci", 5);
  CHECK(all(passthrough::check_vfio_pci("0000:01:00.0", 64 * kMiB, facts(sys))) ==
        "no PCI device 0000:01:00.0 on this host (`vmlaunch host devices` lists this host's PCI devices; "
        "write one of their addresses)\n");
}

TEST_CASE("bound to a host driver, or to none: the exact commands") {
  FakeSysfs sys;
  sys.pci("0000:00:04.0", "0x1234", "0x11e8", "0x00ff00", "", 5);
  sys.pci("0000:00:05.0", "0x8086", "0x10d3", "0x020000", "e1000e", 6);
  sys.dev_node("/dev/vfio/vfio");
  CHECK(
      all(passthrough::check_vfio_pci("0000:00:04.0", 64 * kMiB, facts(sys))) ==
      "0000:00:04.0 (1234:11e8) is bound to no driver, not vfio-pci (as root: modprobe vfio-pci; echo "
      "vfio-pci "
      "> /sys/bus/pci/devices/0000:00:04.0/driver_override; echo 0000:00:04.0 > /sys/bus/pci/drivers_probe)\n"
      "/dev/vfio/5 does not exist (bind 0000:00:04.0 to vfio-pci (it makes /dev/vfio/5))\n");
  CHECK(all(passthrough::check_vfio_pci("0000:00:05.0", 64 * kMiB, facts(sys))) ==
        "0000:00:05.0 (8086:10d3) is bound to e1000e, not vfio-pci (as root: modprobe vfio-pci; echo "
        "vfio-pci > "
        "/sys/bus/pci/devices/0000:00:05.0/driver_override; echo 0000:00:05.0 > "
        "/sys/bus/pci/devices/0000:00:05.0/driver/unbind; echo 0000:00:05.0 > /sys/bus/pci/drivers_probe)\n"
        "/dev/vfio/6 does not exist (bind 0000:00:05.0 to vfio-pci (it makes /dev/vfio/6))\n");
}

TEST_CASE("another function of the IOMMU group owned by a host driver; bridges and pci-stub are fine") {
  FakeSysfs sys;
  sys.pci("0000:01:00.0", "0x10de", "0x1b80", "0x030000", "vfio-pci", 7);
  sys.pci("0000:01:00.1", "0x10de", "0x10f0", "0x040300", "snd_hda_intel", 7);
  sys.pci("0000:01:00.2", "0x10de", "0x1ad6", "0x0c0330", "pci-stub", 7);
  sys.pci("0000:00:01.0", "0x8086", "0x1901", "0x060400", "pcieport", 7);
  sys.dev_node("/dev/vfio/vfio");
  sys.dev_node("/dev/vfio/7");
  CHECK(all(passthrough::check_vfio_pci("0000:01:00.0", 64 * kMiB, facts(sys))) ==
        "IOMMU group 7 of 0000:01:00.0 also holds 0000:01:00.1 (snd_hda_intel), bound to a host driver; VFIO "
        "needs the whole group (bind each of them to vfio-pci or pci-stub, or move the card to another slot: "
        "as "
        "root: modprobe vfio-pci; echo vfio-pci > /sys/bus/pci/devices/0000:01:00.1/driver_override; echo "
        "0000:01:00.1 > /sys/bus/pci/devices/0000:01:00.1/driver/unbind; echo 0000:01:00.1 > "
        "/sys/bus/pci/drivers_probe)\n");
}

TEST_CASE("no IOMMU: the kernel parameter to add") {
  FakeSysfs sys;
  sys.pci("0000:00:04.0", "0x1234", "0x11e8", "0x00ff00", "vfio-pci");
  CHECK(all(passthrough::check_vfio_pci("0000:00:04.0", 64 * kMiB, facts(sys))) ==
        "no IOMMU: 0000:00:04.0 is in no IOMMU group, and VFIO needs one (enable VT-d or AMD-Vi in the "
        "firmware "
        "and add intel_iommu=on (Intel) or amd_iommu=on (AMD) to the kernel command line, then reboot)\n");
}

TEST_CASE("no permission on the group's node") {
  FakeSysfs sys;
  sys.pci("0000:00:04.0", "0x1234", "0x11e8", "0x00ff00", "vfio-pci", 5);
  passthrough::HostFacts host = facts(sys);
  host.open_error = [](const std::string& path) { return path.ends_with("/dev/vfio/5") ? EACCES : 0; };
  CHECK(all(passthrough::check_vfio_pci("0000:00:04.0", 64 * kMiB, host)) ==
        "cannot open /dev/vfio/5: Permission denied (as root: chown $USER /dev/vfio/5 (or run vmlaunch as a "
        "user "
        "who may))\n");
}

TEST_CASE("RLIMIT_MEMLOCK below guest RAM, unless CAP_IPC_LOCK lifts it") {
  FakeSysfs sys;
  sys.pci("0000:00:04.0", "0x1234", "0x11e8", "0x00ff00", "vfio-pci", 5);
  sys.dev_node("/dev/vfio/vfio");
  sys.dev_node("/dev/vfio/5");
  passthrough::HostFacts host = facts(sys);
  host.memlock_limit = 8 * kMiB;
  CHECK(
      all(passthrough::check_vfio_pci("0000:00:04.0", 64 * kMiB, host)) ==
      "RLIMIT_MEMLOCK is 8 MiB, below the guest's 64 MiB of RAM, which VFIO pins for the device's DMA (raise "
      "it: ulimit -l 65536 (as root), or a memlock line in /etc/security/limits.conf, or LimitMEMLOCK= for a "
      "systemd unit)\n");
  host.memlock_limit = 64 * kMiB;
  CHECK(all(passthrough::check_vfio_pci("0000:00:04.0", 64 * kMiB, host)) == "");
  host.memlock_limit = 8 * kMiB;
  host.cap_ipc_lock = true;
  CHECK(all(passthrough::check_vfio_pci("0000:00:04.0", 64 * kMiB, host)) == "");
}

TEST_CASE("this process's facts") {
  passthrough::HostFacts host = passthrough::HostFacts::of_this_process();
  REQUIRE(host.open_error);
  CHECK(host.open_error("/nonexistent/vfio/1") == ENOENT);
  CHECK(host.root.empty());
}

TEST_CASE("a function another running machine holds: named, with its pid and entry") {
  FakeSysfs sys;
  sys.pci("0000:00:04.0", "0x1234", "0x11e8", "0x00ff00", "vfio-pci", 5);
  std::vector<passthrough::HeldDevice> held = {{"other", 4242, "edu", "0000:00:04.0"}};
  CHECK(all(passthrough::check_not_held("0000:00:04.0", held, sys.root())) ==
        "0000:00:04.0 is in use by machine other (pid 4242), as its passthrough entry edu (stop it first "
        "(vmlaunch down other), or pass another device)\n");
  // The file's spelling does not matter: sysfs and VFIO know one.
  CHECK(passthrough::check_not_held("0000:00:04.0", {{"x", 1, "e", "0000:00:04.0"}}, sys.root()).size() == 1);
  CHECK(passthrough::check_not_held("0000:0A:04.0", {{"x", 1, "e", "0000:0a:04.0"}}, sys.root()).size() == 1);
}

TEST_CASE("another function of the same IOMMU group held: the group is busy") {
  FakeSysfs sys;
  sys.pci("0000:01:00.0", "0x10de", "0x1b80", "0x030000", "vfio-pci", 7);
  sys.pci("0000:01:00.1", "0x10de", "0x10f0", "0x040300", "vfio-pci", 7);
  sys.pci("0000:02:00.0", "0x8086", "0x10d3", "0x020000", "vfio-pci", 8);
  CHECK(all(passthrough::check_not_held("0000:01:00.0", {{"gpu-box", 17, "audio", "0000:01:00.1"}},
                                        sys.root())) ==
        "IOMMU group 7 of 0000:01:00.0 is in use by machine gpu-box (pid 17), which has 0000:01:00.1 of the "
        "same group as its passthrough entry audio; VFIO gives a group to one machine (stop it first "
        "(vmlaunch down gpu-box), or pass another device)\n");
  // Another group, or a function this host does not have: free.
  CHECK(passthrough::check_not_held("0000:01:00.0", {{"nic", 3, "net", "0000:02:00.0"}}, sys.root()).empty());
  CHECK(passthrough::check_not_held("0000:01:00.0", {{"gone", 3, "x", "0000:09:00.0"}}, sys.root()).empty());
  CHECK(passthrough::check_not_held("0000:01:00.0", {}, sys.root()).empty());
}

TEST_CASE("usb-host: absent, ambiguous, unreadable node, the right one; by ids, serial or path") {
  FakeSysfs sys;
  sys.usb_device("usb1", "1d6b", "0002", "0000:00:14.0", 1, 1);
  sys.usb_device("1-2", "0781", "5581", "AA01", 1, 5);
  sys.usb_device("1-3.1", "0781", "5581", "BB02", 1, 7);
  sys.usb_device("2-1", "046d", "c52b", "", 2, 3);
  sys.dev_node("/dev/bus/usb/001/005");
  // Root hubs are never a passthrough device.
  CHECK(all(passthrough::check_usb_host("1d6b:0002", "", facts(sys))) ==
        "no USB device 1d6b:0002 on this host (plug it in, or pick one `vmlaunch host devices` lists)\n");
  CHECK(all(passthrough::check_usb_host("0781:5581", "", facts(sys))) ==
        "2 USB devices are 0781:5581: 1-2 (serial AA01), 1-3.1 (serial BB02) (add serial: to the entry, or "
        "write "
        "the bus-port path as host)\n");
  CHECK(all(passthrough::check_usb_host("0781:5581", "AA01", facts(sys))) == "");
  CHECK(all(passthrough::check_usb_host("0781:5581", "CC03", facts(sys))) ==
        "no USB device 0781:5581 with serial CC03 on this host (the 0781:5581 devices plugged in have serial "
        "AA01, BB02)\n");
  CHECK(all(passthrough::check_usb_host("1-2", "", facts(sys))) == "");
  CHECK(all(passthrough::check_usb_host("1-3.1", "", facts(sys))) ==
        "/dev/bus/usb/001/007 (USB device 1-3.1) does not exist (mount devtmpfs on /dev, or check that the "
        "device is still there)\n");
  passthrough::HostFacts denied = facts(sys);
  denied.open_error = [](const std::string&) { return EACCES; };
  CHECK(all(passthrough::check_usb_host("046D:C52B", "", denied)) ==
        "cannot open /dev/bus/usb/002/003 (USB device 2-1): Permission denied (as root: chown $USER "
        "/dev/bus/usb/002/003, or a udev rule: SUBSYSTEM==\"usb\", ATTR{idVendor}==\"046d\", "
        "ATTR{idProduct}==\"c52b\", MODE=\"0660\", GROUP=\"plugdev\")\n");
  CHECK(passthrough::usb_path("0781:5581", "BB02", sys.root()) == "1-3.1");
  CHECK_FALSE(passthrough::usb_path("0781:5581", "", sys.root()).has_value());
  std::vector<passthrough::HeldDevice> held = {{"other", 42, "stick", "1-3.1"}};
  CHECK(all(passthrough::check_usb_not_held("1-3.1", held)) ==
        "USB device 1-3.1 is in use by machine other (pid 42), as its passthrough entry stick (stop it first "
        "(vmlaunch down other), or pass another device)\n");
  CHECK(passthrough::check_usb_not_held("1-2", held).empty());
}
