// Network backend interface: Ethernet frames between a virtio-net front end and the host.
#pragma once

#include <cstdint>
#include <span>

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
};

}  // namespace backends
