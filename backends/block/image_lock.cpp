#include "backends/block/image_lock.h"

#include <fcntl.h>

#include <cerrno>
#include <cstring>

namespace backends::block {

base::ErrorOr<void> lock_image(int fd, const std::string& path, bool writable) {
  struct flock lock {};
  lock.l_type = writable ? F_WRLCK : F_RDLCK;
  lock.l_whence = SEEK_SET;
  lock.l_start = 0;
  lock.l_len = 0;  // the whole file, however it grows
  if (fcntl(fd, F_OFD_SETLK, &lock) == 0) return {};
  if (errno == EAGAIN || errno == EACCES) {
    struct flock held {};
    held.l_type = F_WRLCK;
    held.l_whence = SEEK_SET;
    bool writer = fcntl(fd, F_OFD_GETLK, &held) == 0 && held.l_type == F_WRLCK;
    return base::fail(base::Error(
        path + ": in use by another process (it holds the image " +
        (writer ? "for writing" : "open for reading") + "); " +
        (writable
             ? "a writable image is used by one machine at a time (use snapshot: true or a qcow2 overlay "
               "to share it)"
             : "stop the machine that writes it first")));
  }
  // No lock support here (some network file systems): use the image unlocked rather than refuse it.
  if (errno == ENOLCK || errno == EINVAL || errno == EOPNOTSUPP) return {};
  return base::fail(base::Error(path + ": lock: " + std::strerror(errno)));
}

}  // namespace backends::block
