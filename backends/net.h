// Network backend interface: Ethernet frames between a virtio-net front end and the host.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "base/result.h"

namespace backends {

class NetReceiver {
 public:
  virtual ~NetReceiver() = default;
  // False when the front end has no receive buffer now; the backend queues (bounded) or drops.
  virtual bool receive_frame(std::span<const uint8_t> frame) = 0;
};

class NetBackend {
 public:
  virtual ~NetBackend() = default;
  virtual void send_frame(std::span<const uint8_t> frame) = 0;
  virtual void attach(NetReceiver* receiver) = 0;

  // Snapshots: the backend's own state that the guest relies on, saved with the device that uses it
  // (user networking: libslirp's DHCP leases and IP id). Empty for backends whose state lives on
  // the host (tap, socket). load_state() gets the bytes save_state() wrote, from a file: hostile.
  virtual std::vector<uint8_t> save_state() { return {}; }
  virtual base::ErrorOr<void> load_state(std::span<const uint8_t> bytes) {
    if (bytes.empty()) return {};
    return base::fail(base::Error("this net backend has no saved state to load"));
  }
};

}  // namespace backends
