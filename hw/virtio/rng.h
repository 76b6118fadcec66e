// virtio-rng (virtio 1.2 section 5.4): one request queue; every device-writable byte the driver
// offers is filled from the injected RngBackend.
#pragma once

#include <atomic>
#include <memory>

#include "backends/rng.h"
#include "hw/virtio/virtio_device.h"

namespace hw::virtio {

class RngDevice : public VirtioDevice {
 public:
  explicit RngDevice(std::shared_ptr<backends::RngBackend> backend) : m_backend(std::move(backend)) {}
  std::string_view name() const override { return "virtio-rng"; }
  uint16_t device_id() const override { return kIdRng; }
  uint64_t features() const override { return kFeatureVersion1 | kFeatureIndirectDesc | kFeatureEventIdx; }
  uint16_t num_queues() const override { return 1; }
  void read_config(uint64_t, std::span<uint8_t>) override {}
  void activate(DeviceHost& host, uint64_t negotiated, std::vector<Queue*> queues) override;
  void notify(uint16_t q) override;
  void reset() override;
  // Snapshot: nothing beyond the queue. (A restored copy reads fresh host entropy from here on.)
  std::optional<uint32_t> state_version() const override { return 1; }

  uint64_t backend_errors() const { return m_errors.load(); }
  std::vector<std::pair<std::string, uint64_t>> counters() const override {
    return {{"backend_errors", backend_errors()}};
  }

 private:
  std::shared_ptr<backends::RngBackend> m_backend;
  DeviceHost* m_host = nullptr;
  Queue* m_queue = nullptr;
  std::atomic<uint64_t> m_errors{0};
};

}  // namespace hw::virtio
