#include "backends/block/snapshot.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "backends/block/raw.h"

namespace backends::block {

base::ErrorOr<std::unique_ptr<SnapshotBackend>> SnapshotBackend::create(std::shared_ptr<BlockBackend> image) {
  const char* tmp = std::getenv("TMPDIR");
  std::string dir = tmp && *tmp ? tmp : "/var/tmp";
  int fd = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) return base::fail(base::Error("snapshot file in " + dir + ": " + std::strerror(errno)));
  return std::unique_ptr<SnapshotBackend>(new SnapshotBackend(std::move(image), fd));
}

SnapshotBackend::SnapshotBackend(std::shared_ptr<BlockBackend> image, int fd)
    : m_image(std::move(image)), m_fd(fd), m_written((m_image->size() + kBlock - 1) / kBlock, false) {}

SnapshotBackend::~SnapshotBackend() {
  close(m_fd);
}

base::ErrorOr<void> SnapshotBackend::read(uint64_t offset, std::span<uint8_t> out) {
  if (offset > size() || out.size() > size() - offset) return base::fail(base::Error("read beyond the end"));
  std::lock_guard lock(m_lock);
  while (!out.empty()) {
    uint64_t block = offset / kBlock;
    // Runs of blocks from the same source become one call.
    uint64_t n = std::min<uint64_t>(out.size(), kBlock - offset % kBlock);
    bool ours = m_written[block];
    while (n < out.size() && m_written[(offset + n) / kBlock] == ours)
      n += std::min<uint64_t>(out.size() - n, kBlock);
    if (ours)
      TRY(pread_all(m_fd, offset, out.first(n)));
    else
      TRY(m_image->read(offset, out.first(n)));
    offset += n;
    out = out.subspan(n);
  }
  return {};
}

base::ErrorOr<void> SnapshotBackend::write_block_part(uint64_t offset, std::span<const uint8_t> in) {
  uint64_t block = offset / kBlock;
  if (!m_written[block] && in.size() < kBlock) {
    // Copy up the rest of the block first.
    uint64_t start = block * kBlock;
    uint64_t length = std::min<uint64_t>(kBlock, size() - start);
    std::vector<uint8_t> data(length);
    TRY(m_image->read(start, data));
    std::memcpy(data.data() + (offset - start), in.data(), in.size());
    TRY(pwrite_all(m_fd, start, data));
  } else {
    TRY(pwrite_all(m_fd, offset, in));
  }
  m_written[block] = true;
  return {};
}

base::ErrorOr<void> SnapshotBackend::write(uint64_t offset, std::span<const uint8_t> in) {
  if (offset > size() || in.size() > size() - offset) return base::fail(base::Error("write beyond the end"));
  std::lock_guard lock(m_lock);
  while (!in.empty()) {
    uint64_t n = std::min<uint64_t>(in.size(), kBlock - offset % kBlock);
    TRY(write_block_part(offset, in.first(n)));
    offset += n;
    in = in.subspan(n);
  }
  return {};
}

base::ErrorOr<void> SnapshotBackend::write_zeroes(uint64_t offset, uint64_t length) {
  std::vector<uint8_t> zeros(std::min<uint64_t>(length, 1 << 20), 0);
  while (length > 0) {
    uint64_t n = std::min<uint64_t>(length, zeros.size());
    TRY(write(offset, std::span<const uint8_t>(zeros.data(), n)));
    offset += n;
    length -= n;
  }
  return {};
}

base::ErrorOr<void> SnapshotBackend::discard(uint64_t offset, uint64_t length) {
  return write_zeroes(offset, length);
}

}  // namespace backends::block
