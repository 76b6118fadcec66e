#include "vmm/console_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/fd_io.h"

namespace vmm {

base::ErrorOr<std::shared_ptr<ConsoleLog>> ConsoleLog::open(const std::filesystem::path& path, uint64_t cap) {
  // Read-write: rotation copies the window out of it.
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return base::fail(base::Error("open " + path.string() + ": " + std::strerror(errno)));
  std::filesystem::path previous = path;
  previous += ".1";
  int previous_fd = ::open(previous.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (previous_fd < 0) {
    int error = errno;
    ::close(fd);
    return base::fail(base::Error("open " + previous.string() + ": " + std::strerror(error)));
  }
  struct stat st {};
  uint64_t size = ::fstat(fd, &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
  return std::shared_ptr<ConsoleLog>(new ConsoleLog(path, fd, previous_fd, size, cap < 4096 ? 4096 : cap));
}

ConsoleLog::~ConsoleLog() {
  if (m_fd >= 0) ::close(m_fd);
  if (m_previous_fd >= 0) ::close(m_previous_fd);
}

void ConsoleLog::append(std::span<const uint8_t> data) {
  std::lock_guard guard(m_lock);
  if (m_fd < 0) return;
  if (m_size + data.size() > m_cap) {
    // Keep the previous window as PATH.1 so `logs --tail` still has context right after a rotation.
    // In place, through descriptors opened at start (no rename, no open): readers that follow the
    // file see it shrink and start over, as they would after a rename.
    (void)!::ftruncate(m_previous_fd, 0);
    loff_t from = 0, to = 0;
    while (from < static_cast<loff_t>(m_size)) {
      ssize_t n = ::copy_file_range(m_fd, &from, m_previous_fd, &to, m_size - static_cast<uint64_t>(from), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
    }
    (void)!::ftruncate(m_fd, 0);
    m_size = 0;
    m_rotations.fetch_add(1);
  }
  size_t done = base::write_fully(m_fd, data);  // a full disk loses log text, never guest progress
  m_size += done;
  m_written.fetch_add(done);
}

}  // namespace vmm
