// The gdb stub's socket side: listens on exactly the address it is given (a TCP host and port, or a
// unix socket path), serves one client at a time on its own thread and feeds a Session. A second
// client while one is attached is refused (closed at once).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/result.h"
#include "debug/gdbstub/target.h"

namespace gdbstub {

struct ListenAddress {
  std::string host;  // TCP
  uint16_t port = 0;
  std::string path;  // unix socket, when set
  bool is_unix() const { return !path.empty(); }
  std::string to_string() const;  // tcp:HOST:PORT or unix:PATH
};

// "tcp:HOST:PORT" (HOST may be [v6]) or "unix:PATH". Errors say what is expected.
base::ErrorOr<ListenAddress> parse_listen_address(std::string_view text);

class Server {
 public:
  // Binds and listens now (so errors reach the caller before the machine runs), then serves.
  static base::ErrorOr<std::unique_ptr<Server>> start(const ListenAddress& address, Target& target);
  ~Server();  // stops serving, closes the sockets, removes a unix socket it made
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The machine is gone with this exit status: a debugger waiting for a stop is told so (W) when the
  // server shuts down. Call before destroying it.
  void set_exit_status(int status) { m_exit_status.store(status & 0xff); }

  // Where it listens, with the real port when 0 was asked for.
  const ListenAddress& address() const { return m_address; }

 private:
  Server(ListenAddress address, Target& target, int listen_fd, int wake_read, int wake_write);
  void loop();
  void post(const StopEvent& event);

  ListenAddress m_address;
  Target& m_target;
  int m_listen_fd = -1, m_wake_read = -1, m_wake_write = -1;
  std::atomic<bool> m_quit{false};
  std::atomic<int> m_exit_status{-1};
  std::mutex m_lock;  // guards m_events
  std::vector<StopEvent> m_events;
  std::thread m_thread;
};

}  // namespace gdbstub
