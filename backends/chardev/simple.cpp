#include "backends/chardev/simple.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "backends/chardev/pump.h"
#include "base/fd_io.h"

namespace backends::chardev {

base::ErrorOr<std::unique_ptr<FileBackend>> FileBackend::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return base::fail(base::Error("open " + path + ": " + std::strerror(errno)));
  return std::unique_ptr<FileBackend>(new FileBackend(fd));
}

FileBackend::~FileBackend() {
  close(m_fd);
}

void FileBackend::write(std::span<const uint8_t> data) {
  std::lock_guard lock(m_lock);
  size_t done = base::write_fully(m_fd, data);
  if (done < data.size()) m_dropped += data.size() - done;
}

RingbufBackend::RingbufBackend(size_t capacity) : m_buffer(capacity ? capacity : 1) {}

void RingbufBackend::write(std::span<const uint8_t> data) {
  std::lock_guard lock(m_lock);
  // Only the tail that fits can survive; skip the rest up front.
  if (data.size() > m_buffer.size()) {
    m_total += data.size() - m_buffer.size();
    data = data.last(m_buffer.size());
  }
  for (uint8_t byte : data) {
    m_buffer[m_head] = byte;
    m_head = (m_head + 1) % m_buffer.size();
  }
  m_total += data.size();
}

std::vector<uint8_t> RingbufBackend::contents() const {
  std::lock_guard lock(m_lock);
  std::vector<uint8_t> out;
  size_t held = m_total < m_buffer.size() ? static_cast<size_t>(m_total) : m_buffer.size();
  out.reserve(held);
  size_t start = (m_head + m_buffer.size() - held) % m_buffer.size();
  for (size_t i = 0; i < held; ++i) out.push_back(m_buffer[(start + i) % m_buffer.size()]);
  return out;
}

uint64_t RingbufBackend::total_written() const {
  std::lock_guard lock(m_lock);
  return m_total;
}

}  // namespace backends::chardev
