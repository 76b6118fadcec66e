#include "debug/gdbstub/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>

#include "base/fd_io.h"
#include "debug/gdbstub/session.h"
#include "security/thread_role.h"

namespace gdbstub {
namespace {

base::Error sys_error(const std::string& what) {
  return base::Error(what + ": " + std::strerror(errno));
}

}  // namespace

std::string ListenAddress::to_string() const {
  if (is_unix()) return "unix:" + path;
  if (host.find(':') != std::string::npos) return "tcp:[" + host + "]:" + std::to_string(port);
  return "tcp:" + host + ":" + std::to_string(port);
}

base::ErrorOr<ListenAddress> parse_listen_address(std::string_view text) {
  const std::string expected = "expected tcp:HOST:PORT or unix:PATH, not \"" + std::string(text) + "\"";
  ListenAddress address;
  if (text.substr(0, 5) == "unix:") {
    address.path = std::string(text.substr(5));
    if (address.path.empty()) return base::fail(base::Error(expected));
    if (address.path.size() >= sizeof(sockaddr_un{}.sun_path))
      return base::fail(base::Error("unix socket path too long: " + address.path));
    return address;
  }
  if (text.substr(0, 4) != "tcp:") return base::fail(base::Error(expected));
  std::string_view rest = text.substr(4);
  const size_t colon = rest.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return base::fail(base::Error(expected));
  std::string_view host = rest.substr(0, colon), port = rest.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host.empty() || port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string_view::npos)
    return base::fail(base::Error(expected));
  const unsigned long number = std::stoul(std::string(port));
  if (number > 65535) return base::fail(base::Error("port " + std::string(port) + " is out of range"));
  address.host = std::string(host);
  address.port = static_cast<uint16_t>(number);
  return address;
}

