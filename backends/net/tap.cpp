#include "backends/net/tap.h"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "security/thread_role.h"

namespace backends::net {

base::ErrorOr<std::unique_ptr<TapBackend>> TapBackend::open(const std::string& ifname) {
  if (ifname.empty() || ifname.size() >= IFNAMSIZ)
    return base::fail(base::Error("tap: interface name \"" + ifname + "\" must be 1-15 characters"));
  int fd = ::open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return base::fail(base::Error(std::string("tap: open /dev/net/tun: ") + std::strerror(errno)));
  ifreq request{};
  request.ifr_flags = IFF_TAP | IFF_NO_PI;
  std::strncpy(request.ifr_name, ifname.c_str(), IFNAMSIZ - 1);
  // TUNSETIFF reads and writes the ifreq we own; it attaches to (or creates) the interface.
  if (ioctl(fd, TUNSETIFF, &request) != 0) {
    std::string why = std::strerror(errno);
    close(fd);
    return base::fail(base::Error(
        "tap " + ifname + ": " + why +
        (why == std::strerror(EPERM) ? " (create it first: ip tuntap add " + ifname + " mode tap user $USER)"
                                     : std::string())));
  }
  return std::unique_ptr<TapBackend>(new TapBackend(fd, request.ifr_name));
}

TapBackend::TapBackend(int fd, std::string ifname) : m_fd(fd), m_ifname(std::move(ifname)) {
  m_wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  m_thread = std::thread([this] {
    security::ThreadRole role(security::Role::Net);
    run();
  });
}

TapBackend::~TapBackend() {
  m_stop.store(true);
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(m_wake_fd, &one, sizeof(one));
  m_thread.join();
  close(m_wake_fd);
  close(m_fd);
}

void TapBackend::send_frame(std::span<const uint8_t> frame) {
  // A TAP write is one frame; a full queue (EAGAIN) drops it, as a congested link would.
  if (::write(m_fd, frame.data(), frame.size()) != static_cast<ssize_t>(frame.size())) m_dropped_tx++;
}

void TapBackend::run() {
  std::vector<uint8_t> buffer(65536 + 14);
  while (!m_stop.load()) {
    bool waiting = m_frames.flush();
    // Stop reading while the guest has no room: the kernel queue holds the rest (backpressure).
    pollfd fds[2] = {{m_fd, static_cast<short>(m_frames.full() ? 0 : POLLIN), 0}, {m_wake_fd, POLLIN, 0}};
    poll(fds, 2, waiting ? 2 : 1000);
    if (m_stop.load()) return;
    if (!(fds[0].revents & POLLIN)) continue;
    ssize_t n = ::read(m_fd, buffer.data(), buffer.size());
    if (n > 0) m_frames.deliver({buffer.data(), static_cast<size_t>(n)});
  }
}

}  // namespace backends::net
