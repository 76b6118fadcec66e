#include "vmm/console_server.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "security/thread_role.h"
#include "vmm/state_dir.h"

namespace vmm {
namespace {

constexpr size_t kMaxHandshake = 64;  // "attach force\n" and some slack
constexpr size_t kMaxPending = 8;     // connections still sending their handshake
constexpr size_t kMaxInput = 4096;    // typed bytes the guest has not taken yet
constexpr int kInjectRetryMs = 2;     // how soon to offer the UART the rest of the input

std::string errno_text(const std::string& what) {
  return what + ": " + std::strerror(errno);
}

void send_all_now(int fd, std::string_view text) {
  (void)!::send(fd, text.data(), text.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
}

struct Pending {
  int fd = -1;
  std::string header;
};

}  // namespace

class ConsoleServer::Impl {
 public:
  Impl(std::shared_ptr<TeeCharBackend> console, std::filesystem::path path, OnOverflow on_overflow)
      : m_console(std::move(console)), m_path(std::move(path)), m_on_overflow(std::move(on_overflow)) {}

  ~Impl() {
    m_console->set_listener(nullptr);
    if (m_thread.joinable()) {
      m_done = true;
      wake();
      m_thread.join();
    }
    if (m_client >= 0) {
      std::lock_guard guard(m_output_lock);
      if (!m_output.empty()) send_all_now(m_client, m_output);
      ::close(m_client);
    }
    for (Pending& pending : m_pending) ::close(pending.fd);
    if (m_listen >= 0) ::close(m_listen);
    if (m_wake[0] >= 0) ::close(m_wake[0]);
    if (m_wake[1] >= 0) ::close(m_wake[1]);
    ::unlink(m_path.c_str());
  }

  base::Result<void, base::Error> start() {
    if (::pipe2(m_wake, O_CLOEXEC | O_NONBLOCK) != 0) return base::fail(errno_text("pipe"));
    m_listen = TRY(listen_private(m_path, 8));
    m_console->set_listener([this](std::span<const uint8_t> data) { output(data); });
    m_thread = std::thread([this] {
      security::ThreadRole role(security::Role::Chardev);
      serve();
    });
    return {};
  }

 private:
  void wake() {
    char byte = 1;
    (void)!::write(m_wake[1], &byte, 1);
  }

  // vCPU threads: queue guest output for the attached client, never block.
  void output(std::span<const uint8_t> data) {
    if (!m_attached.load(std::memory_order_relaxed)) return;
    bool was_empty, first = false;
    size_t dropped = 0;
    {
      std::lock_guard guard(m_output_lock);
      was_empty = m_output.empty();
      size_t room = kMaxConsoleBacklog > m_output.size() ? kMaxConsoleBacklog - m_output.size() : 0;
      size_t taken = std::min(room, data.size());
      m_output.append(reinterpret_cast<const char*>(data.data()), taken);
      dropped = data.size() - taken;
      if (dropped && !m_overflowing) first = m_overflowing = true;
    }
    if (dropped && m_on_overflow) m_on_overflow(dropped, first);
    if (was_empty) wake();
  }

  void drop_client(const char* notice) {
    if (m_client < 0) return;
    if (notice) send_all_now(m_client, notice);
    ::close(m_client);
    m_client = -1;
    m_input.clear();
    m_attached = false;
    std::lock_guard guard(m_output_lock);
    m_output.clear();
    m_overflowing = false;
  }

