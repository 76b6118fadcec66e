#include "backends/block/raw.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "backends/block/image_lock.h"

namespace backends::block {

namespace {
constexpr uint64_t kDirectAlign = 4096;  // covers 512e and 4Kn devices and every filesystem

struct AlignedBuffer {
  uint8_t* data = nullptr;
  explicit AlignedBuffer(size_t size) {
    if (posix_memalign(reinterpret_cast<void**>(&data), kDirectAlign, size) != 0) data = nullptr;
  }
  ~AlignedBuffer() { std::free(data); }
};
}  // namespace

base::ErrorOr<void> pread_all(int fd, uint64_t offset, std::span<uint8_t> out) {
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = pread(fd, out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return base::fail(base::Error(std::string("read: ") + std::strerror(errno)));
    }
    if (n == 0) {
      std::memset(out.data() + done, 0, out.size() - done);
      break;
    }
    done += static_cast<size_t>(n);
  }
  return {};
}

base::ErrorOr<void> pwrite_all(int fd, uint64_t offset, std::span<const uint8_t> in) {
  size_t done = 0;
  while (done < in.size()) {
    ssize_t n = pwrite(fd, in.data() + done, in.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return base::fail(base::Error(std::string("write: ") + std::strerror(errno)));
    }
    done += static_cast<size_t>(n);
  }
  return {};
}

base::ErrorOr<std::unique_ptr<RawBackend>> RawBackend::open(const std::string& path, Options options) {
  int flags = (options.read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC | (options.direct ? O_DIRECT : 0);
  int fd = ::open(path.c_str(), flags);
  if (fd < 0) return base::fail(base::Error("open " + path + ": " + std::strerror(errno)));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    std::string why = std::strerror(errno);
    close(fd);
    return base::fail(base::Error("stat " + path + ": " + why));
  }
  uint64_t size = static_cast<uint64_t>(st.st_size);
  bool block_device = S_ISBLK(st.st_mode);
  // ioctl(BLKGETSIZE64) writes one uint64_t through the pointer we pass; nothing else is touched.
  if (block_device && ioctl(fd, BLKGETSIZE64, &size) != 0) {
    std::string why = std::strerror(errno);
    close(fd);
    return base::fail(base::Error("size of block device " + path + ": " + why));
  }
  if (!block_device && !S_ISREG(st.st_mode)) {
    close(fd);
    return base::fail(base::Error(path + ": not a regular file or block device"));
  }
  if (auto locked = lock_image(fd, path, !options.read_only); !locked) {
    close(fd);
    return base::fail(locked.error());
  }
  return std::unique_ptr<RawBackend>(new RawBackend(fd, path, options, size, block_device));
}

RawBackend::~RawBackend() {
  close(m_fd);
}

base::Error RawBackend::io_error(const char* what, uint64_t offset) const {
  return base::Error(m_path + ": " + what + " at offset " + std::to_string(offset) + ": " +
                     std::strerror(errno));
}

base::ErrorOr<void> RawBackend::check(uint64_t offset, uint64_t length, bool writing) const {
  if (writing && m_options.read_only) return base::fail(base::Error(m_path + ": read-only"));
  if (offset > m_size || length > m_size - offset)
    return base::fail(base::Error(m_path + ": access beyond the end of the image"));
  return {};
}

base::ErrorOr<void> RawBackend::read(uint64_t offset, std::span<uint8_t> out) {
  TRY(check(offset, out.size(), false));
  if (m_options.direct) return read_direct(offset, out);
  auto r = pread_all(m_fd, offset, out);
  if (!r) return base::fail(r.error().with_context(m_path));
  return {};
}

base::ErrorOr<void> RawBackend::write(uint64_t offset, std::span<const uint8_t> in) {
  TRY(check(offset, in.size(), true));
  if (m_options.direct) return write_direct(offset, in);
  auto r = pwrite_all(m_fd, offset, in);
  if (!r) return base::fail(r.error().with_context(m_path));
  return {};
}

