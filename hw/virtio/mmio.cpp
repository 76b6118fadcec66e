#include "hw/virtio/mmio.h"

#include <algorithm>
#include <cstring>

namespace hw::virtio {

namespace {
constexpr uint64_t kConfigOffset = 0x100;
}

MmioTransport::MmioTransport(std::string name, std::shared_ptr<VirtioDevice> device,
                             const base::GuestMemory& memory, std::shared_ptr<hw::IrqLine> irq,
                             TransportCore::Log log)
    : m_name(std::move(name)), m_core(std::move(device), memory, std::move(log)), m_irq(std::move(irq)) {
  m_core.set_signals({[this](uint16_t) { raise(kIsrUsed); }, [this] { raise(kIsrConfig); }});
}

void MmioTransport::raise(uint32_t bits) {
  std::lock_guard lock(m_irq_lock);
  m_isr.fetch_or(bits);
  set_level(true);
}

void MmioTransport::read(uint64_t offset, std::span<uint8_t> data) {
  std::memset(data.data(), 0, data.size());
  if (offset >= kConfigOffset) {
    std::lock_guard lock(m_core.lock());
    m_core.device().read_config(offset - kConfigOffset, data);
    return;
  }
  // Registers are 32 bits wide and must be accessed as such (spec 4.2.2.2); anything else reads 0.
  if (data.size() != 4 || offset % 4) return;
  uint32_t value = read_register(offset);
  std::memcpy(data.data(), &value, 4);
}

void MmioTransport::write(uint64_t offset, std::span<const uint8_t> data) {
  if (offset >= kConfigOffset) {
    std::lock_guard lock(m_core.lock());
    m_core.device().write_config(offset - kConfigOffset, data);
    return;
  }
  if (data.size() != 4 || offset % 4) return;
  uint32_t value;
  std::memcpy(&value, data.data(), 4);
  if (offset == 0x050) {
    // QueueNotify takes the core lock itself and must not hold it across the device's work.
    m_core.notify(static_cast<uint16_t>(value));
    return;
  }
  write_register(offset, value);
}

uint32_t MmioTransport::read_register(uint64_t offset) {
  std::lock_guard lock(m_core.lock());
  switch (offset) {
    case 0x000:
      return kMagic;
    case 0x004:
      return 2;
    case 0x008:
      return m_core.device().device_id();
    case 0x00c:
      return kVendor;
    case 0x010:
      return m_core.device_features_word(m_device_features_select);
    case 0x034:
      return m_core.queue_max_size();
    case 0x044:
      return m_core.queue().ready ? 1 : 0;
    case 0x060:
      return m_isr.load();
    case 0x070:
      return m_core.status();
    case 0x0fc:
      return m_core.config_generation();
    default:
      return 0;
  }
}

void MmioTransport::write_register(uint64_t offset, uint32_t value) {
  if (offset == 0x064) {  // InterruptACK
    std::lock_guard lock(m_irq_lock);
    uint32_t left = m_isr.fetch_and(~value) & ~value;
    if (left == 0) set_level(false);
    return;
  }
  std::lock_guard lock(m_core.lock());
  switch (offset) {
    case 0x014:
      m_device_features_select = value;
      break;
    case 0x020:
      m_core.write_driver_features_word(m_driver_features_select, value);
      break;
    case 0x024:
      m_driver_features_select = value;
      break;
    case 0x030:
      m_core.select_queue(static_cast<uint16_t>(std::min<uint32_t>(value, 0xffff)));
      break;
    case 0x038:
      m_core.write_queue_size(value);
      break;
    case 0x044:
      m_core.write_queue_ready(value & 1);
      break;
    case 0x070:
      m_core.write_status(static_cast<uint8_t>(value));
      if (value == 0) {
        std::lock_guard irq_lock(m_irq_lock);
        m_isr.store(0);
        set_level(false);
      }
      break;
    case 0x080:
      m_core.write_queue_desc(value, false);
      break;
    case 0x084:
      m_core.write_queue_desc(value, true);
      break;
    case 0x090:
      m_core.write_queue_driver(value, false);
      break;
    case 0x094:
      m_core.write_queue_driver(value, true);
      break;
    case 0x0a0:
      m_core.write_queue_device(value, false);
      break;
    case 0x0a4:
      m_core.write_queue_device(value, true);
      break;
    default:
      break;  // read-only or unknown: ignored
  }
}

}  // namespace hw::virtio
