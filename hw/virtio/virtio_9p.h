// virtio-9p (the virtio 9P transport, QEMU's virtio-9p-pci): one request queue carrying 9P2000.L
// messages between the guest's v9fs and an FsBackend, and the mount tag in config space (the name
// the guest mounts: `mount -t 9p -o trans=virtio TAG /mnt`).
//
// Each chain is one request (device-readable) and room for its reply (device-writable). Requests
// are served in order on the kicking vCPU thread: the server answers from the host's page cache and
// 9P has no request the device must keep pending (a flushed request has already completed).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "backends/fs.h"
#include "hw/virtio/virtio_device.h"

namespace hw::virtio {

constexpr uint16_t kId9p = 9;
constexpr uint64_t kFeature9pMountTag = 1ull << 0;
// The tag's length limit: QEMU's MAX_TAG_LEN, what Linux's client reads.
constexpr size_t kMax9pTag = 255;

class P9Device : public VirtioDevice {
 public:
  P9Device(std::shared_ptr<backends::FsBackend> backend, std::string tag, uint32_t queue_size = 128);
  std::string_view name() const override { return "virtio-9p"; }
  uint16_t device_id() const override { return kId9p; }
  uint64_t features() const override {
    return kFeatureVersion1 | kFeatureIndirectDesc | kFeatureEventIdx | kFeature9pMountTag;
  }
  uint16_t num_queues() const override { return 1; }
  uint32_t queue_max_size() const override { return m_queue_size; }
  void read_config(uint64_t offset, std::span<uint8_t> data) override;
  void activate(DeviceHost& host, uint64_t negotiated, std::vector<Queue*> queues) override;
  void notify(uint16_t q) override;
  void reset() override;
  // Snapshot: the 9P session (msize and fids) from the backend. Requests run on the kicking vCPU,
  // so none is in flight once the vCPUs are parked; quiescing keeps the session (reset() ends it).
  std::optional<uint32_t> state_version() const override { return 1; }
  std::optional<std::string> cannot_save() const override { return m_backend->cannot_save(); }
  void quiesce() override;
  void save_state(hw::StateWriter& out) override;
  base::ErrorOr<void> load_state(hw::StateReader& in, uint32_t version) override;

 private:
  std::shared_ptr<backends::FsBackend> m_backend;
  std::vector<uint8_t> m_config;  // le16 tag_len, tag
  uint32_t m_queue_size;
  DeviceHost* m_host = nullptr;
  Queue* m_queue = nullptr;
  // Reused per request (only the queue's lock holder touches them).
  std::vector<uint8_t> m_request;
  std::vector<uint8_t> m_reply;
};

}  // namespace hw::virtio