static bool aligned(uint64_t offset, const void* buffer, uint64_t length) {
  return ((offset | reinterpret_cast<uintptr_t>(buffer) | length) % kDirectAlign) == 0;
}

base::ErrorOr<void> RawBackend::read_direct(uint64_t offset, std::span<uint8_t> out) {
  if (aligned(offset, out.data(), out.size())) return pread_all(m_fd, offset, out);
  uint64_t start = offset / kDirectAlign * kDirectAlign;
  uint64_t end = (offset + out.size() + kDirectAlign - 1) / kDirectAlign * kDirectAlign;
  AlignedBuffer bounce(end - start);
  if (!bounce.data) return base::fail(base::Error("out of memory for an O_DIRECT bounce buffer"));
  TRY(pread_all(m_fd, start, {bounce.data, end - start}));
  std::memcpy(out.data(), bounce.data + (offset - start), out.size());
  return {};
}

base::ErrorOr<void> RawBackend::write_direct(uint64_t offset, std::span<const uint8_t> in) {
  if (aligned(offset, in.data(), in.size())) return pwrite_all(m_fd, offset, in);
  std::lock_guard lock(m_bounce_lock);
  uint64_t start = offset / kDirectAlign * kDirectAlign;
  uint64_t end = (offset + in.size() + kDirectAlign - 1) / kDirectAlign * kDirectAlign;
  AlignedBuffer bounce(end - start);
  if (!bounce.data) return base::fail(base::Error("out of memory for an O_DIRECT bounce buffer"));
  // Read-modify-write only when the edges are partial.
  if (start != offset || end != offset + in.size()) TRY(pread_all(m_fd, start, {bounce.data, end - start}));
  std::memcpy(bounce.data + (offset - start), in.data(), in.size());
  // The tail of the last block may lie beyond the file's end; writing it would grow the file.
  uint64_t limit = std::min(end, (m_size + kDirectAlign - 1) / kDirectAlign * kDirectAlign);
  return pwrite_all(m_fd, start, {bounce.data, limit - start});
}

base::ErrorOr<void> RawBackend::flush() {
  if (m_options.read_only) return {};
  if (fdatasync(m_fd) != 0) return base::fail(io_error("fdatasync", 0));
  return {};
}

base::ErrorOr<void> RawBackend::discard(uint64_t offset, uint64_t length) {
  TRY(check(offset, length, true));
  if (m_block_device) {
    uint64_t range[2] = {offset, length};
    // BLKDISCARD reads two uint64_t from `range`; a device without discard support says so.
    if (ioctl(m_fd, BLKDISCARD, range) == 0 || errno == EOPNOTSUPP) return {};
    return base::fail(io_error("discard", offset));
  }
  // Discard is a hint; a filesystem that cannot punch holes just keeps the blocks.
  if (fallocate(m_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                static_cast<off_t>(length)) != 0 &&
      errno != EOPNOTSUPP)
    return base::fail(io_error("punch hole", offset));
  return {};
}

base::ErrorOr<void> RawBackend::write_zeroes(uint64_t offset, uint64_t length) {
  TRY(check(offset, length, true));
  if (!m_block_device && fallocate(m_fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
                                   static_cast<off_t>(offset), static_cast<off_t>(length)) == 0)
    return {};
  if (m_block_device) {
    uint64_t range[2] = {offset, length};
    // BLKZEROOUT reads two uint64_t from `range`.
    if (ioctl(m_fd, BLKZEROOUT, range) == 0) return {};
  }
  // Fallback: write zeros in bounded chunks (aligned, so O_DIRECT is fine too).
  AlignedBuffer zeros(1 << 20);
  if (!zeros.data) return base::fail(base::Error("out of memory"));
  std::memset(zeros.data, 0, 1 << 20);
  while (length > 0) {
    uint64_t n = std::min<uint64_t>(length, 1 << 20);
    TRY(write(offset, {zeros.data, n}));
    offset += n;
    length -= n;
  }
  return {};
}

}  // namespace backends::block
