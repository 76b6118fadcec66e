// vhost-user-fs (QEMU's vhost-user-fs-pci): a virtio-fs device (virtio 1.2 section 5.11) whose
// queues are served by an external vhost-user backend, virtiofsd, through vhost_user::Frontend.
// vmlaunch keeps only the transport and config space (the tag and num_request_queues); the FUSE
// traffic goes straight between guest RAM (a shared memfd, see GuestMemory::set_shareable) and the
// backend: a kick writes the queue's kick eventfd, and a thread turns the call eventfds the backend
// signals into queue interrupts.
//
// Queues: 0 is hiprio, 1..num_request_queues carry requests. Everything is handed to the backend at
// DRIVER_OK and taken back (GET_VRING_BASE stops each ring) at reset. A backend failure (closed
// socket, malformed reply) breaks only this device: DEVICE_NEEDS_RESET, logged.
#pragma once

#include <array>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "base/result.h"
#include "hw/virtio/vhost_user.h"
#include "hw/virtio/virtio_device.h"

namespace hw::virtio {

constexpr uint16_t kIdFs = 26;
constexpr size_t kFsTagSize = 36;  // struct virtio_fs_config.tag (not NUL-terminated when full)

class VhostUserFsDevice : public VirtioDevice {
 public:
  // Performs the handshake on `socket` (owned from here on): SET_OWNER, GET_FEATURES and the
  // protocol features (MQ when offered), and checks the backend offers VIRTIO_F_VERSION_1.
  static base::ErrorOr<std::shared_ptr<VhostUserFsDevice>> connect(int socket, std::string tag,
                                                                   uint32_t request_queues = 1,
                                                                   uint32_t queue_size = 128);
  ~VhostUserFsDevice() override;

  std::string_view name() const override { return "vhost-user-fs"; }
  uint16_t device_id() const override { return kIdFs; }
  uint64_t features() const override { return m_features; }
  uint16_t num_queues() const override { return static_cast<uint16_t>(1 + m_request_queues); }
  uint32_t queue_max_size() const override { return m_queue_size; }
  void read_config(uint64_t offset, std::span<uint8_t> data) override;
  void activate(DeviceHost& host, uint64_t negotiated, std::vector<Queue*> queues) override;
  void notify(uint16_t q) override;
  void reset() override;

 private:
  VhostUserFsDevice(std::unique_ptr<vhost_user::Frontend> frontend, std::string tag, uint32_t request_queues,
                    uint32_t queue_size);
  base::ErrorOr<void> start(uint64_t negotiated, const std::vector<Queue*>& queues);
  void stop();
  void forward_calls();

  std::unique_ptr<vhost_user::Frontend> m_frontend;
  std::array<uint8_t, kFsTagSize + 4> m_config{};
  uint32_t m_request_queues;
  uint32_t m_queue_size;
  uint64_t m_features = 0;
  bool m_protocol_features = false;

  // While active (set up in activate, torn down in reset; both under the transport's lock).
  DeviceHost* m_host = nullptr;
  std::vector<int> m_kick;      // per queue; -1 when the driver did not enable it
  std::vector<int> m_call;      // per queue; -1 likewise
  std::vector<bool> m_started;  // handed to the backend (GET_VRING_BASE owed at reset)
  int m_stop = -1;              // eventfd that ends the call thread
  std::thread m_call_thread;
};

}  // namespace hw::virtio
