#include "passthrough/host_inventory.h"

#include <doctest/doctest.h>

#include "passthrough/fake_sysfs.h"

using passthrough::testing::FakeSysfs;

TEST_CASE("PCI functions: ids, class, driver, IOMMU group and its other members") {
  FakeSysfs sys;
  sys.pci("0000:00:1f.0", "0x8086", "0x2918", "0x060100", "lpc_ich", 3);
  sys.pci("0000:01:00.0", "0x10de", "0x1b80", "0x030000", "nvidia", 7);
  sys.pci("0000:01:00.1", "0x10de", "0x10f0", "0x040300", "", 7);
  sys.pci("0000:00:04.0", "0x1234", "0x11e8", "0x00ff00", "vfio-pci");  // no IOMMU group
  auto all = passthrough::list_pci(sys.root());
  REQUIRE(all.size() == 4);
  CHECK(all[0].bdf == "0000:00:04.0");  // sorted
  CHECK(passthrough::vendor_device(all[0].vendor, all[0].device) == "1234:11e8");
  CHECK(all[0].driver == "vfio-pci");
  CHECK_FALSE(all[0].iommu_group.has_value());
  CHECK(passthrough::class_name(all[0].class_code) == "Unclassified device");
  const passthrough::PciDevice& gpu = all[2];
  CHECK(gpu.bdf == "0000:01:00.0");
  CHECK(gpu.driver == "nvidia");
  CHECK(gpu.driver_override.empty());
  REQUIRE(gpu.iommu_group.has_value());
  CHECK(*gpu.iommu_group == 7);
  CHECK(gpu.group_peers == std::vector<std::string>{"0000:01:00.1"});
  CHECK(passthrough::class_name(gpu.class_code) == "VGA compatible controller");
  CHECK(all[3].driver.empty());
  CHECK(passthrough::class_name(0xabcd01) == "class 0xabcd01");
  CHECK(passthrough::iommu_active(sys.root()));
}

TEST_CASE("find_pci: case-insensitive address, absent devices, no path tricks") {
  FakeSysfs sys;
  sys.pci("0000:0a:00.0", "0x8086", "0x1533", "0x020000", "igb");
  CHECK(passthrough::find_pci("0000:0A:00.0", sys.root())->driver == "igb");
  CHECK_FALSE(passthrough::find_pci("0000:0b:00.0", sys.root()));
  CHECK_FALSE(passthrough::find_pci("../../../etc", sys.root()));
  CHECK_FALSE(passthrough::iommu_active(sys.root()));
}

TEST_CASE("USB devices: bus-port path, ids, serial, the drivers of their interfaces") {
  FakeSysfs sys;
  sys.usb_device("usb1", "1d6b", "0002", "0000:00:14.0", 1, 1);
  sys.usb_interface("1-0:1.0", "hub");
  sys.usb_device("1-2.3", "0781", "5581", "4C530001", 1, 9);
  sys.usb_interface("1-2.3:1.0", "usb-storage");
  sys.usb_device("1-4", "046d", "c52b", "", 1, 4);
  sys.usb_interface("1-4:1.0", "usbhid");
  sys.usb_interface("1-4:1.1", "usbhid");
  auto all = passthrough::list_usb(sys.root());
  REQUIRE(all.size() == 3);
  CHECK(all[0].path == "1-2.3");
  CHECK(all[0].vendor == 0x0781);
  CHECK(all[0].product == 0x5581);
  CHECK(all[0].serial == "4C530001");
  CHECK(all[0].devnum == 9);
  CHECK(all[0].drivers == std::vector<std::string>{"usb-storage"});
  CHECK(all[1].path == "1-4");
  CHECK(all[1].serial.empty());
  CHECK(all[1].drivers == std::vector<std::string>{"usbhid"});
  CHECK(all[2].path == "usb1");
  CHECK(all[2].drivers == std::vector<std::string>{"hub"});
}

TEST_CASE("a host without the directories lists nothing") {
  CHECK(passthrough::list_pci("/nonexistent-root").empty());
  CHECK(passthrough::list_usb("/nonexistent-root").empty());
}
