#include "hw/virtio/pci.h"

#include <algorithm>
#include <cstring>

namespace hw::virtio {

namespace {
constexpr uint8_t kCapVendor = 0x09, kCapMsix = 0x11;
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
  if (device_id == kIdScsi) class_code = 0x010000;  // mass storage, SCSI
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
                           const base::GuestMemory& memory, TransportCore::Log log,
                           std::shared_ptr<hw::MsiSink> msi)
    : PciFunction(name, virtio_pci_ids(device->device_id())),
      m_core(std::move(device), memory, std::move(log)),
      m_msi(std::move(msi)) {
  const unsigned queues = m_core.device().num_queues();
  m_queue_vector = std::make_unique<std::atomic<uint16_t>[]>(queues + 1);
  reset_vectors();
  if (m_msi) m_msix_vectors = std::min<unsigned>(queues + 1, kMaxMsixVectors);
  // The window only lives as long as the function (the BAR mapping holds a reference to it, and
  // the function unmaps its BARs when destroyed), so a plain back-reference is safe.
  define_bar(kBar, m_msix_vectors ? kMsixBarSize : kBarSize, hw::pci::BarKind::Memory32,
             std::make_shared<Window>(*this));
  add_capability(kCapVendor, cap_body(kCfgCommon, kBar, kCommonOffset, 0x38, false));
  add_capability(kCapVendor, cap_body(kCfgNotify, kBar, kNotifyOffset, kNotifyMultiplier * queues, true));
  add_capability(kCapVendor, cap_body(kCfgIsr, kBar, kIsrOffset, 1, false));
  add_capability(kCapVendor, cap_body(kCfgDevice, kBar, kDeviceOffset, 0x1000, false));
  if (m_msix_vectors) {
    // Every vector starts masked (PCI 3.0 6.8.2.9); addresses and data are the driver's to write.
    m_msix_table.assign(16 * m_msix_vectors, 0);
    for (unsigned v = 0; v < m_msix_vectors; ++v) m_msix_table[16 * v + 12] = 1;
    m_msix_pending.assign((m_msix_vectors + 63) / 64, 0);
    const uint16_t control = static_cast<uint16_t>(m_msix_vectors - 1);  // table size - 1
    const uint32_t table = static_cast<uint32_t>(kMsixTableOffset) | kBar;
    const uint32_t pba = static_cast<uint32_t>(kMsixPbaOffset) | kBar;
    const uint8_t body[10] = {uint8_t(control),    uint8_t(control >> 8), uint8_t(table),
                              uint8_t(table >> 8), uint8_t(table >> 16),  uint8_t(table >> 24),
                              uint8_t(pba),        uint8_t(pba >> 8),     uint8_t(pba >> 16),
                              uint8_t(pba >> 24)};
    // Only MSI-X Enable (bit 15) and Function Mask (bit 14) of the message control are writable.
    const uint8_t writable[10] = {0x00, 0xc0, 0, 0, 0, 0, 0, 0, 0, 0};
    m_msix_cap = add_capability(kCapMsix, body, writable);
  }
  m_core.set_signals({[this](uint16_t q) { queue_signal(q); }, [this] { config_signal(); }});
}

void PciTransport::reset_vectors() {
  for (unsigned q = 0; q <= m_core.device().num_queues(); ++q) m_queue_vector[q].store(kNoVector);
  m_config_vector.store(kNoVector);
}

void PciTransport::raise(uint8_t bits) {
  std::lock_guard lock(m_isr_lock);
  m_isr |= bits;
  set_intx(true);
}

void PciTransport::queue_signal(uint16_t queue) {
  if (m_msix_vectors) {
    std::lock_guard lock(m_msix_lock);
    if (m_msix_enabled) {
      // With MSI-X on, a queue without a vector raises nothing (virtio 1.2 4.1.4.5), and no ISR bit.
      if (queue < m_core.device().num_queues()) msix_notify_locked(m_queue_vector[queue].load());
      return;
    }
  }
  raise(1);
}

void PciTransport::config_signal() {
  if (m_msix_vectors) {
    std::lock_guard lock(m_msix_lock);
    if (m_msix_enabled) {
      {
        std::lock_guard isr(m_isr_lock);
        m_isr |= 2;  // the config bit is set whatever the interrupt mechanism
      }
      msix_notify_locked(m_config_vector.load());
      return;
    }
  }
  raise(2);
}

bool PciTransport::msix_masked_locked(uint16_t vector) const {
  return m_msix_function_masked || (m_msix_table[16 * vector + 12] & 1);
}

void PciTransport::msix_notify_locked(uint16_t vector) {
  if (vector >= m_msix_vectors) return;  // NO_VECTOR, or nothing we offered
  if (!m_msix_enabled || msix_masked_locked(vector)) {
    m_msix_pending[vector / 64] |= uint64_t{1} << (vector % 64);
    return;
  }
  // The message is a memory write, which a function may not make while its Bus Master Enable bit is
  // clear; like QEMU (whose bus-master address space is then disabled) it is dropped, not held.
  // Lock order: m_msix_lock, then the function's lock inside config_read.
  if (!(config_read(hw::pci::kCommand, 2) & hw::pci::kCommandBusMaster)) return;
  uint64_t address = 0;
  uint32_t data = 0;
  for (int i = 0; i < 8; ++i) address |= uint64_t{m_msix_table[16 * vector + i]} << (8 * i);
  for (int i = 0; i < 4; ++i) data |= uint32_t{m_msix_table[16 * vector + 8 + i]} << (8 * i);
  m_msi->signal(address, data);
}

void PciTransport::msix_flush_pending_locked() {
  if (!m_msix_enabled || m_msix_function_masked) return;
  for (uint16_t v = 0; v < m_msix_vectors; ++v) {
    uint64_t bit = uint64_t{1} << (v % 64);
    if (!(m_msix_pending[v / 64] & bit) || msix_masked_locked(v)) continue;
    m_msix_pending[v / 64] &= ~bit;
    msix_notify_locked(v);
  }
}

void PciTransport::config_written(uint16_t offset, unsigned size) {
  if (!m_msix_cap) return;
  const uint16_t control_at = m_msix_cap + 2;
  if (offset >= control_at + 2 || offset + size <= control_at) return;
  const uint32_t control = config_read(control_at, 2);
  std::lock_guard lock(m_msix_lock);
  const bool was_enabled = m_msix_enabled;
  m_msix_enabled = control & 0x8000;
  m_msix_function_masked = control & 0x4000;
  // A function using MSI-X must not use INTx (PCI 3.0 6.8.2): drop a line still up from before.
  if (m_msix_enabled && !was_enabled) set_intx(false);
  msix_flush_pending_locked();
}

void PciTransport::msix_read(uint64_t offset, std::span<uint8_t> data) {
  std::lock_guard lock(m_msix_lock);
  for (size_t i = 0; i < data.size(); ++i) {
    const uint64_t at = offset + i;
    if (at >= kMsixTableOffset && at - kMsixTableOffset < m_msix_table.size()) {
      data[i] = m_msix_table[at - kMsixTableOffset];
    } else if (at >= kMsixPbaOffset && at - kMsixPbaOffset < 8 * m_msix_pending.size()) {
      const uint64_t byte = at - kMsixPbaOffset;
      data[i] = static_cast<uint8_t>(m_msix_pending[byte / 8] >> (8 * (byte % 8)));
    }
  }
}

void PciTransport::msix_write(uint64_t offset, std::span<const uint8_t> data) {
  std::lock_guard lock(m_msix_lock);
  bool unmasked = false;
  for (size_t i = 0; i < data.size(); ++i) {
    const uint64_t at = offset + i;
    // The PBA is read-only; anything outside the table is ignored.
    if (at < kMsixTableOffset || at - kMsixTableOffset >= m_msix_table.size()) continue;
    const uint64_t byte = at - kMsixTableOffset;
    if (byte % 16 < 12) {
      m_msix_table[byte] = data[i];
    } else if (byte % 16 == 12) {
      // Vector control: only the mask bit exists; the rest is reserved and reads as zero.
      unmasked |= (m_msix_table[byte] & 1) && !(data[i] & 1);
      m_msix_table[byte] = data[i] & 1;
    }
  }
  if (unmasked) msix_flush_pending_locked();
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
  } else if (offset >= kMsixTableOffset && m_msix_vectors) {
    msix_read(offset, data);
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
  } else if (offset >= kNotifyOffset && offset < kBarSize) {
    // queue_notify_off(q) = q, so the queue is the offset divided by the multiplier.
    m_core.notify(static_cast<uint16_t>((offset - kNotifyOffset) / kNotifyMultiplier));
  } else if (offset >= kMsixTableOffset && m_msix_vectors) {
    msix_write(offset, data);
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
      v = m_config_vector.load();  // stays NO_VECTOR without MSI-X
      break;
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
      v = m_core.queue_selected_valid() ? m_queue_vector[m_core.queue_select()].load() : kNoVector;
      break;
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
        reset_vectors();
        std::lock_guard isr(m_isr_lock);
        m_isr = 0;
        set_intx(false);
      }
      break;
    case 0x10:
      // A vector we cannot map reads back as NO_VECTOR (virtio 1.2 4.1.5.1.2): the driver checks.
      m_config_vector.store((value & 0xffff) < m_msix_vectors ? value & 0xffff : kNoVector);
      break;
    case 0x16:
      m_core.select_queue(static_cast<uint16_t>(value));
      break;
    case 0x1a:
      if (m_core.queue_selected_valid())
        m_queue_vector[m_core.queue_select()].store((value & 0xffff) < m_msix_vectors ? value & 0xffff
                                                                                      : kNoVector);
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
      break;  // read-only fields: ignored
  }
}

}  // namespace hw::virtio
