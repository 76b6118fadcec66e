// The control socket: a unix socket (0600) in the machine's state directory speaking one JSON object
// per line, after QMP:
//
//   server:  {"vmlaunch": {"version": {"protocol": 1, "vmlaunch": "0.1.0"}, "capabilities": ["events"]}}
//   client:  {"execute": "status", "id": 7}
//   server:  {"return": {...}, "id": 7}
//            or {"error": {"class": "CommandNotFound", "message": "..."}, "id": 7}
//   server:  {"event": "STATE", "data": {"from": "running", "to": "stopping"}, "timestamp": 1765000000.5}
//
// Commands: status, stop (stop the machine now), powerdown (press the guest's power button), pause,
// resume, query-devices (the resolved graph), query-stats, query-commands, quit (end this connection;
// the machine runs on). Every peer is hostile: a line is at most kMaxRequest bytes, every field is
// type-checked, a client that does not read its replies is dropped, and nothing a client sends can
// stop or stall the machine except the `stop` command itself.
#pragma once

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "base/result.h"
#include "vmm/controller.h"

namespace vmm {

inline constexpr int kProtocolVersion = 1;
inline constexpr size_t kMaxRequest = 64 * 1024;

class ControlServer {
 public:
  // Binds `socket_path` (replacing a stale socket file) and serves on its own thread. `identity` is
  // merged into every status reply (name, pid, config path).
  static base::ErrorOr<std::unique_ptr<ControlServer>> start(Controller& controller,
                                                             const std::filesystem::path& socket_path,
                                                             nlohmann::json identity, std::string version);
  // Flushes what it can to connected clients (the STOPPED event), closes them, removes the socket.
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  class Impl;

 private:
  explicit ControlServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> m_impl;
};

// The client side, for the CLI: connect, read the greeting, one request at a time.
class ControlClient {
 public:
  static base::ErrorOr<ControlClient> connect(const std::filesystem::path& socket_path,
                                              int timeout_ms = 2000);
  ControlClient(ControlClient&& other) noexcept : m_fd(other.m_fd), m_buffer(std::move(other.m_buffer)) {
    other.m_fd = -1;
  }
  ControlClient& operator=(ControlClient&&) = delete;
  ~ControlClient();
  const nlohmann::json& greeting() const { return m_greeting; }
  // Sends {"execute": command, "id": N, ...} and returns the reply with that id (events before it are
  // skipped); the reply's "error" member, if any, becomes the error "CLASS: message".
  base::ErrorOr<nlohmann::json> execute(const std::string& command, int timeout_ms = 5000);
  // The same with {"arguments": arguments}.
  base::ErrorOr<nlohmann::json> execute(const std::string& command, const nlohmann::json& arguments,
                                        int timeout_ms);
  // The next line the server sends (for event watchers), or an error on timeout / hangup.
  base::ErrorOr<nlohmann::json> read_object(int timeout_ms);

 private:
  explicit ControlClient(int fd) : m_fd(fd) {}
  int m_fd;
  std::string m_buffer;
  nlohmann::json m_greeting;
  long m_next_id = 1;
};

}  // namespace vmm
