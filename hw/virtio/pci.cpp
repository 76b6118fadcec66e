#include "hw/virtio/pci.h"

#include <cstring>

namespace hw::virtio {

namespace {
constexpr uint8_t kCapVendor = 0x09;
constexpr uint8_t kCfgCommon = 1, kCfgNotify = 2, kCfgIsr = 3, kCfgDevice = 4;

std::vector<uint8_t> cap_body(uint8_t type, uint8_t bar, uint32_t offset, uint32_t length, bool notify) {
  // struct virtio_pci_cap after cap_vndr/cap_next: cap_len, cfg_type, bar, id, padding[2], offset, length
  // (+ notify_off_multiplier for the notify capability).
  uint8_t cap_len = notify ? 20 : 16;
  std::vector<uint8_t> body = {cap_len, type, bar, 0, 0, 0};
  for (int i = 0; i < 4; ++i) body.push_back(static_cast<uint8_t>(offset >> (8 * i)));
  for (int i = 0; i < 4; ++i) body.push_back(static_cast<uint8_t>(length >> (8 * i)));
  if (notify)
    for (int i = 0; i < 4; ++i)
      body.push_back(static_cast<uint8_t>(PciTransport::kNotifyMultiplier >> (8 * i)));
  return body;
}
}  // namespace

hw::pci::FunctionIds virtio_pci_ids(uint16_t device_id) {
  uint32_t class_code = 0x00ff00;  // "other"
  if (device_id == kIdBlock) class_code = 0x010000;
  if (device_id == kIdNet) class_code = 0x020000;
  if (device_id == kIdConsole) class_code = 0x078000;
  return {0x1af4, static_cast<uint16_t>(0x1040 + device_id), class_code, 1, 0x1af4, 0x1100};
}

class PciTransport::Window : public hw::Device {
 public:
  explicit Window(PciTransport& owner) : m_owner(owner) {}
  std::string_view name() const override { return m_owner.name(); }
  void read(uint64_t offset, std::span<uint8_t> data) override { m_owner.bar_read(offset, data); }
  void write(uint64_t offset, std::span<const uint8_t> data) override { m_owner.bar_write(offset, data); }