  void serve() {
    std::vector<pollfd> fds;
    while (!m_done) {
      bool has_output;
      {
        std::lock_guard guard(m_output_lock);
        has_output = !m_output.empty();
      }
      fds.clear();
      fds.push_back({m_wake[0], POLLIN, 0});
      fds.push_back({m_listen, POLLIN, 0});
      const size_t client_index = fds.size();
      if (m_client >= 0) {
        short events =
            static_cast<short>((m_input.size() < kMaxInput ? POLLIN : 0) | (has_output ? POLLOUT : 0));
        fds.push_back({m_client, events, 0});
      }
      const size_t pending_index = fds.size();
      for (const Pending& pending : m_pending) fds.push_back({pending.fd, POLLIN, 0});
      // Input the UART's FIFO had no room for is offered again shortly (the guest drains it).
      int timeout = m_input.empty() ? -1 : kInjectRetryMs;
      if (::poll(fds.data(), fds.size(), timeout) < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if (fds[0].revents & POLLIN) {
        char drain[256];
        while (::read(m_wake[0], drain, sizeof(drain)) > 0) {
        }
      }
      if (m_client >= 0 && client_index < fds.size() && fds[client_index].fd == m_client)
        service_client(fds[client_index].revents);
      inject();
      // Handshakes: pending entries were appended in order, so indices line up until one is removed.
      size_t index = pending_index;
      for (auto it = m_pending.begin(); it != m_pending.end(); ++index) {
        short revents = index < fds.size() && fds[index].fd == it->fd ? fds[index].revents : 0;
        if (revents && !handshake(*it)) {
          it = m_pending.erase(it);
        } else {
          ++it;
        }
      }
      if (fds[1].revents & POLLIN) accept_clients();
    }
  }

  void service_client(short revents) {
    if (revents & (POLLERR | POLLNVAL)) return drop_client(nullptr);
    if (revents & (POLLIN | POLLHUP)) {
      char buffer[1024];
      size_t room = kMaxInput - std::min(kMaxInput, m_input.size());
      ssize_t n = room ? ::recv(m_client, buffer, std::min(room, sizeof(buffer)), MSG_DONTWAIT) : -1;
      if (n == 0) return drop_client(nullptr);
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && room)
        return drop_client(nullptr);
      if (n > 0) m_input.append(buffer, static_cast<size_t>(n));
    }
    std::string out;
    {
      std::lock_guard guard(m_output_lock);
      out.swap(m_output);
    }
    size_t done = 0;
    while (done < out.size()) {
      ssize_t n = ::send(m_client, out.data() + done, out.size() - done, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      if (n <= 0) return drop_client(nullptr);
      done += static_cast<size_t>(n);
    }
    if (done < out.size()) {
      // Put the unsent rest back in front of what arrived meanwhile; beyond the cap the newest go.
      size_t dropped = 0;
      bool first = false;
      {
        std::lock_guard guard(m_output_lock);
        std::string rest = out.substr(done);
        rest += m_output;
        if (rest.size() > kMaxConsoleBacklog) {
          dropped = rest.size() - kMaxConsoleBacklog;
          rest.resize(kMaxConsoleBacklog);
          if (!m_overflowing) first = m_overflowing = true;
        }
        m_output.swap(rest);
      }
      if (dropped && m_on_overflow) m_on_overflow(dropped, first);
    } else {
      std::lock_guard guard(m_output_lock);
      if (m_output.empty()) m_overflowing = false;  // caught up: the next drop starts a new episode
    }
  }

  void inject() {
    if (m_input.empty()) return;
    size_t taken = m_console->inject(
        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(m_input.data()), m_input.size()));
    m_input.erase(0, taken);
  }

  void accept_clients() {
    for (;;) {
      int fd = ::accept4(m_listen, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (fd < 0) return;
      if (m_pending.size() >= kMaxPending) {
        send_all_now(fd, "busy\n");
        ::close(fd);
        continue;
      }
      m_pending.push_back({fd, {}});
    }
  }

  // Returns false when the pending connection is finished with (attached, refused or gone).
  bool handshake(Pending& pending) {
    char buffer[kMaxHandshake];
    ssize_t n = ::recv(pending.fd, buffer, sizeof(buffer), MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return true;
    if (n <= 0) {
      ::close(pending.fd);
      return false;
    }
    pending.header.append(buffer, static_cast<size_t>(n));
    size_t newline = pending.header.find('\n');
    if (newline == std::string::npos) {
      if (pending.header.size() < kMaxHandshake) return true;
      send_all_now(pending.fd, "error: expected \"attach\" or \"attach force\"\n");
      ::close(pending.fd);
      return false;
    }
    std::string line = pending.header.substr(0, newline);
    // Bytes after the handshake line are the client's first keystrokes.
    std::string rest = pending.header.substr(newline + 1);
    if (line != "attach" && line != "attach force") {
      send_all_now(pending.fd, "error: expected \"attach\" or \"attach force\"\n");
      ::close(pending.fd);
      return false;
    }
    if (m_client >= 0) {
      if (line != "attach force") {
        send_all_now(pending.fd, "busy\n");
        ::close(pending.fd);
        return false;
      }
      drop_client("\r\n[vmlaunch: another `vmlaunch console --force` took this console over]\r\n");
    }
    m_client = pending.fd;
    send_all_now(m_client, "ok\n");
    m_input = rest.substr(0, kMaxInput);
    m_attached = true;
    return false;
  }

  std::shared_ptr<TeeCharBackend> m_console;
  std::filesystem::path m_path;
  int m_listen = -1;
  int m_wake[2] = {-1, -1};
  std::atomic<bool> m_done{false};
  std::thread m_thread;
  // serve() thread only:
  int m_client = -1;
  std::string m_input;
  std::list<Pending> m_pending;
  // Shared with the vCPU threads that write guest output:
  std::atomic<bool> m_attached{false};
  std::mutex m_output_lock;
  std::string m_output;
  bool m_overflowing = false;  // guarded by m_output_lock: output has been dropped since the last catch-up
  OnOverflow m_on_overflow;
};

ConsoleServer::ConsoleServer(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}
ConsoleServer::~ConsoleServer() = default;

base::ErrorOr<std::unique_ptr<ConsoleServer>> ConsoleServer::start(std::shared_ptr<TeeCharBackend> console,
                                                                   const std::filesystem::path& socket_path,
                                                                   OnOverflow on_overflow) {
  if (!console) return base::fail(base::Error("the machine has no serial console"));
  auto impl = std::make_unique<Impl>(std::move(console), socket_path, std::move(on_overflow));
  TRY(impl->start());
  return std::unique_ptr<ConsoleServer>(new ConsoleServer(std::move(impl)));
}

}  // namespace vmm
