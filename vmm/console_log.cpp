#include "vmm/console_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace vmm {

base::ErrorOr<std::shared_ptr<ConsoleLog>> ConsoleLog::open(const std::filesystem::path& path, uint64_t cap) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return base::fail(base::Error("open " + path.string() + ": " + std::strerror(errno)));
  struct stat st {};
  uint64_t size = ::fstat(fd, &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
  return std::shared_ptr<ConsoleLog>(new ConsoleLog(path, fd, size, cap < 4096 ? 4096 : cap));
}

ConsoleLog::~ConsoleLog() {
  if (m_fd >= 0) ::close(m_fd);
}

void ConsoleLog::append(std::span<const uint8_t> data) {
  std::lock_guard guard(m_lock);
  if (m_fd < 0) return;
  if (m_size + data.size() > m_cap) {
    // Keep the previous window as PATH.1 so `logs --tail` still has context right after a rotation.
    std::filesystem::path old = m_path;
    old += ".1";
    ::rename(m_path.c_str(), old.c_str());
    int fd = ::open(m_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
    ::close(m_fd);
    m_fd = fd;
    m_size = 0;
    m_rotations.fetch_add(1);
    if (m_fd < 0) return;
  }
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(m_fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // a full disk loses log text, never guest progress
    done += static_cast<size_t>(n);
  }
  m_size += done;
  m_written.fetch_add(done);
}

}  // namespace vmm
