// virtio-scsi (virtio 1.2 section 5.6): a SCSI host adapter whose targets are hw::scsi::Disk
// (scsi-hd, scsi-cd), one LUN (0) each. Queues: controlq 0 (task management, async notification
// queries), eventq 1 (unused: no hot-plug), requestq 2.. (commands).
//
// Commands run on the device's own I/O thread, never on the vCPU that kicked the queue. The LUN
// field (flat addressing: 1, target, 0x40 | lun >> 8, lun & 0xff) is guest input: a request for a
// target we do not have answers BAD_TARGET, for a LUN other than 0 INCORRECT_LUN. Requests whose
// headers do not fit their buffers are counted and completed without touching anything else;
// only ring-level violations set DEVICE_NEEDS_RESET.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "hw/virtio/kick_workers.h"
#include "hw/virtio/scsi_disk.h"
#include "hw/virtio/virtio_device.h"

namespace hw::virtio {

class ScsiDevice : public VirtioDevice {
 public:
  // Response codes (section 5.6.6.1).
  static constexpr uint8_t kOk = 0, kOverrun = 1, kBadTarget = 3, kFailure = 9, kIncorrectLun = 12;
  static constexpr uint8_t kFunctionComplete = 0;
  static constexpr uint32_t kDefaultCdbSize = 32, kDefaultSenseSize = 96;
  // What the driver may write into cdb_size and sense_size (the request layout depends on them).
  static constexpr uint32_t kMaxCdbSize = 256, kMaxSenseSize = 256;

  struct Options {
    uint16_t request_queues = 1;
    uint32_t queue_size = 256;
  };

  // A target's logical units: LUN -> disk.
  using Target = std::map<uint16_t, std::shared_ptr<hw::scsi::Disk>>;
  // `targets`: target id (0-255) -> its logical units (0-255; LUN 0 need not be one of them).
  ScsiDevice(std::map<uint16_t, Target> targets, Options options);
  ~ScsiDevice() override;

  std::string_view name() const override { return "virtio-scsi"; }
  uint16_t device_id() const override { return kIdScsi; }
  uint64_t features() const override { return kFeatureVersion1 | kFeatureIndirectDesc | kFeatureEventIdx; }
  uint16_t num_queues() const override { return static_cast<uint16_t>(2 + m_options.request_queues); }
  uint32_t queue_max_size() const override { return m_options.queue_size; }
  void read_config(uint64_t offset, std::span<uint8_t> data) override;
  void write_config(uint64_t offset, std::span<const uint8_t> data) override;
  void activate(DeviceHost& host, uint64_t negotiated, std::vector<Queue*> queues) override;
  void notify(uint16_t q) override;
  void reset() override;
  // Snapshot: the CDB and sense sizes the driver wrote (the targets are the graph's, the disks
  // stateless). Quiescing finishes the command in flight and keeps those sizes (reset() does not).
  std::optional<uint32_t> state_version() const override { return 1; }
  void quiesce() override;
  void save_state(hw::StateWriter& out) override;
  base::ErrorOr<void> load_state(hw::StateReader& in, uint32_t version) override;

  uint64_t bad_requests() const { return m_bad_requests.load(); }
  std::vector<std::pair<std::string, uint64_t>> counters() const override {
    return {{"bad_requests", bad_requests()}};
  }

 private:
  // The I/O thread's turn (KickWorkers): drains the request queues.
  void service_queues();
  uint32_t execute(const Chain& chain);
  uint32_t control(const Chain& chain);

  std::map<uint16_t, Target> m_targets;
  Options m_options;
  uint16_t m_max_target = 0;
  uint16_t m_max_lun = 0;
  std::atomic<uint32_t> m_cdb_size{kDefaultCdbSize};
  std::atomic<uint32_t> m_sense_size{kDefaultSenseSize};

  std::mutex m_lock;
  DeviceHost* m_host = nullptr;
  std::vector<Queue*> m_queues;
  std::atomic<uint64_t> m_bad_requests{0};
  KickWorkers m_worker;  // last: destroyed (its thread joined) before what it uses
};

}  // namespace hw::virtio
