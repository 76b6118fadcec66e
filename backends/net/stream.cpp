#include "backends/net/stream.h"

#include <arpa/inet.h>
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

namespace backends::net {

namespace {

bool make_address(const StreamBackend::Options& o, sockaddr_storage& address, socklen_t& length) {
  std::memset(&address, 0, sizeof(address));
  if (!o.path.empty()) {
    auto* un = reinterpret_cast<sockaddr_un*>(&address);
    if (o.path.size() >= sizeof(un->sun_path)) return false;
    un->sun_family = AF_UNIX;
    std::memcpy(un->sun_path, o.path.c_str(), o.path.size() + 1);
    length = sizeof(sockaddr_un);
    return true;
  }
  auto* in = reinterpret_cast<sockaddr_in*>(&address);
  in->sin_family = AF_INET;
  in->sin_port = htons(o.port);
  length = sizeof(sockaddr_in);
  return inet_pton(AF_INET, o.host.c_str(), &in->sin_addr) == 1;
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
  sockaddr_storage address;
  socklen_t length;
  if (!make_address(options, address, length))
    return base::fail(
        base::Error("net socket: bad address " + (options.path.empty() ? options.host : options.path)));
  if (options.server) {
    int fd = socket(address.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (!options.path.empty()) unlink(options.path.c_str());
    if (bind(fd, reinterpret_cast<sockaddr*>(&address), length) != 0 || listen(fd, 1) != 0) {
      std::string why = std::strerror(errno);
      close(fd);
      return base::fail(base::Error("net socket: listen: " + why));
    }
    if (options.path.empty()) {
      sockaddr_in bound{};
      socklen_t size = sizeof(bound);
      getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &size);
      backend->m_port = ntohs(bound.sin_port);
    }
    backend->m_listen_fd = fd;
  }
  backend->m_wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  StreamBackend* raw = backend.get();
  backend->m_thread = std::thread([raw] { raw->run(); });
  return backend;
}

StreamBackend::~StreamBackend() {
  m_stop.store(true);
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(m_wake_fd, &one, sizeof(one));
  m_thread.join();
  std::lock_guard lock(m_conn_lock);
  if (m_conn_fd >= 0) close(m_conn_fd);
  if (m_listen_fd >= 0) close(m_listen_fd);
  close(m_wake_fd);
  if (m_options.server && !m_options.path.empty()) unlink(m_options.path.c_str());
}

int StreamBackend::connect_once() const {
  sockaddr_storage address;
  socklen_t length;
  make_address(m_options, address, length);
  int fd = socket(address.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), length) != 0) {
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
