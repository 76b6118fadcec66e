// virtio-console (virtio 1.2 section 5.3), single port without MULTIPORT: receiveq 0 carries
// host -> guest bytes from the chardev, transmitq 1 guest -> host. EMERG_WRITE is offered so early
// boot code can print through the config space.
//
// Input: the device is the chardev's CharReceiver. can_receive() is the room in the receive
// buffers the driver has offered; received bytes are handed back to the driver at once.
#pragma once

#include <memory>
#include <mutex>
#include <optional>

#include "backends/chardev.h"
#include "hw/virtio/virtio_device.h"

namespace hw::virtio {

class ConsoleDevice : public VirtioDevice, public backends::CharReceiver {
 public:
  static constexpr uint64_t kFeatureEmergWrite = 1ull << 2;

  explicit ConsoleDevice(std::shared_ptr<backends::CharBackend> backend);
  ~ConsoleDevice() override;

  std::string_view name() const override { return "virtio-console"; }
  uint16_t device_id() const override { return kIdConsole; }
  uint64_t features() const override {
    return kFeatureVersion1 | kFeatureIndirectDesc | kFeatureEventIdx | kFeatureEmergWrite;
  }
  uint16_t num_queues() const override { return 2; }
  void read_config(uint64_t offset, std::span<uint8_t> data) override;
  void write_config(uint64_t offset, std::span<const uint8_t> data) override;
  void activate(DeviceHost& host, uint64_t negotiated, std::vector<Queue*> queues) override;
  void notify(uint16_t q) override;
  void reset() override;
  // Snapshot: nothing beyond the queues (the config is fixed). A receive buffer taken from the ring
  // but not filled yet goes back to it (Virtqueue::unpop), so it is offered again after the restore.
  std::optional<uint32_t> state_version() const override { return 1; }
  void quiesce() override;

  // CharReceiver (the chardev's thread).
  size_t can_receive() override;
  void receive(std::span<const uint8_t> data) override;

 private:
  std::shared_ptr<backends::CharBackend> m_backend;
  std::mutex m_lock;  // guards the fields below against the chardev thread
  DeviceHost* m_host = nullptr;
  Queue* m_rx = nullptr;
  Queue* m_tx = nullptr;
  std::optional<Chain> m_rx_chain;  // popped, partly filled receive buffer
  uint64_t m_rx_filled = 0;
};

}  // namespace hw::virtio
