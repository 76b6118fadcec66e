#include "backends/chardev/pump.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

namespace backends::chardev {

void ReceiverSlot::attach(CharReceiver* receiver) {
  {
    std::lock_guard lock(m_lock);
    m_receiver = receiver;
  }
  m_changed.notify_all();
}

void ReceiverSlot::wake() {
  { std::lock_guard lock(m_lock); }
  m_changed.notify_all();
}

bool ReceiverSlot::deliver(std::span<const uint8_t> data, const std::atomic<bool>& stop) {
  std::unique_lock lock(m_lock);
  while (!data.empty()) {
    if (stop.load()) return false;
    size_t room = m_receiver ? m_receiver->can_receive() : 0;
    if (room == 0) {
      // The front end has no notification for "room again" in the interface, so poll gently:
      // a guest that drains its FIFO sees input within a couple of milliseconds.
      m_changed.wait_for(lock, std::chrono::milliseconds(2));
      continue;
    }
    size_t n = std::min(room, data.size());
    m_receiver->receive(data.first(n));
    data = data.subspan(n);
  }
  return true;
}

Waker::Waker() {
  m_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}

Waker::~Waker() {
  if (m_fd >= 0) close(m_fd);
}

void Waker::wake() {
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(m_fd, &one, sizeof(one));
}

LoopEnd read_loop(int fd, const Waker& waker, const std::atomic<bool>& stop, ReceiverSlot& slot,
                  const InputFilter& filter) {
  uint8_t buffer[4096];
  std::vector<uint8_t> filtered;
  while (!stop.load()) {
    pollfd fds[2] = {{fd, POLLIN, 0}, {waker.fd(), POLLIN, 0}};
    int ready = poll(fds, 2, -1);
    if (ready < 0) {
      if (errno == EINTR) continue;
      return LoopEnd::Error;
    }
    if (stop.load() || (fds[1].revents & POLLIN)) return LoopEnd::Stopped;
    if (!(fds[0].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      // A pty master whose slave side is closed reads EIO: the peer went away, not a failure.
      return errno == EIO ? LoopEnd::Eof : LoopEnd::Error;
    }
    if (n == 0) return LoopEnd::Eof;
    std::span<const uint8_t> input(buffer, static_cast<size_t>(n));
    if (filter) {
      filtered.clear();
      filter(input, filtered);
      input = filtered;
    }
    if (!slot.deliver(input, stop)) return LoopEnd::Stopped;
  }
  return LoopEnd::Stopped;
}

}  // namespace backends::chardev
