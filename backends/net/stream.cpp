#include "backends/net/stream.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "backends/socket_path.h"
#include "security/thread_role.h"

namespace backends::net {

namespace {

// Resolves the configured address once, at open: a unix path that fits sun_path, or a host name
// or numeric address with getaddrinfo (the first IPv4 or IPv6 answer).
base::ErrorOr<void> make_address(const StreamBackend::Options& o, sockaddr_storage& address,
                                 socklen_t& length) {
  std::memset(&address, 0, sizeof(address));
  if (!o.path.empty()) {
    sockaddr_un un = TRY(unix_address(o.path));
    std::memcpy(&address, &un, sizeof(un));
    length = sizeof(sockaddr_un);
    return {};
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = o.server ? AI_PASSIVE : 0;
  addrinfo* found = nullptr;
  std::string service = std::to_string(o.port);
  int gai = getaddrinfo(o.host.c_str(), service.c_str(), &hints, &found);
  if (gai != 0) return base::fail(base::Error("resolving " + o.host + ": " + gai_strerror(gai)));
  if (!found || found->ai_addrlen > sizeof(address)) {
    if (found) freeaddrinfo(found);
    return base::fail(base::Error("no usable address for " + o.host));
  }
  std::memcpy(&address, found->ai_addr, found->ai_addrlen);
  length = found->ai_addrlen;
  freeaddrinfo(found);
  return {};
}

std::string describe(const StreamBackend::Options& o) {
  return o.path.empty() ? o.host + ":" + std::to_string(o.port) : o.path;
}

bool read_exact(int fd, uint8_t* data, size_t length) {
  size_t done = 0;
  while (done < length) {
    ssize_t n = ::read(fd, data + done, length - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

base::ErrorOr<std::unique_ptr<StreamBackend>> StreamBackend::open(const Options& options) {
  std::unique_ptr<StreamBackend> backend(new StreamBackend(options));
  if (auto resolved = make_address(options, backend->m_address, backend->m_address_length); !resolved)
    return base::fail(base::Error("net socket: " + resolved.error().message));
  if (options.server) {
    int fd = socket(backend->m_address.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return base::fail(base::Error(std::string("net socket: socket: ") + std::strerror(errno)));
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (!options.path.empty()) {
      if (auto cleared = clear_stale_socket(options.path); !cleared) {
        close(fd);
        return base::fail(base::Error("net socket: " + cleared.error().message));
      }
    }
    if (bind(fd, reinterpret_cast<sockaddr*>(&backend->m_address), backend->m_address_length) != 0 ||
        listen(fd, 1) != 0) {
      std::string why = std::strerror(errno);
      close(fd);
      return base::fail(base::Error("net socket: listen on " + describe(options) + ": " + why));
    }
    if (options.path.empty()) {
      sockaddr_storage bound{};
      socklen_t size = sizeof(bound);
      getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &size);
      backend->m_port = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                                          : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
    }
    backend->m_listen_fd = fd;
  }
  backend->m_wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (backend->m_wake_fd < 0)
    return base::fail(base::Error(std::string("net socket: eventfd: ") + std::strerror(errno)));
  StreamBackend* raw = backend.get();
  backend->m_thread = std::thread([raw] {
    security::ThreadRole role(security::Role::Net);
    raw->run();
  });
  return backend;
}

// A failed open destroys a backend whose thread never started and whose descriptors were never
// opened: each step here checks what exists (join on a thread that never ran throws).
StreamBackend::~StreamBackend() {
  m_stop.store(true);
  uint64_t one = 1;
  if (m_wake_fd >= 0) {
    [[maybe_unused]] ssize_t n = ::write(m_wake_fd, &one, sizeof(one));
  }
  if (m_thread.joinable()) m_thread.join();
  std::lock_guard lock(m_conn_lock);
  if (m_conn_fd >= 0) close(m_conn_fd);
  if (m_wake_fd >= 0) close(m_wake_fd);
  // Only the socket this backend bound is removed, and only while it is still a socket.
  if (m_listen_fd >= 0) {
    close(m_listen_fd);
    if (!m_options.path.empty()) (void)clear_stale_socket(m_options.path);
  }
}

int StreamBackend::connect_once() const {
  int fd = socket(m_address.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (connect(fd, reinterpret_cast<const sockaddr*>(&m_address), m_address_length) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

bool StreamBackend::connected() const {
  std::lock_guard lock(m_conn_lock);
  return m_conn_fd >= 0;
}

void StreamBackend::send_frame(std::span<const uint8_t> frame) {
  std::lock_guard lock(m_conn_lock);
  if (m_conn_fd < 0) {
    m_dropped_tx++;
    return;
  }
  uint8_t header[4] = {static_cast<uint8_t>(frame.size() >> 24), static_cast<uint8_t>(frame.size() >> 16),
                       static_cast<uint8_t>(frame.size() >> 8), static_cast<uint8_t>(frame.size())};
  iovec parts[2] = {{header, 4}, {const_cast<uint8_t*>(frame.data()), frame.size()}};
  msghdr message{};
  message.msg_iov = parts;
  message.msg_iovlen = 2;
  // Blocking send keeps frames whole on the stream; the peer reads continuously, so this only
  // waits while the socket buffer drains.
  ssize_t n = sendmsg(m_conn_fd, &message, MSG_NOSIGNAL);
  if (n != static_cast<ssize_t>(4 + frame.size())) m_dropped_tx++;
}

// Reads frames from a connected socket until it closes or we stop.
bool StreamBackend::read_frames(int fd) {
  std::vector<uint8_t> frame;
  while (!m_stop.load()) {
    bool waiting = m_frames.flush();
    pollfd fds[2] = {{fd, static_cast<short>(m_frames.full() ? 0 : POLLIN), 0}, {m_wake_fd, POLLIN, 0}};
    poll(fds, 2, waiting ? 2 : 1000);
    if (m_stop.load()) return false;
    if (!(fds[0].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    uint8_t header[4];
    if (!read_exact(fd, header, 4)) return true;
    uint32_t length =
        uint32_t(header[0]) << 24 | uint32_t(header[1]) << 16 | uint32_t(header[2]) << 8 | header[3];
    // The peer is as untrusted as a guest: a length no Ethernet frame has ends the connection.
    if (length == 0 || length > 65536 + 14) return true;
    frame.resize(length);
    if (!read_exact(fd, frame.data(), length)) return true;
    m_frames.deliver(frame);
  }
  return false;
}

void StreamBackend::run() {
  while (!m_stop.load()) {
    int fd = -1;
    if (m_options.server) {
      pollfd fds[2] = {{m_listen_fd, POLLIN, 0}, {m_wake_fd, POLLIN, 0}};
      poll(fds, 2, -1);
      if (m_stop.load()) return;
      if (fds[0].revents & POLLIN) fd = accept4(m_listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    } else {
      fd = connect_once();
      if (fd < 0) {
        pollfd wake{m_wake_fd, POLLIN, 0};
        poll(&wake, 1, 1000);
        continue;
      }
    }
    if (fd < 0) continue;
    {
      std::lock_guard lock(m_conn_lock);
      m_conn_fd = fd;
    }
    bool again = read_frames(fd);
    std::lock_guard lock(m_conn_lock);
    close(m_conn_fd);
    m_conn_fd = -1;
    if (!again) return;
  }
}

}  // namespace backends::net
