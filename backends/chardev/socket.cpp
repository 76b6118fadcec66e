#include "backends/chardev/socket.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "backends/socket_path.h"
#include "security/thread_role.h"

namespace backends::chardev {

namespace {

std::string errno_text(const std::string& what) {
  return what + ": " + std::strerror(errno);
}

base::ErrorOr<int> make_unix(const std::string& path, bool server) {
  sockaddr_un address = TRY(unix_address(path));
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return base::fail(base::Error(errno_text("socket")));
  int rc;
  if (server) {
    // A stale socket file from an earlier run would make bind fail; anything else stays.
    if (auto cleared = clear_stale_socket(path); !cleared) {
      close(fd);
      return base::fail(cleared.error());
    }
    rc = bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
    if (rc == 0) rc = listen(fd, 1);
  } else {
    rc = connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  }
  if (rc != 0) {
    std::string why = errno_text((server ? "listen on " : "connect to ") + path);
    close(fd);
    return base::fail(base::Error(why));
  }
  return fd;
}

base::ErrorOr<int> make_tcp(const std::string& host, uint16_t port, bool server) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = server ? AI_PASSIVE : 0;
  addrinfo* found = nullptr;
  std::string service = std::to_string(port);
  int gai = getaddrinfo(host.c_str(), service.c_str(), &hints, &found);
  if (gai != 0) return base::fail(base::Error("resolving " + host + ": " + gai_strerror(gai)));
  std::string last_error = "no addresses for " + host;
  for (addrinfo* a = found; a; a = a->ai_next) {
    int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    int one = 1;
    int rc;
    if (server) {
      setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
      rc = bind(fd, a->ai_addr, a->ai_addrlen);
      if (rc == 0) rc = listen(fd, 1);
    } else {
      rc = connect(fd, a->ai_addr, a->ai_addrlen);
      // Console bytes are tiny and interactive: send them now.
      if (rc == 0) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    if (rc == 0) {
      freeaddrinfo(found);
      return fd;
    }
    last_error = errno_text((server ? "listen on " : "connect to ") + host + ":" + service);
    close(fd);
  }
  freeaddrinfo(found);
  return base::fail(base::Error(last_error));
}

}  // namespace

base::ErrorOr<int> SocketBackend::connect_once() const {
  if (!m_options.path.empty()) return make_unix(m_options.path, false);
  return make_tcp(m_options.host, m_options.port, false);
}

base::ErrorOr<std::unique_ptr<SocketBackend>> SocketBackend::open(const Options& options) {
  std::unique_ptr<SocketBackend> backend(new SocketBackend(options));
  if (options.server) {
    backend->m_listen_fd = TRY(options.path.empty() ? make_tcp(options.host, options.port, true)
                                                    : make_unix(options.path, true));
    if (options.path.empty()) {
      sockaddr_storage bound{};
      socklen_t length = sizeof(bound);
      getsockname(backend->m_listen_fd, reinterpret_cast<sockaddr*>(&bound), &length);
      backend->m_bound_port =
          ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                            : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
    }
    SocketBackend* raw = backend.get();
    backend->m_thread = std::thread([raw] {
      security::ThreadRole role(security::Role::Chardev);
      raw->run_server();
    });
    if (options.wait) {
      std::unique_lock lock(backend->m_conn_lock);
      backend->m_conn_changed.wait(lock, [&] { return backend->m_conn_fd >= 0; });
    }
  } else {
    // The first attempt happens now so a wrong address is reported at startup, unless the user
    // asked for reconnects (the peer may simply not be up yet).
    auto first = backend->connect_once();
    if (!first && options.reconnect_seconds == 0) return base::fail(first.error());
    if (first) backend->m_conn_fd = *first;
    SocketBackend* raw = backend.get();
    backend->m_thread = std::thread([raw] {
      security::ThreadRole role(security::Role::Chardev);
      raw->run_client();
    });
  }
  return backend;
}

SocketBackend::~SocketBackend() {
  m_stop.store(true);
  m_waker.wake();
  m_slot.wake();
  if (m_thread.joinable()) m_thread.join();
  std::lock_guard lock(m_conn_lock);
  if (m_conn_fd >= 0) close(m_conn_fd);
  if (m_listen_fd >= 0) close(m_listen_fd);
  // Only the socket this backend bound is removed: a failed open leaves what was there.
  if (m_options.server && !m_options.path.empty() && m_listen_fd >= 0)
    (void)clear_stale_socket(m_options.path);
}

bool SocketBackend::sleep_or_stop(unsigned seconds) {
  pollfd wake{m_waker.fd(), POLLIN, 0};
  poll(&wake, 1, static_cast<int>(seconds * 1000));
  return !m_stop.load();
}

void SocketBackend::serve(int fd) {
  read_loop(fd, m_waker, m_stop, m_slot);
  std::lock_guard lock(m_conn_lock);
  close(m_conn_fd);
  m_conn_fd = -1;
  m_conn_changed.notify_all();
}

void SocketBackend::run_server() {
  while (!m_stop.load()) {
    pollfd fds[2] = {{m_listen_fd, POLLIN, 0}, {m_waker.fd(), POLLIN, 0}};
    if (poll(fds, 2, -1) < 0 && errno != EINTR) return;
    if (m_stop.load()) return;
    if (!(fds[0].revents & POLLIN)) continue;
    int fd = accept4(m_listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    {
      std::lock_guard lock(m_conn_lock);
      m_conn_fd = fd;
      m_conn_changed.notify_all();
    }
    serve(fd);
  }
}

void SocketBackend::run_client() {
  while (!m_stop.load()) {
    int fd;
    {
      std::lock_guard lock(m_conn_lock);
      fd = m_conn_fd;
    }
    if (fd >= 0) {
      serve(fd);
      if (m_options.reconnect_seconds == 0) return;
    }
    if (!sleep_or_stop(fd >= 0 ? 0 : m_options.reconnect_seconds)) return;
    auto next = connect_once();
    if (next) {
      std::lock_guard lock(m_conn_lock);
      m_conn_fd = *next;
      m_conn_changed.notify_all();
    }
  }
}

bool SocketBackend::connected() const {
  std::lock_guard lock(m_conn_lock);
  return m_conn_fd >= 0;
}

void SocketBackend::write(std::span<const uint8_t> data) {
  std::lock_guard lock(m_conn_lock);
  if (m_conn_fd < 0) {
    m_dropped += data.size();
    return;
  }
  size_t done = 0;
  while (done < data.size()) {
    // MSG_DONTWAIT: a peer that stops reading costs it bytes, never the vCPU its time.
    ssize_t n = send(m_conn_fd, data.data() + done, data.size() - done, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  m_dropped += data.size() - done;
}

void SocketBackend::attach(CharReceiver* receiver) {
  m_slot.attach(receiver);
}

}  // namespace backends::chardev
