// `socket` chardev: the console over a unix or TCP stream socket.
//   server: listens and serves one client at a time; when it leaves, the next may connect.
//           `wait: true` makes open() block until the first client arrives.
//   client: connects; with `reconnect: N` it retries every N seconds after a failure or when the
//           peer goes away (without it, a lost peer just means no more console input).
// Output while nobody is connected, or that the peer does not read fast enough, is dropped and
// counted: the vCPU never waits for a socket.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "backends/chardev.h"
#include "backends/chardev/pump.h"
#include "base/result.h"

namespace backends::chardev {

class SocketBackend : public CharBackend {
 public:
  struct Options {
    std::string path;  // unix socket path; empty for TCP
    std::string host = "127.0.0.1";
    uint16_t port = 0;  // TCP; 0 with server = pick a free port (see port())
    bool server = false;
    bool wait = false;
    unsigned reconnect_seconds = 0;
  };
  static base::ErrorOr<std::unique_ptr<SocketBackend>> open(const Options& options);
  ~SocketBackend() override;

  void write(std::span<const uint8_t> data) override;
  void attach(CharReceiver* receiver) override;

  bool connected() const;
  uint16_t port() const { return m_bound_port; }  // the TCP port a server listens on
  uint64_t dropped() const { return m_dropped.load(); }

 private:
  explicit SocketBackend(Options options) : m_options(std::move(options)) {}
  void run_server();
  void run_client();
  void serve(int fd);  // reads one connection until it ends
  base::ErrorOr<int> connect_once() const;
  bool sleep_or_stop(unsigned seconds);

  Options m_options;
  int m_listen_fd = -1;
  uint16_t m_bound_port = 0;
  mutable std::mutex m_conn_lock;
  std::condition_variable m_conn_changed;
  int m_conn_fd = -1;
  std::atomic<uint64_t> m_dropped{0};
  ReceiverSlot m_slot;
  Waker m_waker;
  std::atomic<bool> m_stop{false};
  std::thread m_thread;
};

}  // namespace backends::chardev
