// qemu-xhci: the xHCI controller (hw/usb/xhci.h) as a PCI function with QEMU's ids (1b36:000d, class
// 0c0330), BAR 0 of 16 KiB, and its interrupter delivered as MSI (one vector, 64-bit, where the machine
// has an MSI controller) or INTx. The usb-host devices on its bus "<id>.0" sit on the port the graph
// gives them, each a host device a passthrough entry named (env.backends.usb_host).
#include "hw/usb/xhci_pci.h"

#include <cstdio>
#include <mutex>

#include "base/field_use.h"
#include "graph/graph.h"
#include "hw/device_model.h"
#include "hw/pci/models.h"
#include "hw/pci/pci_function.h"
#include "hw/usb/xhci.h"

VML_CONSUMES("device-type:qemu-xhci");
VML_CONSUMES("device-type:usb-host");

namespace hw::usb {
namespace {

constexpr uint8_t kCapMsi = 0x05;
constexpr uint16_t kMsi64Bit = 0x80, kMsiEnable = 0x01;
constexpr uint16_t kMsiControl = 2, kMsiAddressLow = 4, kMsiAddressHigh = 8, kMsiData = 12;
constexpr uint16_t kSerialBusRelease = 0x60, kFrameLengthAdjust = 0x61;

class XhciPci : public pci::PciFunction {
 public:
  XhciPci(std::string name, std::shared_ptr<MsiSink> msi)
      : PciFunction(std::move(name), pci::FunctionIds{0x1b36, 0x000d, 0x0c0330, 0x01, 0x1af4, 0x1100}),
        m_msi(std::move(msi)) {
    set_config_u8(kSerialBusRelease, 0x30);  // USB 3.0
    set_config_u8(kFrameLengthAdjust, 0x20);
    if (m_msi) {
      const uint8_t body[12] = {kMsi64Bit, 0};
      const uint8_t writable[12] = {kMsiEnable, 0,    0xfc, 0xff, 0xff, 0xff,
                                    0xff,       0xff, 0xff, 0xff, 0xff, 0xff};
      m_msi_cap = add_capability(kCapMsi, body, writable);
    }
  }

  ~XhciPci() override {
    if (auto xhci = m_xhci.lock()) xhci->shutdown();
  }
  void set_controller(std::weak_ptr<Xhci> xhci) { m_xhci = std::move(xhci); }

  // The interrupter's level, from the controller (its lock held; nothing here calls back into it).
  // True when a rising level went out as an MSI (the controller then clears its pending bit).
  bool interrupt(bool level) {
    std::lock_guard guard(m_lock);
    if (m_msi_cap && (read_raw(m_msi_cap + kMsiControl, 2) & kMsiEnable)) {
      m_level = false;  // a message is not a level: nothing is left to turn into INTx
      set_intx(false);
      if (!level) return false;
      const uint64_t address = read_raw(m_msi_cap + kMsiAddressLow, 4) |
                               static_cast<uint64_t>(read_raw(m_msi_cap + kMsiAddressHigh, 4)) << 32;
      m_msi->signal(address, read_raw(m_msi_cap + kMsiData, 2));
      return true;
    }
    m_level = level;
    set_intx(level);
    return false;
  }

 protected:
  void config_written(uint16_t offset, unsigned size) override {
    // MSI switched on or off: INTx follows (a level pending while MSI goes off comes back as INTx).
    const unsigned control = m_msi_cap + kMsiControl;
    if (!m_msi_cap || offset >= control + 2 || offset + size <= control) return;
    std::lock_guard guard(m_lock);
    set_intx(!(read_raw(control, 2) & kMsiEnable) && m_level);
  }

 private:
  std::shared_ptr<MsiSink> m_msi;
  std::weak_ptr<Xhci> m_xhci;
  uint8_t m_msi_cap = 0;
  std::mutex m_lock;
  bool m_level = false;
};

}  // namespace

XhciFunction make_xhci_function(std::string name, const base::GuestMemory& memory,
                                std::shared_ptr<MsiSink> msi) {
  auto fn = std::make_shared<XhciPci>(name, std::move(msi));
  std::weak_ptr<XhciPci> weak = fn;
  auto xhci = std::make_shared<Xhci>(std::move(name), memory, [weak](bool level) {
    auto f = weak.lock();
    return f && f->interrupt(level);
  });
  fn->define_bar(0, Xhci::kMmioSize, pci::BarKind::Memory64, xhci);
  fn->set_controller(xhci);
  return {fn, xhci};
}

namespace {

base::ErrorOr<std::shared_ptr<Device>> make_qemu_xhci(DeviceEnv& env) {
  auto [fn, xhci] = make_xhci_function(env.device.id, env.memory, env.msi);
  const std::string bus = env.device.id + ".0";
  for (const graph::Device& child : env.graph.devices) {
    if (child.bus != bus || child.driver != "usb-host") continue;
    const graph::BackendRef* ref = child.backend("passthrough");
    if (!ref) ref = child.backend("host");
    if (!ref) return base::fail(base::Error(child.id + ": usb-host needs a passthrough entry"));
    std::shared_ptr<UsbDevice> device = env.backends.usb_host(ref->name);
    if (!device)
      return base::fail(base::Error(child.id + ": passthrough entry \"" + ref->name + "\" was not opened"));
    if (child.address.kind != graph::Address::Kind::Slot)
      return base::fail(base::Error(child.id + ": has no USB port"));
    auto attached = xhci->attach(child.address.slot, std::move(device));
    if (!attached.ok()) return base::fail(attached.error().with_context(child.id));
  }
  TRY(pci::plug_function(env, fn));
  return std::shared_ptr<Device>();
}

// The controller's factory plugs them in; the machine builder has nothing more to do.
class UsbChild final : public Device {
 public:
  explicit UsbChild(std::string id) : m_id(std::move(id)) {}
  std::string_view name() const override { return m_id; }
  void read(uint64_t, std::span<uint8_t> data) override { std::fill(data.begin(), data.end(), 0xff); }
  void write(uint64_t, std::span<const uint8_t>) override {}

 private:
  std::string m_id;
};

base::ErrorOr<std::shared_ptr<Device>> built_by_controller(DeviceEnv& env) {
  return std::shared_ptr<Device>(std::make_shared<UsbChild>(env.device.id));
}

}  // namespace

HW_REGISTER_DEVICE_MODEL("qemu-xhci", make_qemu_xhci);
HW_REGISTER_DEVICE_MODEL("usb-host", built_by_controller);

}  // namespace hw::usb
