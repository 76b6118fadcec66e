// virtio-blk (virtio 1.2 section 5.2): read, write, flush, get-id, discard and write-zeroes on an
// injected BlockBackend. Requests run on the device's own I/O threads, never on the vCPU that
// kicked the queue; completions may come back out of order (the spec allows it).
//
// Malformed requests (short header, no status byte, out-of-range sectors, writes to a read-only
// disk) complete with VIRTIO_BLK_S_IOERR / UNSUPP and are counted; they do not break the device.
// Only ring-level violations (QueueFault) set DEVICE_NEEDS_RESET.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "backends/block.h"
#include "hw/virtio/kick_workers.h"
#include "hw/virtio/virtio_device.h"

namespace hw::virtio {

class BlkDevice : public VirtioDevice {
 public:
  static constexpr uint64_t kFeatureSizeMax = 1ull << 1;
  static constexpr uint64_t kFeatureSegMax = 1ull << 2;
  static constexpr uint64_t kFeatureRo = 1ull << 5;
  static constexpr uint64_t kFeatureBlkSize = 1ull << 6;
  static constexpr uint64_t kFeatureFlush = 1ull << 9;
  static constexpr uint64_t kFeatureMq = 1ull << 12;
  static constexpr uint64_t kFeatureDiscard = 1ull << 13;
  static constexpr uint64_t kFeatureWriteZeroes = 1ull << 14;

  static constexpr uint32_t kTypeIn = 0, kTypeOut = 1, kTypeFlush = 4, kTypeGetId = 8, kTypeDiscard = 11,
                            kTypeWriteZeroes = 13;
  static constexpr uint8_t kStatusOk = 0, kStatusIoErr = 1, kStatusUnsupp = 2;
  static constexpr uint32_t kMaxDiscardSegments = 16;

  struct Options {
    std::string serial;      // up to 20 bytes are visible to the guest
    bool read_only = false;  // in addition to the backend's own read_only()
    uint32_t queue_size = 256;
    uint16_t num_queues = 1;
    unsigned io_threads = 1;  // per device; each pops from every queue
    bool io_uring = true;     // io_uring when the backend has a direct_fd() and the kernel allows it
  };

  BlkDevice(std::shared_ptr<backends::BlockBackend> backend, Options options);
  ~BlkDevice() override;

  std::string_view name() const override { return "virtio-blk"; }
  uint16_t device_id() const override { return kIdBlock; }
  uint64_t features() const override;
  uint16_t num_queues() const override { return m_options.num_queues; }
  uint32_t queue_max_size() const override { return m_options.queue_size; }
  void read_config(uint64_t offset, std::span<uint8_t> data) override;
  void activate(DeviceHost& host, uint64_t negotiated, std::vector<Queue*> queues) override;
  void notify(uint16_t q) override;
  void reset() override;
  // Snapshot: nothing beyond the queues (config is the backend's size and the options); in-flight
  // requests complete in reset(), which the transport calls to quiesce.
  std::optional<uint32_t> state_version() const override { return 1; }

  uint64_t bad_requests() const { return m_bad_requests.load(); }
  uint64_t io_errors() const { return m_io_errors.load(); }
  std::vector<std::pair<std::string, uint64_t>> counters() const override {
    return {{"bad_requests", bad_requests()}, {"io_errors", io_errors()}};
  }
  bool read_only() const { return m_read_only; }
  // Whether requests currently go through io_uring (after activate; false = worker threads).
  bool using_io_uring() const { return m_uring_active; }
  // Runs one request synchronously on the calling thread; returns the bytes written into the
  // chain's writable part (data + status). What the worker threads do per request; public for the
  // request fuzzer (tests/fuzz/backends:blk_fuzz), which has no queue threads.
  uint32_t execute(const Chain& chain);

 private:
  // One I/O thread's turn (KickWorkers): runs requests until the queues are empty.
  void service_queues();
  uint8_t do_read(const Chain& chain, uint64_t sector, uint64_t length, uint32_t& written);
  uint8_t do_write(const Chain& chain, uint64_t sector, uint64_t length);
  uint8_t do_ranges(const Chain& chain, uint32_t type);
  bool in_range(uint64_t sector, uint64_t bytes) const;

  // io_uring engine (blk_uring.cpp): one thread submits reads, writes and fdatasyncs on the
  // backend's direct_fd() and completes them asynchronously, so many requests are in flight at
  // once; everything else (get-id, discard, errors) runs synchronously on that thread.
  bool start_uring();
  void uring_loop();
  void stop_uring();
  void uring_kick();
  struct UringState;
  std::unique_ptr<UringState> m_uring;
  bool m_uring_active = false;

  std::shared_ptr<backends::BlockBackend> m_backend;
  Options m_options;
  bool m_read_only;
  uint64_t m_capacity_sectors;

  std::mutex m_lock;
  DeviceHost* m_host = nullptr;
  std::vector<Queue*> m_queues;
  std::atomic<uint64_t> m_bad_requests{0};
  std::atomic<uint64_t> m_io_errors{0};
  KickWorkers m_workers;  // last: destroyed (its threads joined) before what they use
};

}  // namespace hw::virtio
