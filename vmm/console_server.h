// The console socket: `vmlaunch console NAME` attaches here to the machine's serial console. A unix
// socket (0600) in the machine's state directory; one client at a time.
//
//   client:  "attach\n"  or  "attach force\n"   (force: take the console over from its holder)
//   server:  "ok\n"      or  "busy\n"           (someone else is attached; the connection closes)
//   then raw bytes both ways: guest output to the client, the client's bytes to the guest's UART.
//
// A client that takes the console over closes the previous one (after a one-line notice). Output a
// slow client cannot take is dropped beyond kMaxConsoleBacklog (the console log keeps it, and
// on_overflow hears of it: once with first = true when dropping starts, then for every further
// drop until the client has caught up; called on the thread writing guest output); input is
// read only as fast as the guest's UART takes it, so a client can never grow the VMM's memory or
// stall a vCPU.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>

#include "base/result.h"
#include "vmm/console_log.h"

namespace vmm {

inline constexpr size_t kMaxConsoleBacklog = 1 << 20;

class ConsoleServer {
 public:
  using OnOverflow = std::function<void(uint64_t dropped_bytes, bool first)>;
  static base::ErrorOr<std::unique_ptr<ConsoleServer>> start(std::shared_ptr<TeeCharBackend> console,
                                                             const std::filesystem::path& socket_path,
                                                             OnOverflow on_overflow = {});
  // Detaches from the console, closes the client, removes the socket.
  ~ConsoleServer();
  ConsoleServer(const ConsoleServer&) = delete;
  ConsoleServer& operator=(const ConsoleServer&) = delete;

  class Impl;

 private:
  explicit ConsoleServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> m_impl;
};

}  // namespace vmm
