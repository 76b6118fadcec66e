// Character backend interface: what a serial port or console is connected to.
// hw/ depends only on this; the concrete backend (stdio, file, pty, socket, null, ringbuf) is chosen
// by name in the config and injected by the machine builder.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace backends {

// The device side of a character backend: implemented by the front end (UART, virtio-console).
class CharReceiver {
 public:
  virtual ~CharReceiver() = default;
  // How many bytes the front end can take now (its FIFO room). The backend never sends more.
  virtual size_t can_receive() = 0;
  // Called from the backend's thread with at most can_receive() bytes.
  virtual void receive(std::span<const uint8_t> data) = 0;
};

class CharBackend {
 public:
  virtual ~CharBackend() = default;
  // Guest -> host. Must not block the calling vCPU for long; a backend that cannot keep up drops
  // and counts.
  virtual void write(std::span<const uint8_t> data) = 0;
  // Host -> guest. The receiver outlives the backend's use of it; pass nullptr to detach.
  virtual void attach(CharReceiver* receiver) = 0;
};

}  // namespace backends
