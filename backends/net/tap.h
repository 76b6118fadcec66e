// `tap` networking: frames go to and come from a host TAP interface. `ifname` names an existing
// interface (set up by the administrator, e.g. `ip tuntap add tap0 mode tap user $USER`); when it
// does not exist and we have CAP_NET_ADMIN, the kernel creates it for the lifetime of the VM.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "backends/net.h"
#include "backends/net/frame_queue.h"
#include "base/result.h"

namespace backends::net {

class TapBackend : public NetBackend {
 public:
  static base::ErrorOr<std::unique_ptr<TapBackend>> open(const std::string& ifname);
  ~TapBackend() override;

  void send_frame(std::span<const uint8_t> frame) override;
  void attach(NetReceiver* receiver) override { m_frames.attach(receiver); }

  const std::string& ifname() const { return m_ifname; }
  uint64_t dropped_tx() const { return m_dropped_tx.load(); }

 private:
  TapBackend(int fd, std::string ifname);
  void run();

  int m_fd;
  std::string m_ifname;
  FrameQueue m_frames;
  std::atomic<uint64_t> m_dropped_tx{0};
  int m_wake_fd = -1;
  std::atomic<bool> m_stop{false};
  std::thread m_thread;
};

}  // namespace backends::net
