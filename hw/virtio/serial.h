// virtio-serial: virtio-console (virtio 1.2 section 5.3) with VIRTIO_CONSOLE_F_MULTIPORT, the
// device behind virtconsole and virtserialport. Port n's receiveq/transmitq are queues 0/1 for
// n = 0 and 2n+2/2n+3 otherwise; queues 2/3 carry control messages (struct virtio_console_control:
// le32 id, le16 event, le16 value).
//
// Port life cycle, as QEMU and Linux run it: the driver sends DEVICE_READY; we announce each port
// with DEVICE_ADD; the driver answers PORT_READY; we then send CONSOLE_PORT (virtconsole), PORT_NAME
// (when named: /sys/class/virtio-ports/vportXpY/name) and PORT_OPEN 1 (our chardev side is always
// there). The guest sends PORT_OPEN 1/0 when a program opens/closes the port; host bytes are held
// back in the chardev (can_receive() = 0) while the guest side is closed, since Linux drops data
// that arrives for a closed port.
//
// Control messages are guest input: ids of ports we do not have and short or unknown messages are
// ignored and counted. Our own control messages wait in a bounded queue until the driver offers
// receive buffers.
#pragma once

#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "backends/chardev.h"
#include "hw/virtio/virtio_device.h"

namespace hw::virtio {

class SerialDevice : public VirtioDevice {
 public:
  static constexpr uint64_t kFeatureMultiport = 1ull << 1;
  // Control events (section 5.3.6.2).
  static constexpr uint16_t kDeviceReady = 0, kDeviceAdd = 1, kDeviceRemove = 2, kPortReady = 3,
                            kConsolePort = 4, kResize = 5, kPortOpen = 6, kPortName = 7;
  static constexpr uint32_t kMaxPorts = 31;  // QEMU's default max_ports; the bus has slots 0-30
  // Our control messages waiting for receive buffers (a driver that offers none gets no more).
  static constexpr size_t kMaxPendingControl = 4 * kMaxPorts + 16;

  struct PortSpec {
    uint32_t id = 0;   // < kMaxPorts
    std::string name;  // empty: no PORT_NAME
    bool console = false;
    std::shared_ptr<backends::CharBackend> backend;
  };

  explicit SerialDevice(std::vector<PortSpec> ports);
  ~SerialDevice() override;

  std::string_view name() const override { return "virtio-serial"; }
  uint16_t device_id() const override { return kIdConsole; }
  uint64_t features() const override {
    return kFeatureVersion1 | kFeatureIndirectDesc | kFeatureEventIdx | kFeatureMultiport;
  }
  uint16_t num_queues() const override { return static_cast<uint16_t>(2 * (m_max_ports + 1)); }
  void read_config(uint64_t offset, std::span<uint8_t> data) override;
  void activate(DeviceHost& host, uint64_t negotiated, std::vector<Queue*> queues) override;
  void notify(uint16_t q) override;
  void reset() override;

  // Snapshot: which ports the guest has open and the control messages not yet delivered; a
  // receive buffer taken but not filled goes back to its ring. Everything else the guest set up
  // (DEVICE_READY, PORT_READY) lives in the guest driver, which restores with RAM.
  std::optional<uint32_t> state_version() const override { return 1; }
  void quiesce() override;
  void save_state(hw::StateWriter& out) override;
  base::ErrorOr<void> load_state(hw::StateReader& in, uint32_t version) override;

  uint32_t max_ports() const { return m_max_ports; }
  uint64_t bad_control() const;
  // Whether the guest has port `id` open (tests).
  bool guest_connected(uint32_t id);

 private:
  class Port;
  static uint16_t rx_queue(uint32_t port) { return static_cast<uint16_t>(port == 0 ? 0 : 2 * port + 2); }
  static uint16_t tx_queue(uint32_t port) { return static_cast<uint16_t>(rx_queue(port) + 1); }
  Port* find_port(uint32_t id);
  void send_control(uint32_t id, uint16_t event, uint16_t value, std::string_view extra = {});
  void flush_control_locked();
  void handle_control_locked(const Chain& chain);
  void transmit_locked(Port& port);
  size_t can_receive(Port& port);
  void receive(Port& port, std::span<const uint8_t> data);

  std::vector<std::unique_ptr<Port>> m_ports;
  uint32_t m_max_ports = 1;

  mutable std::mutex m_lock;  // everything below, against the vCPU and chardev threads
  DeviceHost* m_host = nullptr;
  std::vector<Queue*> m_queues;
  std::deque<std::vector<uint8_t>> m_pending_control;
  uint64_t m_bad_control = 0;
};

}  // namespace hw::virtio
