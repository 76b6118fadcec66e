#include "backends/rng/random.h"

#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace backends::rng {

base::ErrorOr<std::unique_ptr<FileRng>> FileRng::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return base::fail(base::Error("open " + path + ": " + std::strerror(errno)));
  return std::unique_ptr<FileRng>(new FileRng(fd, path));
}

FileRng::~FileRng() {
  close(m_fd);
}

base::ErrorOr<void> FileRng::fill(std::span<uint8_t> out) {
  std::lock_guard lock(m_lock);
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = ::read(m_fd, out.data() + done, out.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return base::fail(base::Error(m_path + ": " + std::strerror(errno)));
    // A regular file as entropy source (tests, replay) runs out: that is a failure, not zeros.
    if (n == 0) return base::fail(base::Error(m_path + ": end of file"));
    done += static_cast<size_t>(n);
  }
  return {};
}

base::ErrorOr<void> GetrandomRng::fill(std::span<uint8_t> out) {
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = getrandom(out.data() + done, out.size() - done, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return base::fail(base::Error(std::string("getrandom: ") + std::strerror(errno)));
    done += static_cast<size_t>(n);
  }
  return {};
}

}  // namespace backends::rng
