// A copy of the sysfs paths the inventory reads, built under a temporary directory for tests.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace passthrough::testing {

class FakeSysfs {
 public:
  FakeSysfs() {
    const char* tmp = std::getenv("TEST_TMPDIR");
    std::string tmpl = std::string(tmp ? tmp : "/tmp") + "/sysfs.XXXXXX";
    m_root = ::mkdtemp(tmpl.data()) ? tmpl : std::string();
    std::filesystem::create_directories(m_root + "/sys/bus/pci/devices");
    std::filesystem::create_directories(m_root + "/sys/bus/usb/devices");
  }
  ~FakeSysfs() {
    std::error_code ec;
    std::filesystem::remove_all(m_root, ec);
  }
  const std::string& root() const { return m_root; }

  // A PCI function as sysfs shows it: attributes, and links to its driver and IOMMU group.
  void pci(const std::string& bdf, const std::string& vendor, const std::string& device,
           const std::string& cls, const std::string& driver, int group = -1) {
    std::string dir = m_root + "/sys/devices/pci0000:00/" + bdf;
    std::filesystem::create_directories(dir);
    write(dir + "/vendor", vendor + "\n");
    write(dir + "/device", device + "\n");
    write(dir + "/class", cls + "\n");
    write(dir + "/driver_override", "(null)\n");
    if (!driver.empty()) {
      std::filesystem::create_directories(m_root + "/sys/bus/pci/drivers/" + driver);
      std::filesystem::create_directory_symlink("../../../bus/pci/drivers/" + driver, dir + "/driver");
    }
    if (group >= 0) {
      std::string g = m_root + "/sys/kernel/iommu_groups/" + std::to_string(group);
      std::filesystem::create_directories(g + "/devices");
      std::filesystem::create_directory_symlink("../../../kernel/iommu_groups/" + std::to_string(group),
                                                dir + "/iommu_group");
      std::filesystem::create_directory_symlink("../../../../devices/pci0000:00/" + bdf,
                                                g + "/devices/" + bdf);
    }
    std::filesystem::create_directory_symlink("../../../devices/pci0000:00/" + bdf,
                                              m_root + "/sys/bus/pci/devices/" + bdf);
  }

  void usb_device(const std::string& name, const std::string& vendor, const std::string& product,
                  const std::string& serial, int bus, int devnum) {
    std::string dir = m_root + "/sys/bus/usb/devices/" + name;
    std::filesystem::create_directories(dir);
    write(dir + "/idVendor", vendor + "\n");
    write(dir + "/idProduct", product + "\n");
    if (!serial.empty()) write(dir + "/serial", serial + "\n");
    write(dir + "/busnum", std::to_string(bus) + "\n");
    write(dir + "/devnum", std::to_string(devnum) + "\n");
  }
  void usb_interface(const std::string& name, const std::string& driver) {
    std::string dir = m_root + "/sys/bus/usb/devices/" + name;
    std::filesystem::create_directories(dir);
    std::filesystem::create_directories(m_root + "/sys/bus/usb/drivers/" + driver);
    std::filesystem::create_directory_symlink("../../drivers/" + driver, dir + "/driver");
  }

  void dev_node(const std::string& path) {
    std::filesystem::create_directories(std::filesystem::path(m_root + path).parent_path());
    write(m_root + path, "");
  }

 private:
  static void write(const std::string& path, const std::string& text) { std::ofstream(path) << text; }
  std::string m_root;
};

}  // namespace passthrough::testing
