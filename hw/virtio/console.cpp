#include "hw/virtio/console.h"

#include <cstring>
#include <vector>

namespace hw::virtio {

ConsoleDevice::ConsoleDevice(std::shared_ptr<backends::CharBackend> backend) : m_backend(std::move(backend)) {
  m_backend->attach(this);
}

ConsoleDevice::~ConsoleDevice() {
  m_backend->attach(nullptr);
}

void ConsoleDevice::read_config(uint64_t offset, std::span<uint8_t> data) {
  // struct virtio_console_config { le16 cols; le16 rows; le32 max_nr_ports; le32 emerg_wr; }
  uint8_t config[12] = {80, 0, 25, 0, 1, 0, 0, 0, 0, 0, 0, 0};
  for (size_t i = 0; i < data.size(); ++i) data[i] = offset + i < sizeof(config) ? config[offset + i] : 0;
}

void ConsoleDevice::write_config(uint64_t offset, std::span<const uint8_t> data) {
  if (offset == 8 && !data.empty()) m_backend->write(data.first(1));  // emerg_wr: one character
}

void ConsoleDevice::activate(DeviceHost& host, uint64_t, std::vector<Queue*> queues) {
  std::lock_guard lock(m_lock);
  m_host = &host;
  m_rx = queues.size() > 0 ? queues[0] : nullptr;
  m_tx = queues.size() > 1 ? queues[1] : nullptr;
  m_rx_chain.reset();
  m_rx_filled = 0;
}

void ConsoleDevice::reset() {
  std::lock_guard lock(m_lock);
  m_host = nullptr;
  m_rx = m_tx = nullptr;
  m_rx_chain.reset();
}

void ConsoleDevice::quiesce() {
  std::lock_guard lock(m_lock);
  if (m_rx && m_rx_chain) {
    std::lock_guard queue_lock(m_rx->lock);
    m_rx->ring.unpop();
  }
  m_host = nullptr;
  m_rx = m_tx = nullptr;
  m_rx_chain.reset();
}

void ConsoleDevice::notify(uint16_t q) {
  std::lock_guard lock(m_lock);
  if (q != 1 || !m_tx) return;
  uint8_t bytes[4096];
  drain_queue(*m_host, *m_tx, 1, [&](const Chain& chain) -> uint32_t {
    for (const Segment& s : chain.segments) {
      if (s.device_writable) break;
      // Copy first (the guest may rewrite its buffer while the backend writes), in bounded pieces
      // so a huge descriptor costs no host memory.
      for (size_t done = 0; done < s.host.size(); done += sizeof(bytes)) {
        size_t n = std::min(sizeof(bytes), s.host.size() - done);
        std::memcpy(bytes, s.host.data() + done, n);
        m_backend->write({bytes, n});
      }
    }
    return 0;
  });
}

size_t ConsoleDevice::can_receive() {
  std::lock_guard lock(m_lock);
  if (!m_rx) return 0;
  if (!m_rx_chain) {
    std::lock_guard queue_lock(m_rx->lock);
    auto next = m_rx->ring.pop();
    if (!next) {
      m_host->needs_reset(next.error().message);
      return 0;
    }
    if (!next->has_value()) return 0;
    m_rx_chain = std::move(**next);
    m_rx_filled = 0;
  }
  return static_cast<size_t>(m_rx_chain->writable - m_rx_filled);
}

void ConsoleDevice::receive(std::span<const uint8_t> data) {
  std::lock_guard lock(m_lock);
  if (!m_rx || !m_rx_chain) return;  // reset raced with delivery: the bytes are lost
  m_rx_filled += m_rx_chain->write(m_rx_filled, data);
  bool notify;
  {
    std::lock_guard queue_lock(m_rx->lock);
    // Hand the buffer back right away: console input is interactive, not bulk.
    m_rx->ring.push(m_rx_chain->head, static_cast<uint32_t>(m_rx_filled));
    notify = m_rx->ring.should_notify();
  }
  m_rx_chain.reset();
  if (notify) m_host->interrupt_queue(0);
}

}  // namespace hw::virtio
