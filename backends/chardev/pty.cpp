#include "backends/chardev/pty.h"

#include <fcntl.h>
#include <stdlib.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/fd_io.h"
#include "security/thread_role.h"

namespace backends::chardev {

base::ErrorOr<std::unique_ptr<PtyBackend>> PtyBackend::open() {
  int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
  if (master < 0) return base::fail(base::Error(std::string("posix_openpt: ") + std::strerror(errno)));
  char name[128];
  if (grantpt(master) != 0 || unlockpt(master) != 0 || ptsname_r(master, name, sizeof(name)) != 0) {
    std::string why = std::strerror(errno);
    close(master);
    return base::fail(base::Error("preparing pty: " + why));
  }
  int slave = ::open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (slave < 0) {
    std::string why = std::strerror(errno);
    close(master);
    return base::fail(base::Error(std::string("open ") + name + ": " + why));
  }
  // Raw on the slave side: the guest's bytes reach the user's terminal program unmodified.
  termios state;
  if (tcgetattr(slave, &state) == 0) {
    cfmakeraw(&state);
    tcsetattr(slave, TCSANOW, &state);
  }
  return std::unique_ptr<PtyBackend>(new PtyBackend(master, slave, name));
}

PtyBackend::PtyBackend(int master, int slave, std::string path)
    : m_master(master), m_slave(slave), m_path(std::move(path)) {
  m_reader = std::thread([this] {
    security::ThreadRole role(security::Role::Chardev);
    while (!m_stop.load()) {
      LoopEnd end = read_loop(m_master, m_waker, m_stop, m_slot);
      if (end == LoopEnd::Stopped) break;
      // EOF/EIO only happens if the slave count drops to zero, which our own slave fd prevents;
      // back off rather than spin if the kernel says otherwise.
      usleep(50 * 1000);
    }
  });
}

PtyBackend::~PtyBackend() {
  m_stop.store(true);
  m_waker.wake();
  m_slot.wake();
  m_reader.join();
  close(m_slave);
  close(m_master);
}

void PtyBackend::write(std::span<const uint8_t> data) {
  std::lock_guard lock(m_write_lock);
  size_t done = base::write_fully(m_master, data);
  if (done < data.size()) m_dropped += data.size() - done;
}

void PtyBackend::attach(CharReceiver* receiver) {
  m_slot.attach(receiver);
}

}  // namespace backends::chardev
