#include "hw/virtio/net.h"

#include <cstring>

namespace hw::virtio {

std::optional<MacAddress> parse_mac(std::string_view text) {
  MacAddress mac{};
  if (text.size() != 17) return std::nullopt;
  for (size_t i = 0; i < 6; ++i) {
    if (i > 0 && text[i * 3 - 1] != ':') return std::nullopt;
    unsigned value = 0;
    for (size_t j = 0; j < 2; ++j) {
      char c = text[i * 3 + j];
      unsigned digit = c >= '0' && c <= '9'   ? c - '0'
                       : c >= 'a' && c <= 'f' ? c - 'a' + 10
                       : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                              : 16;
      if (digit > 15) return std::nullopt;
      value = value * 16 + digit;
    }
    mac[i] = static_cast<uint8_t>(value);
  }
  return mac;
}

MacAddress stable_mac(std::string_view key) {
  // FNV-1a: tiny, stable across builds and hosts (std::hash is neither guaranteed).
  uint64_t hash = 0xcbf29ce484222325ull;
  for (char c : key) hash = (hash ^ static_cast<uint8_t>(c)) * 0x100000001b3ull;
  // 52:54:00 is the prefix QEMU guests and tools already expect for virtual NICs.
  return {0x52,
          0x54,
          0x00,
          static_cast<uint8_t>(hash >> 16),
          static_cast<uint8_t>(hash >> 8),
          static_cast<uint8_t>(hash)};
}

NetDevice::NetDevice(std::shared_ptr<backends::NetBackend> backend, MacAddress mac, uint32_t queue_size)
    : m_backend(std::move(backend)), m_mac(mac), m_queue_size(queue_size) {
  m_backend->attach(this);
}

NetDevice::~NetDevice() {
  m_backend->attach(nullptr);
}

void NetDevice::read_config(uint64_t offset, std::span<uint8_t> data) {
  // struct virtio_net_config { u8 mac[6]; le16 status; le16 max_virtqueue_pairs; le16 mtu; }
  uint8_t config[12] = {};
  std::memcpy(config, m_mac.data(), 6);
  config[6] = 1;  // VIRTIO_NET_S_LINK_UP
  config[8] = 1;  // one queue pair
  config[10] = 1500 & 0xff;
  config[11] = 1500 >> 8;
  for (size_t i = 0; i < data.size(); ++i) data[i] = offset + i < sizeof(config) ? config[offset + i] : 0;
}

void NetDevice::activate(DeviceHost& host, uint64_t, std::vector<Queue*> queues) {
  std::scoped_lock lock(m_rx_lock, m_tx_lock);
  m_host = &host;
  m_rx = queues.size() > 0 ? queues[0] : nullptr;
  m_tx = queues.size() > 1 ? queues[1] : nullptr;
}

void NetDevice::reset() {
  std::scoped_lock lock(m_rx_lock, m_tx_lock);
  m_host = nullptr;
  m_rx = m_tx = nullptr;
}

void NetDevice::notify(uint16_t q) {
  // RX kicks mean "buffers posted": the backend retries its queued frames on its own schedule.
  if (q != 1) return;
  std::lock_guard lock(m_tx_lock);
  if (!m_tx) return;
  drain_queue(*m_host, *m_tx, 1, [&](const Chain& chain) -> uint32_t {
    if (chain.readable < kHeaderSize || chain.readable - kHeaderSize > kMaxFrame) {
      m_dropped_tx++;
      return 0;
    }
    m_tx_frame.resize(chain.readable - kHeaderSize);
    chain.read(kHeaderSize, m_tx_frame);
    m_backend->send_frame(m_tx_frame);
    return 0;
  });
}

void NetDevice::save_state(hw::StateWriter& out) {
  out.bytes(m_backend->save_state());
}

base::ErrorOr<void> NetDevice::load_state(hw::StateReader& in, uint32_t version) {
  if (version != 1)
    return base::fail(base::Error("virtio-net: saved state version " + std::to_string(version)));
  std::vector<uint8_t> backend = in.bytes(1 << 19);
  TRY(in.finish("virtio-net"));
  auto loaded = m_backend->load_state(backend);
  if (!loaded.ok()) return base::fail(loaded.error().with_context("virtio-net backend"));
  return {};
}

bool NetDevice::receive_frame(std::span<const uint8_t> frame) {
  std::lock_guard lock(m_rx_lock);
  if (!m_rx) return false;
  bool notify = false;
  {
    std::lock_guard queue_lock(m_rx->lock);
    // Without MRG_RXBUF every buffer the driver posts can take a whole frame; one that cannot is
    // a driver bug we answer by dropping the frame (the buffer goes back empty).
    auto next = m_rx->ring.pop();
    if (!next) {
      m_host->needs_reset(next.error().message);
      return true;
    }
    if (!next->has_value()) return false;
    const Chain& chain = **next;
    uint32_t written = 0;
    if (chain.writable >= kHeaderSize + frame.size()) {
      uint8_t header[kHeaderSize] = {};
      header[10] = 1;  // num_buffers
      chain.write(0, header);
      chain.write(kHeaderSize, frame);
      written = static_cast<uint32_t>(kHeaderSize + frame.size());
    } else {
      m_dropped_rx++;
    }
    m_rx->ring.push(chain.head, written);
    notify = m_rx->ring.should_notify();
  }
  if (notify) m_host->interrupt_queue(0);
  return true;
}

}  // namespace hw::virtio