base::ErrorOr<std::unique_ptr<Server>> Server::start(const ListenAddress& address, Target& target) {
  ListenAddress bound = address;
  int fd = -1;
  if (address.is_unix()) {
    fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return base::fail(sys_error("gdb: socket"));
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    std::memcpy(sun.sun_path, address.path.c_str(), address.path.size() + 1);  // length checked by parse
    // A stale socket from an earlier run is replaced; any other file is left alone (bind fails).
    struct stat st {};
    if (::lstat(address.path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(address.path.c_str());
    if (::bind(fd, reinterpret_cast<sockaddr*>(&sun), sizeof sun) != 0) {
      auto error = sys_error("gdb: bind " + address.path);
      ::close(fd);
      return base::fail(error);
    }
  } else {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* found = nullptr;
    const std::string port = std::to_string(address.port);
    if (int rc = ::getaddrinfo(address.host.c_str(), port.c_str(), &hints, &found); rc != 0)
      return base::fail(base::Error("gdb: host " + address.host + ": " + ::gai_strerror(rc)));
    std::string last_error = "no address";
    for (addrinfo* ai = found; ai; ai = ai->ai_next) {
      fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
      if (fd < 0) continue;
      const int one = 1;
      ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      if (::bind(fd, ai->ai_addr, ai->ai_addrlen) == 0) break;
      last_error = std::strerror(errno);
      ::close(fd);
      fd = -1;
    }
    ::freeaddrinfo(found);
    if (fd < 0) return base::fail(base::Error("gdb: bind " + address.to_string() + ": " + last_error));
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0)
      bound.port = ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                                  : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  }
  if (::listen(fd, 1) != 0) {
    auto error = sys_error("gdb: listen " + address.to_string());
    ::close(fd);
    return base::fail(error);
  }
  int wake[2];
  if (::pipe2(wake, O_CLOEXEC | O_NONBLOCK) != 0) {
    auto error = sys_error("gdb: pipe");
    ::close(fd);
    return base::fail(error);
  }
  std::unique_ptr<Server> server(new Server(bound, target, fd, wake[0], wake[1]));
  server->m_thread = std::thread([s = server.get()] {
    security::ThreadRole role(security::Role::GdbStub);
    s->loop();
  });
  return server;
}

Server::Server(ListenAddress address, Target& target, int listen_fd, int wake_read, int wake_write)
    : m_address(std::move(address)),
      m_target(target),
      m_listen_fd(listen_fd),
      m_wake_read(wake_read),
      m_wake_write(wake_write) {
  m_target.set_stop_listener([this](const StopEvent& event) { post(event); });
}

Server::~Server() {
  m_target.set_stop_listener(nullptr);
  m_quit.store(true);
  const char byte = 'q';
  (void)!::write(m_wake_write, &byte, 1);
  if (m_thread.joinable()) m_thread.join();
  ::close(m_listen_fd);
  ::close(m_wake_read);
  ::close(m_wake_write);
  if (m_address.is_unix()) ::unlink(m_address.path.c_str());
}

void Server::post(const StopEvent& event) {
  {
    std::lock_guard guard(m_lock);
    if (m_events.size() < 1024) m_events.push_back(event);
  }
  const char byte = 's';
  (void)!::write(m_wake_write, &byte, 1);  // a full pipe already wakes the loop
}

void Server::loop() {
  int client = -1;
  std::unique_ptr<Session> session;
  // After D or k the client still acks our last reply and then closes: wait for that (bounded), or
  // closing first makes its ack fail ("Broken pipe" in gdb).
  std::optional<std::chrono::steady_clock::time_point> draining;
  auto hang_up = [&] {
    if (session) session->disconnected();
    session.reset();
    if (client >= 0) ::close(client);
    client = -1;
    draining.reset();
  };
  while (!m_quit.load()) {
    pollfd fds[3] = {{m_wake_read, POLLIN, 0}, {client, POLLIN, 0}, {m_listen_fd, POLLIN, 0}};
    int timeout_ms = -1;
    if (draining) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(*draining - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        hang_up();
        continue;
      }
      timeout_ms = static_cast<int>(left.count());
    }
    if (::poll(fds, 3, timeout_ms) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[0].revents) {
      char drain[64];
      while (::read(m_wake_read, drain, sizeof drain) > 0) {
      }
      std::vector<StopEvent> events;
      {
        std::lock_guard guard(m_lock);
        events.swap(m_events);
      }
      if (session && !draining) {
        std::string out;
        for (const StopEvent& event : events) session->on_stop(event, out);
        if (!out.empty() && !base::send_all(client, out)) hang_up();
      }
      continue;
    }
    if (fds[2].revents) {
      const int fd = ::accept4(m_listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      if (client >= 0) {  // one debugger at a time
        ::close(fd);
        continue;
      }
      client = fd;
      const int one = 1;
      ::setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // fails harmlessly on unix
      session = std::make_unique<Session>(m_target);
      session->attached();
      continue;
    }
    if (client < 0 || !fds[1].revents) continue;
    uint8_t buffer[4096];
    const ssize_t n = ::read(client, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      hang_up();
      continue;
    }
    if (draining) continue;  // acks and anything else after D or k: ignored
    std::string out;
    session->receive(std::span<const uint8_t>(buffer, static_cast<size_t>(n)), out);
    if (!out.empty() && !base::send_all(client, out)) {
      hang_up();
      continue;
    }
    if (session->closed()) draining = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  }
  if (client >= 0 && session && m_exit_status.load() >= 0) {
    std::string out;
    session->exited(m_exit_status.load(), out);
    if (!out.empty() && base::send_all(client, out)) {
      // Its ack comes back before we close (on a unix socket, an ack into a closed socket fails and
      // gdb reports a broken pipe instead of the exit). Bounded: the VMM is shutting down.
      pollfd p{client, POLLIN, 0};
      if (::poll(&p, 1, 1000) > 0) {
        char ack[64];
        (void)!::read(client, ack, sizeof ack);
      }
    }
  }
  if (client >= 0) ::close(client);
}

}  // namespace gdbstub
