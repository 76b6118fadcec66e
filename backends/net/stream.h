// `socket` networking: two VMs (or a VM and a test) joined by a stream socket, each frame sent
// as a 4-byte big-endian length and the frame (QEMU's -netdev stream/socket framing, so a QEMU
// guest can be the peer). One side listens (`server: true`), the other connects; unix `path` or
// tcp `host`+`port`. The client retries every second until the server is there.
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "backends/net.h"
#include "backends/net/frame_queue.h"
#include "base/result.h"

namespace backends::net {

class StreamBackend : public NetBackend {
 public:
  struct Options {
    std::string path;  // unix socket; empty for tcp
    std::string host = "127.0.0.1";
    uint16_t port = 0;  // server with 0: any free port (see port())
    bool server = false;
  };
  static base::ErrorOr<std::unique_ptr<StreamBackend>> open(const Options& options);
  ~StreamBackend() override;

  void send_frame(std::span<const uint8_t> frame) override;
  void attach(NetReceiver* receiver) override { m_frames.attach(receiver); }

  bool connected() const;
  uint16_t port() const { return m_port; }
  uint64_t dropped_tx() const { return m_dropped_tx.load(); }

 private:
  explicit StreamBackend(Options options) : m_options(std::move(options)) {}
  void run();
  int connect_once() const;
  bool read_frames(int fd);

  Options m_options;
  sockaddr_storage m_address{};  // resolved once by open()
  socklen_t m_address_length = 0;
  int m_listen_fd = -1;
  uint16_t m_port = 0;
  mutable std::mutex m_conn_lock;
  int m_conn_fd = -1;
  FrameQueue m_frames;
  std::atomic<uint64_t> m_dropped_tx{0};
  int m_wake_fd = -1;
  std::atomic<bool> m_stop{false};
  std::thread m_thread;
};

}  // namespace backends::net
