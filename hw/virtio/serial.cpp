#include "hw/virtio/serial.h"

#include <algorithm>
#include <cstring>

namespace hw::virtio {

namespace {
constexpr uint16_t kControlRx = 2, kControlTx = 3;
constexpr size_t kControlSize = 8;  // le32 id, le16 event, le16 value
constexpr size_t kMaxNameSize = 255;
}  // namespace

// One port: its chardev's receiver, and the port's state (guarded by the device's m_lock).
class SerialDevice::Port : public backends::CharReceiver {
 public:
  Port(SerialDevice& device, PortSpec spec) : m_device(device), spec(std::move(spec)) {}
  size_t can_receive() override { return m_device.can_receive(*this); }
  void receive(std::span<const uint8_t> data) override { m_device.receive(*this, data); }

  SerialDevice& m_device;
  PortSpec spec;
  bool guest_connected = false;
  std::optional<Chain> rx_chain;  // popped, partly filled receive buffer
  uint64_t rx_filled = 0;
};

SerialDevice::SerialDevice(std::vector<PortSpec> ports) {
  for (PortSpec& spec : ports) {
    if (spec.id >= kMaxPorts || find_port(spec.id)) continue;  // the graph never gives either
    m_max_ports = std::max(m_max_ports, spec.id + 1);
    m_ports.push_back(std::make_unique<Port>(*this, std::move(spec)));
  }
  for (auto& port : m_ports)
    if (port->spec.backend) port->spec.backend->attach(port.get());
}

SerialDevice::~SerialDevice() {
  for (auto& port : m_ports)
    if (port->spec.backend) port->spec.backend->attach(nullptr);
}

SerialDevice::Port* SerialDevice::find_port(uint32_t id) {
  for (auto& port : m_ports)
    if (port->spec.id == id) return port.get();
  return nullptr;
}

uint64_t SerialDevice::bad_control() const {
  std::lock_guard lock(m_lock);
  return m_bad_control;
}

bool SerialDevice::guest_connected(uint32_t id) {
  std::lock_guard lock(m_lock);
  Port* port = find_port(id);
  return port && port->guest_connected;
}

void SerialDevice::read_config(uint64_t offset, std::span<uint8_t> data) {
  // struct virtio_console_config { le16 cols; le16 rows; le32 max_nr_ports; le32 emerg_wr; }
  uint8_t config[12] = {};
  std::memcpy(config + 4, &m_max_ports, 4);
  for (size_t i = 0; i < data.size(); ++i) data[i] = offset + i < sizeof(config) ? config[offset + i] : 0;
}

// The transport resets the device before a driver activates it again, so what the guest negotiated
// (open ports, undelivered control messages) is kept here: it is what quiesce() left or a restore
// loaded.
void SerialDevice::activate(DeviceHost& host, uint64_t, std::vector<Queue*> queues) {
  std::lock_guard lock(m_lock);
  m_host = &host;
  m_queues = std::move(queues);
  m_queues.resize(num_queues(), nullptr);
  for (auto& port : m_ports) port->rx_chain.reset();
  flush_control_locked();
}

void SerialDevice::quiesce() {
  std::lock_guard lock(m_lock);
  for (auto& port : m_ports) {
    Queue* rx = m_queues.size() > rx_queue(port->spec.id) ? m_queues[rx_queue(port->spec.id)] : nullptr;
    if (rx && port->rx_chain) {  // taken by can_receive() and never filled: the guest gets it back
      std::lock_guard queue_lock(rx->lock);
      rx->ring.unpop();
    }
    port->rx_chain.reset();
  }
  m_host = nullptr;
  m_queues.clear();
}

void SerialDevice::save_state(hw::StateWriter& out) {
  std::lock_guard lock(m_lock);
  out.u32(static_cast<uint32_t>(m_ports.size()));
  for (auto& port : m_ports) {
    out.u32(port->spec.id);
    out.boolean(port->guest_connected);
  }
  out.u32(static_cast<uint32_t>(m_pending_control.size()));
  for (const auto& message : m_pending_control) out.bytes(message);
}

base::ErrorOr<void> SerialDevice::load_state(hw::StateReader& in, uint32_t version) {
  if (version != 1)
    return base::fail(base::Error("virtio-serial: saved state version " + std::to_string(version)));
  std::vector<bool> connected(m_ports.size());
  if (in.u32() != m_ports.size()) in.fail();
  for (size_t i = 0; i < m_ports.size() && in.ok(); ++i) {
    if (in.u32() != m_ports[i]->spec.id) in.fail();  // the same config builds the ports in order
    connected[i] = in.boolean();
  }
  std::deque<std::vector<uint8_t>> pending;
  const uint32_t count = in.u32();
  if (count > kMaxPendingControl) in.fail();
  for (uint32_t i = 0; i < count && in.ok(); ++i) {
    pending.push_back(in.bytes(kControlSize + kMaxNameSize + 1));
    if (pending.back().size() < kControlSize) in.fail();
  }
  TRY(in.finish("virtio-serial"));
  std::lock_guard lock(m_lock);
  for (size_t i = 0; i < m_ports.size(); ++i) m_ports[i]->guest_connected = connected[i];
  m_pending_control = std::move(pending);
  return {};
}

void SerialDevice::reset() {
  std::lock_guard lock(m_lock);
  m_host = nullptr;
  m_queues.clear();
  m_pending_control.clear();
  for (auto& port : m_ports) {
    port->guest_connected = false;
    port->rx_chain.reset();
  }
}

void SerialDevice::notify(uint16_t q) {
  std::lock_guard lock(m_lock);
  if (!m_host || q >= m_queues.size() || !m_queues[q]) return;
  if (q == kControlTx) {
    drain_queue(*m_host, *m_queues[q], q, [&](const Chain& chain) -> uint32_t {
      handle_control_locked(chain);
      return 0;
    });
    return;
  }
  if (q == kControlRx) {  // new receive buffers for what we still have to say
    flush_control_locked();
    return;
  }
  if (q % 2 == 0) return;  // a port's receiveq: the chardev thread asks again through can_receive()
  uint32_t id = q == 1 ? 0 : (q - 2) / 2;
  if (Port* port = find_port(id)) transmit_locked(*port);
}

void SerialDevice::transmit_locked(Port& port) {
  uint16_t q = tx_queue(port.spec.id);
  uint8_t bytes[4096];
  drain_queue(*m_host, *m_queues[q], q, [&](const Chain& chain) -> uint32_t {
    for (const Segment& s : chain.segments) {
      if (s.device_writable) break;
      // Copy first (the guest may rewrite its buffer while the backend writes), in bounded pieces.
      for (size_t done = 0; done < s.host.size(); done += sizeof(bytes)) {
        size_t n = std::min(sizeof(bytes), s.host.size() - done);
        std::memcpy(bytes, s.host.data() + done, n);
        if (port.spec.backend) port.spec.backend->write({bytes, n});
      }
    }
    return 0;
  });
}

void SerialDevice::handle_control_locked(const Chain& chain) {
  uint8_t message[kControlSize];
  if (chain.read(0, message) != kControlSize) {
    m_bad_control++;
    return;
  }
  uint32_t id;
  uint16_t event, value;
  std::memcpy(&id, message, 4);
  std::memcpy(&event, message + 4, 2);
  std::memcpy(&value, message + 6, 2);
  if (event == kDeviceReady) {
    if (value != 1) return;  // the driver failed to set itself up; nothing to announce
    for (auto& port : m_ports) send_control(port->spec.id, kDeviceAdd, 1);
    return;
  }
  Port* port = find_port(id);
  if (!port) {
    m_bad_control++;
    return;
  }
  switch (event) {
    case kPortReady:
      if (value != 1) return;  // the driver could not add the port
      if (port->spec.console) send_control(id, kConsolePort, 1);
      if (!port->spec.name.empty()) {
        std::string name = port->spec.name.substr(0, kMaxNameSize);
        name.push_back('\0');
        send_control(id, kPortName, 1, name);
      }
      send_control(id, kPortOpen, 1);  // the chardev side is always connected
      return;
    case kPortOpen:
      port->guest_connected = value != 0;
      return;
    default:
      m_bad_control++;  // events only the device sends, or unknown ones
      return;
  }
}

void SerialDevice::send_control(uint32_t id, uint16_t event, uint16_t value, std::string_view extra) {
  if (m_pending_control.size() >= kMaxPendingControl) {
    m_bad_control++;
    return;
  }
  std::vector<uint8_t> message(kControlSize + extra.size());
  std::memcpy(message.data(), &id, 4);
  std::memcpy(message.data() + 4, &event, 2);
  std::memcpy(message.data() + 6, &value, 2);
  std::memcpy(message.data() + kControlSize, extra.data(), extra.size());
  m_pending_control.push_back(std::move(message));
  flush_control_locked();
}

void SerialDevice::flush_control_locked() {
  Queue* rx = m_queues.size() > kControlRx ? m_queues[kControlRx] : nullptr;
  if (!rx || m_pending_control.empty()) return;
  bool notify = false;
  {
    std::lock_guard queue_lock(rx->lock);
    while (!m_pending_control.empty()) {
      auto next = rx->ring.pop();
      if (!next) {
        m_host->needs_reset(next.error().message);
        return;
      }
      if (!next->has_value()) break;
      const Chain& chain = **next;
      // A buffer too small for the message gets what fits (Linux offers a page).
      size_t written = chain.write(0, m_pending_control.front());
      m_pending_control.pop_front();
      rx->ring.push(chain.head, static_cast<uint32_t>(written));
    }
    notify = rx->ring.should_notify();
  }
  if (notify) m_host->interrupt_queue(kControlRx);
}

size_t SerialDevice::can_receive(Port& port) {
  std::lock_guard lock(m_lock);
  Queue* rx = m_queues.size() > rx_queue(port.spec.id) ? m_queues[rx_queue(port.spec.id)] : nullptr;
  if (!m_host || !rx || !port.guest_connected) return 0;
  if (!port.rx_chain) {
    std::lock_guard queue_lock(rx->lock);
    auto next = rx->ring.pop();
    if (!next) {
      m_host->needs_reset(next.error().message);
      return 0;
    }
    if (!next->has_value()) return 0;
    port.rx_chain = std::move(**next);
    port.rx_filled = 0;
  }
  return static_cast<size_t>(port.rx_chain->writable - port.rx_filled);
}

void SerialDevice::receive(Port& port, std::span<const uint8_t> data) {
  std::lock_guard lock(m_lock);
  Queue* rx = m_queues.size() > rx_queue(port.spec.id) ? m_queues[rx_queue(port.spec.id)] : nullptr;
  if (!m_host || !rx || !port.rx_chain) return;  // reset raced with delivery: the bytes are lost
  port.rx_filled += port.rx_chain->write(port.rx_filled, data);
  bool notify;
  {
    std::lock_guard queue_lock(rx->lock);
    // Hand the buffer back right away: ports carry interactive traffic as often as bulk.
    rx->ring.push(port.rx_chain->head, static_cast<uint32_t>(port.rx_filled));
    notify = rx->ring.should_notify();
  }
  port.rx_chain.reset();
  if (notify) m_host->interrupt_queue(rx_queue(port.spec.id));
}

}  // namespace hw::virtio