 private:
  PciTransport& m_owner;
};

PciTransport::PciTransport(std::string name, std::shared_ptr<VirtioDevice> device,
                           const base::GuestMemory& memory, TransportCore::Log log)
    : PciFunction(name, virtio_pci_ids(device->device_id())),
      m_core(std::move(device), memory, std::move(log)) {
  // The window only lives as long as the function (the BAR mapping holds a reference to it, and
  // the function unmaps its BARs when destroyed), so a plain back-reference is safe.
  define_bar(kBar, kBarSize, hw::pci::BarKind::Memory32, std::make_shared<Window>(*this));
  add_capability(kCapVendor, cap_body(kCfgCommon, kBar, kCommonOffset, 0x38, false));
  add_capability(kCapVendor, cap_body(kCfgNotify, kBar, kNotifyOffset,
                                      kNotifyMultiplier * m_core.device().num_queues(), true));
  add_capability(kCapVendor, cap_body(kCfgIsr, kBar, kIsrOffset, 1, false));
  add_capability(kCapVendor, cap_body(kCfgDevice, kBar, kDeviceOffset, 0x1000, false));
  m_core.set_signals({[this](uint16_t) { raise(1); }, [this] { raise(2); }});
}

void PciTransport::raise(uint8_t bits) {
  std::lock_guard lock(m_isr_lock);
  m_isr |= bits;
  set_intx(true);
}

void PciTransport::bar_read(uint64_t offset, std::span<uint8_t> data) {
  std::memset(data.data(), 0, data.size());
  if (offset < kIsrOffset) {
    if (data.size() > 4) return;
    uint32_t value = common_read(offset, static_cast<unsigned>(data.size()));
    std::memcpy(data.data(), &value, data.size());
  } else if (offset == kIsrOffset) {
    // Reading the ISR acknowledges it (spec 4.1.4.5) and drops INTx.
    std::lock_guard lock(m_isr_lock);
    data[0] = m_isr;
    m_isr = 0;
    set_intx(false);
  } else if (offset >= kDeviceOffset && offset < kNotifyOffset) {
    std::lock_guard lock(m_core.lock());
    m_core.device().read_config(offset - kDeviceOffset, data);
  }
}

void PciTransport::bar_write(uint64_t offset, std::span<const uint8_t> data) {
  if (offset < kIsrOffset) {
    if (data.size() > 4) return;
    uint32_t value = 0;
    std::memcpy(&value, data.data(), data.size());
    common_write(offset, static_cast<unsigned>(data.size()), value);
  } else if (offset >= kDeviceOffset && offset < kNotifyOffset) {
    std::lock_guard lock(m_core.lock());
    m_core.device().write_config(offset - kDeviceOffset, data);
  } else if (offset >= kNotifyOffset) {
    // queue_notify_off(q) = q, so the queue is the offset divided by the multiplier.
    m_core.notify(static_cast<uint16_t>((offset - kNotifyOffset) / kNotifyMultiplier));
  }
}

uint32_t PciTransport::common_read(uint64_t offset, unsigned size) {
  std::lock_guard lock(m_core.lock());
  uint32_t v = 0;
  switch (offset) {
    case 0x00:
      v = m_device_features_select;
      break;
    case 0x04:
      v = m_core.device_features_word(m_device_features_select);
      break;
    case 0x08:
      v = m_driver_features_select;
      break;
    case 0x0c:
      v = m_core.driver_features_word(m_driver_features_select);
      break;
    case 0x10:
      v = 0xffff;
      break;  // config_msix_vector: no MSI-X
    case 0x12:
      v = m_core.device().num_queues();
      break;
    case 0x14:
      v = m_core.status();
      break;
    case 0x15:
      v = m_core.config_generation() & 0xff;
      break;
    case 0x16:
      v = m_core.queue_select();
      break;
    case 0x18:
      v = m_core.queue().size ? m_core.queue().size : m_core.queue_max_size();
      break;
    case 0x1a:
      v = 0xffff;
      break;  // queue_msix_vector
    case 0x1c:
      v = m_core.queue().ready ? 1 : 0;
      break;
    case 0x1e:
      v = m_core.queue_selected_valid() ? m_core.queue_select() : 0;
      break;
    case 0x20:
      v = static_cast<uint32_t>(m_core.queue().desc);
      break;
    case 0x24:
      v = static_cast<uint32_t>(m_core.queue().desc >> 32);
      break;
    case 0x28:
      v = static_cast<uint32_t>(m_core.queue().driver);
      break;
    case 0x2c:
      v = static_cast<uint32_t>(m_core.queue().driver >> 32);
      break;
    case 0x30:
      v = static_cast<uint32_t>(m_core.queue().device);
      break;
    case 0x34:
      v = static_cast<uint32_t>(m_core.queue().device >> 32);
      break;
    default:
      break;
  }
  return size == 4 ? v : v & ((1u << (8 * size)) - 1);
}

void PciTransport::common_write(uint64_t offset, unsigned size, uint32_t value) {
  std::lock_guard lock(m_core.lock());
  switch (offset) {
    case 0x00:
      m_device_features_select = value;
      break;
    case 0x08:
      m_driver_features_select = value;
      break;
    case 0x0c:
      m_core.write_driver_features_word(m_driver_features_select, value);
      break;
    case 0x14:
      m_core.write_status(static_cast<uint8_t>(value));
      if ((value & 0xff) == 0) {
        std::lock_guard isr(m_isr_lock);
        m_isr = 0;
        set_intx(false);
      }
      break;
    case 0x16:
      m_core.select_queue(static_cast<uint16_t>(value));
      break;
    case 0x18:
      m_core.write_queue_size(value & 0xffff);
      break;
    case 0x1c:
      m_core.write_queue_ready(value & 1);
      break;
    case 0x20:
      m_core.write_queue_desc(value, false);
      break;
    case 0x24:
      m_core.write_queue_desc(value, true);
      break;
    case 0x28:
      m_core.write_queue_driver(value, false);
      break;
    case 0x2c:
      m_core.write_queue_driver(value, true);
      break;
    case 0x30:
      m_core.write_queue_device(value, false);
      break;
    case 0x34:
      m_core.write_queue_device(value, true);
      break;
    default:
      break;  // read-only fields and MSI-X vectors (no MSI-X): ignored
  }
}

}  // namespace hw::virtio
