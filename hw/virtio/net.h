// virtio-net (virtio 1.2 section 5.1), one RX/TX queue pair, no offloads: receiveq 0 gets frames
// from the NetBackend, transmitq 1 sends the guest's frames. Every buffer starts with the 12-byte
// virtio_net_hdr (VERSION_1 layout), which we write as "no offload, one buffer".
#pragma once

#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "backends/net.h"
#include "hw/virtio/virtio_device.h"

namespace hw::virtio {

using MacAddress = std::array<uint8_t, 6>;

// "52:54:00:12:34:56" -> bytes; nullopt if malformed.
std::optional<MacAddress> parse_mac(std::string_view text);
// A locally administered unicast MAC derived from a stable key (machine name + device id): the
// same machine file gives the guest the same MAC on every run, different machines differ.
MacAddress stable_mac(std::string_view key);

class NetDevice : public VirtioDevice, public backends::NetReceiver {
 public:
  static constexpr uint64_t kFeatureMac = 1ull << 5;
  static constexpr uint64_t kFeatureStatus = 1ull << 16;
  static constexpr size_t kHeaderSize = 12;
  static constexpr size_t kMaxFrame = 65535 + 14;

  NetDevice(std::shared_ptr<backends::NetBackend> backend, MacAddress mac, uint32_t queue_size = 256);
  ~NetDevice() override;

  std::string_view name() const override { return "virtio-net"; }
  uint16_t device_id() const override { return kIdNet; }
  uint64_t features() const override {
    return kFeatureVersion1 | kFeatureIndirectDesc | kFeatureEventIdx | kFeatureMac | kFeatureStatus;
  }
  uint16_t num_queues() const override { return 2; }
  uint32_t queue_max_size() const override { return m_queue_size; }
  void read_config(uint64_t offset, std::span<uint8_t> data) override;
  void activate(DeviceHost& host, uint64_t negotiated, std::vector<Queue*> queues) override;
  void notify(uint16_t q) override;
  void reset() override;
  // Snapshot: the backend's state (NetBackend::save_state); the device itself has nothing beyond
  // its queues (the MAC comes from the config). RX and TX complete under their locks, so nothing is
  // in flight once quiesced.
  std::optional<uint32_t> state_version() const override { return 1; }
  void save_state(hw::StateWriter& out) override;
  base::ErrorOr<void> load_state(hw::StateReader& in, uint32_t version) override;

  // NetReceiver (the backend's thread): false when the guest has no receive buffer posted.
  bool receive_frame(std::span<const uint8_t> frame) override;

  const MacAddress& mac() const { return m_mac; }
  uint64_t dropped_rx() const { return m_dropped_rx.load(); }
  uint64_t dropped_tx() const { return m_dropped_tx.load(); }
  std::vector<std::pair<std::string, uint64_t>> counters() const override {
    return {{"dropped_rx_frames", dropped_rx()}, {"dropped_tx_frames", dropped_tx()}};
  }

 private:
  std::shared_ptr<backends::NetBackend> m_backend;
  MacAddress m_mac;
  uint32_t m_queue_size;
  std::mutex m_rx_lock;  // RX and TX run on different threads; each has its own lock
  std::mutex m_tx_lock;
  DeviceHost* m_host = nullptr;
  Queue* m_rx = nullptr;
  Queue* m_tx = nullptr;
  std::vector<uint8_t> m_tx_frame;
  std::atomic<uint64_t> m_dropped_rx{0};
  std::atomic<uint64_t> m_dropped_tx{0};
};

}  // namespace hw::virtio
