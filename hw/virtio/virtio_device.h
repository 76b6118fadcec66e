// The transport-independent side of a virtio device (virtio 1.2 chapter 5 models): what
// virtio-mmio and virtio-pci call into, and what devices call back through (DeviceHost).
//
// Lifecycle, driven by the transport:
//   features() read -> driver writes its features -> activate() at DRIVER_OK with the queues ->
//   notify(q) on every kick (vCPU thread) -> reset() when the driver writes status 0 (or before
//   destruction). After reset() returns the device touches neither queues nor guest memory.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/guest_memory.h"
#include "hw/device_state.h"
#include "hw/virtio/virtqueue.h"

namespace hw::virtio {

// Device-independent feature bits (virtio 1.2 section 6).
constexpr uint64_t kFeatureIndirectDesc = 1ull << 28;
constexpr uint64_t kFeatureEventIdx = 1ull << 29;
constexpr uint64_t kFeatureVersion1 = 1ull << 32;

// Device status bits (section 2.1).
constexpr uint8_t kStatusAcknowledge = 1;
constexpr uint8_t kStatusDriver = 2;
constexpr uint8_t kStatusDriverOk = 4;
constexpr uint8_t kStatusFeaturesOk = 8;
constexpr uint8_t kStatusNeedsReset = 64;
constexpr uint8_t kStatusFailed = 128;

// Device ids (section 5).
constexpr uint16_t kIdNet = 1;
constexpr uint16_t kIdBlock = 2;
constexpr uint16_t kIdConsole = 3;
constexpr uint16_t kIdRng = 4;
constexpr uint16_t kIdScsi = 8;

// What a device may ask of its transport. Thread-safe: called from vCPU, I/O and backend threads.
class DeviceHost {
 public:
  virtual ~DeviceHost() = default;
  virtual const base::GuestMemory& memory() const = 0;
  // Used buffers were added to queue `q` and the queue asked for an interrupt.
  virtual void interrupt_queue(uint16_t q) = 0;
  // The device configuration changed (generation bumped, config interrupt).
  virtual void interrupt_config() = 0;
  // The guest broke the rules (a QueueFault): sets DEVICE_NEEDS_RESET, logs once, interrupts.
  virtual void needs_reset(std::string_view why) = 0;
};

// A queue plus the lock that serialises its users (the vCPU kicking it, an I/O thread completing
// requests, a backend thread delivering input). Devices hold it while popping or pushing.
struct Queue {
  std::mutex lock;
  Virtqueue ring;
  explicit Queue(Virtqueue r) : ring(std::move(r)) {}
};

class VirtioDevice {
 public:
  virtual ~VirtioDevice() = default;
  virtual std::string_view name() const = 0;
  virtual uint16_t device_id() const = 0;
  // Every feature the device offers, including the device-independent ones it supports.
  virtual uint64_t features() const = 0;
  virtual uint16_t num_queues() const = 0;
  virtual uint32_t queue_max_size() const { return 256; }
  // What the model counts, for query-stats ("bad_requests", "io_errors", ...). Any thread.
  virtual std::vector<std::pair<std::string, uint64_t>> counters() const { return {}; }
  // Device configuration space (little-endian). Out-of-range reads yield zeros.
  virtual void read_config(uint64_t offset, std::span<uint8_t> data) = 0;
  virtual void write_config(uint64_t offset, std::span<const uint8_t> data) {}
  // DRIVER_OK: `queues[i]` is null for queues the driver did not enable. `host` and the queues
  // stay valid until reset() returns.
  virtual void activate(DeviceHost& host, uint64_t negotiated, std::vector<Queue*> queues) = 0;
  // The driver kicked queue `q` (only after activate). Called on a vCPU thread: hand real work to
  // an I/O thread.
  virtual void notify(uint16_t q) = 0;
  // Stops all processing, waits for in-flight work and forgets the queues.
  virtual void reset() = 0;

  // Snapshot: the device's own state beyond its transport and queues (the transport saves those and
  // quiesces the device with reset() + activate() around the save). nullopt: the device has state
  // it cannot save yet, and a snapshot of its machine is refused, naming it. Devices whose whole
  // state is the queues and a fixed config return a version and write nothing.
  virtual std::optional<uint32_t> state_version() const { return std::nullopt; }
  // Why this device cannot be saved right now although it has a state version (state held outside
  // it that cannot be reproduced, such as a file deleted while the guest holds it open).
  virtual std::optional<std::string> cannot_save() const { return std::nullopt; }
  // Stops processing for a snapshot: in-flight work completes into the used rings and the queues are
  // forgotten, as in reset(), but the device keeps what the guest negotiated with it beyond the
  // transport (config the driver wrote, a session with a backend); activate() resumes it on the
  // same queues. Devices whose reset() forgets such state override this.
  virtual void quiesce() { reset(); }
  virtual void save_state(hw::StateWriter& out) { (void)out; }
  virtual base::ErrorOr<void> load_state(hw::StateReader& in, uint32_t version) {
    (void)in;
    (void)version;
    return {};
  }
};

// Pops every available chain of `queue` and hands it to `handle` (which returns bytes written);
// pushes the results and interrupts once if the driver wants it. On a guest fault it reports to
// `host` and stops. The common loop of request/response queues (rng, console TX, blk inline).
template <typename Handle>
void drain_queue(DeviceHost& host, Queue& queue, uint16_t index, Handle&& handle) {
  bool notify = false;
  {
    std::lock_guard lock(queue.lock);
    while (true) {
      auto next = queue.ring.pop();
      if (!next) {
        host.needs_reset(next.error().message);
        return;
      }
      if (!next->has_value()) break;
      const Chain& chain = **next;
      uint32_t written = handle(chain);
      queue.ring.push(chain.head, written);
    }
    notify = queue.ring.should_notify();
  }
  if (notify) host.interrupt_queue(index);
}

}  // namespace hw::virtio
